package storetest

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

// The operators' calls: Peek and Reset of a key's state, under every
// algorithm, and Inspect and ForceRelease of a lock. The suite checks:
//
//   - bad input (an empty key; a rule Hit would refuse) is an error
//     wrapping store.ErrInvalidArgument, and Reset with it resets nothing;
//   - Peek on cases worked out by hand from each algorithm's definition:
//     Allowed tells whether a hit of cost 1 fits, Remaining is not reduced
//     by it, ResetAfter is the state's as it stands, RetryAfter is set only
//     when the hit does not fit, and there is never a receipt;
//   - Peek agrees with the Hit of cost 1 that follows it, on states built by
//     random traffic: the Hit is allowed exactly when Peek said so, with
//     Remaining one less, and when denied it reports what Peek did;
//   - Peek records nothing: a key peeked many times still takes its whole
//     capacity, and a fresh key peeked is as fresh as one never seen;
//   - Reset makes the key fresh (the next Hit reports what a Hit on a key
//     never seen reports), leaves other keys, names and algorithms and the
//     key's lock alone, and is no error on a key without state;
//   - Inspect reports a free key as such, a held lock with its TTL and
//     fence, and keeps the last fence after release and expiry;
//   - ForceRelease frees a lock whoever holds it: the holder's Release,
//     Extend and TTL then fail with store.ErrNotHeld, another token acquires
//     with a greater fence, and a free or unknown key is no error;
//   - an ended context fails every call, and Reset and ForceRelease then
//     change nothing.

// peekWant is the expected outcome of a Peek.
type peekWant struct {
	allowed    bool
	limit      int
	remaining  int
	retryAfter time.Duration
	resetAfter time.Duration
}

// peek calls Peek and fails the test on error or on a receipt.
func (e *env) peek(key string, rule store.Rule) store.Result {
	e.t.Helper()
	res, err := e.s.Peek(e.ctx, key, rule)
	if err != nil {
		e.t.Fatalf("Peek(%q, %+v): %v", short(key), rule, err)
	}
	if !res.Receipt.IsZero() {
		e.t.Errorf("Peek(%q, %+v) = %+v, want no receipt", short(key), rule, res)
	}
	return res
}

// checkPeek compares a Peek's result with w, at microsecond granularity.
func checkPeek(t *testing.T, what string, res store.Result, w peekWant) {
	t.Helper()
	got := peekWant{res.Allowed, res.Limit, res.Remaining,
		res.RetryAfter.Truncate(µs), res.ResetAfter.Truncate(µs)}
	if got != w {
		t.Errorf("%s: Peek got allowed=%v limit=%d remaining=%d retryAfter=%v resetAfter=%v; "+
			"want allowed=%v limit=%d remaining=%d retryAfter=%v resetAfter=%v",
			what, got.allowed, got.limit, got.remaining, got.retryAfter, got.resetAfter,
			w.allowed, w.limit, w.remaining, w.retryAfter, w.resetAfter)
	}
}

// reset calls Reset and fails the test on error.
func (e *env) reset(key string, rule store.Rule) {
	e.t.Helper()
	if err := e.s.Reset(e.ctx, key, rule); err != nil {
		e.t.Fatalf("Reset(%q, %+v): %v", short(key), rule, err)
	}
}

// inspect calls Inspect and fails the test on error.
func (e *env) inspect(key string) store.LockInfo {
	e.t.Helper()
	info, err := e.s.Inspect(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Inspect(%q): %v", short(key), err)
	}
	return info
}

// forceRelease calls ForceRelease and fails the test on error.
func (e *env) forceRelease(key string) {
	e.t.Helper()
	if err := e.s.ForceRelease(e.ctx, key); err != nil {
		e.t.Fatalf("ForceRelease(%q): %v", short(key), err)
	}
}

