package memstore

import (
	"slices"
	"testing"
)

func TestRingCap(t *testing.T) {
	tests := []struct{ limit, want int }{
		{-1, 1}, {0, 1}, {1, 1}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {1000, 1024}, {4096, 4096}, {1 << 20, maxLog},
		{maxLog - 1, maxLog}, {maxLog, maxLog}, {1<<62 + 1, maxLog}, {int(^uint(0) >> 1), maxLog},
	}
	for _, tc := range tests {
		if got := ringCap(tc.limit); got != tc.want {
			t.Errorf("ringCap(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
}

// times returns the hits' times, oldest first, and checks the cached oldest.
func (r *ring) times(t *testing.T) []int64 {
	t.Helper()
	out := make([]int64, r.len())
	for i := range r.len() {
		out[i] = r.at(i).at
	}
	if r.len() > 0 && r.oldest() != out[0] {
		t.Fatalf("cached oldest %d, log starts at %d", r.oldest(), out[0])
	}
	return out
}

// add fits and pushes one hit.
func (r *ring) add(at int64, id uint64, limit int) {
	r.fit(r.len()+1, limit)
	r.push(hit{at: at, id: id})
}

func TestRingInline(t *testing.T) {
	var r ring
	r.add(10, 1, 1000)
	if r.buf != nil {
		t.Fatalf("one hit allocated a buffer of %d", len(r.buf))
	}
	if got := r.times(t); !slices.Equal(got, []int64{10}) {
		t.Fatalf("times = %v", got)
	}
	if n := r.remove(2, 1); n != 0 {
		t.Fatalf("removed %d hits of another id", n)
	}
	r.prune(9)
	if r.len() != 1 {
		t.Fatalf("prune before the hit dropped it")
	}
	r.prune(10)
	if r.len() != 0 {
		t.Fatalf("prune at the hit kept it")
	}
	r.add(20, 3, 1000)
	if n := r.remove(3, 1); n != 1 || r.len() != 0 {
		t.Fatalf("remove of the inline hit: %d removed, %d left", n, r.len())
	}
	// A second hit moves the log to a buffer, keeping the first.
	r.add(30, 4, 1000)
	r.add(31, 5, 1000)
	if len(r.buf) != 4 {
		t.Fatalf("buffer of %d, want 4", len(r.buf))
	}
	if got := r.times(t); !slices.Equal(got, []int64{30, 31}) {
		t.Fatalf("times = %v", got)
	}
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
	if got, want := r.times(t), []int64{5, 12, 13, 20}; !slices.Equal(got, want) {
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
	if got, want := r.times(t), []int64{0, 1, 4, 6}; !slices.Equal(got, want) {
		t.Fatalf("times = %v, want %v", got, want)
	}
	if n := r.remove(9, 1); n != 0 {
		t.Fatalf("removed %d hits of an unknown id", n)
	}
	if n := r.remove(1, 1); n != 1 {
		t.Fatalf("removed %d, want the oldest", n)
	}
	if got, want := r.times(t), []int64{1, 4, 6}; !slices.Equal(got, want) {
		t.Fatalf("times = %v, want %v (oldest cache updated)", got, want)
	}
}

func TestRingFit(t *testing.T) {
	var r ring
	for i := range 600 {
		r.add(int64(i), uint64(i+1), 1000)
	}
	if len(r.buf) != 1024 {
		t.Fatalf("buffer %d after 600 hits, want 1024", len(r.buf))
	}
	// The limit drops to 10: the buffer keeps its hits until they leave.
	r.fit(r.len(), 10)
	if len(r.buf) != 1024 || r.len() != 600 {
		t.Fatalf("buffer %d with %d hits, want 1024 and 600 kept", len(r.buf), r.len())
	}
	r.prune(597) // 2 hits left
	r.fit(r.len()+1, 10)
	if len(r.buf) != 16 {
		t.Fatalf("buffer %d after the hits left, want 16 (limit 10 rounded up)", len(r.buf))
	}
	if got, want := r.times(t), []int64{598, 599}; !slices.Equal(got, want) {
		t.Fatalf("times = %v, want %v", got, want)
	}
	// The limit drops to 1: once one hit is left, the log goes back inline.
	r.prune(598)
	r.fit(1, 1)
	if r.buf != nil || r.len() != 1 || r.at(0) != (hit{at: 599, id: 600}) {
		t.Fatalf("limit 1 with one hit: buffer %d, hits %v", len(r.buf), r.times(t))
	}
}
