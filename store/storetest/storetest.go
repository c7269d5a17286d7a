package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

// Backend makes the stores that Run checks.
type Backend struct {
	// New returns a fresh store whose sliding-window time is read from now, or
	// from the store's default time source when now is nil. The store
	// registers its own cleanup with t.Cleanup. New must be set.
	New func(t *testing.T, now func() time.Time) store.Store

	// Elapse makes lock TTLs run down by d: for a store whose locks expire on
	// a server's clock it moves that clock (miniredis: FastForward) or waits
	// (a real Redis: time.Sleep). Leave it nil when locks expire by the clock
	// passed to New, as memstore's do; the suite moves that clock itself.
	Elapse func(d time.Duration)

	// FenceTTL is the fence-counter TTL of the stores New returns, for a
	// store whose locks and fences run on the clock passed to New (Elapse
	// nil) and whose fence TTL is at most maxFenceTTL (10ms). When set, the
	// suite runs a burst of acquires on a frozen clock, so that fences run
	// ahead of the clock by more than FenceTTL, then moves the clock past
	// FenceTTL and checks that the next fence is still above the last. The
	// zero value skips that check, which cannot be controlled for a store
	// that reads a server's clock.
	FenceTTL time.Duration
}

// maxFenceTTL bounds Backend.FenceTTL, so that the burst that outruns the
// clock stays short.
const maxFenceTTL = 10 * time.Millisecond

// Durations used throughout the suite.
const (
	// window is long enough that a server expiring keys on its own clock
	// keeps every window for the whole of a subtest.
	window = time.Minute
	// lockTTL is short so that a Backend whose Elapse sleeps stays quick.
	lockTTL = 150 * time.Millisecond
	// pastTTL moves time beyond lockTTL with a margin for real servers.
	pastTTL = 250 * time.Millisecond
)

// Run checks b's stores against the store contract, each rule as a named
// subtest of t. Subtests run one after another.
func Run(t *testing.T, b Backend) {
	t.Helper()
	if b.New == nil {
		t.Fatal("storetest: Backend.New is nil")
	}
	s := suite{b: b}
	t.Run("InvalidArgument", s.testInvalidArgument)
	t.Run("Window", s.testWindow)
	t.Run("Timing", s.testTiming)
	t.Run("Undo", s.testUndo)
	t.Run("Concurrency", s.testConcurrency)
	t.Run("Keys", s.testKeys)
	t.Run("Lock", s.testLock)
	t.Run("Context", s.testContext)
	t.Run("SlidingCounter", s.testSlidingCounter)
	t.Run("GCRA", s.testGCRA)
	t.Run("Algorithms", s.testAlgorithms)
	t.Run("Stack", s.testStack)
	t.Run("Ops", s.testOps)
}

type suite struct {
	b Backend
}

// clock is a fake clock: a time that only moves when told to.
type clock struct {
	mu    sync.Mutex
	t     time.Time
	stall *stall // the next Now blocks on it, once
}

// stall holds up the caller of one Now right after it read the time, as a
// goroutine that is descheduled there would be held up.
type stall struct {
	reached chan struct{} // closed when a Now has read the time
	resume  chan struct{} // closed by the test to let that Now return
}

func newClock() *clock {
	return &clock{t: time.Now().Truncate(time.Second)}
}

// Now returns the clock's time. A call that meets an armed stall returns the
// time it read only once the stall is resumed.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	t, st := c.t, c.stall
	c.stall = nil
	c.mu.Unlock()
	if st != nil {
		close(st.reached)
		<-st.resume
	}
	return t
}

// stallNext arms a stall for the next call of Now.
func (c *clock) stallNext() *stall {
	st := &stall{reached: make(chan struct{}), resume: make(chan struct{})}
	c.mu.Lock()
	c.stall = st
	c.mu.Unlock()
	return st
}

// disarm drops a stall that no Now has met yet.
func (c *clock) disarm() {
	c.mu.Lock()
	c.stall = nil
	c.mu.Unlock()
}

// Add moves the clock forward by d.
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one subtest's store, clock and context.
type env struct {
	t     *testing.T
	b     Backend
	clock *clock
	s     store.Store
	ctx   context.Context
}

// env returns a fresh store driven by a fake clock.
func (s suite) env(t *testing.T) *env {
	t.Helper()
	c := newClock()
	st := s.b.New(t, c.Now)
	if st == nil {
		t.Fatal("storetest: Backend.New returned nil")
	}
	return &env{t: t, b: s.b, clock: c, s: st, ctx: t.Context()}
}

// advance moves the fake clock, and so the sliding window, by d.
func (e *env) advance(d time.Duration) {
	e.clock.Add(d)
}

// elapse moves time by d for locks: the fake clock, and the backend's lock
// clock through Elapse when it has one.
func (e *env) elapse(d time.Duration) {
	e.clock.Add(d)
	if e.b.Elapse != nil {
		e.b.Elapse(d)
	}
}

// key returns a key unique to this subtest and call.
func (e *env) key(name string) string {
	return uniqueKey(e.t, name)
}

func uniqueKey(t *testing.T, name string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "storetest:" + t.Name() + ":" + name + ":" + hex.EncodeToString(b[:])
}

// hit calls Hit and fails the test on error.
func (e *env) hit(key string, rule store.Rule, cost int) store.Result {
	e.t.Helper()
	res, err := e.s.Hit(e.ctx, key, rule, cost)
	if err != nil {
		e.t.Fatalf("Hit(%q, %+v, %d): %v", short(key), rule, cost, err)
	}
	return res
}

// acquire calls Acquire and fails the test on error.
func (e *env) acquire(key, token string, ttl time.Duration) store.LockResult {
	e.t.Helper()
	res, err := e.s.Acquire(e.ctx, key, token, ttl)
	if err != nil {
		e.t.Fatalf("Acquire(%q, %q, %v): %v", short(key), token, ttl, err)
	}
	return res
}

// mustAcquire acquires key for token and fails the test unless it is acquired.
func (e *env) mustAcquire(key, token string, ttl time.Duration) store.LockResult {
	e.t.Helper()
	res := e.acquire(key, token, ttl)
	if !res.Acquired {
		e.t.Fatalf("Acquire(%q, %q, %v) = %+v, want acquired", short(key), token, ttl, res)
	}
	return res
}