func (s suite) testOps(t *testing.T) {
	t.Run("InvalidArgument", s.testOpsInvalidArgument)
	t.Run("PeekSlidingLog", s.testPeekSlidingLog)
	t.Run("PeekSlidingCounter", s.testPeekSlidingCounter)
	t.Run("PeekGCRA", s.testPeekGCRA)
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			t.Run("PeekAgreesWithHit", func(t *testing.T) { s.testPeekAgreesWithHit(t, alg) })
			t.Run("PeekRecordsNothing", func(t *testing.T) { s.testPeekRecordsNothing(t, alg) })
			t.Run("Reset", func(t *testing.T) { s.testReset(t, alg) })
			t.Run("Context", func(t *testing.T) { s.testOpsContext(t, alg) })
		})
	}
	t.Run("ResetApart", s.testResetApart)
	t.Run("Inspect", s.testInspect)
	t.Run("ForceRelease", s.testForceRelease)
	t.Run("LockContext", s.testLockOpsContext)
}

func (s suite) testOpsInvalidArgument(t *testing.T) {
	valid := store.Rule{Limit: 2, Window: window}
	cases := []struct {
		name string
		key  bool // use a real key (false: the empty key)
		rule store.Rule
	}{
		{"empty key", false, valid},
		{"zero limit", true, store.Rule{Window: window}},
		{"window below 1ms", true, store.Rule{Limit: 2, Window: time.Millisecond - µs}},
		{"log limit above MaxLimit", true, store.Rule{Limit: store.MaxLimit + 1, Window: window}},
		{"burst on the counter", true, store.Rule{Limit: 2, Window: window, Algorithm: store.SlidingCounter, Burst: 3}},
		{"GCRA finer than a microsecond", true, store.Rule{Limit: 2000, Window: time.Millisecond, Algorithm: store.GCRA}},
		{"unknown algorithm", true, store.Rule{Limit: 2, Window: window, Algorithm: store.GCRA + 1}},
	}
	for _, tc := range cases {
		t.Run("Peek/"+tc.name, func(t *testing.T) {
			e := s.env(t)
			key := ""
			if tc.key {
				key = e.key("k")
			}
			res, err := e.s.Peek(e.ctx, key, tc.rule)
			if !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("Peek(%+v) error = %v, want store.ErrInvalidArgument", tc.rule, err)
			}
			if res.Allowed {
				t.Errorf("Peek with bad input reported allowed: %+v", res)
			}
		})
		t.Run("Reset/"+tc.name, func(t *testing.T) {
			e := s.env(t)
			key := e.key("k")
			// A state the bad rule would name, were it taken.
			used := valid
			if tc.rule.Algorithm <= store.GCRA {
				used.Algorithm = tc.rule.Algorithm
			}
			e.hit(key, used, 1)
			k := ""
			if tc.key {
				k = key
			}
			if err := e.s.Reset(e.ctx, k, tc.rule); !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("Reset(%+v) error = %v, want store.ErrInvalidArgument", tc.rule, err)
			}
			if got := e.remaining(key, used); got != used.Limit-1 {
				t.Errorf("after a rejected Reset the key has %d of %d left; want its hit kept", got, used.Limit)
			}
		})
	}
	t.Run("Inspect/empty key", func(t *testing.T) {
		e := s.env(t)
		if _, err := e.s.Inspect(e.ctx, ""); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("Inspect(\"\") error = %v, want store.ErrInvalidArgument", err)
		}
	})
	t.Run("ForceRelease/empty key", func(t *testing.T) {
		e := s.env(t)
		if err := e.s.ForceRelease(e.ctx, ""); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("ForceRelease(\"\") error = %v, want store.ErrInvalidArgument", err)
		}
	})
}

