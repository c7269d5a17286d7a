package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// A rate limit shared by every instance of an application. miniredis stands
// in for a real server here so that the example runs anywhere.
func Example() {
	srv, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	// ContextTimeoutEnabled lets go-redis apply each call's deadline to its
	// socket, so the Store runs calls inline, without a goroutine each.
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer client.Close()

	ctx := context.Background()
	s, err := redisstore.New(client, redisstore.WithTimeout(100*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	// Optional: cache the scripts so the first calls need no EVAL fallback.
	if err := s.Preload(ctx); err != nil {
		log.Fatal(err)
	}

	rule := store.Rule{Limit: 2, Window: time.Minute}
	for i := 1; i <= 3; i++ {
		res, err := s.Hit(ctx, "client:203.0.113.7", rule, 1)
		if err != nil {
			log.Fatal(err) // a store failure: fail open or closed, never "denied"
		}
		fmt.Printf("request %d: allowed=%v remaining=%d\n", i, res.Allowed, res.Remaining)
	}
	// Output:
	// request 1: allowed=true remaining=1
	// request 2: allowed=true remaining=0
	// request 3: allowed=false remaining=0
}

// Undo gives a recorded hit back, e.g. when a request should not count
// because it succeeded.
func ExampleStore_Undo() {
	srv, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	s, err := redisstore.New(client)
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	rule := store.Rule{Limit: 1, Window: time.Minute}
	res, _ := s.Hit(ctx, "login:alice", rule, 1)
	fmt.Println("first attempt allowed:", res.Allowed)
	if err := s.Undo(ctx, "login:alice", res.Receipt); err != nil {
		log.Fatal(err)
	}
	res, _ = s.Hit(ctx, "login:alice", rule, 1)
	fmt.Println("after undo allowed:", res.Allowed)
	// Output:
	// first attempt allowed: true
	// after undo allowed: true
}

// A token-checked lock with a fencing token.
func ExampleStore_Acquire() {
	srv, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	s, err := redisstore.New(client)
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	// Tokens should come from crypto/rand; fixed here for the output.
	a, err := s.Acquire(ctx, "order:42", "token-a", 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	b, err := s.Acquire(ctx, "order:42", "token-b", 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("a acquired:", a.Acquired, "fence > 0:", a.Fence > 0)
	fmt.Println("b acquired:", b.Acquired, "holder ttl:", b.HolderTTL)

	err = s.Release(ctx, "order:42", "token-b")
	fmt.Println("b releases:", errors.Is(err, store.ErrNotHeld))
	fmt.Println("a releases:", s.Release(ctx, "order:42", "token-a"))
	// Output:
	// a acquired: true fence > 0: true
	// b acquired: false holder ttl: 5s
	// b releases: true
	// a releases: <nil>
}

// Over a Redis Cluster, pass a *redis.ClusterClient; a lock and its fencing
// counter share a hash tag, so no call ever answers CROSSSLOT.
func ExampleNew_cluster() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
		// Let go-redis apply context deadlines to its sockets too.
		ContextTimeoutEnabled: true,
	})
	defer client.Close()
	s, err := redisstore.New(client,
		redisstore.WithPrefix("shop:"),
		redisstore.WithTimeout(50*time.Millisecond),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = s
}
