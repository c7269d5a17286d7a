package redisstore_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/store/redisstore"
)

// target is a Redis deployment the Redis-specific tests run against.
type target struct {
	name    string
	client  redis.UniversalClient
	mini    *miniredis.Miniredis // set for miniredis only
	cluster bool
	// nodes calls fn on every server that holds keys (every master of a
	// Cluster, else the one server).
	nodes func(ctx context.Context, fn func(ctx context.Context, c *redis.Client) error) error
}

// elapse makes server-side TTLs run down by d.
func (tg target) elapse(d time.Duration) {
	if tg.mini != nil {
		tg.mini.FastForward(d)
		return
	}
	time.Sleep(d)
}

// targets returns miniredis plus the real server and Cluster when their
// environment variables are set; the real ones are reported as skipped
// subtests when not.
func forEachTarget(t *testing.T, fn func(t *testing.T, tg target)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		m, c := newMiniredis(t)
		fn(t, target{name: "miniredis", client: c, mini: m, nodes: single(c)})
	})
	t.Run("redis", func(t *testing.T) {
		c := realClient(t)
		fn(t, target{name: "redis", client: c, nodes: single(c)})
	})
	t.Run("cluster", func(t *testing.T) {
		c := clusterClient(t)
		fn(t, target{name: "cluster", client: c, cluster: true, nodes: c.ForEachMaster})
	})
}

func single(c *redis.Client) func(ctx context.Context, fn func(ctx context.Context, c *redis.Client) error) error {
	return func(ctx context.Context, fn func(ctx context.Context, c *redis.Client) error) error {
		return fn(ctx, c)
	}
}

// newMiniredis starts a fresh miniredis and a client for it, both stopped by
// t.Cleanup.
func newMiniredis(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return m, c
}

// realClient returns a client for the server at REDIS_ADDR or skips t.
func realClient(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		t.Skip("REDIS_ADDR not set: skipping real-Redis tests")
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Ping(context.Background()).Err(), "REDIS_ADDR=%s", addr)
	return c
}

// clusterClient returns a client for the Cluster at REDIS_CLUSTER_ADDRS or
// skips t.
func clusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	addrs := os.Getenv("REDIS_CLUSTER_ADDRS")
	if addrs == "" {
		t.Skip("REDIS_CLUSTER_ADDRS not set: skipping Redis Cluster tests")
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.ForEachMaster(context.Background(), func(ctx context.Context, n *redis.Client) error {
		return n.Ping(ctx).Err()
	}), "REDIS_CLUSTER_ADDRS=%s", addrs)
	return c
}

// testPrefix returns a key prefix unique to this call and registers the
// deletion of every key under it on every node of tg.
func testPrefix(t testing.TB, nodes func(ctx context.Context, fn func(ctx context.Context, c *redis.Client) error) error) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "sluicetest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := nodes(ctx, func(ctx context.Context, c *redis.Client) error {
			keys, err := scanKeys(ctx, c, prefix)
			if err != nil || len(keys) == 0 {
				return err
			}
			// One DEL per key: keys of a Cluster node live in many slots.
			_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.Del(ctx, k)
				}
				return nil
			})
			return err
		})
		if err != nil {
			t.Errorf("cleanup of %s*: %v", prefix, err)
		}
	})
	return prefix
}

// scanKeys lists the keys under prefix on one server with SCAN.
func scanKeys(ctx context.Context, c *redis.Client, prefix string) ([]string, error) {
	var keys []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// allKeys lists the keys under prefix on every node of tg.
func allKeys(t *testing.T, tg target, prefix string) []string {
	t.Helper()
	var keys []string
	ch := make(chan []string, 16)
	err := tg.nodes(context.Background(), func(ctx context.Context, c *redis.Client) error {
		k, err := scanKeys(ctx, c, prefix)
		ch <- k
		return err
	})
	require.NoError(t, err)
	close(ch)
	for k := range ch {
		keys = append(keys, k...)
	}
	return keys
}

// newStore returns a Store with a fresh test prefix on tg.
func newStore(t *testing.T, tg target, opts ...redisstore.Option) (*redisstore.Store, string) {
	t.Helper()
	prefix := testPrefix(t, tg.nodes)
	s, err := redisstore.New(tg.client, append([]redisstore.Option{redisstore.WithPrefix(prefix)}, opts...)...)
	require.NoError(t, err)
	return s, prefix
}

// keyHash is the documented hash of a caller's key.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

func windowKey(prefix, key string) string { return prefix + "w:{" + keyHash(key) + "}" }
func lockKey(prefix, key string) string   { return prefix + "l:{" + keyHash(key) + "}" }
func fenceKey(prefix, key string) string  { return lockKey(prefix, key) + ":f" }

// ownRedis is a redis-server started by a test, stopped by t.Cleanup.
type ownRedis struct {
	addr string
	cmd  *exec.Cmd
}

// startRedis starts a throwaway redis-server on a free loopback port, or skips
// t when redis-server is not installed.
func startRedis(t testing.TB) *ownRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed: skipping tests that start their own server")
	}
	for attempt := 0; attempt < 5; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", t.TempDir())
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		r := &ownRedis{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd}
		t.Cleanup(func() { r.stop(); <-exited })
		c := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1})
		ready := false
		for i := 0; i < 100 && !ready; i++ {
			select {
			case <-exited:
				i = 100
			default:
				ready = c.Ping(context.Background()).Err() == nil
				if !ready {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
		_ = c.Close()
		if ready {
			return r
		}
		r.stop()
	}
	t.Fatal("could not start redis-server")
	return nil
}

// stop kills the server (idempotent).
func (r *ownRedis) stop() {
	_ = r.cmd.Process.Kill()
}

// commandCalls reads the calls= counter of cmdstat_<name> from INFO
// commandstats (0 if the command was never called).
func commandCalls(t *testing.T, c *redis.Client, name string) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+name+":")
		if !ok {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				require.NoError(t, err)
				return n
			}
		}
		t.Fatalf("no calls= in %q", line)
	}
	return 0
}

// must(f())(t) returns f's value and fails t if f returned an error.
func must[T any](v T, err error) func(t testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		require.NoError(t, err)
		return v
	}
}