// ttl calls TTL and fails the test on error.
func (e *env) ttl(key, token string) time.Duration {
	e.t.Helper()
	d, err := e.s.TTL(e.ctx, key, token)
	if err != nil {
		e.t.Fatalf("TTL(%q, %q): %v", short(key), token, err)
	}
	return d
}

// want is the expected outcome of a Hit, without the receipt.
type want struct {
	allowed    bool
	limit      int
	remaining  int
	retryAfter time.Duration
	resetAfter time.Duration
}

// check compares res with w; durations are compared at microsecond
// granularity, the precision of the store contract.
func check(t *testing.T, what string, res store.Result, w want) {
	t.Helper()
	got := want{
		allowed:    res.Allowed,
		limit:      res.Limit,
		remaining:  res.Remaining,
		retryAfter: res.RetryAfter.Truncate(time.Microsecond),
		resetAfter: res.ResetAfter.Truncate(time.Microsecond),
	}
	if got != w {
		t.Errorf("%s: got allowed=%v limit=%d remaining=%d retryAfter=%v resetAfter=%v; "+
			"want allowed=%v limit=%d remaining=%d retryAfter=%v resetAfter=%v",
			what, got.allowed, got.limit, got.remaining, got.retryAfter, got.resetAfter,
			w.allowed, w.limit, w.remaining, w.retryAfter, w.resetAfter)
	}
	if res.Allowed && (res.Receipt.ID == 0 || res.Receipt.Cost <= 0) {
		t.Errorf("%s: allowed with receipt %+v, want a non-zero receipt", what, res.Receipt)
	}
	if !res.Allowed && !res.Receipt.IsZero() {
		t.Errorf("%s: denied with receipt %+v, want the zero receipt", what, res.Receipt)
	}
}

// remaining reports how many hits key has left under rule, by recording one
// hit of cost 1 (which must be allowed) and adding it back.
func (e *env) remaining(key string, rule store.Rule) int {
	e.t.Helper()
	res := e.hit(key, rule, 1)
	if !res.Allowed {
		e.t.Fatalf("probe hit on %q denied: %+v", short(key), res)
	}
	return res.Remaining + 1
}

// short abbreviates long keys in failure messages.
func short(key string) string {
	if len(key) > 80 {
		return key[:40] + "..." + key[len(key)-20:]
	}
	return key
}

func (s suite) testInvalidArgument(t *testing.T) {
	valid := store.Rule{Limit: 2, Window: window}
	hitCases := []struct {
		name string
		key  bool // use a real key (false: the empty key)
		rule store.Rule
		cost int
	}{
		{"empty key", false, valid, 1},
		{"zero limit", true, store.Rule{Limit: 0, Window: window}, 1},
		{"negative limit", true, store.Rule{Limit: -1, Window: window}, 1},
		{"zero window", true, store.Rule{Limit: 2, Window: 0}, 1},
		{"negative window", true, store.Rule{Limit: 2, Window: -time.Second}, 1},
		{"window below 1ms", true, store.Rule{Limit: 2, Window: time.Millisecond - time.Microsecond}, 1},
		{"zero cost", true, valid, 0},
		{"negative cost", true, valid, -1},
		{"cost above limit", true, valid, 3},
	}
	for _, tc := range hitCases {
		t.Run("Hit/"+tc.name, func(t *testing.T) {
			e := s.env(t)
			key := ""
			if tc.key {
				key = e.key("k")
			}
			res, err := e.s.Hit(e.ctx, key, tc.rule, tc.cost)
			if !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("Hit(%+v, cost %d) error = %v, want store.ErrInvalidArgument", tc.rule, tc.cost, err)
			}
			if res.Allowed {
				t.Errorf("Hit with bad input reported allowed: %+v", res)
			}
			if tc.key {
				if got := e.remaining(key, valid); got != valid.Limit {
					t.Errorf("after a rejected Hit the key has %d of %d left; want nothing recorded", got, valid.Limit)
				}
			}
		})
	}

	lockCases := []struct {
		name  string
		key   bool
		token string
		ttl   time.Duration
	}{
		{"empty key", false, "tok", lockTTL},
		{"empty token", true, "", lockTTL},
		{"zero ttl", true, "tok", 0},
		{"negative ttl", true, "tok", -time.Second},
		{"ttl below 1ms", true, "tok", time.Millisecond - time.Microsecond},
	}
	for _, tc := range lockCases {
		t.Run("Acquire/"+tc.name, func(t *testing.T) {
			e := s.env(t)
			key := ""
			if tc.key {
				key = e.key("lock")
			}
			res, err := e.s.Acquire(e.ctx, key, tc.token, tc.ttl)
			if !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("Acquire(token %q, ttl %v) error = %v, want store.ErrInvalidArgument", tc.token, tc.ttl, err)
			}
			if res.Acquired {
				t.Errorf("Acquire with bad input reported acquired: %+v", res)
			}
			if tc.key {
				if got := e.acquire(key, "other", lockTTL); !got.Acquired {
					t.Errorf("after a rejected Acquire another token cannot acquire: %+v; want nothing recorded", got)
				}
			}
		})
		t.Run("Extend/"+tc.name, func(t *testing.T) {
			e := s.env(t)
			key := ""
			if tc.key {
				key = e.key("lock")
				if tc.token != "" {
					e.mustAcquire(key, tc.token, lockTTL)
				}
			}
			err := e.s.Extend(e.ctx, key, tc.token, tc.ttl)
			if !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("Extend(token %q, ttl %v) error = %v, want store.ErrInvalidArgument", tc.token, tc.ttl, err)
			}
			if tc.key && tc.token != "" {
				if d := e.ttl(key, tc.token); d <= 0 || d > lockTTL {
					t.Errorf("after a rejected Extend the lock's TTL is %v, want it unchanged in (0, %v]", d, lockTTL)
				}
			}
		})
	}
	for _, tc := range lockCases[:2] { // Release and TTL take no TTL.
		t.Run("Release/"+tc.name, func(t *testing.T) {
			e := s.env(t)
			key := ""
			if tc.key {
				key = e.key("lock")
			}
			if err := e.s.Release(e.ctx, key, tc.token); !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("Release(token %q) error = %v, want store.ErrInvalidArgument", tc.token, err)
			}
		})
		t.Run("TTL/"+tc.name, func(t *testing.T) {
			e := s.env(t)
			key := ""
			if tc.key {
				key = e.key("lock")
			}
			if _, err := e.s.TTL(e.ctx, key, tc.token); !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("TTL(token %q) error = %v, want store.ErrInvalidArgument", tc.token, err)
			}
		})
	}
}

