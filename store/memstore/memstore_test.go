package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// fakeClock is a time that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// newStore returns a store on a fake clock, closed when the test ends.
func newStore(t testing.TB, opts ...memstore.Option) (*memstore.Store, *fakeClock) {
	t.Helper()
	c := newFakeClock()
	s, err := memstore.New(append([]memstore.Option{memstore.WithClock(c.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, c
}

func mustHit(t testing.TB, s *memstore.Store, key string, rule store.Rule, cost int) store.Result {
	t.Helper()
	res, err := s.Hit(context.Background(), key, rule, cost)
	if err != nil {
		t.Fatalf("Hit(%q): %v", key, err)
	}
	return res
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  memstore.Option
	}{
		{"zero max keys", memstore.WithMaxKeys(0)},
		{"negative max keys", memstore.WithMaxKeys(-1)},
		{"zero fence ttl", memstore.WithFenceTTL(0)},
		{"fence ttl below 1ms", memstore.WithFenceTTL(time.Microsecond)},
		{"negative sweep interval", memstore.WithSweepInterval(-time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := memstore.New(tc.opt)
			if !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("New error = %v, want store.ErrInvalidArgument", err)
			}
			if s != nil {
				t.Errorf("New returned a store with an error")
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	s, err := memstore.New(nil, memstore.WithClock(nil)) // nil options and a nil clock mean defaults
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer s.Close()
	rule := store.Rule{Limit: 2, Window: time.Hour}
	res := mustHit(t, s, "k", rule, 1)
	if !res.Allowed || res.Remaining != 1 || res.ResetAfter <= 59*time.Minute || res.ResetAfter > time.Hour {
		t.Errorf("first hit on the default clock = %+v, want allowed, 1 remaining, reset about 1h", res)
	}
}

func TestCloseTwiceAndErrClosed(t *testing.T) {
	s, err := memstore.New() // with the background sweeper
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rule := store.Rule{Limit: 5, Window: time.Minute}
	res := mustHit(t, s, "k", rule, 1)
	if _, err := s.Acquire(ctx, "lock", "A", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("first Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	calls := map[string]func() error{
		"Hit":     func() error { _, err := s.Hit(ctx, "k", rule, 1); return err },
		"Undo":    func() error { return s.Undo(ctx, "k", res.Receipt) },
		"Acquire": func() error { _, err := s.Acquire(ctx, "lock", "A", time.Minute); return err },
		"Release": func() error { return s.Release(ctx, "lock", "A") },
		"Extend":  func() error { return s.Extend(ctx, "lock", "A", time.Minute) },
		"TTL":     func() error { _, err := s.TTL(ctx, "lock", "A"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close = %v, want store.ErrClosed", name, err)
		}
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len after Close = %d, want 0 (memory released)", n)
	}
}

func TestCloseWithoutSweeper(t *testing.T) {
	s, err := memstore.New(memstore.WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
	}
}

func TestUndoBadInput(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		key     string
		receipt store.Receipt
	}{
		{"empty key", "", store.Receipt{ID: 1, Cost: 1}},
		{"zero cost", "k", store.Receipt{ID: 1}},
		{"negative cost", "k", store.Receipt{ID: 1, Cost: -1}},
		{"zero id", "k", store.Receipt{Cost: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Undo(ctx, tc.key, tc.receipt); !errors.Is(err, store.ErrInvalidArgument) {
				t.Errorf("Undo = %v, want store.ErrInvalidArgument", err)
			}
		})
	}
}

// TestMaxKeysBound floods the store with far more distinct keys than its
// bounds and checks that it never holds more: bound windows and bound locks.
func TestMaxKeysBound(t *testing.T) {
	for _, bound := range []int{1, 64, 1000, 20000} {
		t.Run(strconv.Itoa(bound), func(t *testing.T) {
			s, clock := newStore(t, memstore.WithMaxKeys(bound), memstore.WithMaxLocks(bound), memstore.WithSweepInterval(0))
			rule := store.Rule{Limit: 3, Window: time.Hour}
			ctx := context.Background()
			flood := 20 * bound
			if flood < 2000 {
				flood = 2000
			}
			for i := range flood {
				key := "client-" + strconv.Itoa(i)
				if i%3 == 0 {
					if _, err := s.Acquire(ctx, key, "tok", time.Millisecond); err != nil && !errors.Is(err, memstore.ErrFull) {
						t.Fatalf("Acquire %d: %v", i, err)
					}
				} else if res := mustHit(t, s, key, rule, 1); !res.Allowed {
					t.Fatalf("first hit of a new key denied: %+v", res)
				}
				clock.Add(time.Millisecond)
				if i%97 == 0 || i == flood-1 {
					if n := s.Len(); n > 2*bound {
						t.Fatalf("after %d keys Len() = %d, above the bounds %d + %d", i+1, n, bound, bound)
					}
				}
			}
			if n := s.Len(); n == 0 {
				t.Errorf("Len() = 0 after the flood, want the most recent keys kept")
			}
		})
	}
}

// TestEvictsExpiredFirst fills a store with live and expired windows and
// checks that new keys push out the expired ones, not the live ones.
func TestEvictsExpiredFirst(t *testing.T) {
	const bound = 64 // a single shard
	s, clock := newStore(t, memstore.WithMaxKeys(bound), memstore.WithSweepInterval(0))
	long := store.Rule{Limit: 1, Window: time.Hour}
	short := store.Rule{Limit: 1, Window: time.Second}
	for i := range bound / 2 {
		mustHit(t, s, fmt.Sprintf("live-%d", i), long, 1)
		mustHit(t, s, fmt.Sprintf("short-%d", i), short, 1)
	}
	clock.Add(2 * time.Second) // every short window has emptied
	for i := range bound / 2 {
		mustHit(t, s, fmt.Sprintf("new-%d", i), long, 1)
	}
	for i := range bound / 2 {
		if res := mustHit(t, s, fmt.Sprintf("live-%d", i), long, 1); res.Allowed {
			t.Fatalf("live-%d was forgotten while expired keys could go first", i)
		}
	}
	if n := s.Len(); n > bound {
		t.Errorf("Len() = %d, above the bound %d", n, bound)
	}
}

// TestHeldLocksAreNeverEvicted floods windows over held locks.
func TestHeldLocksAreNeverEvicted(t *testing.T) {
	const bound = 64
	s, clock := newStore(t, memstore.WithMaxKeys(bound), memstore.WithSweepInterval(0))
	ctx := context.Background()
	for i := range bound / 2 {
		if res, err := s.Acquire(ctx, fmt.Sprintf("lock-%d", i), "A", time.Hour); err != nil || !res.Acquired {
			t.Fatalf("Acquire: %+v, %v", res, err)
		}
	}
	rule := store.Rule{Limit: 1, Window: time.Hour}
	for i := range 10 * bound {
		mustHit(t, s, fmt.Sprintf("client-%d", i), rule, 1)
		clock.Add(time.Millisecond)
	}
	for i := range bound / 2 {
		if _, err := s.TTL(ctx, fmt.Sprintf("lock-%d", i), "A"); err != nil {
			t.Fatalf("lock-%d was evicted: %v", i, err)
		}
	}
}

// TestErrFull fills a store with held locks: a new lock cannot be stored
// until they expire, while rate limiting goes on: locks never take the room
// of windows, so they cannot switch a limit off.
func TestErrFull(t *testing.T) {
	const bound = 64
	s, clock := newStore(t, memstore.WithMaxKeys(bound), memstore.WithMaxLocks(bound), memstore.WithSweepInterval(0))
	ctx := context.Background()
	var fences []int64
	for i := range bound {
		res, err := s.Acquire(ctx, fmt.Sprintf("lock-%d", i), "A", time.Second)
		if err != nil || !res.Acquired {
			t.Fatalf("Acquire: %+v, %v", res, err)
		}
		fences = append(fences, res.Fence)
	}
	rule := store.Rule{Limit: 1, Window: time.Hour}
	for i := range 4 * bound {
		if res, err := s.Hit(ctx, fmt.Sprintf("client-%d", i), rule, 1); err != nil || !res.Allowed {
			t.Fatalf("first Hit of client-%d on a store full of held locks = %+v, %v; want allowed", i, res, err)
		}
	}
	if res, err := s.Hit(ctx, "client", rule, 1); err != nil || !res.Allowed {
		t.Fatalf("Hit on a store full of held locks = %+v, %v; want allowed", res, err)
	}
	if res, err := s.Hit(ctx, "client", rule, 1); err != nil || res.Allowed {
		t.Errorf("second Hit on a store full of held locks = %+v, %v; want denied", res, err)
	}
	if _, err := s.Acquire(ctx, "lock-new", "A", time.Second); !errors.Is(err, memstore.ErrFull) {
		t.Errorf("Acquire on a store full of held locks = %v, want memstore.ErrFull", err)
	}
	// A held lock can still be re-acquired, extended and released.
	if res, err := s.Acquire(ctx, "lock-0", "A", time.Second); err != nil || !res.Acquired {
		t.Errorf("re-acquire in a full store: %+v, %v", res, err)
	}
	clock.Add(2 * time.Second) // every lock expired
	if res, err := s.Acquire(ctx, "lock-new", "A", time.Second); err != nil || !res.Acquired {
		t.Fatalf("Acquire after the locks expired: %+v, %v", res, err)
	}
	// Their fence counters may have been dropped; fences still increase.
	res, err := s.Acquire(ctx, "lock-1", "B", time.Second)
	if err != nil || !res.Acquired {
		t.Fatalf("Acquire after expiry: %+v, %v", res, err)
	}
	if res.Fence <= fences[1] {
		t.Errorf("fence after the counter was dropped = %d, want above %d", res.Fence, fences[1])
	}
}

func TestFenceAfterCounterExpiry(t *testing.T) {
	s, clock := newStore(t, memstore.WithFenceTTL(time.Second), memstore.WithSweepInterval(0))
	ctx := context.Background()
	var last int64
	for round := range 5 {
		res, err := s.Acquire(ctx, "lock", "A", 10*time.Millisecond)
		if err != nil || !res.Acquired {
			t.Fatalf("round %d: %+v, %v", round, res, err)
		}
		if res.Fence <= last {
			t.Fatalf("round %d: fence %d, want above %d", round, res.Fence, last)
		}
		last = res.Fence
		if err := s.Release(ctx, "lock", "A"); err != nil {
			t.Fatal(err)
		}
		clock.Add(2 * time.Second) // the fence counter expires
	}
}

// TestLimitChange changes a key's limit between calls: hits above a lower
// limit stay until they leave the window.
func TestLimitChange(t *testing.T) {
	s, clock := newStore(t)
	high := store.Rule{Limit: 10, Window: time.Minute}
	low := store.Rule{Limit: 3, Window: time.Minute}
	for range 8 {
		mustHit(t, s, "k", high, 1)
	}
	res := mustHit(t, s, "k", low, 1)
	if res.Allowed || res.Remaining != 0 || res.Limit != 3 {
		t.Fatalf("hit under a lower limit with 8 hits in the window = %+v, want denied, 0 remaining", res)
	}
	if res.RetryAfter != time.Minute {
		t.Errorf("RetryAfter = %v, want 1m (6 of the 8 hits must leave)", res.RetryAfter)
	}
	clock.Add(time.Minute)
	for i := range 3 {
		if res := mustHit(t, s, "k", low, 1); !res.Allowed || res.Remaining != 2-i {
			t.Fatalf("hit %d after the window slid = %+v", i, res)
		}
	}
	if res := mustHit(t, s, "k", high, 5); !res.Allowed || res.Remaining != 2 {
		t.Fatalf("cost 5 under the higher limit again = %+v, want allowed, 2 remaining", res)
	}
}

// TestClockGoesBack records a hit at an earlier time than the newest one:
// the log stays in time order, as a Redis sorted set would.
func TestClockGoesBack(t *testing.T) {
	s, clock := newStore(t)
	rule := store.Rule{Limit: 3, Window: time.Minute}
	t0 := clock.Now()
	mustHit(t, s, "k", rule, 1) // at t0
	clock.Set(t0.Add(-10 * time.Second))
	res := mustHit(t, s, "k", rule, 1) // at t0-10s, before the first
	if !res.Allowed || res.Remaining != 1 || res.ResetAfter != time.Minute {
		t.Fatalf("hit 10s in the past = %+v, want allowed, 1 remaining, reset 1m", res)
	}
	clock.Set(t0.Add(55 * time.Second)) // t0-10s has left, t0 has not
	res = mustHit(t, s, "k", rule, 1)
	if !res.Allowed || res.Remaining != 1 || res.ResetAfter != 5*time.Second {
		t.Fatalf("hit at t0+55s = %+v, want allowed, 1 remaining, reset 5s", res)
	}
}

func TestReceiptsAreUniqueAcrossKeys(t *testing.T) {
	s, _ := newStore(t)
	rule := store.Rule{Limit: 5, Window: time.Minute}
	seen := make(map[uint64]string)
	for i := range 5000 {
		key := "k" + strconv.Itoa(i%1000)
		res := mustHit(t, s, key, rule, 1)
		if !res.Allowed {
			t.Fatalf("hit %d denied", i)
		}
		if prev, dup := seen[res.Receipt.ID]; dup {
			t.Fatalf("receipt ID %d issued for %s and %s", res.Receipt.ID, prev, key)
		}
		seen[res.Receipt.ID] = key
	}
}

func TestBackgroundSweeper(t *testing.T) {
	s, clock := newStore(t, memstore.WithSweepInterval(time.Millisecond))
	ctx := context.Background()
	for i := range 100 {
		mustHit(t, s, "k"+strconv.Itoa(i), store.Rule{Limit: 1, Window: time.Second}, 1)
	}
	if _, err := s.Acquire(ctx, "lock", "A", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "lock", "A"); err != nil {
		t.Fatal(err)
	}
	clock.Add(25 * time.Hour) // windows emptied, fence counter expired
	deadline := time.Now().Add(10 * time.Second)
	for s.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sweeper left %d expired keys", s.Len())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConcurrentUse runs every method from many goroutines, with a busy
// sweeper, a tight key bound and Close racing the last calls (run with -race).
func TestConcurrentUse(t *testing.T) {
	s, clock := newStore(t, memstore.WithMaxKeys(256), memstore.WithSweepInterval(time.Millisecond))
	ctx := context.Background()
	rule := store.Rule{Limit: 20, Window: time.Hour}
	const workers, rounds, keys = 8, 2000, 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed = make(map[string]int)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				key := "k" + strconv.Itoa(i%keys)
				res, err := s.Hit(ctx, key, rule, 1+i%2)
				if err != nil {
					t.Errorf("Hit: %v", err)
					return
				}
				if res.Allowed {
					if i%5 == 0 {
						if err := s.Undo(ctx, key, res.Receipt); err != nil {
							t.Errorf("Undo: %v", err)
							return
						}
					} else {
						mu.Lock()
						allowed[key] += res.Receipt.Cost
						mu.Unlock()
					}
				}
				lock := "lock" + strconv.Itoa(i%keys)
				tok := "w" + strconv.Itoa(w)
				lr, err := s.Acquire(ctx, lock, tok, time.Second)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				if lr.Acquired {
					if _, err := s.TTL(ctx, lock, tok); err != nil {
						t.Errorf("TTL of a held lock: %v", err)
					}
					if err := s.Extend(ctx, lock, tok, time.Second); err != nil {
						t.Errorf("Extend of a held lock: %v", err)
					}
					if err := s.Release(ctx, lock, tok); err != nil {
						t.Errorf("Release of a held lock: %v", err)
					}
				}
				if i%100 == 0 {
					clock.Add(time.Microsecond)
				}
			}
		}()
	}
	wg.Wait()
	for key, n := range allowed {
		if n > rule.Limit {
			t.Errorf("%s: %d hits kept in one window, above the limit %d", key, n, rule.Limit)
		}
	}
	// Close while calls are still being made: each either works or reports
	// store.ErrClosed.
	var wg2 sync.WaitGroup
	for range workers {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			for i := range 200 {
				_, err := s.Hit(ctx, "x"+strconv.Itoa(i), rule, 1)
				if err != nil && !errors.Is(err, store.ErrClosed) {
					t.Errorf("Hit during Close: %v", err)
					return
				}
			}
		}()
	}
	_ = s.Close()
	wg2.Wait()
}

func TestAllocations(t *testing.T) {
	s, clock := newStore(t, memstore.WithSweepInterval(0))
	ctx := context.Background()
	rule := store.Rule{Limit: 1000, Window: time.Hour}
	for range 500 { // the log grows to fit: 1024 slots
		mustHit(t, s, "hot", rule, 1)
	}
	full := store.Rule{Limit: 1, Window: time.Hour}
	mustHit(t, s, "full", full, 1)

	tests := []struct {
		name string
		f    func()
	}{
		{"Hit allowed", func() {
			_, _ = s.Hit(ctx, "hot", rule, 1)
			clock.Add(time.Microsecond)
		}},
		{"Hit denied", func() { _, _ = s.Hit(ctx, "full", full, 1) }},
		{"Hit and Undo", func() {
			r, _ := s.Hit(ctx, "hot", rule, 1)
			_ = s.Undo(ctx, "hot", r.Receipt)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if a := testing.AllocsPerRun(100, tc.f); a != 0 {
				t.Errorf("%v allocations per call, want 0", a)
			}
		})
	}
	// The allowed path really was allowed all along: 500 + 101 + 101 undone.
	if r := mustHit(t, s, "hot", rule, 1); r.Remaining != 1000-500-101-1 {
		t.Errorf("remaining = %d, want %d", r.Remaining, 1000-500-101-1)
	}
}

// TestFenceBurstThenCounterExpiry issues a burst of acquires faster than one
// per microsecond (the clock is frozen), so the fence counter runs ahead of
// the clock; once the counter's TTL has passed, which is less than its lead,
// the next fence must still be above the last.
func TestFenceBurstThenCounterExpiry(t *testing.T) {
	const (
		fenceTTL = time.Millisecond
		burst    = 5000 // fences run 5ms ahead of the frozen clock
	)
	tests := []struct {
		name string
		// holdLast keeps the burst's last lock held, so that Release is
		// the call that finds the counter expired.
		holdLast bool
	}{
		{"Acquire finds the counter expired", false},
		{"Release finds the counter expired", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := newStore(t, memstore.WithFenceTTL(fenceTTL), memstore.WithSweepInterval(0))
			ctx := context.Background()
			var last int64
			for i := range burst {
				res, err := s.Acquire(ctx, "lock", "A", time.Hour)
				if err != nil || !res.Acquired || res.Fence <= last {
					t.Fatalf("burst acquire %d: %+v, %v; want acquired with a fence above %d", i, res, err, last)
				}
				last = res.Fence
				if i < burst-1 || !tc.holdLast {
					if err := s.Release(ctx, "lock", "A"); err != nil {
						t.Fatal(err)
					}
				}
			}
			clock.Add(fenceTTL + time.Millisecond) // counter expired, still ahead of the clock
			if tc.holdLast {
				if err := s.Release(ctx, "lock", "A"); err != nil {
					t.Fatal(err)
				}
			}
			res, err := s.Acquire(ctx, "lock", "B", time.Hour)
			if err != nil || !res.Acquired {
				t.Fatalf("Acquire after the counter expired: %+v, %v", res, err)
			}
			if res.Fence <= last {
				t.Errorf("fence after the counter expired = %d, want above the burst's last %d", res.Fence, last)
			}
		})
	}
}

// TestCounterAheadOfClockIsNotEvicted fills a one-lock store with a fence
// counter that a burst ran ahead of the clock: a new lock must not evict it
// while it is ahead, even after its TTL, and may once the clock has passed it.
func TestCounterAheadOfClockIsNotEvicted(t *testing.T) {
	const burst = 5000 // fences run 5ms ahead of the frozen clock
	s, clock := newStore(t, memstore.WithMaxKeys(1), memstore.WithMaxLocks(1), memstore.WithFenceTTL(time.Millisecond), memstore.WithSweepInterval(0))
	ctx := context.Background()
	var last int64
	for range burst {
		res, err := s.Acquire(ctx, "lock", "A", time.Hour)
		if err != nil || !res.Acquired {
			t.Fatalf("Acquire: %+v, %v", res, err)
		}
		last = res.Fence
		if err := s.Release(ctx, "lock", "A"); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(2 * time.Millisecond) // counter expired, still ahead of the clock
	if _, err := s.Acquire(ctx, "other", "A", time.Hour); !errors.Is(err, memstore.ErrFull) {
		t.Errorf("Acquire while the only lock is a counter ahead of the clock = %v, want memstore.ErrFull", err)
	}
	res, err := s.Acquire(ctx, "lock", "B", time.Hour)
	if err != nil || !res.Acquired || res.Fence <= last {
		t.Fatalf("Acquire: %+v, %v; want acquired with a fence above %d", res, err, last)
	}
	last = res.Fence
	if err := s.Release(ctx, "lock", "B"); err != nil {
		t.Fatal(err)
	}
	clock.Add(10 * time.Millisecond) // the clock passed the last fence
	if res, err := s.Acquire(ctx, "other", "A", time.Hour); err != nil || !res.Acquired {
		t.Fatalf("Acquire once the clock passed the counter: %+v, %v", res, err)
	}
	if err := s.Release(ctx, "other", "A"); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * time.Millisecond) // the clock passed other's fence too
	res, err = s.Acquire(ctx, "lock", "C", time.Hour)
	if err != nil || !res.Acquired || res.Fence <= last {
		t.Errorf("Acquire after the counter was evicted: %+v, %v; want acquired with a fence above %d", res, err, last)
	}
}

// TestCloseRacesCalls closes stores while many goroutines write to them:
// a call that started before Close must not re-insert a key into a shard
// Close has cleared, so once Close has returned and the calls have
// finished, the store holds nothing and every call reports store.ErrClosed.
func TestCloseRacesCalls(t *testing.T) {
	const workers = 16
	ctx := context.Background()
	rule := store.Rule{Limit: store.MaxLimit, Window: time.Hour}
	for round := range 50 {
		s, err := memstore.New(memstore.WithMaxKeys(100_000), memstore.WithSweepInterval(0))
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg      sync.WaitGroup
			started sync.WaitGroup
		)
		started.Add(workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				started.Done()
				for i := 0; ; i++ {
					key := strconv.Itoa(w) + ":" + strconv.Itoa(i)
					var err error
					if i%2 == 0 {
						_, err = s.Hit(ctx, key, rule, 1)
					} else {
						_, err = s.Acquire(ctx, key, "A", time.Hour)
					}
					if errors.Is(err, store.ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("call during Close: %v", err)
						return
					}
				}
			}()
		}
		started.Wait()
		_ = s.Close()
		wg.Wait()
		if n := s.Len(); n != 0 {
			t.Fatalf("round %d: Len after Close = %d, want 0: a call re-inserted a key", round, n)
		}
		if _, err := s.Hit(ctx, "after", rule, 1); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Hit after Close = %v, want store.ErrClosed", err)
		}
		if _, err := s.Acquire(ctx, "after", "A", time.Hour); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Acquire after Close = %v, want store.ErrClosed", err)
		}
	}
}

