package memstore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

func mustHitAll(t testing.TB, s *memstore.Store, hits ...store.Hit) []store.Result {
	t.Helper()
	out := make([]store.Result, len(hits))
	if err := s.HitAll(context.Background(), hits, out); err != nil {
		t.Fatalf("HitAll: %v", err)
	}
	return out
}

// TestHitAllAtomicUnderConcurrency runs a stack of 5 per minute (log) and 20
// per hour (counter) on one key from 200 goroutines at once: 5 stacks are
// admitted, and the hour rule counted exactly those 5.
func TestHitAllAtomicUnderConcurrency(t *testing.T) {
	s, _ := newStore(t)
	minute := store.Rule{Name: "minute", Limit: 5, Window: time.Minute}
	hour := store.Rule{Name: "hour", Limit: 20, Window: time.Hour, Algorithm: store.SlidingCounter}
	stack := []store.Hit{{Key: "client", Rule: minute, Cost: 1}, {Key: "client", Rule: hour, Cost: 1}}
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		admitted atomic.Int64
	)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out := make([]store.Result, 2)
			if err := s.HitAll(context.Background(), stack, out); err != nil {
				t.Errorf("HitAll: %v", err)
				return
			}
			if out[0].Allowed != out[1].Allowed {
				t.Errorf("parts decided apart: %+v", out)
			}
			if out[0].Allowed {
				admitted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := admitted.Load(); n != 5 {
		t.Errorf("%d stacks admitted, want 5", n)
	}
	out := mustHitAll(t, s, stack...)
	expect(t, "minute rule of one more stack", out[0], want{false, 0, time.Minute, time.Minute})
	// The hour rule fits and is reported as it stands: 20 - 5. Its count
	// of 5 in the current hour weighs 5 until the next hour starts, and
	// falls to 4 an hour and 12 minutes (5*(60m-e)/60m = 4) from now.
	expect(t, "hour rule of one more stack", out[1], want{false, 15, 0, 72 * time.Minute})
}

// TestHitAllNoDeadlock runs stacks over the same keys in opposite orders
// from many goroutines: the shards are always locked in one order.
func TestHitAllNoDeadlock(t *testing.T) {
	s, clock := newStore(t)
	rule := store.Rule{Limit: store.MaxCounterLimit, Window: time.Hour, Algorithm: store.GCRA}
	keys := make([]string, 8)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 0))
			out := make([]store.Result, 4)
			hits := make([]store.Hit, 4)
			for range 2000 {
				p := r.Perm(len(keys))
				for i := range hits {
					hits[i] = store.Hit{Key: keys[p[i]], Rule: rule, Cost: 1}
				}
				if err := s.HitAll(context.Background(), hits, out); err != nil {
					t.Errorf("HitAll: %v", err)
					return
				}
				if g == 0 {
					clock.Add(time.Microsecond)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("stacks still running after a minute: deadlock")
	}
}

// TestHitAllDenied checks a denied stack's Results and that it records
// nothing, adding no state for the parts that had none.
func TestHitAllDenied(t *testing.T) {
	s, clock := newStore(t)
	t0 := clock.Now()
	burst := store.Rule{Name: "burst", Limit: 2, Window: time.Minute}
	daily := store.Rule{Name: "daily", Limit: 10, Window: 24 * time.Hour, Algorithm: store.SlidingCounter}
	bucket := store.Rule{Name: "bucket", Limit: 10, Window: time.Second, Algorithm: store.GCRA, Burst: 3}
	mustHit(t, s, "k", burst, 2)
	clock.Set(t0.Add(10 * time.Second))
	stack := []store.Hit{{Key: "k", Rule: burst, Cost: 1}, {Key: "k", Rule: daily, Cost: 1}, {Key: "k", Rule: bucket, Cost: 2}}
	out := mustHitAll(t, s, stack...)
	// The burst rule's hits leave 50s from now; the others are untouched.
	expect(t, "burst", out[0], want{false, 0, 50 * time.Second, 50 * time.Second})
	expect(t, "daily", out[1], want{false, 10, 0, 0})
	expect(t, "bucket", out[2], want{false, 3, 0, 0})
	for i, lim := range []int{2, 10, 10} {
		if out[i].Limit != lim {
			t.Errorf("part %d: Limit %d, want %d", i, out[i].Limit, lim)
		}
	}
	if n := s.Len(); n != 1 {
		t.Errorf("Len after a denied stack = %d, want 1 (no state added)", n)
	}
	// Nothing was recorded: each rule still has its whole quota. The day
	// began 12h10s ago (days are fixed windows from midnight UTC); its 10
	// hits weigh 9 once 2.4h of the next day have passed.
	expect(t, "daily after", mustHit(t, s, "k", daily, 10), want{true, 0, 0, 12*time.Hour + 24*time.Hour/10 - 10*time.Second})
	expect(t, "bucket after", mustHit(t, s, "k", bucket, 3), want{true, 0, 0, 300 * time.Millisecond})
}