func (s suite) testWindow(t *testing.T) {
	t.Run("ExactCount", func(t *testing.T) {
		e := s.env(t)
		const limit = 5
		rule := store.Rule{Limit: limit, Window: window}
		key := e.key("k")
		seen := make(map[uint64]bool)
		for i := range limit + 3 {
			res := e.hit(key, rule, 1)
			wantAllowed := i < limit
			wantRemaining := max(limit-1-i, 0)
			if res.Allowed != wantAllowed || res.Remaining != wantRemaining || res.Limit != limit {
				t.Errorf("hit %d: allowed=%v remaining=%d limit=%d; want allowed=%v remaining=%d limit=%d",
					i+1, res.Allowed, res.Remaining, res.Limit, wantAllowed, wantRemaining, limit)
			}
			if res.Allowed {
				if res.Receipt.ID == 0 || res.Receipt.Cost != 1 {
					t.Errorf("hit %d: receipt %+v, want a non-zero ID and cost 1", i+1, res.Receipt)
				}
				if seen[res.Receipt.ID] {
					t.Errorf("hit %d: receipt ID %d issued twice", i+1, res.Receipt.ID)
				}
				seen[res.Receipt.ID] = true
			} else if !res.Receipt.IsZero() {
				t.Errorf("hit %d: denied with receipt %+v, want the zero receipt", i+1, res.Receipt)
			}
			e.advance(time.Millisecond)
		}
	})

	t.Run("Slides", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 2, Window: window}
		key := e.key("k")
		t0 := 40 * window / 100
		check(t, "hit at t", e.hit(key, rule, 1), want{true, 2, 1, 0, window})
		e.advance(t0)
		check(t, "hit at t+40%", e.hit(key, rule, 1), want{true, 2, 0, 0, window - t0})
		e.advance(10 * time.Second)
		check(t, "hit at t+40%+10s", e.hit(key, rule, 1),
			want{false, 2, 0, window - t0 - 10*time.Second, window - t0 - 10*time.Second})
		// One millisecond before t+window the first hit is still inside.
		e.advance(window - t0 - 10*time.Second - time.Millisecond)
		check(t, "hit at t+window-1ms", e.hit(key, rule, 1), want{false, 2, 0, time.Millisecond, time.Millisecond})
		// At t+window it has left: the window is (now-window, now].
		e.advance(time.Millisecond)
		check(t, "hit at t+window", e.hit(key, rule, 1), want{true, 2, 0, 0, t0})
		check(t, "second hit at t+window", e.hit(key, rule, 1), want{false, 2, 0, t0, t0})
		// At t+40%+window the second hit has left too.
		e.advance(t0)
		check(t, "hit at t+40%+window", e.hit(key, rule, 1), want{true, 2, 0, 0, window - t0})
		// Long after, everything has left and the window is fresh.
		e.advance(10 * window)
		check(t, "hit after 10 windows", e.hit(key, rule, 1), want{true, 2, 1, 0, window})
	})

	t.Run("Cost", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 5, Window: window}
		key := e.key("k")
		res := e.hit(key, rule, 3)
		check(t, "cost 3 of 5", res, want{true, 5, 2, 0, window})
		if res.Receipt.Cost != 3 {
			t.Errorf("cost 3 receipt = %+v, want Cost 3", res.Receipt)
		}
		e.advance(time.Second)
		check(t, "another cost 3", e.hit(key, rule, 3), want{false, 5, 2, window - time.Second, window - time.Second})
		check(t, "cost 2 after the denial", e.hit(key, rule, 2), want{true, 5, 0, 0, window - time.Second})
		check(t, "cost 1 when full", e.hit(key, rule, 1), want{false, 5, 0, window - time.Second, window - time.Second})
	})

	t.Run("LimitEqualsCost", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 4, Window: window}
		key := e.key("k")
		check(t, "cost 4 of 4", e.hit(key, rule, 4), want{true, 4, 0, 0, window})
		check(t, "cost 1 when full", e.hit(key, rule, 1), want{false, 4, 0, window, window})
	})
}

func (s suite) testTiming(t *testing.T) {
	t.Run("FreshHitResetsAfterWindow", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 10, Window: window}
		check(t, "fresh hit", e.hit(e.key("k"), rule, 1), want{true, 10, 9, 0, window})
		check(t, "fresh cost 4", e.hit(e.key("k2"), rule, 4), want{true, 10, 6, 0, window})
	})

	t.Run("OldestHitDecides", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 3, Window: window}
		key := e.key("k")
		check(t, "0s", e.hit(key, rule, 1), want{true, 3, 2, 0, 60 * time.Second})
		e.advance(12 * time.Second)
		check(t, "12s", e.hit(key, rule, 1), want{true, 3, 1, 0, 48 * time.Second})
		e.advance(18 * time.Second)
		check(t, "30s", e.hit(key, rule, 1), want{true, 3, 0, 0, 30 * time.Second})
		e.advance(6 * time.Second)
		check(t, "36s denied", e.hit(key, rule, 1), want{false, 3, 0, 24 * time.Second, 24 * time.Second})
		e.advance(24*time.Second - time.Millisecond)
		check(t, "59.999s denied", e.hit(key, rule, 1), want{false, 3, 0, time.Millisecond, time.Millisecond})
		e.advance(time.Millisecond)
		check(t, "60s allowed", e.hit(key, rule, 1), want{true, 3, 0, 0, 12 * time.Second})
		e.advance(6 * time.Second)
		check(t, "66s denied", e.hit(key, rule, 1), want{false, 3, 0, 6 * time.Second, 6 * time.Second})
	})

	t.Run("CostNeedsSeveralHitsToLeave", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 5, Window: window}
		key := e.key("k")
		e.hit(key, rule, 1) // 0s
		e.advance(6 * time.Second)
		e.hit(key, rule, 1) // 6s
		e.advance(6 * time.Second)
		e.hit(key, rule, 1) // 12s
		e.advance(6 * time.Second)
		check(t, "cost 2 at 18s", e.hit(key, rule, 2), want{true, 5, 0, 0, 42 * time.Second})
		e.advance(6 * time.Second) // 24s: the window holds 0s, 6s, 12s, 18s, 18s
		// Denials record nothing, so all three probe the same window.
		check(t, "cost 1 at 24s", e.hit(key, rule, 1), want{false, 5, 0, 36 * time.Second, 36 * time.Second})
		check(t, "cost 2 at 24s", e.hit(key, rule, 2), want{false, 5, 0, 42 * time.Second, 36 * time.Second})
		check(t, "cost 3 at 24s", e.hit(key, rule, 3), want{false, 5, 0, 48 * time.Second, 36 * time.Second})
		e.advance(48*time.Second - time.Millisecond) // 71.999s: 0s and 6s have left
		check(t, "cost 3 at 71.999s", e.hit(key, rule, 3), want{false, 5, 2, time.Millisecond, time.Millisecond})
		e.advance(time.Millisecond) // 72s: 12s has left too
		check(t, "cost 3 at 72s", e.hit(key, rule, 3), want{true, 5, 0, 0, 6 * time.Second})
	})
}

