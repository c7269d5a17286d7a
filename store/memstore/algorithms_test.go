package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// want is what a test expects of a Result.
type want struct {
	allowed    bool
	remaining  int
	retryAfter time.Duration
	resetAfter time.Duration
}

func expect(t *testing.T, label string, got store.Result, w want) {
	t.Helper()
	if got.Allowed != w.allowed || got.Remaining != w.remaining || got.RetryAfter != w.retryAfter || got.ResetAfter != w.resetAfter {
		t.Errorf("%s = {Allowed:%v Remaining:%d RetryAfter:%v ResetAfter:%v}, want {%v %d %v %v}",
			label, got.Allowed, got.Remaining, got.RetryAfter, got.ResetAfter,
			w.allowed, w.remaining, w.retryAfter, w.resetAfter)
	}
	if got.Allowed != !got.Receipt.IsZero() {
		t.Errorf("%s: Allowed %v with receipt %+v", label, got.Allowed, got.Receipt)
	}
}

// The fake clock starts at 2026-03-01 12:00:00 UTC, the start of a fixed
// window of a second, a minute and an hour.

// TestCounterAtFixedWindowBoundary runs a sliding-window counter (10 per
// minute) up to a fixed-window boundary: a full window weighs fully at the
// start of the next one, and its weight falls as that one goes on.
func TestCounterAtFixedWindowBoundary(t *testing.T) {
	s, clock := newStore(t)
	rule := store.Rule{Limit: 10, Window: time.Minute, Algorithm: store.SlidingCounter}
	t0 := clock.Now()
	// Hits at the window's start: a count n in the current window falls
	// below n-1 once the next window's weight of it, n*(60s-e)/60s, is
	// at most n-1, e = 60s/n into the next window.
	expect(t, "hit 1", mustHit(t, s, "k", rule, 1), want{true, 9, 0, 120 * time.Second})
	expect(t, "hit 2", mustHit(t, s, "k", rule, 1), want{true, 8, 0, 90 * time.Second})
	expect(t, "hit 3", mustHit(t, s, "k", rule, 1), want{true, 7, 0, 80 * time.Second})
	expect(t, "hit 4", mustHit(t, s, "k", rule, 1), want{true, 6, 0, 75 * time.Second})
	clock.Set(t0.Add(59 * time.Second))
	for i := 5; i < 10; i++ {
		mustHit(t, s, "k", rule, 1)
	}
	// 10 in the window: the count falls to 9 at 10*(60s-e)/60s = 9, e = 6s
	// into the next window, 1s + 6s from now.
	expect(t, "hit 10 at 59s", mustHit(t, s, "k", rule, 1), want{true, 0, 0, 7 * time.Second})
	expect(t, "hit 11 at 59s", mustHit(t, s, "k", rule, 1), want{false, 0, 7 * time.Second, 7 * time.Second})
	clock.Set(t0.Add(time.Minute - time.Microsecond))
	expect(t, "hit in the window's last µs", mustHit(t, s, "k", rule, 1), want{false, 0, 6*time.Second + time.Microsecond, 6*time.Second + time.Microsecond})
	clock.Set(t0.Add(time.Minute))
	expect(t, "hit at the boundary (previous window weighs 10)", mustHit(t, s, "k", rule, 1), want{false, 0, 6 * time.Second, 6 * time.Second})
	clock.Set(t0.Add(66*time.Second - time.Microsecond))
	expect(t, "hit 1µs before the retry time", mustHit(t, s, "k", rule, 1), want{false, 0, time.Microsecond, time.Microsecond})
	clock.Set(t0.Add(66 * time.Second))
	// Weighted 10*54/60 = 9, plus this hit: 10. It falls to 9 when the
	// previous window weighs 8: 60s*(1-8/10) = 12s into the window.
	expect(t, "hit at the retry time", mustHit(t, s, "k", rule, 1), want{true, 0, 0, 6 * time.Second})
	clock.Set(t0.Add(2 * time.Minute))
	// Two windows on, the first window no longer counts; the one hit of
	// the second weighs 1 now: 1 + 1, which falls to 1 when that weight is
	// gone, at the end of this window.
	expect(t, "two windows on", mustHit(t, s, "k", rule, 1), want{true, 8, 0, time.Minute})
}