// testPeekSlidingLog checks Peek on the sliding log: the hits in
// (now-window, now] count, the oldest decides ResetAfter, and RetryAfter
// waits for as many hits to leave as one more hit needs.
func (s suite) testPeekSlidingLog(t *testing.T) {
	const sec = time.Second
	e := s.env(t)
	rule := store.Rule{Limit: 3, Window: window}
	key := e.key("k")
	checkPeek(t, "fresh key", e.peek(key, rule), peekWant{true, 3, 3, 0, 0})
	e.hit(key, rule, 1) // 0s
	e.advance(12 * sec)
	checkPeek(t, "12s, one hit", e.peek(key, rule), peekWant{true, 3, 2, 0, 48 * sec})
	e.hit(key, rule, 1) // 12s
	e.advance(18 * sec)
	e.hit(key, rule, 1) // 30s
	checkPeek(t, "30s, full", e.peek(key, rule), peekWant{false, 3, 0, 30 * sec, 30 * sec})
	checkPeek(t, "30s, peeked again", e.peek(key, rule), peekWant{false, 3, 0, 30 * sec, 30 * sec})
	e.advance(30*sec - µs)
	checkPeek(t, "59.999999s", e.peek(key, rule), peekWant{false, 3, 0, µs, µs})
	e.advance(µs)
	// At 60s the hit at 0s has left: the window is (now-window, now].
	checkPeek(t, "60s", e.peek(key, rule), peekWant{true, 3, 1, 0, 12 * sec})

	// Five hits (0s, 6s, 12s, 18s, 18s) under a limit of 5, peeked at 24s
	// under limits of 5 and of 3: one more hit waits for the oldest to
	// leave under 5, for the third oldest under 3.
	key = e.key("k2")
	five := store.Rule{Limit: 5, Window: window}
	for _, cost := range []int{1, 1, 1, 2} {
		if res := e.hit(key, five, cost); !res.Allowed {
			t.Fatalf("history hit of cost %d denied: %+v", cost, res)
		}
		e.advance(6 * sec)
	}
	checkPeek(t, "full under 5", e.peek(key, five), peekWant{false, 5, 0, 36 * sec, 36 * sec})
	three := store.Rule{Limit: 3, Window: window}
	checkPeek(t, "over the limit of 3", e.peek(key, three), peekWant{false, 3, 0, 48 * sec, 36 * sec})
	check(t, "Hit under 3 after the Peek", e.hit(key, three, 1), want{false, 3, 0, 48 * sec, 36 * sec})
}

// testPeekSlidingCounter checks Peek on the sliding-window counter, at the
// edges of fixed windows and with the previous window weighted in.
func (s suite) testPeekSlidingCounter(t *testing.T) {
	const sec = time.Second
	e := s.alignedEnv(t, window)
	rule := store.Rule{Limit: 10, Window: window, Algorithm: store.SlidingCounter}
	key := e.key("k")
	checkPeek(t, "fresh key", e.peek(key, rule), peekWant{true, 10, 10, 0, 0})
	e.hit(key, rule, 4)
	// curr 4: 3 once 4*(W-e')/W <= 3 in the next window, e' = 15s.
	checkPeek(t, "cost 4 at 0s", e.peek(key, rule), peekWant{true, 10, 6, 0, 75 * sec})
	e.advance(30 * sec)
	e.hit(key, rule, 6)
	// curr 10: one more waits for 10*(W-e')/W + 1 <= 10 in the next
	// window, e' = 6s; the count drops to 9 then too.
	checkPeek(t, "full at 30s", e.peek(key, rule), peekWant{false, 10, 0, 36 * sec, 36 * sec})
	e.advance(30 * sec)
	// The next window's start: prev 10 weighs fully.
	checkPeek(t, "the next window's start", e.peek(key, rule), peekWant{false, 10, 0, 6 * sec, 6 * sec})
	e.advance(6 * sec)
	// e = 6s: 10*54/60 = 9, one fits; 8 once 10*(W-e')/W <= 8, e' = 12s.
	checkPeek(t, "6s into the next window", e.peek(key, rule), peekWant{true, 10, 1, 0, 6 * sec})
	check(t, "Hit after the Peek", e.hit(key, rule, 1), want{true, 10, 0, 0, 6 * sec})
	e.advance(3 * window)
	checkPeek(t, "three windows later", e.peek(key, rule), peekWant{true, 10, 10, 0, 0})
}