func (s suite) testUndo(t *testing.T) {
	t.Run("GivesCapacityBack", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 2, Window: window}
		key := e.key("k")
		first := e.hit(key, rule, 1)
		e.hit(key, rule, 1)
		check(t, "third hit", e.hit(key, rule, 1), want{false, 2, 0, window, window})
		if err := e.s.Undo(e.ctx, key, first.Receipt); err != nil {
			t.Fatalf("Undo: %v", err)
		}
		check(t, "hit after undo", e.hit(key, rule, 1), want{true, 2, 0, 0, window})
		check(t, "next hit", e.hit(key, rule, 1), want{false, 2, 0, window, window})
	})

	t.Run("CostThree", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 5, Window: window}
		key := e.key("k")
		res := e.hit(key, rule, 3)
		if err := e.s.Undo(e.ctx, key, res.Receipt); err != nil {
			t.Fatalf("Undo: %v", err)
		}
		check(t, "cost 5 after undoing cost 3", e.hit(key, rule, 5), want{true, 5, 0, 0, window})
	})

	t.Run("OldestUndone", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 3, Window: window}
		key := e.key("k")
		first := e.hit(key, rule, 1) // 0s
		e.advance(10 * time.Second)
		e.hit(key, rule, 1) // 10s
		if err := e.s.Undo(e.ctx, key, first.Receipt); err != nil {
			t.Fatalf("Undo: %v", err)
		}
		e.advance(10 * time.Second)
		// The oldest hit left is at 10s: it decides the reset.
		check(t, "hit at 20s", e.hit(key, rule, 1), want{true, 3, 1, 0, window - 10*time.Second})
		check(t, "cost 2 at 20s", e.hit(key, rule, 2), want{false, 3, 1, window - 10*time.Second, window - 10*time.Second})
	})

	t.Run("ZeroReceipt", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 3, Window: window}
		key := e.key("k")
		e.hit(key, rule, 1)
		if err := e.s.Undo(e.ctx, key, store.Receipt{}); err != nil {
			t.Fatalf("Undo(zero receipt) = %v, want nil", err)
		}
		check(t, "hit after a zero undo", e.hit(key, rule, 1), want{true, 3, 1, 0, window})
		other := e.key("never-hit")
		if err := e.s.Undo(e.ctx, other, store.Receipt{}); err != nil {
			t.Fatalf("Undo(zero receipt) on an unknown key = %v, want nil", err)
		}
	})

	t.Run("MalformedReceipt", func(t *testing.T) {
		// The zero receipt is a no-op; any other receipt needs both an ID
		// and a positive cost.
		rule := store.Rule{Limit: 2, Window: window}
		tests := []struct {
			name    string
			receipt func(real store.Receipt) store.Receipt
		}{
			{"ZeroCost", func(r store.Receipt) store.Receipt { return store.Receipt{ID: r.ID} }},
			{"ZeroID", func(r store.Receipt) store.Receipt { return store.Receipt{Cost: r.Cost} }},
			{"NegativeCost", func(r store.Receipt) store.Receipt { return store.Receipt{ID: r.ID, Cost: -1} }},
			{"ZeroIDNegativeCost", func(store.Receipt) store.Receipt { return store.Receipt{Cost: -1} }},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				e := s.env(t)
				key := e.key("k")
				res := e.hit(key, rule, 1)
				bad := tc.receipt(res.Receipt)
				if err := e.s.Undo(e.ctx, key, bad); !errors.Is(err, store.ErrInvalidArgument) {
					t.Errorf("Undo(%+v) = %v, want store.ErrInvalidArgument", bad, err)
				}
				check(t, "the hit still counts", e.hit(key, rule, 1), want{true, 2, 0, 0, window})
			})
		}
	})

	t.Run("AfterHitsLeft", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 3, Window: window}
		key := e.key("k")
		res := e.hit(key, rule, 2)
		e.advance(window + time.Second)
		if err := e.s.Undo(e.ctx, key, res.Receipt); err != nil {
			t.Fatalf("Undo after the hits left the window = %v, want nil", err)
		}
		check(t, "hit after", e.hit(key, rule, 1), want{true, 3, 2, 0, window})
	})

	t.Run("OnlyItsOwnHits", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 5, Window: window}
		key := e.key("k")
		// Same instant: only the receipt tells the hits apart.
		a := e.hit(key, rule, 2)
		b := e.hit(key, rule, 1)
		if a.Receipt.ID == b.Receipt.ID {
			t.Fatalf("two hits got the same receipt ID %d", a.Receipt.ID)
		}
		for i := range 2 { // the second undo of the same receipt must be a no-op
			if err := e.s.Undo(e.ctx, key, a.Receipt); err != nil {
				t.Fatalf("Undo #%d: %v", i+1, err)
			}
		}
		// b's hit must still count: 5 - 1 = 4 left, so cost 4 fits and 1 more does not.
		check(t, "cost 4 after undoing a", e.hit(key, rule, 4), want{true, 5, 0, 0, window})
		check(t, "one more", e.hit(key, rule, 1), want{false, 5, 0, window, window})
	})

	t.Run("OtherKeyUntouched", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 2, Window: window}
		k1, k2 := e.key("k1"), e.key("k2")
		r1 := e.hit(k1, rule, 1)
		e.hit(k2, rule, 1)
		if err := e.s.Undo(e.ctx, k2, r1.Receipt); err != nil {
			t.Fatalf("Undo of k1's receipt on k2: %v", err)
		}
		check(t, "k1 still holds its hit", e.hit(k1, rule, 1), want{true, 2, 0, 0, window})
		check(t, "k2 still holds its hit", e.hit(k2, rule, 1), want{true, 2, 0, 0, window})
	})
}