// TestCounterHalfWindow is the counter's defining case: a full previous
// window (10 hits, limit 10 per minute) weighs half at 30s into the next,
// which therefore admits 5 more.
func TestCounterHalfWindow(t *testing.T) {
	s, clock := newStore(t)
	rule := store.Rule{Limit: 10, Window: time.Minute, Algorithm: store.SlidingCounter}
	t0 := clock.Now()
	expect(t, "10 hits", mustHit(t, s, "k", rule, 10), want{true, 0, 0, 66 * time.Second})
	clock.Set(t0.Add(90 * time.Second)) // 30s into the next fixed window
	// Each hit adds 1 to 5 + curr; Remaining falls from 4 to 0. The count
	// 5+n next falls to 4+n when 10*(60s-e)/60s = 4, at e = 36s, 6s on.
	for i := 1; i <= 5; i++ {
		expect(t, fmt.Sprintf("hit %d at 30s", i), mustHit(t, s, "k", rule, 1), want{true, 5 - i, 0, 6 * time.Second})
	}
	// Full: 5 + 5. One more fits when 10*(60s-e)/60s + 5 + 1 <= 10: e = 36s.
	expect(t, "sixth hit", mustHit(t, s, "k", rule, 1), want{false, 0, 6 * time.Second, 6 * time.Second})
	clock.Set(t0.Add(96*time.Second - time.Microsecond))
	if res := mustHit(t, s, "k", rule, 1); res.Allowed || res.RetryAfter != time.Microsecond {
		t.Errorf("1µs before the retry time: %+v, want denied, retry in 1µs", res)
	}
	clock.Set(t0.Add(96 * time.Second))
	if res := mustHit(t, s, "k", rule, 1); !res.Allowed {
		t.Errorf("at the retry time: %+v, want allowed", res)
	}
}

// TestCounterFractions checks rounding where the weighted count is not
// whole: 7 hits in the previous window weigh 7*40/60 = 4.67 at 20s in.
func TestCounterFractions(t *testing.T) {
	s, clock := newStore(t)
	rule := store.Rule{Limit: 10, Window: time.Minute, Algorithm: store.SlidingCounter}
	t0 := clock.Now()
	mustHit(t, s, "k", rule, 7)
	clock.Set(t0.Add(80 * time.Second))
	// 4.67 + 5 = 9.67 fits; Remaining is 10 - ceil(9.67) = 0. The count
	// falls to 9 when 7*(60s-e)/60s = 4, e = 60s - 240s/7 = 25.714285714s:
	// 5.714285714s from now, 5714286µs rounded up.
	const wait = 5714286 * time.Microsecond
	expect(t, "cost 5", mustHit(t, s, "k", rule, 5), want{true, 0, 0, wait})
	// One more fits when 7*(60s-e)/60s + 5 + 1 <= 10: the same instant.
	expect(t, "cost 1", mustHit(t, s, "k", rule, 1), want{false, 0, wait, wait})
	clock.Set(t0.Add(80*time.Second + wait - time.Microsecond))
	if res := mustHit(t, s, "k", rule, 1); res.Allowed || res.RetryAfter != time.Microsecond {
		t.Errorf("1µs before the retry time: %+v, want denied, retry in 1µs", res)
	}
	clock.Set(t0.Add(80*time.Second + wait))
	if res := mustHit(t, s, "k", rule, 1); !res.Allowed {
		t.Errorf("at the retry time: %+v, want allowed", res)
	}
}

