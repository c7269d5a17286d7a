package memstore

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/store"
)

// TestO1StatesFitTheSlot stores the largest states of the O(1) algorithms in
// a table slot (64 bytes, checked by TestWindowIsOneCacheLine) and reads
// them back whole.
func TestO1StatesFitTheSlot(t *testing.T) {
	if size := unsafe.Sizeof(window{}); size != 64 {
		t.Fatalf("window is %d bytes, want 64", size)
	}
	var w window
	const most = store.MaxCounterLimit
	w.setCounter(math.MaxInt64/2, most, most-1, most)
	if sidx, curr, prev := w.counter(); sidx != math.MaxInt64/2 || curr != most || prev != most-1 {
		t.Errorf("counter state read back as (%d, %d, %d)", sidx, curr, prev)
	}
	if w.algorithm() != store.SlidingCounter || w.limit() != most || !w.holds(store.SlidingCounter) || w.holds(store.GCRA) {
		t.Errorf("counter window: algorithm %v, limit %d", w.algorithm(), w.limit())
	}
	if w.hits.len() != 0 || w.hits.buf != nil {
		t.Errorf("counter window reads as a log of %d hits", w.hits.len())
	}

	tat, iv := 1.7e15+0.25, 3600e6/7
	w.setGCRA(tat, iv, most)
	if gotTat, gotIv := w.gcra(); gotTat != tat || gotIv != iv {
		t.Errorf("GCRA state read back as (%v, %v), want (%v, %v)", gotTat, gotIv, tat, iv)
	}
	if w.algorithm() != store.GCRA || w.limit() != most || !w.holds(store.GCRA) || w.holds(store.SlidingCounter) {
		t.Errorf("GCRA window: algorithm %v, limit %d", w.algorithm(), w.limit())
	}
	if w.hits.len() != 0 || w.hits.buf != nil {
		t.Errorf("GCRA window reads as a log of %d hits", w.hits.len())
	}

	// The log writes its limit alone: the window is the log's again, and
	// an O(1) algorithm no longer reads it as its own.
	w.hits.limit = store.MaxLimit
	if w.algorithm() != store.SlidingLog || w.holds(store.GCRA) {
		t.Errorf("after the log wrote its limit: algorithm %v", w.algorithm())
	}
}

// TestInsertSpareOnlyForTheLog checks that a window of an O(1) algorithm
// takes no spare log buffer, which it would never use.
func TestInsertSpareOnlyForTheLog(t *testing.T) {
	var tab table
	tab.spare = append(tab.spare, make([]hit, 4))
	if w := tab.insert(1, false); w.hits.buf != nil {
		t.Fatalf("an O(1) window took a spare buffer")
	}
	if w := tab.insert(2, true); w.hits.buf == nil {
		t.Fatalf("a log window did not take the spare buffer")
	}
}

// TestEvictBeforeAcrossAlgorithms compares windows of every algorithm by the
// share of their limit they have used.
func TestEvictBeforeAcrossAlgorithms(t *testing.T) {
	const win = int64(1e6)               // µs
	const start = int64(1_000_000) * win // a fixed window's start
	const now = start + win/2            // half-way through it
	var expired, gcraTenth, counterQuarter, logHalf, gcraFull window
	expired.setCounter(start/win-5, 8, 8, 8)
	expired.expires = now - 1
	// GCRA with capacity 5, T = 1000µs, owing half a token: a tenth.
	gcraTenth.setGCRA(gcraTime(now+500), 1000, 5)
	gcraTenth.expires = now + 500
	// A counter with 4 hits of 8 in the previous fixed window, half-way
	// through the current one: weighted count 2, a quarter of its limit.
	counterQuarter.setCounter(start/win-1, 4, 0, 8)
	counterQuarter.expires = start + win
	// A log of 2 hits under a limit of 4.
	logHalf.hits.limit = 4
	logHalf.hits.n = 2
	logHalf.expires = now + win
	// GCRA owing all 5 tokens.
	gcraFull.setGCRA(gcraTime(now+5000), 1000, 5)
	gcraFull.expires = now + 5000

	for _, c := range []struct {
		name string
		w    *window
		want float64
	}{
		{"GCRA", &gcraTenth, 0.1},
		{"counter", &counterQuarter, 0.25},
		{"log", &logHalf, 0.5},
		{"full GCRA", &gcraFull, 1},
	} {
		if got := c.w.used(now); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s used %v of its limit, want %v", c.name, got, c.want)
		}
	}
	order := []*window{&expired, &gcraTenth, &counterQuarter, &logHalf, &gcraFull}
	names := []string{"expired", "GCRA at 1/10", "counter at 1/4", "log at 1/2", "full GCRA"}
	for i := range order {
		for j := range order {
			if got, want := evictBefore(order[i], order[j], now), i < j; got != want {
				t.Errorf("evictBefore(%s, %s) = %v, want %v", names[i], names[j], got, want)
			}
		}
	}
}