func (s suite) testConcurrency(t *testing.T) {
	const goroutines = 200

	// hammer sends goroutines simultaneous hits and returns the results.
	hammer := func(t *testing.T, st store.Store, key string, rule store.Rule) []store.Result {
		t.Helper()
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results = make([]store.Result, goroutines)
			errs    = make([]error, goroutines)
		)
		ctx := t.Context()
		for i := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = st.Hit(ctx, key, rule, 1)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("hit %d: %v", i, err)
			}
		}
		return results
	}
	allowed := func(t *testing.T, results []store.Result) int {
		t.Helper()
		n := 0
		ids := make(map[uint64]bool)
		for _, r := range results {
			if r.Allowed {
				n++
				if ids[r.Receipt.ID] {
					t.Errorf("receipt ID %d issued twice", r.Receipt.ID)
				}
				ids[r.Receipt.ID] = true
			}
		}
		return n
	}

	t.Run("DefaultClock", func(t *testing.T) {
		st := s.b.New(t, nil)
		rule := store.Rule{Limit: 50, Window: 10 * window}
		key := uniqueKey(t, "k")
		if n := allowed(t, hammer(t, st, key, rule)); n != 50 {
			t.Errorf("%d concurrent hits with limit 50 admitted %d, want exactly 50", goroutines, n)
		}
		res, err := st.Hit(t.Context(), key, rule, 1)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed || res.Remaining != 0 {
			t.Errorf("hit after the burst: %+v, want denied with 0 remaining", res)
		}
	})

	t.Run("FrozenClock", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 50, Window: window}
		key := e.key("k")
		if n := allowed(t, hammer(t, e.s, key, rule)); n != 50 {
			t.Errorf("%d hits in one instant with limit 50 admitted %d, want exactly 50", goroutines, n)
		}
	})

	t.Run("FrozenClockHitsAreDistinct", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 300, Window: window}
		key := e.key("k")
		if n := allowed(t, hammer(t, e.s, key, rule)); n != goroutines {
			t.Errorf("%d hits in one instant with limit 300 admitted %d, want all", goroutines, n)
		}
		check(t, "hit after the burst", e.hit(key, rule, 1), want{true, 300, 300 - goroutines - 1, 0, window})
	})

	t.Run("OneAcquireWins", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			won   = make([]bool, 50)
			errs  = make([]error, 50)
		)
		for i := range won {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var res store.LockResult
				res, errs[i] = e.s.Acquire(e.ctx, key, "token-"+string(rune('A'+i)), time.Minute)
				won[i] = res.Acquired
			}()
		}
		close(start)
		wg.Wait()
		n := 0
		for i := range won {
			if errs[i] != nil {
				t.Fatalf("acquire %d: %v", i, errs[i])
			}
			if won[i] {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d concurrent acquires with distinct tokens: %d won, want exactly 1", len(won), n)
		}
	})
}

