package memstore

import (
	"math"
	"time"

	"github.com/sluicehq/sluice/store"
)

// GCRA (store.GCRA) keeps, in a window's ring: one.id, the bits of the
// theoretical arrival time tat (float64 µs since the Unix epoch); one.at, the
// bits of the emission interval T = W/L (float64 µs per token), which
// eviction reads; limit, the bucket's capacity B and the algorithm. The
// window's expiry is tat rounded up, when the bucket is full again. The
// arithmetic is the one the Redis script does, in the same order, so that
// both stores decide alike; products are converted explicitly so that the
// compiler never fuses them with an addition.

// gcra returns the GCRA state held by w.
func (w *window) gcra() (tat, interval float64) {
	return math.Float64frombits(w.hits.one.id), math.Float64frombits(uint64(w.hits.one.at))
}

// setGCRA stores a GCRA state in w.
func (w *window) setGCRA(tat, interval float64, capacity int) {
	w.hits = ring{
		limit: uint32(capacity) | uint32(store.GCRA)<<algShift,
		one:   hit{at: int64(math.Float64bits(interval)), id: math.Float64bits(tat)},
	}
}

// interval returns the emission interval of rule: W/L µs per token.
func interval(rule store.Rule) float64 {
	return float64(int64(rule.Window/time.Microsecond)) / float64(rule.Limit)
}

// hitGCRA is decide for GCRA, on w's GCRA state at now (µs).
func hitGCRA(w *window, now int64, rule *store.Rule, cost int, m mode, res *store.Result) bool {
	t := interval(*rule)
	capacity := rule.Capacity()
	nowF := gcraTime(now)
	tat0 := nowF
	if w.holds(store.GCRA) {
		if tat, _ := w.gcra(); tat > tat0 {
			tat0 = tat
		}
	}
	newTat := tat0 + float64(float64(cost)*t)
	burst := float64(float64(capacity) * t)
	allowAt := newTat - burst
	// Half a microsecond of slack absorbs the float rounding of absolute
	// times, as in tokens and untilFull (and in the Redis script).
	fits := nowF+0.5 >= allowAt
	if m == fitsOnly {
		return fits
	}
	*res = store.Result{Limit: rule.Limit}
	if fits && m == record {
		ttl := ceilMicros(newTat - nowF)
		w.setGCRA(newTat, t, capacity)
		w.expires = now + ttl
		res.Allowed = true
		res.Remaining = tokens(burst, newTat-nowF, t, capacity)
		res.ResetAfter = micros(untilFull(newTat - nowF))
		res.Receipt = store.Receipt{ID: 1, Cost: cost, Rule: *rule}
		return true
	}
	if !fits {
		res.RetryAfter = micros(max(ceilMicros((allowAt-nowF)-0.5), 1))
	}
	res.Remaining = tokens(burst, tat0-nowF, t, capacity)
	res.ResetAfter = micros(untilFull(tat0 - nowF))
	return fits
}

// gcraEpoch is where GCRA's float times start: 2024-01-01 00:00:00 UTC in
// µs since the Unix epoch. Counted from it rather than from 1970, times are
// about eight times as precise in a float64 (a 32nd of a microsecond rather
// than a quarter), so a theoretical arrival time built by many additions of a
// fractional token interval stays within the half microsecond the
// arithmetic allows for. The Redis script counts from the same instant.
const gcraEpoch = 1_704_067_200_000_000

// gcraTime returns now (µs since the Unix epoch) as GCRA's float time.
func gcraTime(now int64) float64 { return float64(now - gcraEpoch) }

// untilFull returns the whole microseconds until a bucket that owes owed µs
// is full again, as tokens counts it: until it owes at most half a
// microsecond.
func untilFull(owed float64) int64 {
	return ceilMicros(owed - 0.5)
}

// tokens returns the whole tokens in a bucket of burst µs (capacity tokens
// of t µs) that owes owed µs: floor((burst-owed+0.5)/t), within
// [0, capacity]. The half microsecond absorbs the rounding of absolute
// times in float64 (a quarter of a microsecond today), which would
// otherwise report a token less when t is not a whole number of
// microseconds; t is at least one microsecond, so it never adds a token.
func tokens(burst, owed, t float64, capacity int) int {
	n := math.Floor(((burst - owed) + 0.5) / t)
	return int(min(max(n, 0), float64(capacity)))
}

// ceilMicros rounds x µs up to whole microseconds, within [0, the longest
// Duration].
func ceilMicros(x float64) int64 {
	const most = float64(math.MaxInt64 / int64(time.Microsecond))
	return int64(min(max(math.Ceil(x), 0), most))
}

// undoGCRA gives back the cost tokens of a receipt under rule to w's GCRA
// state, which is digest d of table t: tat moves back by cost*T, and a state
// whose tat is then not after now (a full bucket) is deleted.
func undoGCRA(t *table, d uint64, w *window, now int64, rule store.Rule, cost int) {
	if !w.holds(store.GCRA) {
		return
	}
	tat, _ := w.gcra()
	iv := interval(rule)
	tat -= float64(float64(cost) * iv)
	nowF := gcraTime(now)
	if tat <= nowF {
		t.remove(d)
		return
	}
	w.setGCRA(tat, iv, rule.Capacity())
	w.expires = now + ceilMicros(tat-nowF)
}