// TestCounterUndo undoes counter receipts from the current fixed window,
// from the previous one (whose count now weighs less), and from one that no
// longer counts.
func TestCounterUndo(t *testing.T) {
	ctx := context.Background()
	rule := store.Rule{Limit: 10, Window: time.Minute, Algorithm: store.SlidingCounter}
	t.Run("SameWindow", func(t *testing.T) {
		s, _ := newStore(t)
		res := mustHit(t, s, "k", rule, 3)
		if err := s.Undo(ctx, "k", res.Receipt); err != nil {
			t.Fatal(err)
		}
		expect(t, "hit after undo", mustHit(t, s, "k", rule, 1), want{true, 9, 0, 2 * time.Minute})
	})
	t.Run("PreviousWindow", func(t *testing.T) {
		s, clock := newStore(t)
		t0 := clock.Now()
		res := mustHit(t, s, "k", rule, 3)
		clock.Set(t0.Add(90 * time.Second))
		// 3 weigh 1.5 here; with this hit 2.5, so 7 remain.
		if r := mustHit(t, s, "k", rule, 1); r.Remaining != 7 {
			t.Fatalf("hit in the next window: %+v, want 7 remaining", r)
		}
		if err := s.Undo(ctx, "k", res.Receipt); err != nil {
			t.Fatal(err)
		}
		// The previous window holds 0: 1 + 1.
		if r := mustHit(t, s, "k", rule, 1); r.Remaining != 8 {
			t.Errorf("hit after undoing the previous window's hits: %+v, want 8 remaining", r)
		}
	})
	t.Run("NoLongerCounted", func(t *testing.T) {
		s, clock := newStore(t)
		t0 := clock.Now()
		res := mustHit(t, s, "k", rule, 2)
		clock.Set(t0.Add(2 * time.Minute)) // two windows on: the 2 hits count no more
		mustHit(t, s, "k", rule, 1)
		if err := s.Undo(ctx, "k", res.Receipt); err != nil {
			t.Fatal(err)
		}
		if r := mustHit(t, s, "k", rule, 1); r.Remaining != 8 {
			t.Errorf("after undoing hits that no longer count: %+v, want 8 remaining (this window's 2 hits kept)", r)
		}
	})
}

// TestGCRABurstThenRefill runs GCRA at 10 per second (a token every 100ms)
// with a burst of 3.
func TestGCRABurstThenRefill(t *testing.T) {
	s, clock := newStore(t)
	rule := store.Rule{Limit: 10, Window: time.Second, Algorithm: store.GCRA, Burst: 3}
	const tick = 100 * time.Millisecond
	t0 := clock.Now()
	expect(t, "token 1", mustHit(t, s, "k", rule, 1), want{true, 2, 0, tick})
	expect(t, "token 2", mustHit(t, s, "k", rule, 1), want{true, 1, 0, 2 * tick})
	expect(t, "token 3", mustHit(t, s, "k", rule, 1), want{true, 0, 0, 3 * tick})
	res := mustHit(t, s, "k", rule, 1)
	expect(t, "empty bucket", res, want{false, 0, tick, 3 * tick})
	if res.Limit != 10 {
		t.Errorf("Limit = %d, want the rule's limit 10, not its burst", res.Limit)
	}
	clock.Set(t0.Add(tick - time.Microsecond))
	expect(t, "1µs before a token is back", mustHit(t, s, "k", rule, 1), want{false, 0, time.Microsecond, 2*tick + time.Microsecond})
	clock.Set(t0.Add(tick))
	expect(t, "a token is back", mustHit(t, s, "k", rule, 1), want{true, 0, 0, 3 * tick})
	expect(t, "cost 2 with none", mustHit(t, s, "k", rule, 2), want{false, 0, 2 * tick, 3 * tick})
	clock.Set(t0.Add(2*tick + tick/2)) // 1.5 tokens back
	expect(t, "cost 2 with 1.5", mustHit(t, s, "k", rule, 2), want{false, 1, tick / 2, tick + tick/2})
	clock.Set(t0.Add(4 * tick)) // full again
	expect(t, "cost 3 from a full bucket", mustHit(t, s, "k", rule, 3), want{true, 0, 0, 3 * tick})
	clock.Set(t0.Add(10 * tick)) // long idle: the bucket holds 3, never more
	expect(t, "after idling", mustHit(t, s, "k", rule, 1), want{true, 2, 0, tick})
}

