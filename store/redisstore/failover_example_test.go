package redisstore_test

// The failover code of docs/failover.md and docs/locks.md: each
// "snippet:begin NAME" region below is shown by a Go block of those files,
// which internal/doccheck keeps equal to it. The examples have no Output:
// they are compiled, not run (they need a Sentinel group or a Cluster).

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/redisstore"
)

// docs/failover.md, "Sentinel".
func ExampleNew_sentinel() {
	// snippet:begin failover-sentinel
	client := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            "mymaster",
		SentinelAddrs:         []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"},
		ContextTimeoutEnabled: true, // deadlines apply on the socket
	})
	st, err := redisstore.New(client)
	if err != nil {
		log.Fatal(err)
	}
	// snippet:end
	_ = st
}

// docs/failover.md, "Cluster".
func ExampleNew_clusterFailover() {
	// snippet:begin failover-cluster
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
		ContextTimeoutEnabled: true,
	})
	st, err := redisstore.New(client) // reloads the slot map when a node fails
	if err != nil {
		log.Fatal(err)
	}
	// snippet:end
	_ = st
}

// docs/locks.md, "Locks and failover".
func ExampleWithReplicaAck() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
		ContextTimeoutEnabled: true,
	})
	ctx := context.Background()

	// snippet:begin locks-replica-ack
	st, err := redisstore.New(client, redisstore.WithReplicaAck(1, 100*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	locker, err := lockguard.New(st, lockguard.WithStoreTimeout(500*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	lock, err := locker.Obtain(ctx, "report:daily", 30*time.Second)
	switch {
	case errors.Is(err, redisstore.ErrNotReplicated):
		log.Print("no replica confirmed the lock in time; it was released, try again later")
	case err != nil:
		log.Print(err)
	default:
		defer lock.Release(ctx)
		// ... the lock is on the master and on a replica
	}
	// snippet:end
}
