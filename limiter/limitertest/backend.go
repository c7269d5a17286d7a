package limitertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
		prefix := uniquePrefix()
		t.Cleanup(func() { deleteKeys(client, prefix) })
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
			addr := os.Getenv("REDIS_ADDR")
			if addr == "" {
				t.Skip("REDIS_ADDR not set: skipping real-Redis tests")
			}
			c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
			t.Cleanup(func() { _ = c.Close() })
			if err := c.Ping(context.Background()).Err(); err != nil {
				t.Fatalf("REDIS_ADDR=%s: %v", addr, err)
			}
			return c, nil
		}),
		Redis("cluster", func(t *testing.T) (redis.UniversalClient, func()) {
			addrs := os.Getenv("REDIS_CLUSTER_ADDRS")
			if addrs == "" {
				t.Skip("REDIS_CLUSTER_ADDRS not set: skipping Redis Cluster tests")
			}
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ","), MaxRetries: -1})
			t.Cleanup(func() { _ = c.Close() })
			if err := c.ForEachMaster(context.Background(), func(ctx context.Context, n *redis.Client) error {
				return n.Ping(ctx).Err()
			}); err != nil {
				t.Fatalf("REDIS_CLUSTER_ADDRS=%s: %v", addrs, err)
			}
			return c, nil
		}),
	}
}

// OwnRedis returns a backend that starts a throwaway redis-server on a free
// loopback port for each test; stopping kills it. Its tests skip when
// redis-server is not installed.
func OwnRedis() Backend {
	return Redis("own-redis", func(t *testing.T) (redis.UniversalClient, func()) {
		addr, stop := startRedis(t)
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { _ = c.Close() })
		return c, stop
	})
}

func uniquePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "sluice-limitertest:" + hex.EncodeToString(b[:]) + ":"
}

// deleteKeys deletes every key under prefix on every master; errors (a
// stopped server, a closed client) are ignored.
func deleteKeys(client redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	switch c := client.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, del)
	case *redis.Client:
		_ = del(ctx, c)
	}
}

// startRedis starts a redis-server on a free loopback port and returns its
// address and a function that kills it (also called at cleanup).
func startRedis(t *testing.T) (addr string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed: skipping tests that start their own server")
	}
	for attempt := 0; attempt < 5; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", t.TempDir())
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		kill := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if waitReady(addr, exited) {
			t.Cleanup(kill)
			return addr, kill
		}
		kill()
	}
	t.Fatal("could not start redis-server")
	return "", nil
}

func waitReady(addr string, exited <-chan struct{}) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	for i := 0; i < 100; i++ {
		select {
		case <-exited:
			return false
		default:
		}
		if c.Ping(context.Background()).Err() == nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
