package redisstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// target is a Redis deployment the Redis-specific tests run against.
type target struct {
	name    string
	client  redis.UniversalClient
	mini    *miniredis.Miniredis // set for miniredis only
	cluster bool
}

// nodes calls fn on every server that holds keys (every master of a Cluster,
// else the one server).
func (tg target) nodes(ctx context.Context, fn func(ctx context.Context, c *redis.Client) error) error {
	return redistest.ForEachMaster(ctx, tg.client, fn)
}

// targets returns miniredis plus the real server and Cluster when their
// environment variables are set; the real ones are reported as skipped
// subtests when not.
func forEachTarget(t *testing.T, fn func(t *testing.T, tg target)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		m, c := newMiniredis(t)
		fn(t, target{name: "miniredis", client: c, mini: m})
	})
	t.Run("redis", func(t *testing.T) {
		fn(t, target{name: "redis", client: redistest.Client(t)})
	})
	t.Run("cluster", func(t *testing.T) {
		fn(t, target{name: "cluster", client: redistest.ClusterClient(t), cluster: true})
	})
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

// testPrefix returns a key prefix unique to this call and registers the
// deletion of every key under it on every node of client.
func testPrefix(t testing.TB, client redis.UniversalClient) string {
	t.Helper()
	prefix := redistest.UniquePrefix("sluicetest")
	redistest.CleanupKeys(t, client, prefix+"*")
	return prefix
}

// allKeys lists the keys under prefix on every node of tg.
func allKeys(t *testing.T, tg target, prefix string) []string {
	t.Helper()
	keys, err := redistest.Keys(context.Background(), tg.client, prefix+"*")
	require.NoError(t, err)
	return keys
}

// newStore returns a Store with a fresh test prefix on tg.
func newStore(t *testing.T, tg target, opts ...redisstore.Option) (*redisstore.Store, string) {
	t.Helper()
	prefix := testPrefix(t, tg.client)
	s, err := redisstore.New(tg.client, append([]redisstore.Option{redisstore.WithPrefix(prefix)}, opts...)...)
	require.NoError(t, err)
	return s, prefix
}

// keyHash is the documented hash of a caller's key.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// stateKey is the documented key of key's state under a rule's name and
// algorithm.
func stateKey(prefix, name string, alg store.Algorithm, key string) string {
	letter := map[store.Algorithm]string{store.SlidingLog: "s", store.SlidingCounter: "c", store.GCRA: "g"}[alg]
	return prefix + "r:{" + keyHash(key) + "}:" + letter + ":" + nameHash(name)
}

// nameHash is the documented hash of a rule's name in its keys.
func nameHash(name string) string {
	sum := sha256.Sum256([]byte(strconv.Itoa(len(name)) + ":" + name))
	return hex.EncodeToString(sum[:8])
}

// windowKey is the key of key's sliding log under the name "".
func windowKey(prefix, key string) string { return stateKey(prefix, "", store.SlidingLog, key) }
func lockKey(prefix, key string) string   { return prefix + "l:{" + keyHash(key) + "}" }
func fenceKey(prefix, key string) string  { return lockKey(prefix, key) + ":f" }

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