// TestGCRAUndo gives tokens back: never more than a full bucket.
func TestGCRAUndo(t *testing.T) {
	ctx := context.Background()
	rule := store.Rule{Limit: 10, Window: time.Second, Algorithm: store.GCRA, Burst: 3}
	const tick = 100 * time.Millisecond
	t.Run("Partial", func(t *testing.T) {
		s, clock := newStore(t)
		t0 := clock.Now()
		res := mustHit(t, s, "k", rule, 3)
		clock.Set(t0.Add(tick / 2))
		if err := s.Undo(ctx, "k", store.Receipt{ID: res.Receipt.ID, Cost: 1, Rule: rule}); err != nil {
			t.Fatal(err)
		}
		// 2 tokens owed until t0+200ms, 1.5 at t0+50ms; this one takes 1.
		expect(t, "hit after giving one back", mustHit(t, s, "k", rule, 1), want{true, 0, 0, 3*tick - tick/2})
	})
	t.Run("NotBelowNow", func(t *testing.T) {
		s, clock := newStore(t)
		t0 := clock.Now()
		res := mustHit(t, s, "k", rule, 1)
		clock.Set(t0.Add(tick * 8 / 10)) // 0.2 tokens still owed
		if err := s.Undo(ctx, "k", res.Receipt); err != nil {
			t.Fatal(err)
		}
		// Giving back 1 leaves the bucket full: the state is dropped.
		if n := s.Len(); n != 0 {
			t.Errorf("Len after a refund that fills the bucket = %d, want 0", n)
		}
		expect(t, "cost 3 after", mustHit(t, s, "k", rule, 3), want{true, 0, 0, 3 * tick})
	})
	t.Run("BadRule", func(t *testing.T) {
		s, _ := newStore(t)
		res := mustHit(t, s, "k", rule, 1)
		bad := res.Receipt
		bad.Rule.Limit = 0
		if err := s.Undo(ctx, "k", bad); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("Undo with a GCRA receipt of limit 0 = %v, want store.ErrInvalidArgument", err)
		}
	})
}

// TestAlgorithmsAreSeparateStates uses one key and name under the three
// algorithms: each has its own state.
func TestAlgorithmsAreSeparateStates(t *testing.T) {
	s, _ := newStore(t)
	for _, alg := range []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA} {
		rule := store.Rule{Name: "r", Limit: 1, Window: time.Hour, Algorithm: alg}
		if res := mustHit(t, s, "k", rule, 1); !res.Allowed {
			t.Errorf("%v: first hit denied: %+v", alg, res)
		}
	}
	for _, alg := range []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA} {
		rule := store.Rule{Name: "r", Limit: 1, Window: time.Hour, Algorithm: alg}
		if res := mustHit(t, s, "k", rule, 1); res.Allowed {
			t.Errorf("%v: second hit allowed: %+v", alg, res)
		}
	}
	if n := s.Len(); n != 3 {
		t.Errorf("Len = %d, want 3 states", n)
	}
}

// probe returns key's Result under rule as it stands at the store's time,
// recording nothing: a stack with a part that cannot fit is denied, and
// reports each part's state without the call.
func probe(t *testing.T, s *memstore.Store, key string, rule store.Rule) store.Result {
	t.Helper()
	blocker := store.Rule{Name: "probe-blocker", Limit: 1, Window: store.MaxWindow}
	mustHit(t, s, "blocker", blocker, 1) // the blocker is full from its first use on
	out := make([]store.Result, 2)
	hits := []store.Hit{{Key: key, Rule: rule, Cost: 1}, {Key: "blocker", Rule: blocker, Cost: 1}}
	if err := s.HitAll(context.Background(), hits, out); err != nil {
		t.Fatalf("HitAll: %v", err)
	}
	if out[0].Allowed || out[1].Allowed {
		t.Fatalf("probe recorded: %+v", out)
	}
	return out[0]
}