// TestCounterWaitIsLeast checks counterWait against its definition on random
// states, long windows and large limits included, where float rounding puts
// the closed form a microsecond off: at now+d the request fits, and at
// now+d-1 (when d > 1) it does not. The count is worked out here from the
// definition: prev*(W-e)/W + curr in the fixed window of the state, curr
// weighing as prev in the next, nothing after.
func TestCounterWaitIsLeast(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	countAt := func(t, win, idx, curr, prev int64) float64 {
		tidx := t / win
		e := t - tidx*win
		switch tidx {
		case idx:
		case idx + 1:
			curr, prev = 0, curr
		default:
			return 0
		}
		return float64(float64(prev)*float64(win-e))/float64(win) + float64(curr)
	}
	checked := 0
	for i := range 400_000 {
		win := 1000 + r.Int64N(int64(store.MaxWindow/time.Microsecond))
		limit := 1 + r.Int64N(store.MaxCounterLimit)
		if i%2 == 0 {
			win = 1000 + r.Int64N(1e8)
			limit = 1 + r.Int64N(100)
		}
		idx := int64(1.77e15) / win
		now := idx*win + r.Int64N(win)
		curr, prev := r.Int64N(limit+1), r.Int64N(limit+1)
		c := 1 + r.Int64N(limit)
		if i%3 == 0 { // the ResetAfter form: count <= r-1
			c = 0
			limit = int64(math.Ceil(countAt(now, win, idx, curr, prev))) - 1
			if limit < 0 {
				continue
			}
		}
		fits := func(d int64) bool {
			return countAt(now+d, win, idx, curr, prev)+float64(c) <= float64(limit)
		}
		if fits(1) {
			continue
		}
		checked++
		d := counterWait(now, win, idx, curr, prev, c, limit)
		if !fits(d) || (d > 1 && fits(d-1)) {
			t.Fatalf("W=%d L=%d curr=%d prev=%d c=%d e=%d: wait %d is not the least fitting (fits: %v, one less fits: %v)",
				win, limit, curr, prev, c, now-idx*win, d, fits(d), fits(d-1))
		}
	}
	if checked < 100_000 {
		t.Errorf("only %d states checked", checked)
	}
}

// leastFitting finds the least fitting d in a few dozen tests however far
// the guess is off, as the counter needs when float rounding moves its
// closed form by millions of microseconds.
func TestLeastFittingIsBounded(t *testing.T) {
	const hi = int64(2 * 366 * 24 * 3600 * 1e6) // two of the longest windows, in µs
	for _, tc := range []struct{ guess, want int64 }{
		{1, 1}, {1, hi}, {hi, 1}, {hi, hi}, {1_000_000, 1_000_000}, {5, 2_000_005},
		{3_000_000, 17}, {hi / 2, hi/2 + 1}, {hi / 2, hi/2 - 1},
	} {
		calls := 0
		fits := func(d int64) bool { calls++; return d >= tc.want }
		if got := leastFitting(tc.guess, hi, fits); got != tc.want {
			t.Errorf("guess %d: got %d, want %d", tc.guess, got, tc.want)
		}
		if calls > 2*64 {
			t.Errorf("guess %d, want %d: %d tests", tc.guess, tc.want, calls)
		}
	}
}
