package guardtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// Backend is a lock store the suite runs against.
type Backend struct {
	// Name names the backend's subtests.
	Name string
	// New returns a fresh, empty store for one test, registering its own
	// cleanup with t.Cleanup, or skips t when the backend is not available.
	New func(t *testing.T) Instance
}

// Instance is one store made by Backend.New, with the faults the suite
// injects into it.
type Instance struct {
	// Store is the store under test.
	Store store.LockStore
	// Delete removes key's lock behind its holder's back, as an operator, an
	// eviction or a failover would; token is the holder's token, for stores
	// that need it. It must not be nil.
	Delete func(ctx context.Context, key, token string) error
	// Stop makes every later call on Store fail, by stopping its server. Nil
	// when the backend cannot be stopped; the suite then skips the tests that
	// need it.
	Stop func()
}

// Memory returns the memstore backend. Deleting a lock releases it with its
// holder's token; stopping closes the store.
func Memory() Backend {
	return Backend{Name: "memstore", New: func(t *testing.T) Instance {
		s, err := memstore.New()
		if err != nil {
			t.Fatalf("memstore.New: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return Instance{
			Store:  s,
			Delete: func(ctx context.Context, key, token string) error { return s.Release(ctx, key, token) },
			Stop:   func() { _ = s.Close() },
		}
	}}
}

// Redis returns a backend that runs redisstore over the client connect
// returns, under a key prefix unique to each test whose keys are deleted at
// cleanup. Deleting a lock sends DEL for its Redis key. stop, if not nil,
// stops the server for good. connect may call t.Skip.
func Redis(name string, connect func(t *testing.T) (client redis.UniversalClient, stop func())) Backend {
	return Backend{Name: name, New: func(t *testing.T) Instance {
		client, stop := connect(t)
		prefix := redistest.UniquePrefix("sluice-guardtest")
		// Errors are ignored: a stopped server cannot delete anything.
		t.Cleanup(func() { _ = redistest.DeleteKeys(client, prefix+"*") })
		s, err := redisstore.New(client, redisstore.WithPrefix(prefix), redisstore.WithFenceTTL(time.Hour))
		if err != nil {
			t.Fatalf("redisstore.New: %v", err)
		}
		return Instance{
			Store: s,
			Delete: func(ctx context.Context, key, _ string) error {
				return client.Del(ctx, LockKey(prefix, key)).Err()
			},
			Stop: stop,
		}
	}}
}

// EmulatedServer is an in-process Redis emulation, such as a
// *miniredis.Miniredis, whose key TTLs run down only when told to.
type EmulatedServer interface {
	// Addr returns the server's host:port.
	Addr() string
	// FastForward makes the server's TTLs run down by d.
	FastForward(d time.Duration)
	// Close stops the server.
	Close()
}

// Emulated returns a Redis backend on the emulated server start returns (one
// per test, stopped by the test's cleanup). A goroutine fast-forwards the
// server's TTLs with the real time, so that locks expire as on a real Redis
// and the keep-alive tests mean something. Stopping closes the server.
func Emulated(name string, start func(t *testing.T) EmulatedServer) Backend {
	return Redis(name, func(t *testing.T) (redis.UniversalClient, func()) {
		srv := start(t)
		quit, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			last := time.Now()
			for {
				select {
				case <-quit:
					return
				case now := <-tick.C:
					srv.FastForward(now.Sub(last))
					last = now
				}
			}
		}()
		t.Cleanup(func() { close(quit); <-done })
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
		t.Cleanup(func() { _ = c.Close() })
		return c, srv.Close
	})
}

// LockKey returns the Redis key under which redisstore with the given prefix
// keeps key's lock (the layout documented in package redisstore).
func LockKey(prefix, key string) string {
	sum := sha256.Sum256([]byte(key))
	return prefix + "l:{" + hex.EncodeToString(sum[:16]) + "}"
}

// Env returns the backends found in the environment: the redis-server at
// REDIS_ADDR and the Redis Cluster at REDIS_CLUSTER_ADDRS (comma-separated
// seeds). Their tests skip when the variable is unset.
func Env() []Backend {
	return []Backend{
		Redis("redis", func(t *testing.T) (redis.UniversalClient, func()) {
			return redistest.Client(t), nil
		}),
		Redis("cluster", func(t *testing.T) (redis.UniversalClient, func()) {
			return redistest.ClusterClient(t), nil
		}),
	}
}

// OwnRedis returns a backend that starts a throwaway redis-server on a free
// loopback port for each test and can stop it. Its tests skip when
// redis-server is not installed.
func OwnRedis() Backend {
	return Redis("own-redis", func(t *testing.T) (redis.UniversalClient, func()) {
		addr, stop := redistest.StartServer(t)
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		t.Cleanup(func() { _ = c.Close() })
		return c, stop
	})
}
