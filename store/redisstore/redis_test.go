package redisstore_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// These tests run on miniredis and, when REDIS_ADDR / REDIS_CLUSTER_ADDRS are
// set, on a real server and a real Cluster.

func TestEveryKeyHasATTL(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		s, prefix := newStore(t, tg)
		rule := store.Rule{Limit: 10, Window: time.Minute}
		must(s.Hit(ctx, "one", rule, 1))(t)
		r := must(s.Hit(ctx, "multi", rule, 3))(t)
		must(s.Hit(ctx, "undone", rule, 1))(t)
		require.NoError(t, s.Undo(ctx, "multi", r.Receipt))
		require.True(t, must(s.Acquire(ctx, "lock", "tok", time.Minute))(t).Acquired)
		require.NoError(t, s.Extend(ctx, "lock", "tok", 2*time.Minute))
		require.True(t, must(s.Acquire(ctx, "released", "tok", time.Minute))(t).Acquired)
		require.NoError(t, s.Release(ctx, "released", "tok"))

		// The O(1) algorithms, written by Hit, by a stack and by a partial
		// undo (a GCRA refund rewrites its key; a counter's keeps its TTL).
		ctr := store.Rule{Name: "c", Limit: 10, Window: time.Minute, Algorithm: store.SlidingCounter}
		gcra := store.Rule{Name: "g", Limit: 10, Window: time.Minute, Algorithm: store.GCRA}
		must(s.Hit(ctx, "one", ctr, 1))(t)
		r = must(s.Hit(ctx, "one", gcra, 3))(t)
		must(s.Hit(ctx, "one", gcra, 3))(t)
		require.NoError(t, s.Undo(ctx, "one", r.Receipt))
		r = must(s.Hit(ctx, "one", ctr, 2))(t)
		require.NoError(t, s.Undo(ctx, "one", r.Receipt))
		stackRules := []store.Rule{{Name: "sl", Limit: 5, Window: time.Minute}, {Name: "sc", Limit: 5, Window: time.Minute, Algorithm: store.SlidingCounter},
			{Name: "sg", Limit: 5, Window: time.Minute, Algorithm: store.GCRA}}
		var stack []store.Hit
		for _, key := range []string{"stack-a", "stack-b"} { // two keys: two slots on a Cluster
			for _, rule := range stackRules {
				stack = append(stack, store.Hit{Key: key, Rule: rule, Cost: 1})
			}
		}
		out := make([]store.Result, len(stack))
		require.NoError(t, s.HitAll(ctx, stack, out))
		require.True(t, out[0].Allowed)
		var stackKeys []string
		for _, h := range stack {
			stackKeys = append(stackKeys, stateKey(prefix, h.Rule.Name, h.Rule.Algorithm, h.Key))
		}

		keys := allKeys(t, tg, prefix)
		assert.ElementsMatch(t, append([]string{
			windowKey(prefix, "one"), windowKey(prefix, "undone"),
			stateKey(prefix, "c", store.SlidingCounter, "one"), stateKey(prefix, "g", store.GCRA, "one"),
			lockKey(prefix, "lock"), fenceKey(prefix, "lock"), fenceKey(prefix, "released"),
		}, stackKeys...), keys, "undone window emptied, released lock gone, fences stay")
		for _, k := range keys {
			pttl, err := tg.client.PTTL(ctx, k).Result()
			require.NoError(t, err)
			assert.Greater(t, pttl, time.Duration(0), "key %s has no TTL", k)
		}
	})
}