func (s suite) testKeys(t *testing.T) {
	rule := store.Rule{Limit: 1, Window: window}

	t.Run("Independent", func(t *testing.T) {
		e := s.env(t)
		k1, k2 := e.key("a"), e.key("b")
		check(t, "k1", e.hit(k1, rule, 1), want{true, 1, 0, 0, window})
		check(t, "k1 again", e.hit(k1, rule, 1), want{false, 1, 0, window, window})
		check(t, "k2", e.hit(k2, rule, 1), want{true, 1, 0, 0, window})
	})

	t.Run("Names", func(t *testing.T) {
		// Rule.Name is a namespace: the same key under another name, or
		// a name and key that join to the same bytes, is another window.
		e := s.env(t)
		k := e.key("k")
		pairs := []struct{ name, key string }{
			{"", k}, {"a", k}, {"b", k}, {"a:b", k + "c"}, {"a", ":b" + k + "c"},
			{"ab", k}, {"a", "b" + k}, {"{tag}", k}, {"GET /items/{id}", k},
			{"api", "x" + k}, {"", "3:apix" + k}, {"", "api:x" + k}, {"", "apix" + k},
		}
		for _, p := range pairs {
			r := store.Rule{Name: p.name, Limit: 1, Window: window}
			check(t, "first under "+p.name, e.hit(p.key, r, 1), want{true, 1, 0, 0, window})
		}
		for _, p := range pairs {
			r := store.Rule{Name: p.name, Limit: 1, Window: window}
			check(t, "again under "+p.name, e.hit(p.key, r, 1), want{false, 1, 0, window, window})
		}
		// Undo finds the window through the receipt's name.
		r := store.Rule{Name: "undo", Limit: 1, Window: window}
		res := e.hit(k, r, 1)
		if res.Receipt.Rule.Name != "undo" {
			t.Fatalf("receipt name = %q, want %q", res.Receipt.Rule.Name, "undo")
		}
		if err := e.s.Undo(e.ctx, k, res.Receipt); err != nil {
			t.Fatalf("Undo: %v", err)
		}
		check(t, "after undo", e.hit(k, r, 1), want{true, 1, 0, 0, window})
		check(t, "other names untouched", e.hit(k, store.Rule{Name: "a", Limit: 1, Window: window}, 1), want{false, 1, 0, window, window})
	})

	t.Run("LongKey", func(t *testing.T) {
		e := s.env(t)
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = 'a' + byte(i%26)
		}
		prefix := e.key("long")
		k1 := prefix + string(buf)
		buf[len(buf)-1] = '#'
		k2 := prefix + string(buf) // differs from k1 in the last byte only
		check(t, "1 MB key", e.hit(k1, rule, 1), want{true, 1, 0, 0, window})
		check(t, "1 MB key again", e.hit(k1, rule, 1), want{false, 1, 0, window, window})
		check(t, "other 1 MB key", e.hit(k2, rule, 1), want{true, 1, 0, 0, window})
		e.mustAcquire(k1, "A", lockTTL)
		if res := e.acquire(k1, "B", lockTTL); res.Acquired {
			t.Errorf("second token acquired a held lock with a 1 MB key")
		}
		e.mustAcquire(k2, "B", lockTTL)
		if err := e.s.Release(e.ctx, k1, "A"); err != nil {
			t.Errorf("Release with a 1 MB key: %v", err)
		}
	})

	t.Run("HashTagBraces", func(t *testing.T) {
		e := s.env(t)
		base := e.key("")
		keys := []string{
			"{", "}", "{}", "}{", "{{}}", "{user:1}", "{user:1}x", "x{user:1}",
			"{user:1}:y", base + "{", base + "{tag}", base + "{tag}:other",
		}
		for _, k := range keys {
			check(t, "key "+k, e.hit(base+"|"+k, rule, 1), want{true, 1, 0, 0, window})
		}
		for _, k := range keys { // each is its own window
			check(t, "key "+k+" again", e.hit(base+"|"+k, rule, 1), want{false, 1, 0, window, window})
		}
		for i, k := range keys {
			e.mustAcquire(base+"|"+k, "tok-"+k, lockTTL)
			if i > 0 {
				if err := e.s.Release(e.ctx, base+"|"+keys[i-1], "tok-"+keys[i-1]); err != nil {
					t.Errorf("Release(%q): %v", keys[i-1], err)
				}
			}
		}
	})

	t.Run("WindowAndLockApart", func(t *testing.T) {
		e := s.env(t)
		key := e.key("shared-name")
		check(t, "hit", e.hit(key, rule, 1), want{true, 1, 0, 0, window})
		e.mustAcquire(key, "A", lockTTL)
		check(t, "hit while locked", e.hit(key, rule, 1), want{false, 1, 0, window, window})
		if err := e.s.Release(e.ctx, key, "A"); err != nil {
			t.Fatalf("Release: %v", err)
		}
		check(t, "hit after release", e.hit(key, rule, 1), want{false, 1, 0, window, window})
	})
}