// TestEvictionKeepsUsedQuota floods a store with ten times its bound of new
// one-hit keys: eviction must pick them, not a client that used its quota,
// which would otherwise get its quota back.
func TestEvictionKeepsUsedQuota(t *testing.T) {
	const bound = 4096
	s, clock := newStore(t, memstore.WithMaxKeys(bound), memstore.WithSweepInterval(0))
	rule := store.Rule{Limit: 5, Window: time.Hour}
	strict := store.Rule{Limit: 1, Window: time.Hour}
	for range rule.Limit {
		mustHit(t, s, "victim", rule, 1)
	}
	mustHit(t, s, "strict-victim", strict, 1)
	// A heavy user of a large limit has used a larger share of it than a
	// flood client of a small one.
	big := store.Rule{Name: "big", Limit: 1000, Window: time.Hour}
	for range 9 {
		mustHit(t, s, "heavy", big, 100)
	}
	heavyHits := 0
	for i := range 10 * bound {
		mustHit(t, s, "flood-"+strconv.Itoa(i), rule, 1)
		clock.Add(time.Millisecond)
		if i%1024 == 0 || i == 10*bound-1 {
			if res := mustHit(t, s, "victim", rule, 1); res.Allowed {
				t.Fatalf("after %d new keys the victim was allowed again: %+v", i+1, res)
			}
			if res := mustHit(t, s, "strict-victim", strict, 1); res.Allowed {
				t.Fatalf("after %d new keys the limit-1 victim was allowed again: %+v", i+1, res)
			}
			heavyHits++
			if res := mustHit(t, s, "heavy", big, 1); res.Remaining != 1000-900-heavyHits {
				t.Fatalf("after %d new keys the heavy user has %d left, want %d: its window was forgotten", i+1, res.Remaining, 1000-900-heavyHits)
			}
		}
	}
}