func TestScriptFlushIsRecovered(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		s, _ := newStore(t, tg)
		flush := func(t *testing.T) {
			t.Helper()
			require.NoError(t, tg.nodes(ctx, func(ctx context.Context, c *redis.Client) error {
				return c.ScriptFlush(ctx).Err()
			}))
		}
		require.NoError(t, s.Preload(ctx))
		rule := store.Rule{Limit: 10, Window: time.Minute}

		flush(t)
		r, err := s.Hit(ctx, "k", rule, 1)
		require.NoError(t, err)
		assert.True(t, r.Allowed)
		flush(t)
		require.NoError(t, s.Undo(ctx, "k", r.Receipt))
		flush(t)
		l, err := s.Acquire(ctx, "lock", "tok", time.Minute)
		require.NoError(t, err)
		assert.True(t, l.Acquired)
		flush(t)
		require.NoError(t, s.Extend(ctx, "lock", "tok", time.Minute))
		flush(t)
		_, err = s.TTL(ctx, "lock", "tok")
		require.NoError(t, err)
		flush(t)
		require.NoError(t, s.Release(ctx, "lock", "tok"))

		for _, alg := range []store.Algorithm{store.SlidingCounter, store.GCRA} {
			rule := store.Rule{Limit: 10, Window: time.Minute, Algorithm: alg}
			flush(t)
			r, err := s.Hit(ctx, "k", rule, 1)
			require.NoError(t, err, alg)
			assert.True(t, r.Allowed, alg)
			flush(t)
			require.NoError(t, s.Undo(ctx, "k", r.Receipt), alg)
		}
		// A stack on one key, and one over two keys (two slots on a
		// Cluster), recorded and then denied across them (decisions, an
		// undo and a read).
		for _, keys := range [][]string{{"s", "s"}, {"a", "b"}} {
			stack := []store.Hit{
				{Key: keys[0], Rule: store.Rule{Name: "x", Limit: 1, Window: time.Minute, Algorithm: store.SlidingCounter}, Cost: 1},
				{Key: keys[1], Rule: store.Rule{Name: "y", Limit: 1, Window: time.Minute, Algorithm: store.GCRA}, Cost: 1},
			}
			out := make([]store.Result, 2)
			flush(t)
			require.NoError(t, s.HitAll(ctx, stack, out))
			assert.True(t, out[0].Allowed)
			require.NoError(t, s.Undo(ctx, keys[0], out[0].Receipt))
			flush(t)
			require.NoError(t, s.HitAll(ctx, stack, out), "denied by the second part")
			assert.False(t, out[0].Allowed)
			flush(t)
			require.NoError(t, s.HitAll(ctx, []store.Hit{stack[1], stack[0]}, out), "denied by the first part")
			assert.False(t, out[0].Allowed)
		}
	})
}

// TestPreloadCachesEveryScript checks that Preload caches every script of the
// package on every master: one per .lua file beside it but reply.lua, which is
// put before sliding_window.lua and gcra.lua (and stack.lua, undo.lua and
// peek.lua run with the algorithms' functions put before them).
func TestPreloadCachesEveryScript(t *testing.T) {
	files, err := filepath.Glob("*.lua")
	require.NoError(t, err)
	require.Len(t, files, 13)
	byName := redisstore.ScriptSHAs()
	require.Len(t, byName, len(files)-1, "one script per .lua file but reply.lua")
	var names, shas []string
	for name, sha := range byName {
		names = append(names, name)
		shas = append(shas, sha)
	}
	// The other files are scripts as they stand.
	reply, err := os.ReadFile("reply.lua")
	require.NoError(t, err)
	for _, f := range files {
		if f == "stack.lua" || f == "undo.lua" || f == "peek.lua" || f == "reply.lua" {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		if f == "sliding_window.lua" || f == "gcra.lua" {
			src = append(reply[:len(reply):len(reply)], src...)
		}
		sum := sha1.Sum(src)
		assert.Contains(t, shas, hex.EncodeToString(sum[:]), "%s runs as it stands (after reply.lua for a Hit's)", f)
	}
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		s, _ := newStore(t, tg)
		var mu sync.Mutex // nodes calls fn concurrently
		cached := func() map[string][]bool {
			out := map[string][]bool{}
			require.NoError(t, tg.nodes(ctx, func(ctx context.Context, c *redis.Client) error {
				exists, err := c.ScriptExists(ctx, shas...).Result()
				mu.Lock()
				out[c.Options().Addr] = exists
				mu.Unlock()
				return err
			}))
			return out
		}
		require.NoError(t, tg.nodes(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.ScriptFlush(ctx).Err()
		}))
		if tg.mini != nil { // a shared server may see other tests run them meanwhile
			for _, exists := range cached() {
				assert.Equal(t, make([]bool, len(shas)), exists, "before Preload")
			}
		}

		require.NoError(t, s.Preload(ctx))
		after := cached()
		if tg.cluster {
			assert.Len(t, after, 3, "every master of the Cluster")
		}
		for addr, exists := range after {
			for i, ok := range exists {
				assert.True(t, ok, "%s not cached on %s", names[i], addr)
			}
		}
	})
}

func TestPreloadReportsErrors(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	s := must(redisstore.New(c))(t)
	err := s.Preload(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "redisstore: preload")
}

