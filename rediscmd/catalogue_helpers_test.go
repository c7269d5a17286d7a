package rediscmd_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
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
		fn(t, &catTarget{name: "miniredis", client: c, mr: mr, token: redistest.Token()})
	})
	t.Run("redis", func(t *testing.T) {
		tg := &catTarget{name: "redis", client: redistest.Client(t), token: redistest.Token()}
		redistest.CleanupKeys(t, tg.client, "*"+tg.token+"*")
		fn(t, tg)
	})
	t.Run("cluster", func(t *testing.T) {
		tg := &catTarget{name: "cluster", client: redistest.ClusterClient(t), token: redistest.Token(), cluster: true}
		redistest.CleanupKeys(t, tg.client, "*"+tg.token+"*")
		fn(t, tg)
	})
}

// catFlushScripts empties the script cache of every node, as a restart or
// failover would.
func catFlushScripts(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	require.NoError(t, redistest.ForEachMaster(context.Background(), c, func(ctx context.Context, node *redis.Client) error {
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