func (s suite) testLock(t *testing.T) {
	t.Run("Acquire", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		res := e.mustAcquire(key, "A", lockTTL)
		if res.Fence <= 0 {
			t.Errorf("fence = %d, want positive", res.Fence)
		}
		if d := e.ttl(key, "A"); d <= 0 || d > lockTTL {
			t.Errorf("TTL after acquire = %v, want in (0, %v]", d, lockTTL)
		}
	})

	t.Run("HeldByAnother", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		e.mustAcquire(key, "A", lockTTL)
		res := e.acquire(key, "B", lockTTL)
		if res.Acquired {
			t.Fatalf("second token acquired a held lock: %+v", res)
		}
		if res.HolderTTL <= 0 || res.HolderTTL > lockTTL {
			t.Errorf("HolderTTL = %v, want in (0, %v]", res.HolderTTL, lockTTL)
		}
		if _, err := e.s.TTL(e.ctx, key, "A"); err != nil {
			t.Errorf("holder lost the lock to a failed acquire: %v", err)
		}
	})

	t.Run("ReleaseByNonOwner", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		e.mustAcquire(key, "A", lockTTL)
		if err := e.s.Release(e.ctx, key, "B"); !errors.Is(err, store.ErrNotHeld) {
			t.Fatalf("Release by a non-owner = %v, want store.ErrNotHeld", err)
		}
		if d := e.ttl(key, "A"); d <= 0 {
			t.Errorf("owner's TTL after a foreign release = %v, want positive", d)
		}
		if res := e.acquire(key, "C", lockTTL); res.Acquired {
			t.Errorf("lock was freed by a non-owner's release")
		}
	})

	t.Run("ReleaseByOwner", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		e.mustAcquire(key, "A", lockTTL)
		if err := e.s.Release(e.ctx, key, "A"); err != nil {
			t.Fatalf("Release by the owner: %v", err)
		}
		if err := e.s.Release(e.ctx, key, "A"); !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("second Release = %v, want store.ErrNotHeld", err)
		}
		if _, err := e.s.TTL(e.ctx, key, "A"); !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("TTL after release = %v, want store.ErrNotHeld", err)
		}
		e.mustAcquire(key, "B", lockTTL)
	})

	t.Run("ReleaseUnknown", func(t *testing.T) {
		e := s.env(t)
		if err := e.s.Release(e.ctx, e.key("never"), "A"); !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("Release of a lock never taken = %v, want store.ErrNotHeld", err)
		}
	})

	t.Run("ExtendByOwner", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		e.mustAcquire(key, "A", lockTTL)
		e.elapse(100 * time.Millisecond)
		if d := e.ttl(key, "A"); d <= 0 || d > 50*time.Millisecond {
			t.Fatalf("TTL 100ms into a 150ms lock = %v, want in (0, 50ms]", d)
		}
		if err := e.s.Extend(e.ctx, key, "A", time.Second); err != nil {
			t.Fatalf("Extend by the owner: %v", err)
		}
		if d := e.ttl(key, "A"); d <= 500*time.Millisecond || d > time.Second {
			t.Fatalf("TTL after Extend(1s) = %v, want in (500ms, 1s]", d)
		}
		e.elapse(pastTTL) // beyond the original expiry
		if res := e.acquire(key, "B", lockTTL); res.Acquired {
			t.Errorf("extended lock was taken at its original expiry")
		}
		if d := e.ttl(key, "A"); d <= 0 {
			t.Errorf("TTL after the original expiry = %v, want positive", d)
		}
	})

	t.Run("ExtendByNonOwner", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		e.mustAcquire(key, "A", lockTTL)
		if err := e.s.Extend(e.ctx, key, "B", time.Minute); !errors.Is(err, store.ErrNotHeld) {
			t.Fatalf("Extend by a non-owner = %v, want store.ErrNotHeld", err)
		}
		if d := e.ttl(key, "A"); d <= 0 || d > lockTTL {
			t.Errorf("owner's TTL after a foreign Extend = %v, want unchanged in (0, %v]", d, lockTTL)
		}
	})

	t.Run("ExtendExpired", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		e.mustAcquire(key, "A", lockTTL)
		e.elapse(pastTTL)
		if err := e.s.Extend(e.ctx, key, "A", time.Minute); !errors.Is(err, store.ErrNotHeld) {
			t.Fatalf("Extend of an expired lock = %v, want store.ErrNotHeld", err)
		}
		if _, err := e.s.TTL(e.ctx, key, "A"); !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("TTL after a failed Extend = %v, want store.ErrNotHeld (not re-created)", err)
		}
		e.mustAcquire(key, "B", lockTTL)
	})

	t.Run("ExtendMissing", func(t *testing.T) {
		e := s.env(t)
		key := e.key("never")
		if err := e.s.Extend(e.ctx, key, "A", time.Minute); !errors.Is(err, store.ErrNotHeld) {
			t.Fatalf("Extend of a lock never taken = %v, want store.ErrNotHeld", err)
		}
		e.mustAcquire(key, "B", lockTTL)
	})

	t.Run("ReacquireSameToken", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		first := e.mustAcquire(key, "A", lockTTL)
		e.elapse(100 * time.Millisecond)
		again := e.mustAcquire(key, "A", lockTTL)
		if again.Fence <= first.Fence {
			t.Errorf("re-acquire fence %d, want above %d", again.Fence, first.Fence)
		}
		// Renewed: far more than the 50ms the first acquire had left.
		if d := e.ttl(key, "A"); d <= 100*time.Millisecond || d > lockTTL {
			t.Errorf("TTL after re-acquire = %v, want renewed, in (100ms, %v]", d, lockTTL)
		}
		if res := e.acquire(key, "B", lockTTL); res.Acquired {
			t.Errorf("another token acquired a re-acquired lock")
		}
	})

	t.Run("FenceIncreases", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		var last int64
		next := func(what string, res store.LockResult) {
			t.Helper()
			if res.Fence <= last {
				t.Errorf("%s: fence %d, want above %d", what, res.Fence, last)
			}
			last = res.Fence
		}
		for round, tok := range []string{"A", "B", "A", "C"} {
			next("round "+string(rune('1'+round))+" by "+tok, e.mustAcquire(key, tok, lockTTL))
			if err := e.s.Release(e.ctx, key, tok); err != nil {
				t.Fatalf("Release by %s: %v", tok, err)
			}
		}
		next("D", e.mustAcquire(key, "D", lockTTL))
		next("D again", e.mustAcquire(key, "D", lockTTL))
		e.elapse(pastTTL)
		next("E after D expired", e.mustAcquire(key, "E", lockTTL))
		other := e.mustAcquire(e.key("other"), "A", lockTTL)
		if other.Fence <= 0 {
			t.Errorf("fence of another key = %d, want positive", other.Fence)
		}
	})

	t.Run("FenceAfterBurstAndCounterExpiry", func(t *testing.T) {
		fenceTTL := s.b.FenceTTL
		switch {
		case fenceTTL <= 0:
			t.Skip("Backend.FenceTTL not set: fence counter expiry after a burst is not checked")
		case s.b.Elapse != nil:
			t.Skip("Backend.Elapse set: the suite cannot freeze the clock fences run on")
		case fenceTTL > maxFenceTTL:
			t.Fatalf("storetest: Backend.FenceTTL %v above %v", fenceTTL, maxFenceTTL)
		}
		// Fences are the last plus one, and at least the clock in
		// microseconds. On the frozen clock a burst runs them ahead of the
		// clock by its length in microseconds, twice what the clock moves.
		step := fenceTTL + time.Millisecond
		burst := 2 * int(step/time.Microsecond)
		e := s.env(t)
		free, held := e.key("free"), e.key("held")
		lasts := map[string]int64{}
		for _, key := range []string{free, held} {
			var last int64
			for i := range burst {
				res := e.mustAcquire(key, "A", lockTTL)
				if res.Fence <= last {
					t.Fatalf("burst acquire %d: fence %d, want above %d", i, res.Fence, last)
				}
				last = res.Fence
				if key == held && i == burst-1 {
					break // keep the last lock: Release meets the expired counter
				}
				if err := e.s.Release(e.ctx, key, "A"); err != nil {
					t.Fatalf("Release: %v", err)
				}
			}
			lasts[key] = last
		}
		e.advance(step) // the counters' TTL passed; their fences are still ahead
		if err := e.s.Release(e.ctx, held, "A"); err != nil {
			t.Fatalf("Release of the held lock after the fence TTL: %v", err)
		}
		for _, key := range []string{free, held} {
			if res := e.mustAcquire(key, "B", lockTTL); res.Fence <= lasts[key] {
				t.Errorf("%s: fence after the counter's TTL = %d, want above the burst's last %d",
					short(key), res.Fence, lasts[key])
			}
		}
	})

	t.Run("FenceAfterStalledClockRead", func(t *testing.T) {
		// Caller A reads the clock and is held up right there. Meanwhile B
		// acquires at a later time, the fence counter's TTL passes and B
		// releases, so the store may drop the counter. When A goes on with
		// the time it read, its fence must still be above B's: a store
		// that reads the time before it holds the key would issue a fence
		// below one already issued.
		drop := s.b.FenceTTL + time.Millisecond
		if s.b.FenceTTL <= 0 {
			drop = 48 * time.Hour // past any default fence TTL
		}
		e := s.env(t)
		key := e.key("lock")
		first := e.mustAcquire(key, "A", lockTTL)
		if err := e.s.Release(e.ctx, key, "A"); err != nil {
			t.Fatalf("Release: %v", err)
		}

		type outcome struct {
			res store.LockResult
			err error
		}
		st := e.clock.stallNext()
		aDone := make(chan outcome, 1)
		go func() {
			res, err := e.s.Acquire(e.ctx, key, "A", time.Hour)
			aDone <- outcome{res, err}
		}()
		var a outcome
		aFirst := false // A finished without reading the suite's clock
		select {
		case <-st.reached:
		case a = <-aDone:
			aFirst = true
			e.clock.disarm()
		}

		e.advance(time.Second)
		bDone := make(chan outcome, 1)
		go func() {
			res, err := e.s.Acquire(e.ctx, key, "B", lockTTL)
			if err == nil && res.Acquired {
				e.advance(drop)
				err = e.s.Release(e.ctx, key, "B")
			}
			bDone <- outcome{res, err}
		}()
		var b outcome
		bFirst := false // B acquired and released while A was held up
		if aFirst {
			b = <-bDone
		} else {
			select {
			case b = <-bDone:
				bFirst = true
			case <-time.After(100 * time.Millisecond):
				// B waits for A: the store holds the key while it reads
				// the clock.
			}
			close(st.resume)
			a = <-aDone
			if !bFirst {
				b = <-bDone
			}
		}
		if a.err != nil || b.err != nil {
			t.Fatalf("Acquire by A: %v; by B: %v", a.err, b.err)
		}
		switch {
		case bFirst && b.res.Acquired:
			if !a.res.Acquired {
				t.Fatalf("A was refused a lock B had released: %+v", a.res)
			}
			if a.res.Fence <= b.res.Fence {
				t.Errorf("fence of A after its stalled clock read = %d, want above B's %d, issued before", a.res.Fence, b.res.Fence)
			}
		case b.res.Acquired && a.res.Acquired:
			t.Errorf("A and B both acquired while A held the lock for an hour: A %+v, B %+v", a.res, b.res)
		}
		last := first.Fence
		for _, r := range []store.LockResult{a.res, b.res} {
			if r.Acquired && r.Fence <= first.Fence {
				t.Errorf("fence %d, want above the first %d", r.Fence, first.Fence)
			}
			last = max(last, r.Fence)
		}
		if a.res.Acquired {
			if err := e.s.Release(e.ctx, key, "A"); err != nil {
				t.Fatalf("Release by A: %v", err)
			}
		}
		if res := e.mustAcquire(key, "C", lockTTL); res.Fence <= last {
			t.Errorf("fence of C = %d, want above %d", res.Fence, last)
		}
	})

	t.Run("AcquireAfterExpiry", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		e.mustAcquire(key, "A", lockTTL)
		e.elapse(pastTTL)
		e.mustAcquire(key, "B", lockTTL)
		if err := e.s.Release(e.ctx, key, "A"); !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("Release by the expired owner = %v, want store.ErrNotHeld", err)
		}
		if _, err := e.s.TTL(e.ctx, key, "A"); !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("TTL of the expired owner = %v, want store.ErrNotHeld", err)
		}
		if d := e.ttl(key, "B"); d <= 0 || d > lockTTL {
			t.Errorf("new owner's TTL = %v, want in (0, %v]", d, lockTTL)
		}
	})

	t.Run("TTLNotHolder", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		if _, err := e.s.TTL(e.ctx, key, "A"); !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("TTL of a lock never taken = %v, want store.ErrNotHeld", err)
		}
		e.mustAcquire(key, "A", lockTTL)
		if _, err := e.s.TTL(e.ctx, key, "B"); !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("TTL asked by a non-holder = %v, want store.ErrNotHeld", err)
		}
	})
}

