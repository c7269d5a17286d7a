package memstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// The operators' calls in memory, beyond the conformance suite: the keys
// they hold, Close, and allocations.

// TestPeekAddsNoKeyAndResetDropsOne checks that Peek holds nothing for a key
// it finds without state, and that Reset gives the key's memory back.
func TestPeekAddsNoKeyAndResetDropsOne(t *testing.T) {
	s, _ := newStore(t, memstore.WithSweepInterval(0))
	ctx := context.Background()
	for _, alg := range []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA} {
		rule := store.Rule{Name: "ops", Limit: 5, Window: time.Minute, Algorithm: alg}
		for range 3 {
			if _, err := s.Peek(ctx, "fresh", rule); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.Len(); n != 0 {
			t.Fatalf("%v: Len after Peeks of a fresh key = %d, want 0", alg, n)
		}
		mustHit(t, s, "used", rule, 2)
		if n := s.Len(); n != 1 {
			t.Fatalf("%v: Len after a Hit = %d, want 1", alg, n)
		}
		if err := s.Reset(ctx, "used", rule); err != nil {
			t.Fatal(err)
		}
		if n := s.Len(); n != 0 {
			t.Errorf("%v: Len after Reset = %d, want 0", alg, n)
		}
	}
}

// TestInspectAfterTheLockIsDropped checks that Inspect reports the fence of
// a force-released lock while its entry is kept, no fence once the entry has
// been dropped (under pressure, its fence TTL passed), and that fences still
// increase then.
func TestInspectAfterTheLockIsDropped(t *testing.T) {
	// One shard holding one lock.
	s, clock := newStore(t, memstore.WithMaxLocks(1), memstore.WithMaxKeys(64),
		memstore.WithFenceTTL(time.Second), memstore.WithSweepInterval(0))
	ctx := context.Background()
	first, err := s.Acquire(ctx, "lock", "A", 100*time.Millisecond)
	if err != nil || !first.Acquired {
		t.Fatalf("Acquire: %+v, %v", first, err)
	}
	if err := s.ForceRelease(ctx, "lock"); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Inspect(ctx, "lock"); info != (store.LockInfo{Fence: first.Fence}) {
		t.Errorf("Inspect after ForceRelease = %+v, want not held with fence %d", info, first.Fence)
	}
	clock.Add(2 * time.Second)
	if r, err := s.Acquire(ctx, "other", "B", time.Second); err != nil || !r.Acquired {
		t.Fatalf("Acquire of another key: %+v, %v", r, err)
	}
	if info, _ := s.Inspect(ctx, "lock"); info != (store.LockInfo{}) {
		t.Errorf("Inspect after the entry was dropped = %+v, want the zero LockInfo", info)
	}
	if err := s.Release(ctx, "other", "B"); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Millisecond)
	if r, err := s.Acquire(ctx, "lock", "C", time.Second); err != nil || !r.Acquired || r.Fence <= first.Fence {
		t.Errorf("Acquire after the entry was dropped = %+v, %v; want a fence above %d", r, err, first.Fence)
	}
}

func TestOpsAfterClose(t *testing.T) {
	s, err := memstore.New()
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	ctx := context.Background()
	rule := store.Rule{Limit: 5, Window: time.Minute}
	calls := map[string]func() error{
		"Peek":         func() error { _, err := s.Peek(ctx, "k", rule); return err },
		"Reset":        func() error { return s.Reset(ctx, "k", rule) },
		"Inspect":      func() error { _, err := s.Inspect(ctx, "lock"); return err },
		"ForceRelease": func() error { return s.ForceRelease(ctx, "lock") },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close = %v, want store.ErrClosed", name, err)
		}
	}
}

func TestOpsAllocations(t *testing.T) {
	s, _ := newStore(t, memstore.WithSweepInterval(0))
	ctx := context.Background()
	rules := []store.Rule{
		{Limit: 100, Window: time.Hour},
		{Limit: 100, Window: time.Hour, Algorithm: store.SlidingCounter},
		{Limit: 100, Window: time.Hour, Algorithm: store.GCRA},
	}
	for _, rule := range rules {
		mustHit(t, s, "k", rule, 50)
		if a := testing.AllocsPerRun(100, func() { _, _ = s.Peek(ctx, "k", rule) }); a != 0 {
			t.Errorf("Peek under %v: %v allocations per call, want 0", rule.Algorithm, a)
		}
	}
	if _, err := s.Acquire(ctx, "lock", "A", time.Minute); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = s.Inspect(ctx, "lock") }); a != 0 {
		t.Errorf("Inspect: %v allocations per call, want 0", a)
	}
}