// testPeekGCRA checks Peek on GCRA: whole tokens in the bucket, the time
// until one is there, the time until the bucket is full; a burst above the
// limit.
func (s suite) testPeekGCRA(t *testing.T) {
	const sec = time.Second
	e := s.env(t)
	rule := store.Rule{Limit: 10, Window: window, Algorithm: store.GCRA} // a token every 6s
	key := e.key("k")
	checkPeek(t, "full bucket", e.peek(key, rule), peekWant{true, 10, 10, 0, 0})
	e.hit(key, rule, 1)
	checkPeek(t, "after cost 1", e.peek(key, rule), peekWant{true, 10, 9, 0, 6 * sec})
	e.hit(key, rule, 9)
	checkPeek(t, "empty bucket", e.peek(key, rule), peekWant{false, 10, 0, 6 * sec, 60 * sec})
	e.advance(6*sec - µs)
	checkPeek(t, "5.999999s", e.peek(key, rule), peekWant{false, 10, 0, µs, 54*sec + µs})
	e.advance(µs)
	checkPeek(t, "6s", e.peek(key, rule), peekWant{true, 10, 1, 0, 54 * sec})
	e.advance(2 * window)
	checkPeek(t, "after a long rest", e.peek(key, rule), peekWant{true, 10, 10, 0, 0})

	burst := store.Rule{Limit: 10, Window: window, Algorithm: store.GCRA, Burst: 20}
	key = e.key("burst")
	checkPeek(t, "full bucket of 20", e.peek(key, burst), peekWant{true, 10, 20, 0, 0})
	e.hit(key, burst, 15)
	checkPeek(t, "after cost 15", e.peek(key, burst), peekWant{true, 10, 5, 0, 90 * sec})
}

// opsRules are rules of each algorithm for the checks that hold for all.
var opsRules = map[store.Algorithm]store.Rule{
	store.SlidingLog:     {Name: "ops", Limit: 9, Window: window},
	store.SlidingCounter: {Name: "ops", Limit: 9, Window: window, Algorithm: store.SlidingCounter},
	store.GCRA:           {Name: "ops", Limit: 10, Window: window, Algorithm: store.GCRA, Burst: 6},
}

// fractionalGCRA refills a token every 6666666.67µs: GCRA's float
// arithmetic on such tokens need not leave exactly one token less after a
// hit, and Peek must still agree with the Hit that follows it.
var fractionalGCRA = store.Rule{Name: "ops", Limit: 9, Window: window, Algorithm: store.GCRA, Burst: 6}

// testPeekAgreesWithHit drives a key with random traffic and, before every
// move, checks that a Peek and the Hit of cost 1 right after it agree.
func (s suite) testPeekAgreesWithHit(t *testing.T, alg store.Algorithm) {
	rules := []store.Rule{opsRules[alg]}
	if alg == store.GCRA {
		rules = append(rules, fractionalGCRA)
	}
	for _, rule := range rules {
		s.peekAgreesWithHit(t, rule)
	}
}

func (s suite) peekAgreesWithHit(t *testing.T, rule store.Rule) {
	rng := rand.New(rand.NewPCG(uint64(rule.Algorithm)+1, uint64(rule.Limit)))
	e := s.alignedEnv(t, window)
	key := e.key("k")
	allowed, denied := 0, 0
	for i := range 120 {
		p := e.peek(key, rule)
		if again := e.peek(key, rule); again != p {
			t.Fatalf("step %d: Peek twice: %+v, then %+v", i, p, again)
		}
		h := e.hit(key, rule, 1)
		switch {
		case p.Allowed && p.RetryAfter != 0:
			t.Errorf("step %d: Peek allowed with RetryAfter %v, want 0", i, p.RetryAfter)
		case p.Allowed && (!h.Allowed || h.Remaining != p.Remaining-1 || h.Limit != p.Limit):
			t.Errorf("step %d: Peek %+v, then Hit %+v; want the Hit allowed with Remaining %d", i, p, h, p.Remaining-1)
		case !p.Allowed && (h.Allowed || h.Remaining != p.Remaining || h.RetryAfter != p.RetryAfter ||
			h.ResetAfter != p.ResetAfter || h.Limit != p.Limit):
			t.Errorf("step %d: Peek %+v, then Hit %+v; want the Hit to report the same", i, p, h)
		case !p.Allowed && p.RetryAfter <= 0:
			t.Errorf("step %d: Peek denied with RetryAfter %v, want it positive", i, p.RetryAfter)
		}
		if p.Allowed {
			allowed++
		} else {
			denied++
		}
		if c := rng.IntN(3); c > 0 {
			e.hit(key, rule, c) // allowed or not
		}
		// On average half the time a token takes to come, or a hit to leave
		// when hits came evenly.
		e.advance(time.Duration(rng.Int64N(int64(rule.Window) / int64(rule.Limit))).Truncate(µs))
	}
	if allowed < 20 || denied < 20 {
		t.Fatalf("%+v: Peek allowed %d and denied %d of 120 states: the traffic does not test both", rule, allowed, denied)
	}
	t.Logf("%+v: Peek allowed %d and denied %d of 120 states", rule, allowed, denied)
}

