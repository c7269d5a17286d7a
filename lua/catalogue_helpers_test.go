package lua_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// catTarget is one Redis a catalogue test runs against, with keys unique to
// the test.
type catTarget struct {
	name    string
	client  redis.UniversalClient
	mr      *miniredis.Miniredis // nil for a real server
	token   string
	cluster bool
}

// key returns a key unique to the test, tagged so that every key of the test
// shares one Cluster slot.
func (tg *catTarget) key(name string) string {
	return "sluicetest:{" + tg.token + "}:" + name
}

// untagged returns a key unique to the test without a hash tag: keys from it
// land in different Cluster slots.
func (tg *catTarget) untagged(name string) string {
	return "sluicetest:" + tg.token + ":" + name
}

// catEach runs fn against miniredis, the server at REDIS_ADDR and the cluster
// at REDIS_CLUSTER_ADDRS, as subtests; the real ones skip when unset. Keys
// containing the target's token are deleted when the subtest ends.
func catEach(t *testing.T, fn func(t *testing.T, tg *catTarget)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		fn(t, &catTarget{name: "miniredis", client: c, mr: mr, token: catToken(t)})
	})
	t.Run("redis", func(t *testing.T) {
		c := catRedis(t)
		tg := &catTarget{name: "redis", client: c, token: catToken(t)}
		catCleanupKeys(t, tg)
		fn(t, tg)
	})
	t.Run("cluster", func(t *testing.T) {
		c := catCluster(t)
		tg := &catTarget{name: "cluster", client: c, token: catToken(t), cluster: true}
		catCleanupKeys(t, tg)
		fn(t, tg)
	})
}

// catRedis returns a client of REDIS_ADDR or skips the test.
func catRedis(t *testing.T) *redis.Client {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		t.Skip("REDIS_ADDR not set: skipping real-Redis tests")
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Ping(context.Background()).Err())
	return c
}

// catCluster returns a client of REDIS_CLUSTER_ADDRS or skips the test.
func catCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	addrs := os.Getenv("REDIS_CLUSTER_ADDRS")
	if addrs == "" {
		t.Skip("REDIS_CLUSTER_ADDRS not set: skipping Redis Cluster tests")
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		return m.Ping(ctx).Err()
	}))
	return c
}

func catToken(t *testing.T) string {
	t.Helper()
	var b [8]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}

// catNodes runs fn on every node holding data: each master of a cluster, or
// the one server.
func catNodes(ctx context.Context, c redis.UniversalClient, fn func(ctx context.Context, node *redis.Client) error) error {
	switch cl := c.(type) {
	case *redis.ClusterClient:
		return cl.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, cl)
	}
	panic("unexpected client type")
}

// catCleanupKeys deletes, when the test ends, every key containing the
// target's token.
func catCleanupKeys(t *testing.T, tg *catTarget) {
	t.Cleanup(func() {
		ctx := context.Background()
		err := catNodes(ctx, tg.client, func(ctx context.Context, node *redis.Client) error {
			iter := node.Scan(ctx, 0, "*"+tg.token+"*", 1000).Iterator()
			for iter.Next(ctx) {
				if err := node.Del(ctx, iter.Val()).Err(); err != nil {
					return err
				}
			}
			return iter.Err()
		})
		if err != nil {
			t.Errorf("cleanup of %s keys: %v", tg.token, err)
		}
	})
}

// catFlushScripts empties the script cache of every node, as a restart or
// failover would.
func catFlushScripts(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	require.NoError(t, catNodes(context.Background(), c, func(ctx context.Context, node *redis.Client) error {
		return node.ScriptFlush(ctx).Err()
	}))
}

// catScriptsCached reports, per node, whether every sha is cached there.
func catScriptsCached(t *testing.T, c redis.UniversalClient, shas ...string) []bool {
	t.Helper()
	var (
		mu  sync.Mutex // ForEachMaster calls fn concurrently
		out []bool
	)
	require.NoError(t, catNodes(context.Background(), c, func(ctx context.Context, node *redis.Client) error {
		exists, err := node.ScriptExists(ctx, shas...).Result()
		if err != nil {
			return err
		}
		all := true
		for _, e := range exists {
			all = all && e
		}
		mu.Lock()
		out = append(out, all)
		mu.Unlock()
		return nil
	}))
	return out
}

// catCounting wraps a Scripter and counts the calls that reach it.
type catCounting struct {
	next  redis.Scripter
	calls atomic.Int64
}

func (c *catCounting) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.next.Eval(ctx, script, keys, args...)
}

func (c *catCounting) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.next.EvalSha(ctx, sha1, keys, args...)
}

func (c *catCounting) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.next.EvalRO(ctx, script, keys, args...)
}

func (c *catCounting) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.next.EvalShaRO(ctx, sha1, keys, args...)
}

func (c *catCounting) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	c.calls.Add(1)
	return c.next.ScriptExists(ctx, hashes...)
}

func (c *catCounting) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	c.calls.Add(1)
	return c.next.ScriptLoad(ctx, script)
}

// catClosedAddr returns an address on which nothing listens any more, so that
// any call that reaches the network fails with a connection error.
func catClosedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
