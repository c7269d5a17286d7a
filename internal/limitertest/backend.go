package limitertest

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// Backend is a window store the suite runs against.
type Backend struct {
	// Name names the backend's subtests.
	Name string
	// New returns a fresh, empty store for one test whose sliding-window
	// time is read from now, registering its own cleanup with t.Cleanup, or
	// skips t when the backend is not available.
	New func(t *testing.T, now func() time.Time) Instance
}

// Instance is one store made by Backend.New.
type Instance struct {
	// Store is the store under test.
	Store store.WindowStore
	// Stop makes every later call on Store fail for real: it stops the
	// server, or closes an in-process store. It must not be nil.
	Stop func()
}

// Memory returns the memstore backend; stopping closes the store.
func Memory() Backend {
	return Backend{Name: "memstore", New: func(t *testing.T, now func() time.Time) Instance {
		s, err := memstore.New(memstore.WithClock(now))
		if err != nil {
			t.Fatalf("memstore.New: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return Instance{Store: s, Stop: func() { _ = s.Close() }}
	}}
}

// Redis returns a backend that runs redisstore over the client connect
// returns, with the suite's clock (redisstore.WithClock) and under a key
// prefix unique to each test whose keys are deleted at cleanup. stop stops
// the server for good; connect may call t.Skip.
func Redis(name string, connect func(t *testing.T) (client redis.UniversalClient, stop func())) Backend {
	return Backend{Name: name, New: func(t *testing.T, now func() time.Time) Instance {
		client, stop := connect(t)
		prefix := redistest.UniquePrefix("sluice-limitertest")
		// Errors are ignored: a stopped backend cannot delete anything.
		t.Cleanup(func() { _ = redistest.DeleteKeys(client, prefix+"*") })
		s, err := redisstore.New(client, redisstore.WithPrefix(prefix), redisstore.WithClock(now))
		if err != nil {
			t.Fatalf("redisstore.New: %v", err)
		}
		if stop == nil {
			stop = func() { _ = client.Close() }
		}
		return Instance{Store: s, Stop: stop}
	}}
}

// EmulatedServer is an in-process Redis emulation such as a
// *miniredis.Miniredis.
type EmulatedServer interface {
	// Addr returns the server's host:port.
	Addr() string
	// Close stops the server.
	Close()
}

// Emulated returns a Redis backend on the emulated server start returns (one
// per test, stopped by the test's cleanup); stopping closes the server. The
// suite keeps miniredis out of its own imports: the caller's test passes it,
// for instance
//
//	limitertest.Emulated("miniredis", func(t *testing.T) limitertest.EmulatedServer { return miniredis.RunT(t) })
func Emulated(name string, start func(t *testing.T) EmulatedServer) Backend {
	return Redis(name, func(t *testing.T) (redis.UniversalClient, func()) {
		srv := start(t)
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { _ = c.Close() })
		return c, srv.Close
	})
}

// Env returns the backends found in the environment: the redis-server at
// REDIS_ADDR and the Redis Cluster at REDIS_CLUSTER_ADDRS (comma-separated
// seeds). Their tests skip when the variable is unset. Stopping them closes
// the test's client, never the shared server.
func Env() []Backend {
	return []Backend{
		Redis("redis", func(t *testing.T) (redis.UniversalClient, func()) {
			return redistest.Client(t, func(o *redis.Options) { o.MaxRetries = -1 }), nil
		}),
		Redis("cluster", func(t *testing.T) (redis.UniversalClient, func()) {
			return redistest.ClusterClient(t, func(o *redis.ClusterOptions) { o.MaxRetries = -1 }), nil
		}),
	}
}

// OwnRedis returns a backend that starts a throwaway redis-server on a free
// loopback port for each test; stopping kills it. Its tests skip when
// redis-server is not installed.
func OwnRedis() Backend {
	return Redis("own-redis", func(t *testing.T) (redis.UniversalClient, func()) {
		addr, stop := redistest.StartServer(t)
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { _ = c.Close() })
		return c, stop
	})
}
