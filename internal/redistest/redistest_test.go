package redistest_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
)

// setKeys writes "v" to each key.
func setKeys(t *testing.T, c redis.UniversalClient, keys ...string) {
	t.Helper()
	for _, k := range keys {
		require.NoError(t, c.Set(context.Background(), k, "v", time.Hour).Err())
	}
}

func TestStartServer(t *testing.T) {
	ctx := context.Background()
	addr, stop := redistest.StartServer(t)
	host, _, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Ping(ctx).Err())

	setKeys(t, c, "kept")
	stop()
	stop() // idempotent
	require.Error(t, c.Ping(ctx).Err(), "the server is stopped")

	// Brought back on the same address, empty.
	redistest.StartServerAt(t, addr)
	require.NoError(t, c.Ping(ctx).Err())
	n, err := c.Exists(ctx, "kept").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "a restarted server starts empty")
}

func TestDeleteKeys(t *testing.T) {
	forEachClient(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := context.Background()
		prefix := redistest.UniquePrefix("redistest")
		other := redistest.UniquePrefix("redistest")
		t.Cleanup(func() { _ = redistest.DeleteKeys(c, other+"*") })
		// Keys in many slots, so that a Cluster holds them on several masters.
		var mine []string
		for i := range 20 {
			mine = append(mine, prefix+strconv.Itoa(i))
		}
		setKeys(t, c, mine...)
		setKeys(t, c, other+"0")

		got, err := redistest.Keys(ctx, c, prefix+"*")
		require.NoError(t, err)
		assert.ElementsMatch(t, mine, got)

		require.NoError(t, redistest.DeleteKeys(c, prefix+"*"))
		got, err = redistest.Keys(ctx, c, prefix+"*")
		require.NoError(t, err)
		assert.Empty(t, got)
		got, err = redistest.Keys(ctx, c, other+"*")
		require.NoError(t, err)
		assert.Equal(t, []string{other + "0"}, got, "keys under another prefix stay")
	})
}

func TestCleanupKeys(t *testing.T) {
	forEachClient(t, func(t *testing.T, c redis.UniversalClient) {
		prefix := redistest.UniquePrefix("redistest")
		t.Run("test", func(t *testing.T) {
			redistest.CleanupKeys(t, c, prefix+"*")
			setKeys(t, c, prefix+"a", prefix+"b")
		})
		got, err := redistest.Keys(context.Background(), c, prefix+"*")
		require.NoError(t, err)
		assert.Empty(t, got, "deleted when the subtest ended")
	})
}

// forEachClient runs fn on a server of the test's own, the server at
// REDIS_ADDR and the Cluster at REDIS_CLUSTER_ADDRS; the last two skip when
// unset.
func forEachClient(t *testing.T, fn func(t *testing.T, c redis.UniversalClient)) {
	t.Run("own", func(t *testing.T) {
		addr, _ := redistest.StartServer(t)
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = c.Close() })
		fn(t, c)
	})
	t.Run("redis", func(t *testing.T) { fn(t, redistest.Client(t)) })
	t.Run("cluster", func(t *testing.T) { fn(t, redistest.ClusterClient(t)) })
}

// wrapped is a client type ForEachMaster does not know.
type wrapped struct{ *redis.Client }

func TestForEachMaster(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()

	var got []string
	require.NoError(t, redistest.ForEachMaster(ctx, c, func(_ context.Context, n *redis.Client) error {
		got = append(got, n.Options().Addr)
		return nil
	}))
	assert.Equal(t, []string{addr}, got, "a single server is its own master")

	boom := errors.New("boom")
	err := redistest.ForEachMaster(ctx, c, func(context.Context, *redis.Client) error { return boom })
	assert.ErrorIs(t, err, boom)

	err = redistest.ForEachMaster(ctx, wrapped{c}, func(context.Context, *redis.Client) error {
		t.Error("fn called for an unknown client type")
		return nil
	})
	assert.ErrorContains(t, err, "unsupported client type")
}

func TestEnvUnsetSkips(t *testing.T) {
	for _, tc := range []struct {
		name, env string
		get       func(t *testing.T)
	}{
		{"Addr", "REDIS_ADDR", func(t *testing.T) { redistest.Addr(t) }},
		{"Client", "REDIS_ADDR", func(t *testing.T) { redistest.Client(t) }},
		{"ClusterAddrs", "REDIS_CLUSTER_ADDRS", func(t *testing.T) { redistest.ClusterAddrs(t) }},
		{"ClusterClient", "REDIS_CLUSTER_ADDRS", func(t *testing.T) { redistest.ClusterClient(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var skipped bool
			t.Run("unset", func(t *testing.T) {
				t.Setenv(tc.env, " ")
				defer func() { skipped = t.Skipped() }()
				tc.get(t)
			})
			assert.True(t, skipped, "%s unset must skip", tc.env)
		})
	}
}

func TestClusterAddrs(t *testing.T) {
	t.Setenv("REDIS_CLUSTER_ADDRS", " 127.0.0.1:7000, 127.0.0.1:7001,,127.0.0.1:7002 ")
	assert.Equal(t, []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}, redistest.ClusterAddrs(t))
}

func TestUniquePrefix(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p := redistest.UniquePrefix("sluicetest")
		rest, ok := strings.CutPrefix(p, "sluicetest:")
		require.True(t, ok, p)
		token, ok := strings.CutSuffix(rest, ":")
		require.True(t, ok, p)
		assert.Len(t, token, 16, p)
		assert.False(t, strings.ContainsAny(token, "*?[]\\{}:"), "no glob or hash-tag characters: %s", p)
		assert.False(t, seen[p], "repeated %s", p)
		seen[p] = true
	}
}

func TestClosedAddr(t *testing.T) {
	addr := redistest.ClosedAddr(t)
	_, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.Error(t, err, "nothing listens on %s", addr)
}

func TestHungListener(t *testing.T) {
	addr, received := redistest.HungListener(t)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	err := c.Ping(context.Background()).Err()
	var netErr net.Error
	require.ErrorAs(t, err, &netErr, "a network error: %v", err)
	assert.True(t, netErr.Timeout(), "a timeout, not a refusal: %v", err)
	assert.Positive(t, received(), "the PING reached the listener")
}
