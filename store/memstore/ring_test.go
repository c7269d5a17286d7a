package memstore

import (
	"slices"
	"testing"
)

func TestRingCap(t *testing.T) {
	tests := []struct{ limit, want int }{
		{-1, 1}, {0, 1}, {1, 1}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {1000, 1024}, {1 << 20, 1 << 20},
		{1<<62 + 1, 1 << 62}, {int(^uint(0) >> 1), 1 << 62},
	}
	for _, tc := range tests {
		if got := ringCap(tc.limit); got != tc.want {
			t.Errorf("ringCap(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
}

// times returns the hits' times, oldest first.
func (r *ring) times() []int64 {
	out := make([]int64, r.n)
	for i := range r.n {
		out[i] = r.at(i).at
	}
	return out
}

func TestRingKeepsTimeOrderAcrossWrap(t *testing.T) {
	var r ring
	r.fit(4, 4)
	for i := range 4 {
		r.push(hit{at: int64(10 + i), id: uint64(i + 1)})
	}
	r.prune(11) // drops 10, 11; head moves
	r.push(hit{at: 20, id: 5})
	r.push(hit{at: 5, id: 6}) // a clock that went back: wraps and shifts
	if got, want := r.times(), []int64{5, 12, 13, 20}; !slices.Equal(got, want) {
		t.Fatalf("times = %v, want %v", got, want)
	}
	if len(r.buf) != 4 {
		t.Fatalf("buffer grew to %d, want 4", len(r.buf))
	}
}

func TestRingRemove(t *testing.T) {
	var r ring
	r.fit(8, 8)
	ids := []uint64{1, 2, 2, 2, 3, 2, 4}
	for i, id := range ids {
		r.push(hit{at: int64(i), id: id})
	}
	if n := r.remove(2, 3); n != 3 {
		t.Fatalf("removed %d, want 3", n)
	}
	// The three newest hits of id 2 go; the oldest stays.
	if got, want := r.times(), []int64{0, 1, 4, 6}; !slices.Equal(got, want) {
		t.Fatalf("times = %v, want %v", got, want)
	}
	if n := r.remove(9, 1); n != 0 {
		t.Fatalf("removed %d hits of an unknown id", n)
	}
	if n := r.remove(2, 5); n != 1 {
		t.Fatalf("removed %d, want the last 1", n)
	}
	if got, want := r.times(), []int64{0, 4, 6}; !slices.Equal(got, want) {
		t.Fatalf("times = %v, want %v", got, want)
	}
}

func TestRingFit(t *testing.T) {
	var r ring
	r.fit(1, 1000)
	if len(r.buf) != 4 {
		t.Fatalf("first buffer %d, want 4", len(r.buf))
	}
	for i := range 600 {
		r.fit(r.n+1, 1000)
		r.push(hit{at: int64(i)})
	}
	if len(r.buf) != 1024 {
		t.Fatalf("buffer %d after 600 hits, want 1024", len(r.buf))
	}
	// The limit drops to 10: the buffer keeps its hits until they leave.
	r.fit(r.n, 10)
	if len(r.buf) != 1024 || r.n != 600 {
		t.Fatalf("buffer %d with %d hits, want 1024 and 600 kept", len(r.buf), r.n)
	}
	r.prune(597) // 2 hits left
	r.fit(r.n+1, 10)
	if len(r.buf) != 16 {
		t.Fatalf("buffer %d after the hits left, want 16 (limit 10 rounded up)", len(r.buf))
	}
	if got, want := r.times(), []int64{598, 599}; !slices.Equal(got, want) {
		t.Fatalf("times = %v, want %v", got, want)
	}
}
