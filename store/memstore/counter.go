package memstore

import (
	"math"
	"time"

	"github.com/sluicehq/sluice/store"
)

// The sliding-window counter (store.SlidingCounter) keeps, in a window's
// ring: one.at, the index sidx of the fixed window it was last written in
// (time divided by the window length, rounded down); one.id, that window's
// count curr in its high 32 bits and the previous one's, prev, in its low
// 32 bits; limit, the rule's limit and the algorithm. The window's expiry is
// the end of the fixed window after sidx, (sidx+2)*W µs, so the state is
// empty from then on. The arithmetic is the one the Redis script does, in
// the same order, so that both stores decide alike.

// counter returns the counter state held by w.
func (w *window) counter() (sidx, curr, prev int64) {
	return w.hits.one.at, int64(w.hits.one.id >> 32), int64(uint32(w.hits.one.id))
}

// setCounter stores a counter state in w, limit being the rule's.
func (w *window) setCounter(sidx, curr, prev, limit int64) {
	w.hits = ring{
		limit: uint32(limit) | uint32(store.SlidingCounter)<<algShift,
		one:   hit{at: sidx, id: uint64(curr)<<32 | uint64(uint32(prev))},
	}
}

// floorDiv returns a/b rounded down; b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// counterAt returns the counts (curr, prev) at fixed window idx of a state
// written in fixed window sidx: as stored in the same window, shifted by one
// in the next, nothing later (or earlier, if the clock went back).
func counterAt(sidx, curr, prev, idx int64) (int64, int64) {
	switch sidx {
	case idx:
		return curr, prev
	case idx - 1:
		return 0, curr
	}
	return 0, 0
}

// weighted returns the weighted count prev*(W-e)/W + curr, e µs into a fixed
// window of win µs.
func weighted(curr, prev, e, win int64) float64 {
	return float64(float64(prev)*float64(win-e))/float64(win) + float64(curr)
}

// counterUsed returns the weighted count of w's counter state at now, for
// eviction. The window length is read back from the expiry, which is
// (sidx+2)*W; without it, the counts are taken whole.
func counterUsed(w *window, now int64) float64 {
	sidx, curr, prev := w.counter()
	if sidx+2 <= 0 || w.expires%(sidx+2) != 0 {
		return float64(curr + prev)
	}
	win := w.expires / (sidx + 2)
	idx := floorDiv(now, win)
	curr, prev = counterAt(sidx, curr, prev, idx)
	return weighted(curr, prev, now-idx*win, win)
}

// hitCounter is decide for the sliding-window counter, on w's counter state
// at now (µs).
func hitCounter(w *window, now int64, rule *store.Rule, cost int, m mode, res *store.Result) bool {
	win := int64(rule.Window / time.Microsecond)
	limit, c := int64(rule.Limit), int64(cost)
	idx := floorDiv(now, win)
	e := now - idx*win
	var curr, prev int64
	if w.holds(store.SlidingCounter) {
		sidx, scurr, sprev := w.counter()
		curr, prev = counterAt(sidx, scurr, sprev, idx)
	}
	count := weighted(curr, prev, e, win)
	fits := count+float64(c) <= float64(limit)
	if m == fitsOnly {
		return fits
	}
	*res = store.Result{Limit: rule.Limit}
	switch {
	case fits && m == record:
		curr += c
		count += float64(c)
		w.setCounter(idx, curr, prev, limit)
		w.expires = now + (win - e) + win
		res.Allowed = true
		res.Receipt = store.Receipt{ID: uint64(idx) + 1, Cost: cost, Rule: *rule}
	case !fits:
		res.RetryAfter = micros(counterWait(now, win, idx, curr, prev, c, limit))
	}
	r := int64(math.Ceil(count))
	res.Remaining = int(max(limit-r, 0))
	if r > 0 {
		res.ResetAfter = micros(counterWait(now, win, idx, curr, prev, 0, r-1))
	}
	return fits
}

// counterWait returns the least d >= 1 µs such that, nothing else arriving,
// the weighted count at now+d plus c is at most limit, for the counts
// (curr, prev) of fixed window idx: the closed form is the first guess, and
// leastFitting finds the exact answer against the test itself, which float
// rounding may put far from the guess. The weighted count never grows as
// time passes, and it is 0 two fixed windows on, where c <= limit holds.
func counterWait(now, win, idx, curr, prev, c, limit int64) int64 {
	e := now - idx*win
	room := limit - c
	d := int64(1)
	switch {
	case curr <= room:
		// Within this fixed window, as prev's weight falls.
		if prev > 0 {
			at := float64(win) - float64(float64(room-curr)*float64(win))/float64(prev)
			d = int64(math.Ceil(at - float64(e)))
		}
	default:
		// In the next one, where curr becomes prev (curr > room >= 0).
		at := float64(win) - float64(float64(room)*float64(win))/float64(curr)
		d = (win - e) + int64(math.Ceil(max(at, 0)))
	}
	// The weighted count e+d µs into fixed window idx (d >= 1): in this
	// window, in the next (where curr weighs as prev), or 0 after.
	fits := func(d int64) bool {
		var count float64
		switch t := e + d; {
		case t < win:
			count = weighted(curr, prev, t, win)
		case t < 2*win:
			count = weighted(0, curr, t-win, win)
		}
		return count+float64(c) <= float64(limit)
	}
	return leastFitting(min(max(d, 1), 2*win-e), 2*win-e, fits)
}

// leastFitting returns the least d in [1, hi] for which fits holds, given
// that fits is monotone (false, then true) and holds at hi, starting from
// the guess d: it gallops from the guess in doubling steps, then bisects,
// so that it takes about 2*log2 of the guess's error in tests, never a step
// per microsecond (float rounding may put the guess far off when the counts
// dwarf a microsecond's share of the weight).
func leastFitting(d, hi int64, fits func(int64) bool) int64 {
	var lo int64 // fits(lo) is false, or lo is 0
	if fits(d) {
		hi = d
		for step := int64(1); ; step *= 2 {
			if hi-step < 1 {
				lo = 0
				break
			}
			if !fits(hi - step) {
				lo = hi - step
				break
			}
			hi -= step
		}
	} else {
		lo = d
		for step := int64(1); ; step *= 2 {
			if lo+step >= hi {
				break
			}
			if fits(lo + step) {
				hi = lo + step
				break
			}
			lo += step
		}
	}
	for hi-lo > 1 { // fits(hi) holds; fits(lo) does not (or lo is 0)
		mid := lo + (hi-lo)/2
		if fits(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// undoCounter takes cost hits off the fixed window of the receipt id (the
// fixed window's index plus one) if w still counts it: as the current
// window's or as the previous one's.
func undoCounter(w *window, id uint64, cost int) {
	if !w.holds(store.SlidingCounter) {
		return
	}
	sidx, curr, prev := w.counter()
	switch int64(id - 1) {
	case sidx:
		curr = max(curr-int64(cost), 0)
	case sidx - 1:
		prev = max(prev-int64(cost), 0)
	default:
		return
	}
	w.setCounter(sidx, curr, prev, w.limit())
}

// micros converts microseconds to a Duration, saturating rather than
// overflowing.
func micros(d int64) time.Duration {
	return time.Duration(min(d, math.MaxInt64/int64(time.Microsecond))) * time.Microsecond
}