// testPeekRecordsNothing checks that peeks leave a key as they found it.
func (s suite) testPeekRecordsNothing(t *testing.T, alg store.Algorithm) {
	rule := opsRules[alg]
	capacity := rule.Capacity()
	e := s.alignedEnv(t, window)
	key, never := e.key("peeked"), e.key("never")
	for range 50 {
		checkPeek(t, "fresh key", e.peek(key, rule), peekWant{true, rule.Limit, capacity, 0, 0})
	}
	fresh := e.hit(never, rule, capacity)
	check(t, "the whole capacity of a peeked key", e.hit(key, rule, capacity),
		want{true, rule.Limit, fresh.Remaining, 0, fresh.ResetAfter})

	key = e.key("half")
	e.hit(key, rule, capacity/2)
	e.advance(7 * time.Second)
	p := e.peek(key, rule)
	for range 50 {
		if again := e.peek(key, rule); again != p {
			t.Fatalf("Peek after Peek: %+v, then %+v", p, again)
		}
	}
	if res := e.hit(key, rule, p.Remaining); !res.Allowed || res.Remaining != 0 {
		t.Errorf("cost %d after Peek said Remaining %d: %+v, want allowed with none left", p.Remaining, p.Remaining, res)
	}
}

// testReset checks that Reset makes a key fresh, and is no error on a key
// without state.
func (s suite) testReset(t *testing.T, alg store.Algorithm) {
	rule := opsRules[alg]
	capacity := rule.Capacity()
	e := s.alignedEnv(t, window)
	key := e.key("k")
	e.hit(key, rule, capacity)
	e.advance(10 * time.Second)
	e.hit(key, rule, 1)
	if res := e.hit(key, rule, 1); res.Allowed {
		t.Fatalf("a hit on a used-up key was allowed: %+v", res)
	}
	e.reset(key, rule)
	checkPeek(t, "Peek after Reset", e.peek(key, rule), peekWant{true, rule.Limit, capacity, 0, 0})
	fresh := e.hit(e.key("never"), rule, capacity)
	check(t, "the whole capacity after Reset", e.hit(key, rule, capacity),
		want{true, rule.Limit, fresh.Remaining, 0, fresh.ResetAfter})

	e.reset(key, rule) // again
	e.reset(key, rule) // on a key without state
	e.reset(e.key("never-hit"), rule)
	checkPeek(t, "Peek after Reset twice", e.peek(key, rule), peekWant{true, rule.Limit, capacity, 0, 0})
}