func TestHugeAndBracedKeysAreHashed(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		s, prefix := newStore(t, tg)
		huge := strings.Repeat("x", 1<<20)
		userKeys := []string{huge, "{", "}", "{}", "{user}", "a{b}c"}
		for i := 0; i < 16; i++ {
			userKeys = append(userKeys, fmt.Sprintf("{pinned}%d", i))
		}
		// A huge name or one with braces is hashed too.
		names := []string{"", huge, "{name}"}
		for _, k := range userKeys {
			for _, name := range names {
				for _, alg := range []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA} {
					r := must(s.Hit(ctx, k, store.Rule{Name: name, Limit: 5, Window: time.Minute, Algorithm: alg}, 1))(t)
					require.True(t, r.Allowed)
				}
			}
			_, err := s.Acquire(ctx, k, "tok", time.Minute)
			require.NoError(t, err)
		}
		keys := allKeys(t, tg, prefix)
		require.Len(t, keys, (3*len(names)+2)*len(userKeys))
		for _, k := range keys {
			// prefix r:{<32 hex>}:<letter>:<16 hex>, or l:{<32 hex>}:f
			assert.LessOrEqual(t, len(k), len(prefix)+len("r:{}:s:")+32+16, "key %.80q is not short", k)
			assert.Equal(t, 1, strings.Count(k, "{"), k)
		}
		if !tg.cluster {
			return
		}
		// A '{' in the caller's key does not pin its window keys to one slot.
		slots := map[int64]bool{}
		for i := 0; i < 16; i++ {
			slot, err := tg.client.ClusterKeySlot(ctx, windowKey(prefix, fmt.Sprintf("{pinned}%d", i))).Result()
			require.NoError(t, err)
			slots[slot] = true
		}
		assert.Greater(t, len(slots), 1, "16 keys with one {tag} landed in one slot")
	})
}

func TestLockKeysShareASlot(t *testing.T) {
	ctx := context.Background()
	c := redistest.ClusterClient(t)
	tg := target{name: "cluster", client: c, cluster: true}
	s, prefix := newStore(t, tg)
	slots := map[int64]bool{}
	for i := 0; i < 50; i++ {
		key := fmt.Sprintf("order:%d", i)
		l, err := s.Acquire(ctx, key, "tok", time.Minute)
		require.NoError(t, err, "acquire %s (CROSSSLOT?)", key)
		require.True(t, l.Acquired)
		lockSlot := must(c.ClusterKeySlot(ctx, lockKey(prefix, key)).Result())(t)
		fenceSlot := must(c.ClusterKeySlot(ctx, fenceKey(prefix, key)).Result())(t)
		require.Equal(t, lockSlot, fenceSlot, "lock and fence of %s", key)
		slots[lockSlot] = true
	}
	assert.Greater(t, len(slots), 1, "locks spread over slots")
	// The keys the test computed are the ones Redis holds.
	assert.Len(t, allKeys(t, tg, prefix), 100)
}

func TestDefaultPathUsesRedisTime(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		prefix := testPrefix(t, tg.client)
		node := redis.Cmdable(tg.client)
		if cc, ok := tg.client.(*redis.ClusterClient); ok {
			node = must(cc.MasterForKey(ctx, windowKey(prefix, "k")))(t)
		}
		redisTime := func() time.Time { return must(node.Time(ctx).Result())(t) }

		// A store whose own clock is an hour behind, and two stores that
		// take no clock: the default path must not send an app clock.
		appNow := redisTime().Add(-time.Hour)
		past := must(redisstore.New(tg.client, redisstore.WithPrefix(prefix),
			redisstore.WithClock(func() time.Time { return appNow })))(t)
		a := must(redisstore.New(tg.client, redisstore.WithPrefix(prefix)))(t)
		b := must(redisstore.New(tg.client, redisstore.WithPrefix(prefix)))(t)
		rule := store.Rule{Limit: 1, Window: time.Minute}

		require.True(t, must(past.Hit(ctx, "k", rule, 1))(t).Allowed)
		before := redisTime()
		r := must(a.Hit(ctx, "k", rule, 1))(t)
		after := redisTime()
		assert.True(t, r.Allowed, "the hit an hour ago in Redis time has left the window")
		members := must(tg.client.ZRangeWithScores(ctx, windowKey(prefix, "k"), 0, -1).Result())(t)
		require.Len(t, members, 1)
		score := int64(members[0].Score)
		assert.GreaterOrEqual(t, score, before.UnixMicro(), "scored with Redis TIME")
		assert.LessOrEqual(t, score, after.UnixMicro(), "scored with Redis TIME")

		// b shares a's window.
		assert.False(t, must(b.Hit(ctx, "k", rule, 1))(t).Allowed)
	})
}