// TestRetryAndResetAreExact drives each algorithm with random traffic and
// checks the times it reports against their definitions: a denied request
// repeated RetryAfter later is admitted and 1µs earlier is not; Remaining
// grows at ResetAfter and not 1µs earlier (for GCRA: the bucket is full
// then and not before).
func TestRetryAndResetAreExact(t *testing.T) {
	rules := []store.Rule{
		{Limit: 10, Window: time.Minute},
		{Limit: 7, Window: 1300 * time.Millisecond},
		{Limit: 10, Window: time.Minute, Algorithm: store.SlidingCounter},
		{Limit: 7, Window: 1300 * time.Millisecond, Algorithm: store.SlidingCounter},
		{Limit: 1000, Window: time.Hour, Algorithm: store.SlidingCounter},
		// Long windows and large limits, where float rounding moves the
		// closed forms off the exact time.
		{Limit: 593_043_621, Window: 8760 * time.Hour, Algorithm: store.SlidingCounter},
		{Limit: store.MaxCounterLimit, Window: store.MaxWindow, Algorithm: store.SlidingCounter},
		{Limit: 73_466_231, Window: 2409 * time.Hour, Algorithm: store.GCRA, Burst: 1_000_000},
		{Limit: 10, Window: time.Second, Algorithm: store.GCRA, Burst: 3},
		{Limit: 3, Window: time.Second, Algorithm: store.GCRA},
		{Limit: 7, Window: 1300 * time.Millisecond, Algorithm: store.GCRA, Burst: 20},
	}
	for _, rule := range rules {
		t.Run(fmt.Sprintf("%v/%d/%v/%d", rule.Algorithm, rule.Limit, rule.Window, rule.Burst), func(t *testing.T) {
			s, clock := newStore(t)
			r := rand.New(rand.NewPCG(uint64(rule.Limit), uint64(rule.Window)))
			capacity := rule.Capacity()
			maxCost := min(capacity, 10)
			if capacity > 1000 {
				maxCost = capacity / 3
			}
			// Time moves on by about half as much as the costs take, so
			// that the state stays near the limit.
			advance := int64(float64(rule.Window) * float64(maxCost) / float64(rule.Limit) / 2)
			retries, resets := 0, 0
			for step := range 1000 {
				clock.Add(time.Duration(r.Int64N(advance)))
				cost := 1 + r.IntN(maxCost)
				res := mustHit(t, s, "k", rule, cost)
				now := clock.Now()
				switch {
				case !res.Allowed && r.IntN(2) == 0:
					retries++
					if res.RetryAfter <= 0 {
						t.Fatalf("step %d: denied with RetryAfter %v", step, res.RetryAfter)
					}
					if res.RetryAfter > time.Microsecond {
						clock.Set(now.Add(res.RetryAfter - time.Microsecond))
						if again := mustHit(t, s, "k", rule, cost); again.Allowed {
							t.Fatalf("step %d: cost %d admitted 1µs before RetryAfter %v", step, cost, res.RetryAfter)
						}
					}
					clock.Set(now.Add(res.RetryAfter))
					if again := mustHit(t, s, "k", rule, cost); !again.Allowed {
						t.Fatalf("step %d: cost %d denied at RetryAfter %v: %+v", step, cost, res.RetryAfter, again)
					}
				case res.ResetAfter > 0 && rule.Algorithm != store.SlidingLog && r.IntN(8) == 0:
					resets++
					checkReset(t, s, clock, rule, res)
				}
			}
			if retries < 10 || (resets < 10 && rule.Algorithm != store.SlidingLog) {
				t.Errorf("only %d retries and %d resets checked", retries, resets)
			}
		})
	}
}

