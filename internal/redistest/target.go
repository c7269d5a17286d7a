package redistest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Target is one Redis a test runs against, with keys unique to the test.
type Target struct {
	Name    string                // "miniredis", "redis" or "cluster"
	Client  redis.UniversalClient // closed when the subtest ends
	Mini    *miniredis.Miniredis  // the emulated server; nil for a real one
	Token   string                // unique to the subtest
	Cluster bool                  // Client is a Cluster client
}

// Key returns a key unique to the test, tagged so that every key of the
// test shares one Cluster slot.
func (tg *Target) Key(name string) string {
	return "sluicetest:{" + tg.Token + "}:" + name
}

// Untagged returns a key unique to the test without a hash tag: keys from it
// land in different Cluster slots.
func (tg *Target) Untagged(name string) string {
	return "sluicetest:" + tg.Token + ":" + name
}

// EachTarget runs fn against miniredis, the server at REDIS_ADDR and the
// Cluster at REDIS_CLUSTER_ADDRS, as subtests named after them; the real ones
// skip when their variable is unset. Keys containing the target's token are
// deleted when the subtest ends.
func EachTarget(t *testing.T, fn func(t *testing.T, tg *Target)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		fn(t, &Target{Name: "miniredis", Client: c, Mini: mr, Token: Token()})
	})
	t.Run("redis", func(t *testing.T) {
		tg := &Target{Name: "redis", Client: Client(t), Token: Token()}
		CleanupKeys(t, tg.Client, "*"+tg.Token+"*")
		fn(t, tg)
	})
	t.Run("cluster", func(t *testing.T) {
		tg := &Target{Name: "cluster", Client: ClusterClient(t), Token: Token(), Cluster: true}
		CleanupKeys(t, tg.Client, "*"+tg.Token+"*")
		fn(t, tg)
	})
}

// FlushScripts empties the script cache of every master of c, as a restart
// or failover would.
func FlushScripts(t testing.TB, c redis.UniversalClient) {
	t.Helper()
	err := ForEachMaster(context.Background(), c, func(ctx context.Context, node *redis.Client) error {
		return node.ScriptFlush(ctx).Err()
	})
	if err != nil {
		t.Fatalf("redistest: SCRIPT FLUSH: %v", err)
	}
}

// ScriptsCached reports, per master of c, whether every sha is cached there.
func ScriptsCached(t testing.TB, c redis.UniversalClient, shas ...string) []bool {
	t.Helper()
	var (
		mu  sync.Mutex // ForEachMaster calls fn concurrently
		out []bool
	)
	err := ForEachMaster(context.Background(), c, func(ctx context.Context, node *redis.Client) error {
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
	})
	if err != nil {
		t.Fatalf("redistest: SCRIPT EXISTS: %v", err)
	}
	return out
}

// Counting wraps a redis.Scripter and counts the calls that reach it.
type Counting struct {
	Next  redis.Scripter
	calls atomic.Int64
}

// Calls returns the number of calls that reached Next.
func (c *Counting) Calls() int64 { return c.calls.Load() }

// Eval counts the call and passes it on.
func (c *Counting) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.Next.Eval(ctx, script, keys, args...)
}

// EvalSha counts the call and passes it on.
func (c *Counting) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.Next.EvalSha(ctx, sha1, keys, args...)
}

// EvalRO counts the call and passes it on.
func (c *Counting) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.Next.EvalRO(ctx, script, keys, args...)
}

// EvalShaRO counts the call and passes it on.
func (c *Counting) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	c.calls.Add(1)
	return c.Next.EvalShaRO(ctx, sha1, keys, args...)
}

// ScriptExists counts the call and passes it on.
func (c *Counting) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	c.calls.Add(1)
	return c.Next.ScriptExists(ctx, hashes...)
}

// ScriptLoad counts the call and passes it on.
func (c *Counting) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	c.calls.Add(1)
	return c.Next.ScriptLoad(ctx, script)
}
