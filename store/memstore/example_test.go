package memstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// A sliding window of 2 hits a minute per client.
func Example() {
	s, err := memstore.New()
	if err != nil {
		panic(err)
	}
	defer s.Close()

	ctx := context.Background()
	rule := store.Rule{Limit: 2, Window: time.Minute}
	for i := 1; i <= 3; i++ {
		res, err := s.Hit(ctx, "client:203.0.113.7", rule, 1)
		if err != nil {
			panic(err)
		}
		fmt.Printf("request %d: allowed=%v remaining=%d\n", i, res.Allowed, res.Remaining)
	}
	// Output:
	// request 1: allowed=true remaining=1
	// request 2: allowed=true remaining=0
	// request 3: allowed=false remaining=0
}

// An injected clock makes the window's timing exact, as in tests.
func ExampleWithClock() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s, err := memstore.New(
		memstore.WithClock(func() time.Time { return now }),
		memstore.WithSweepInterval(0), // no background goroutine reads the clock
	)
	if err != nil {
		panic(err)
	}
	defer s.Close()

	ctx := context.Background()
	rule := store.Rule{Limit: 1, Window: time.Minute}
	res, _ := s.Hit(ctx, "k", rule, 1)
	fmt.Println("12:00:00 allowed:", res.Allowed, "reset after:", res.ResetAfter)

	now = now.Add(20 * time.Second)
	res, _ = s.Hit(ctx, "k", rule, 1)
	fmt.Println("12:00:20 allowed:", res.Allowed, "retry after:", res.RetryAfter)

	now = now.Add(40 * time.Second)
	res, _ = s.Hit(ctx, "k", rule, 1)
	fmt.Println("12:01:00 allowed:", res.Allowed)
	// Output:
	// 12:00:00 allowed: true reset after: 1m0s
	// 12:00:20 allowed: false retry after: 40s
	// 12:01:00 allowed: true
}

// Undo gives a hit back, for instance when a request should not count
// because it succeeded.
func ExampleStore_Undo() {
	s, err := memstore.New()
	if err != nil {
		panic(err)
	}
	defer s.Close()

	ctx := context.Background()
	rule := store.Rule{Limit: 3, Window: time.Minute}
	res, _ := s.Hit(ctx, "login:alice", rule, 1)
	fmt.Println("remaining after the attempt:", res.Remaining)

	if err := s.Undo(ctx, "login:alice", res.Receipt); err != nil {
		panic(err)
	}
	res, _ = s.Hit(ctx, "login:alice", rule, 1)
	fmt.Println("remaining after undo and another attempt:", res.Remaining)
	// Output:
	// remaining after the attempt: 2
	// remaining after undo and another attempt: 2
}

// A lock held by one token is refused to another until released.
func ExampleStore_Acquire() {
	s, err := memstore.New()
	if err != nil {
		panic(err)
	}
	defer s.Close()

	ctx := context.Background()
	first, _ := s.Acquire(ctx, "order:42", "token-a", 5*time.Second)
	second, _ := s.Acquire(ctx, "order:42", "token-b", 5*time.Second)
	fmt.Println("a acquired:", first.Acquired)
	fmt.Println("b acquired:", second.Acquired, "holder TTL at most 5s:", second.HolderTTL <= 5*time.Second)

	if err := s.Release(ctx, "order:42", "token-a"); err != nil {
		panic(err)
	}
	third, _ := s.Acquire(ctx, "order:42", "token-b", 5*time.Second)
	fmt.Println("b acquired after release:", third.Acquired, "fence increased:", third.Fence > first.Fence)
	// Output:
	// a acquired: true
	// b acquired: false holder TTL at most 5s: true
	// b acquired after release: true fence increased: true
}

// WithMaxKeys bounds memory: a flood of distinct clients makes the store
// forget the quietest ones instead of growing.
func ExampleWithMaxKeys() {
	s, err := memstore.New(memstore.WithMaxKeys(1000))
	if err != nil {
		panic(err)
	}
	defer s.Close()

	ctx := context.Background()
	rule := store.Rule{Limit: 10, Window: time.Minute}
	for i := range 100_000 {
		if _, err := s.Hit(ctx, fmt.Sprintf("client:%d", i), rule, 1); err != nil {
			panic(err)
		}
	}
	fmt.Println("keys held at most 1000:", s.Len() <= 1000)
	// Output:
	// keys held at most 1000: true
}

// HitAll stacks a burst rule and an hourly one on a route: a request is
// admitted only if both admit it, and one that either denies counts against
// neither.
func ExampleStore_HitAll() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s, err := memstore.New(memstore.WithClock(func() time.Time { return now }), memstore.WithSweepInterval(0))
	if err != nil {
		panic(err)
	}
	defer s.Close()

	ctx := context.Background()
	burst := store.Rule{Name: "burst", Limit: 2, Window: 10 * time.Second}
	hourly := store.Rule{Name: "hourly", Limit: 5, Window: time.Hour, Algorithm: store.SlidingCounter}
	stack := []store.Hit{
		{Key: "client:203.0.113.7", Rule: burst, Cost: 1},
		{Key: "client:203.0.113.7", Rule: hourly, Cost: 1},
	}
	out := make([]store.Result, len(stack))
	for i := 1; i <= 3; i++ {
		if err := s.HitAll(ctx, stack, out); err != nil {
			panic(err)
		}
		fmt.Printf("request %d: allowed=%v burst remaining=%d hourly remaining=%d retry after=%v\n",
			i, out[0].Allowed, out[0].Remaining, out[1].Remaining, out[0].RetryAfter)
	}
	// Output:
	// request 1: allowed=true burst remaining=1 hourly remaining=4 retry after=0s
	// request 2: allowed=true burst remaining=0 hourly remaining=3 retry after=0s
	// request 3: allowed=false burst remaining=0 hourly remaining=3 retry after=10s
}

// GCRA spaces requests evenly: 10 a second is one every 100ms, with a burst
// of 3 taken at once.
func Example_gcra() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s, err := memstore.New(memstore.WithClock(func() time.Time { return now }), memstore.WithSweepInterval(0))
	if err != nil {
		panic(err)
	}
	defer s.Close()

	ctx := context.Background()
	rule := store.Rule{Limit: 10, Window: time.Second, Algorithm: store.GCRA, Burst: 3}
	for i := 1; i <= 4; i++ {
		res, _ := s.Hit(ctx, "client", rule, 1)
		fmt.Printf("request %d: allowed=%v remaining=%d retry after=%v\n", i, res.Allowed, res.Remaining, res.RetryAfter)
	}
	now = now.Add(100 * time.Millisecond)
	res, _ := s.Hit(ctx, "client", rule, 1)
	fmt.Println("100ms later: allowed:", res.Allowed)
	// Output:
	// request 1: allowed=true remaining=2 retry after=0s
	// request 2: allowed=true remaining=1 retry after=0s
	// request 3: allowed=true remaining=0 retry after=0s
	// request 4: allowed=false remaining=0 retry after=100ms
	// 100ms later: allowed: true
}