// checkReset checks that key's Remaining grows (GCRA: reaches the burst) at
// res.ResetAfter and not 1µs before.
func checkReset(t *testing.T, s *memstore.Store, clock *fakeClock, rule store.Rule, res store.Result) {
	t.Helper()
	now := clock.Now()
	grown := func(p store.Result) bool {
		if rule.Algorithm == store.GCRA {
			return p.Remaining == rule.Capacity()
		}
		return p.Remaining > res.Remaining
	}
	if res.ResetAfter > time.Microsecond {
		clock.Set(now.Add(res.ResetAfter - time.Microsecond))
		if p := probe(t, s, "k", rule); grown(p) {
			t.Fatalf("Remaining grew to %d 1µs before ResetAfter %v (was %d)", p.Remaining, res.ResetAfter, res.Remaining)
		}
	}
	clock.Set(now.Add(res.ResetAfter))
	if p := probe(t, s, "k", rule); !grown(p) {
		t.Fatalf("Remaining %d at ResetAfter %v, want it grown from %d", p.Remaining, res.ResetAfter, res.Remaining)
	}
}

// TestEvictionMixedAlgorithms floods a store with ten times its bound of
// new one-hit keys under the three algorithms: eviction must pick them, not
// the clients of any algorithm that used their quota.
func TestEvictionMixedAlgorithms(t *testing.T) {
	const bound = 4096
	s, clock := newStore(t, memstore.WithMaxKeys(bound), memstore.WithSweepInterval(0))
	algs := []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA}
	rule := func(a store.Algorithm) store.Rule {
		return store.Rule{Limit: 5, Window: time.Hour, Algorithm: a}
	}
	for _, a := range algs {
		mustHit(t, s, "victim", rule(a), 5)
	}
	heavy := store.Rule{Name: "big", Limit: 1000, Window: time.Hour, Algorithm: store.SlidingCounter}
	mustHit(t, s, "heavy", heavy, 900)
	heavyHits := 0
	for i := range 10 * bound {
		mustHit(t, s, "flood-"+strconv.Itoa(i), rule(algs[i%3]), 1)
		clock.Add(time.Millisecond)
		if i%1024 == 0 || i == 10*bound-1 {
			for _, a := range algs {
				if res := mustHit(t, s, "victim", rule(a), 1); res.Allowed {
					t.Fatalf("after %d new keys the %v victim was allowed again: %+v", i+1, a, res)
				}
			}
			heavyHits++
			if res := mustHit(t, s, "heavy", heavy, 1); res.Remaining != 1000-900-heavyHits {
				t.Fatalf("after %d new keys the heavy counter has %d left, want %d: its state was forgotten", i+1, res.Remaining, 1000-900-heavyHits)
			}
		}
	}
	if n := s.Len(); n > bound {
		t.Errorf("Len = %d, above the bound %d", n, bound)
	}
}

// TestEvictsExpiredO1StatesFirst fills a store with live states and states
// that have emptied (a counter two fixed windows on, a GCRA bucket that has
// refilled): new keys push out the emptied ones.
func TestEvictsExpiredO1StatesFirst(t *testing.T) {
	const bound = 64 // a single shard
	s, clock := newStore(t, memstore.WithMaxKeys(bound), memstore.WithSweepInterval(0))
	algs := []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA}
	for i := range bound / 2 {
		a := algs[i%3]
		mustHit(t, s, fmt.Sprintf("live-%d", i), store.Rule{Limit: 1, Window: time.Hour, Algorithm: a}, 1)
		mustHit(t, s, fmt.Sprintf("short-%d", i), store.Rule{Limit: 1, Window: time.Second, Algorithm: a}, 1)
	}
	clock.Add(2 * time.Second) // every short state has emptied
	for i := range bound / 2 {
		mustHit(t, s, fmt.Sprintf("new-%d", i), store.Rule{Limit: 1, Window: time.Hour, Algorithm: algs[i%3]}, 1)
	}
	for i := range bound / 2 {
		if res := mustHit(t, s, fmt.Sprintf("live-%d", i), store.Rule{Limit: 1, Window: time.Hour, Algorithm: algs[i%3]}, 1); res.Allowed {
			t.Fatalf("live-%d (%v) was forgotten while emptied states could go first", i, algs[i%3])
		}
	}
	if n := s.Len(); n > bound {
		t.Errorf("Len = %d, above the bound %d", n, bound)
	}
}