// TestHitAllAllowedThenUndo admits a stack and undoes each part by its
// receipt, as it would a Hit's.
func TestHitAllAllowedThenUndo(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	rules := []store.Rule{
		{Name: "log", Limit: 3, Window: time.Minute},
		{Name: "counter", Limit: 3, Window: time.Minute, Algorithm: store.SlidingCounter},
		{Name: "gcra", Limit: 3, Window: time.Minute, Algorithm: store.GCRA},
	}
	stack := make([]store.Hit, len(rules))
	for i, r := range rules {
		stack[i] = store.Hit{Key: "k", Rule: r, Cost: 2}
	}
	out := mustHitAll(t, s, stack...)
	wantResets := []time.Duration{time.Minute, 2*time.Minute - 30*time.Second, 40 * time.Second}
	for i := range out {
		expect(t, rules[i].Name, out[i], want{true, 1, 0, wantResets[i]})
		if out[i].Receipt.Rule != rules[i] || out[i].Receipt.Cost != 2 {
			t.Errorf("%s: receipt %+v", rules[i].Name, out[i].Receipt)
		}
	}
	// A second stack of cost 2 no longer fits any part.
	again := mustHitAll(t, s, stack...)
	for i := range again {
		if again[i].Allowed || again[i].RetryAfter == 0 || again[i].Remaining != 1 {
			t.Errorf("%s in a second stack: %+v, want denied with a retry time and 1 remaining", rules[i].Name, again[i])
		}
	}
	for i := range out {
		if err := s.Undo(ctx, "k", out[i].Receipt); err != nil {
			t.Fatalf("Undo %s: %v", rules[i].Name, err)
		}
	}
	for _, r := range rules {
		if res := mustHit(t, s, "k", r, 3); !res.Allowed {
			t.Errorf("%s after undoing the stack: %+v, want its whole limit back", r.Name, res)
		}
	}
}

// TestHitAllOnePartIsHit drives two stores with the same traffic, one by
// Hit and one by one-part stacks: their Results agree at every step.
func TestHitAllOnePartIsHit(t *testing.T) {
	rules := []store.Rule{
		{Limit: 5, Window: time.Second},
		{Limit: 5, Window: time.Second, Algorithm: store.SlidingCounter},
		{Limit: 5, Window: time.Second, Algorithm: store.GCRA, Burst: 2},
	}
	for _, rule := range rules {
		t.Run(rule.Algorithm.String(), func(t *testing.T) {
			a, clockA := newStore(t)
			b, clockB := newStore(t)
			r := rand.New(rand.NewPCG(7, uint64(rule.Algorithm)))
			allowed, denied := 0, 0
			for step := range 2000 {
				d := time.Duration(r.Int64N(int64(150 * time.Millisecond)))
				clockA.Add(d)
				clockB.Add(d)
				cost := 1 + r.IntN(rule.Capacity())
				got := mustHitAll(t, b, store.Hit{Key: "k", Rule: rule, Cost: cost})[0]
				exp := mustHit(t, a, "k", rule, cost)
				if rule.Algorithm == store.SlidingLog && exp.Allowed && got.Allowed {
					// Receipt IDs of the log are the store's own.
					exp.Receipt.ID, got.Receipt.ID = 0, 0
				}
				if got != exp {
					t.Fatalf("step %d (cost %d): HitAll %+v, Hit %+v", step, cost, got, exp)
				}
				if exp.Allowed {
					allowed++
				} else {
					denied++
				}
			}
			if allowed < 100 || denied < 100 {
				t.Errorf("%d allowed and %d denied: traffic too one-sided", allowed, denied)
			}
		})
	}
}