// testResetApart checks that Reset forgets one key under one name and
// algorithm and nothing else: not another key, another name, the same key
// and name under another algorithm, or a lock with the same key.
func (s suite) testResetApart(t *testing.T) {
	e := s.env(t)
	key, other := e.key("k"), e.key("other")
	rules := map[store.Algorithm]store.Rule{}
	for _, alg := range algorithms {
		rules[alg] = store.Rule{Name: "apart", Limit: 2, Window: window, Algorithm: alg}
	}
	renamed := store.Rule{Name: "apart2", Limit: 2, Window: window}
	for _, alg := range algorithms {
		e.hit(key, rules[alg], 2)
		e.hit(other, rules[alg], 2)
	}
	e.hit(key, renamed, 2)
	lock := e.mustAcquire(key, "holder", lockTTL)

	e.reset(key, rules[store.SlidingLog])
	if res := e.hit(key, rules[store.SlidingLog], 2); !res.Allowed {
		t.Errorf("cost 2 after Reset: %+v, want allowed", res)
	}
	for _, alg := range o1Algorithms {
		if res := e.hit(key, rules[alg], 1); res.Allowed {
			t.Errorf("the key under %v after a Reset under %v: %+v, want still full", alg, store.SlidingLog, res)
		}
	}
	for _, alg := range algorithms {
		if res := e.hit(other, rules[alg], 1); res.Allowed {
			t.Errorf("another key under %v after the Reset: %+v, want still full", alg, res)
		}
	}
	if res := e.hit(key, renamed, 1); res.Allowed {
		t.Errorf("the key under another name after the Reset: %+v, want still full", res)
	}
	if info := e.inspect(key); !info.Held || info.Fence != lock.Fence {
		t.Errorf("the key's lock after the Reset: %+v, want held with fence %d", info, lock.Fence)
	}
	if res := e.acquire(key, "other", lockTTL); res.Acquired {
		t.Errorf("another token acquired the key's lock after the Reset: %+v", res)
	}
}

// testOpsContext checks that an ended context fails Peek and Reset, and
// that such a Reset resets nothing.
func (s suite) testOpsContext(t *testing.T, alg store.Algorithm) {
	rule := opsRules[alg]
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	e := s.env(t)
	key := e.key("k")
	e.hit(key, rule, rule.Capacity())
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		if _, err := e.s.Peek(c.ctx, key, rule); !errors.Is(err, c.want) {
			t.Errorf("Peek with an ended context = %v, want %v", err, c.want)
		}
		if err := e.s.Reset(c.ctx, key, rule); !errors.Is(err, c.want) {
			t.Errorf("Reset with an ended context = %v, want %v", err, c.want)
		}
	}
	if res := e.peek(key, rule); res.Allowed {
		t.Errorf("after failed Resets the key takes a hit: %+v, want still full", res)
	}
}

func (s suite) testInspect(t *testing.T) {
	t.Run("Unknown", func(t *testing.T) {
		e := s.env(t)
		if info := e.inspect(e.key("lock")); info != (store.LockInfo{}) {
			t.Errorf("Inspect of a key never acquired = %+v, want the zero LockInfo", info)
		}
	})
	t.Run("Held", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		res := e.mustAcquire(key, "holder", lockTTL)
		info := e.inspect(key)
		if !info.Held || info.TTL <= 0 || info.TTL > lockTTL || info.Fence != res.Fence {
			t.Errorf("Inspect of a held lock = %+v, want held, TTL in (0, %v], fence %d", info, lockTTL, res.Fence)
		}
		// Inspect is no acquire: the holder keeps the lock, another token
		// is refused, and the next fence follows the holder's.
		if d := e.ttl(key, "holder"); d <= 0 {
			t.Errorf("the holder's TTL after Inspect = %v, want positive", d)
		}
		if r := e.acquire(key, "other", lockTTL); r.Acquired {
			t.Errorf("another token acquired an inspected lock: %+v", r)
		}
		again := e.mustAcquire(key, "holder", lockTTL)
		if again.Fence <= res.Fence {
			t.Errorf("fence after Inspect = %d, want above %d", again.Fence, res.Fence)
		}
		if info := e.inspect(key); info.Fence != again.Fence {
			t.Errorf("Inspect after a renewing acquire: fence %d, want %d", info.Fence, again.Fence)
		}
	})
	t.Run("Released", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		res := e.mustAcquire(key, "holder", lockTTL)
		if err := e.s.Release(e.ctx, key, "holder"); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if info := e.inspect(key); info != (store.LockInfo{Fence: res.Fence}) {
			t.Errorf("Inspect of a released lock = %+v, want not held with fence %d", info, res.Fence)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		res := e.mustAcquire(key, "holder", lockTTL)
		e.elapse(pastTTL)
		info := e.inspect(key)
		// A store whose fence TTL is shorter than the wait may have
		// forgotten the fence.
		forgot := s.b.FenceTTL != 0 && s.b.FenceTTL < pastTTL && info.Fence == 0
		if info.Held || info.TTL != 0 || (info.Fence != res.Fence && !forgot) {
			t.Errorf("Inspect of an expired lock = %+v, want not held with fence %d", info, res.Fence)
		}
	})
}