// TestSweeperDropsO1States lets the sweeper drop counter and GCRA states
// once they have emptied, and not before.
func TestSweeperDropsO1States(t *testing.T) {
	s, clock := newStore(t, memstore.WithSweepInterval(time.Millisecond))
	counter := store.Rule{Limit: 5, Window: time.Second, Algorithm: store.SlidingCounter}
	gcra := store.Rule{Limit: 5, Window: time.Second, Algorithm: store.GCRA}
	for i := range 50 {
		mustHit(t, s, "c"+strconv.Itoa(i), counter, 1)
		mustHit(t, s, "g"+strconv.Itoa(i), gcra, 5)
	}
	// The GCRA buckets refill in 1s; the counters empty at the end of the
	// next fixed window, 2s on. Before that, the sweeper keeps them all.
	clock.Add(time.Second - time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if n := s.Len(); n != 100 {
		t.Fatalf("Len before any state emptied = %d, want 100", n)
	}
	waitLen := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for s.Len() != want {
			if time.Now().After(deadline) {
				t.Fatalf("sweeper left %d states, want %d", s.Len(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	clock.Add(time.Millisecond) // the buckets are full
	waitLen(50)
	clock.Add(time.Second) // the counters' next fixed window ended
	waitLen(0)
}

func TestO1Allocations(t *testing.T) {
	s, clock := newStore(t, memstore.WithSweepInterval(0))
	ctx := context.Background()
	counter := store.Rule{Limit: 1_000_000, Window: time.Hour, Algorithm: store.SlidingCounter}
	gcra := store.Rule{Limit: 1_000_000, Window: time.Hour, Algorithm: store.GCRA}
	fullCounter := store.Rule{Limit: 1, Window: time.Hour, Algorithm: store.SlidingCounter}
	fullGCRA := store.Rule{Limit: 1, Window: time.Hour, Algorithm: store.GCRA}
	log := store.Rule{Limit: 1000, Window: time.Hour}
	for _, r := range []store.Rule{counter, gcra, fullCounter, fullGCRA, log} {
		mustHit(t, s, "k", r, 1)
	}
	stack := []store.Hit{{Key: "k", Rule: log, Cost: 1}, {Key: "k", Rule: counter, Cost: 1}, {Key: "k", Rule: gcra, Cost: 1}}
	denied := []store.Hit{{Key: "k", Rule: counter, Cost: 1}, {Key: "k", Rule: fullGCRA, Cost: 1}}
	out := make([]store.Result, 3)
	tests := []struct {
		name string
		f    func()
	}{
		{"counter allowed", func() { _, _ = s.Hit(ctx, "k", counter, 1); clock.Add(time.Microsecond) }},
		{"counter denied", func() { _, _ = s.Hit(ctx, "k", fullCounter, 1) }},
		{"GCRA allowed", func() { _, _ = s.Hit(ctx, "k", gcra, 1) }},
		{"GCRA denied", func() { _, _ = s.Hit(ctx, "k", fullGCRA, 1) }},
		{"counter Hit and Undo", func() {
			r, _ := s.Hit(ctx, "k", counter, 1)
			_ = s.Undo(ctx, "k", r.Receipt)
		}},
		{"GCRA Hit and Undo", func() {
			r, _ := s.Hit(ctx, "k", gcra, 1)
			_ = s.Undo(ctx, "k", r.Receipt)
		}},
		{"HitAll allowed", func() {
			_ = s.HitAll(ctx, stack, out)
			for i := range out {
				if !out[i].Allowed {
					panic("stack denied")
				}
			}
			clock.Add(time.Microsecond)
		}},
		{"HitAll denied", func() { _ = s.HitAll(ctx, denied, out[:2]) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if a := testing.AllocsPerRun(100, tc.f); a != 0 {
				t.Errorf("%v allocations per call, want 0", a)
			}
		})
	}
}