func (s suite) testContext(t *testing.T) {
	rule := store.Rule{Limit: 3, Window: window}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	t.Run("Hit", func(t *testing.T) {
		e := s.env(t)
		key := e.key("k")
		if _, err := e.s.Hit(cancelled, key, rule, 1); !errors.Is(err, context.Canceled) {
			t.Errorf("Hit with a cancelled context = %v, want context.Canceled", err)
		}
		if _, err := e.s.Hit(expired, key, rule, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Hit past its deadline = %v, want context.DeadlineExceeded", err)
		}
		if got := e.remaining(key, rule); got != rule.Limit {
			t.Errorf("after failed hits the key has %d of %d left; want nothing recorded", got, rule.Limit)
		}
	})

	t.Run("Undo", func(t *testing.T) {
		e := s.env(t)
		key := e.key("k")
		res := e.hit(key, rule, 1)
		if err := e.s.Undo(cancelled, key, res.Receipt); !errors.Is(err, context.Canceled) {
			t.Errorf("Undo with a cancelled context = %v, want context.Canceled", err)
		}
		if got := e.remaining(key, rule); got != rule.Limit-1 {
			t.Errorf("after a failed undo the key has %d of %d left; want the hit kept", got, rule.Limit)
		}
	})

	t.Run("Acquire", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		if _, err := e.s.Acquire(cancelled, key, "A", lockTTL); !errors.Is(err, context.Canceled) {
			t.Errorf("Acquire with a cancelled context = %v, want context.Canceled", err)
		}
		e.mustAcquire(key, "B", lockTTL)
	})

	t.Run("Release", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		e.mustAcquire(key, "A", lockTTL)
		if err := e.s.Release(cancelled, key, "A"); !errors.Is(err, context.Canceled) {
			t.Errorf("Release with a cancelled context = %v, want context.Canceled", err)
		}
		if res := e.acquire(key, "B", lockTTL); res.Acquired {
			t.Errorf("a failed Release freed the lock")
		}
	})

	t.Run("Extend", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		e.mustAcquire(key, "A", lockTTL)
		if err := e.s.Extend(cancelled, key, "A", time.Minute); !errors.Is(err, context.Canceled) {
			t.Errorf("Extend with a cancelled context = %v, want context.Canceled", err)
		}
		if d := e.ttl(key, "A"); d > lockTTL {
			t.Errorf("TTL after a failed Extend = %v, want at most %v", d, lockTTL)
		}
	})

	t.Run("TTL", func(t *testing.T) {
		e := s.env(t)
		key := e.key("lock")
		e.mustAcquire(key, "A", lockTTL)
		if _, err := e.s.TTL(cancelled, key, "A"); !errors.Is(err, context.Canceled) {
			t.Errorf("TTL with a cancelled context = %v, want context.Canceled", err)
		}
	})
}