// TestHitAllInvalid rejects bad stacks with store.ErrInvalidArgument and
// records nothing of them.
func TestHitAllInvalid(t *testing.T) {
	good := store.Hit{Key: "k", Rule: store.Rule{Name: "good", Limit: 1, Window: time.Minute}, Cost: 1}
	many := make([]store.Hit, 17)
	for i := range many {
		many[i] = store.Hit{Key: "k" + strconv.Itoa(i), Rule: good.Rule, Cost: 1}
	}
	tests := []struct {
		name string
		hits []store.Hit
		out  int
	}{
		{"Empty", nil, 0},
		{"MoreThan16", many, 17},
		{"OutTooShort", []store.Hit{good, {Key: "other", Rule: good.Rule, Cost: 1}}, 1},
		{"OutTooLong", []store.Hit{good}, 2},
		{"EmptyKey", []store.Hit{good, {Rule: good.Rule, Cost: 1}}, 2},
		{"ZeroCost", []store.Hit{good, {Key: "x", Rule: good.Rule}}, 2},
		{"BadRule", []store.Hit{good, {Key: "x", Rule: store.Rule{Limit: 1}, Cost: 1}}, 2},
		{"BurstOnCounter", []store.Hit{good, {Key: "x", Rule: store.Rule{Limit: 1, Window: time.Second, Algorithm: store.SlidingCounter, Burst: 2}, Cost: 1}}, 2},
		{"Repeated", []store.Hit{good, {Key: "x", Rule: good.Rule, Cost: 1}, good}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			out := make([]store.Result, tc.out)
			if err := s.HitAll(context.Background(), tc.hits, out); !errors.Is(err, store.ErrInvalidArgument) {
				t.Errorf("HitAll = %v, want store.ErrInvalidArgument", err)
			}
			if n := s.Len(); n != 0 {
				t.Errorf("Len after a rejected stack = %d, want 0", n)
			}
		})
	}
	t.Run("SameKeyOtherAlgorithm", func(t *testing.T) {
		// The same key and name under two algorithms are two states.
		s, _ := newStore(t)
		other := good
		other.Rule.Algorithm = store.GCRA
		out := mustHitAll(t, s, good, other)
		if !out[0].Allowed || !out[1].Allowed {
			t.Errorf("stack of one key and name under two algorithms: %+v", out)
		}
	})
}

// TestHitAllClosedAndCancelled checks the errors of a closed store and of a
// done context.
func TestHitAllClosedAndCancelled(t *testing.T) {
	s, _ := newStore(t)
	hits := []store.Hit{{Key: "k", Rule: store.Rule{Limit: 1, Window: time.Minute}, Cost: 1}}
	out := make([]store.Result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.HitAll(ctx, hits, out); !errors.Is(err, context.Canceled) {
		t.Errorf("HitAll with a cancelled context = %v, want context.Canceled", err)
	}
	_ = s.Close()
	if err := s.HitAll(context.Background(), hits, out); !errors.Is(err, store.ErrClosed) {
		t.Errorf("HitAll after Close = %v, want store.ErrClosed", err)
	}
}

// TestHitAllKeepsItsParts records a stack larger than the store's bound: no
// part evicts another, so all of them count.
func TestHitAllKeepsItsParts(t *testing.T) {
	s, _ := newStore(t, memstore.WithMaxKeys(1), memstore.WithSweepInterval(0))
	stack := []store.Hit{
		{Key: "k", Rule: store.Rule{Name: "a", Limit: 1, Window: time.Hour}, Cost: 1},
		{Key: "k", Rule: store.Rule{Name: "b", Limit: 1, Window: time.Hour, Algorithm: store.SlidingCounter}, Cost: 1},
		{Key: "k", Rule: store.Rule{Name: "c", Limit: 1, Window: time.Hour, Algorithm: store.GCRA}, Cost: 1},
	}
	for i, res := range mustHitAll(t, s, stack...) {
		if !res.Allowed {
			t.Fatalf("part %d of the first stack denied: %+v", i, res)
		}
	}
	for i, res := range mustHitAll(t, s, stack...) {
		if res.Allowed || res.RetryAfter == 0 {
			t.Errorf("part %d of the second stack: %+v, want denied: its first hit was kept", i, res)
		}
	}
	// A new key still finds room, by eviction.
	mustHit(t, s, "other", store.Rule{Limit: 1, Window: time.Hour}, 1)
	if n := s.Len(); n > 3 {
		t.Errorf("Len = %d, want at most the stack's 3", n)
	}
}