// TestOneRoundTripPerDecision counts EVALSHA and EVAL calls in INFO
// commandstats on a redis-server the test starts itself.
func TestOneRoundTripPerDecision(t *testing.T) {
	ctx := context.Background()
	addr, _ := redistest.StartServer(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	s := must(redisstore.New(c))(t)
	rule := store.Rule{Limit: 1000, Window: time.Minute}
	calls := func() (evalsha, eval int64) {
		return commandCalls(t, c, "evalsha"), commandCalls(t, c, "eval")
	}

	// Before any script is cached the first decision pays for NOSCRIPT.
	require.NoError(t, c.ConfigResetStat(ctx).Err())
	must(s.Hit(ctx, "cold", rule, 1))(t)
	evalsha, eval := calls()
	assert.Equal(t, int64(1), evalsha, "EVALSHA")
	assert.Equal(t, int64(1), eval, "EVAL after NOSCRIPT")

	require.NoError(t, s.Preload(ctx))
	require.NoError(t, c.ConfigResetStat(ctx).Err())
	const n = 20
	ctr := store.Rule{Limit: 1000, Window: time.Minute, Algorithm: store.SlidingCounter}
	gcra := store.Rule{Limit: 1000, Window: time.Minute, Algorithm: store.GCRA}
	stack := []store.Hit{{Key: "a", Rule: rule, Cost: 1}, {Key: "a", Rule: ctr, Cost: 1}, {Key: "b", Rule: gcra, Cost: 1}}
	out := make([]store.Result, len(stack))
	for i := 0; i < n; i++ {
		r := must(s.Hit(ctx, "k", rule, 1))(t)
		must(s.Acquire(ctx, "lock", "tok", time.Minute))(t)
		require.NoError(t, s.Extend(ctx, "lock", "tok", time.Minute))
		must(s.TTL(ctx, "lock", "tok"))(t)
		require.NoError(t, s.Release(ctx, "lock", "tok"))
		require.NoError(t, s.Undo(ctx, "k", r.Receipt))
		for _, rule := range []store.Rule{ctr, gcra} {
			r := must(s.Hit(ctx, "k", rule, 1))(t)
			require.NoError(t, s.Undo(ctx, "k", r.Receipt))
		}
		// Any keys in one script on a standalone server.
		require.NoError(t, s.HitAll(ctx, stack, out))
		require.True(t, out[0].Allowed)
	}
	evalsha, eval = calls()
	assert.Equal(t, int64(11*n), evalsha, "one EVALSHA per call")
	assert.Equal(t, int64(0), eval, "no EVAL with the scripts cached")
}

// TestOneRoundTripPerDecisionShared counts with deltas on the shared server at
// REDIS_ADDR. Other clients may run scripts there at the same time, which
// only ever adds to the deltas, so the count is retried until one quiet
// attempt shows exactly one EVALSHA per decision.
func TestOneRoundTripPerDecisionShared(t *testing.T) {
	ctx := context.Background()
	c := redistest.Client(t)
	tg := target{client: c}
	s, _ := newStore(t, tg)
	require.NoError(t, s.Preload(ctx))
	rule := store.Rule{Limit: 1000, Window: time.Minute}
	const n = 20
	var got []string
	for attempt := 0; attempt < 10; attempt++ {
		sha0, eval0 := commandCalls(t, c, "evalsha"), commandCalls(t, c, "eval")
		for i := 0; i < n; i++ {
			must(s.Hit(ctx, "k", rule, 1))(t)
		}
		dsha, deval := commandCalls(t, c, "evalsha")-sha0, commandCalls(t, c, "eval")-eval0
		if dsha == n && deval == 0 {
			return
		}
		got = append(got, fmt.Sprintf("EVALSHA+%d EVAL+%d", dsha, deval))
	}
	t.Fatalf("%d decisions never counted as exactly %d EVALSHA and no EVAL: %v", n, n, got)
}

// TestWindowMemoryUsage reports MEMORY USAGE of full window logs on the real
// server (run with -v to see the numbers) and checks that a hit costs a
// bounded number of bytes.
func TestWindowMemoryUsage(t *testing.T) {
	ctx := context.Background()
	c := redistest.Client(t)
	s, prefix := newStore(t, target{client: c})
	for _, limit := range []int{100, 1000} {
		key := "mem:" + strconv.Itoa(limit)
		rule := store.Rule{Limit: limit, Window: time.Hour}
		for i := 0; i < limit; i++ {
			require.True(t, must(s.Hit(ctx, key, rule, 1))(t).Allowed)
		}
		wk := windowKey(prefix, key)
		require.Equal(t, int64(limit), must(c.ZCard(ctx, wk).Result())(t))
		bytes := must(c.MemoryUsage(ctx, wk).Result())(t)
		encoding := must(c.ObjectEncoding(ctx, wk).Result())(t)
		perHit := float64(bytes) / float64(limit)
		t.Logf("window log of %d hits (%s): MEMORY USAGE %d bytes, %.1f bytes per hit", limit, encoding, bytes, perHit)
		assert.Less(t, perHit, 128.0, "bytes per hit")
	}
}
