package lua_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
)

// target is one Redis a test runs against, with keys unique to the test.
type target struct {
	name    string
	client  redis.UniversalClient
	token   string
	cluster bool
}

// key returns a key unique to the test, tagged so that every key of the test
// shares one Cluster slot.
func (tg *target) key(name string) string {
	return "sluicetest:{" + tg.token + "}:" + name
}

// eachTarget runs fn against miniredis, the server at REDIS_ADDR and the
// cluster at REDIS_CLUSTER_ADDRS, as subtests; the real ones skip when unset.
// Keys containing the target's token are deleted when the subtest ends.
func eachTarget(t *testing.T, fn func(t *testing.T, tg *target)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		fn(t, &target{name: "miniredis", client: c, token: redistest.Token()})
	})
	t.Run("redis", func(t *testing.T) {
		tg := &target{name: "redis", client: redistest.Client(t), token: redistest.Token()}
		redistest.CleanupKeys(t, tg.client, "*"+tg.token+"*")
		fn(t, tg)
	})
	t.Run("cluster", func(t *testing.T) {
		tg := &target{name: "cluster", client: redistest.ClusterClient(t), token: redistest.Token(), cluster: true}
		redistest.CleanupKeys(t, tg.client, "*"+tg.token+"*")
		fn(t, tg)
	})
}

// flushScripts empties the script cache of every node, as a restart or
// failover would.
func flushScripts(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	require.NoError(t, redistest.ForEachMaster(context.Background(), c, func(ctx context.Context, node *redis.Client) error {
		return node.ScriptFlush(ctx).Err()
	}))
}

// scriptsCached reports, per node, whether every sha is cached there.
func scriptsCached(t *testing.T, c redis.UniversalClient, shas ...string) []bool {
	t.Helper()
	var (
		mu  sync.Mutex // ForEachMaster calls fn concurrently
		out []bool
	)
	require.NoError(t, redistest.ForEachMaster(context.Background(), c, func(ctx context.Context, node *redis.Client) error {
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

// sha1Hex returns the SHA1 digest of src in hex, as Redis names scripts.
func sha1Hex(src string) string {
	sum := sha1.Sum([]byte(src))
	return hex.EncodeToString(sum[:])
}

// counting wraps a Scripter and counts the calls that reach it.
type counting struct {
	next  redis.Scripter
	calls atomic.Int64
}

func (c *counting) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.next.Eval(ctx, script, keys, args...)
}

func (c *counting) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.next.EvalSha(ctx, sha1, keys, args...)
}

func (c *counting) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.next.EvalRO(ctx, script, keys, args...)
}

func (c *counting) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.next.EvalShaRO(ctx, sha1, keys, args...)
}

func (c *counting) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	c.calls.Add(1)
	return c.next.ScriptExists(ctx, hashes...)
}

func (c *counting) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	c.calls.Add(1)
	return c.next.ScriptLoad(ctx, script)
}