func (s suite) testForceRelease(t *testing.T) {
	t.Run("Held", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		first := e.mustAcquire(key, "holder", lockTTL)
		e.forceRelease(key)
		if info := e.inspect(key); info != (store.LockInfo{Fence: first.Fence}) {
			t.Errorf("Inspect after ForceRelease = %+v, want not held with fence %d", info, first.Fence)
		}
		// The holder finds out at its next call.
		if _, err := e.s.TTL(e.ctx, key, "holder"); !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("the holder's TTL after ForceRelease = %v, want store.ErrNotHeld", err)
		}
		if err := e.s.Extend(e.ctx, key, "holder", lockTTL); !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("the holder's Extend after ForceRelease = %v, want store.ErrNotHeld", err)
		}
		next := e.mustAcquire(key, "next", lockTTL)
		if next.Fence <= first.Fence {
			t.Errorf("fence after ForceRelease = %d, want above the forced holder's %d", next.Fence, first.Fence)
		}
		if err := e.s.Release(e.ctx, key, "holder"); !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("the forced holder's Release = %v, want store.ErrNotHeld", err)
		}
		if d := e.ttl(key, "next"); d <= 0 {
			t.Errorf("the new holder's TTL after the forced holder's Release = %v, want positive", d)
		}
	})
	t.Run("NotHeld", func(t *testing.T) {
		e := s.env(t)
		e.forceRelease(e.key("never"))
		key := e.key("lock")
		res := e.mustAcquire(key, "holder", lockTTL)
		if err := e.s.Release(e.ctx, key, "holder"); err != nil {
			t.Fatalf("Release: %v", err)
		}
		e.forceRelease(key)
		expired := e.key("expired")
		e.mustAcquire(expired, "holder", lockTTL)
		e.elapse(pastTTL)
		e.forceRelease(expired)
		if next := e.mustAcquire(key, "next", lockTTL); next.Fence <= res.Fence {
			t.Errorf("fence after ForceRelease of a free lock = %d, want above %d", next.Fence, res.Fence)
		}
	})
	t.Run("LeavesWindows", func(t *testing.T) {
		e := s.env(t)
		key := e.key("k")
		rule := store.Rule{Limit: 2, Window: window}
		e.hit(key, rule, 2)
		e.mustAcquire(key, "holder", lockTTL)
		e.forceRelease(key)
		if res := e.hit(key, rule, 1); res.Allowed {
			t.Errorf("a window after ForceRelease of the same key: %+v, want still full", res)
		}
	})
}

// testLockOpsContext checks that an ended context fails Inspect and
// ForceRelease, and that such a ForceRelease frees nothing.
func (s suite) testLockOpsContext(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	e := s.env(t)
	key := e.key("lock")
	e.mustAcquire(key, "holder", lockTTL)
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		if _, err := e.s.Inspect(c.ctx, key); !errors.Is(err, c.want) {
			t.Errorf("Inspect with an ended context = %v, want %v", err, c.want)
		}
		if err := e.s.ForceRelease(c.ctx, key); !errors.Is(err, c.want) {
			t.Errorf("ForceRelease with an ended context = %v, want %v", err, c.want)
		}
	}
	if d := e.ttl(key, "holder"); d <= 0 {
		t.Errorf("the holder's TTL after failed ForceReleases = %v, want positive", d)
	}
}
