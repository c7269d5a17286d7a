package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// These tests run on miniredis and, when REDIS_ADDR / REDIS_CLUSTER_ADDRS are
// set, on a real server and a real Cluster; the arithmetic is worked out by
// hand from the definitions in store.SlidingCounter and store.GCRA.

const µs = time.Microsecond

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// newFakeClock returns a clock at the first multiple of w since the Unix
// epoch after 2030-01-01: the start of a fixed window of length w.
func newFakeClock(w time.Duration) *fakeClock {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	wu := w.Microseconds()
	return &fakeClock{t: time.UnixMicro((base/wu + 1) * wu)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// result is the part of a store.Result the arithmetic tests compare.
type result struct {
	Allowed    bool
	Remaining  int
	RetryAfter time.Duration
	ResetAfter time.Duration
}

func hitResult(t *testing.T, s *redisstore.Store, key string, rule store.Rule, cost int) result {
	t.Helper()
	r := must(s.Hit(context.Background(), key, rule, cost))(t)
	require.Equal(t, rule.Limit, r.Limit)
	if r.Allowed {
		require.Equal(t, cost, r.Receipt.Cost)
		require.Equal(t, rule, r.Receipt.Rule)
	} else {
		require.True(t, r.Receipt.IsZero(), "a denial carries no receipt")
	}
	return result{r.Allowed, r.Remaining, r.RetryAfter, r.ResetAfter}
}

func TestSlidingCounterArithmetic(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		t.Run("half-way after a full window", func(t *testing.T) {
			clock := newFakeClock(time.Minute)
			s, _ := newStore(t, tg, redisstore.WithClock(clock.Now))
			rule := store.Rule{Name: "ctr", Limit: 10, Window: time.Minute, Algorithm: store.SlidingCounter}

			// e=0: curr 10; the count drops to 9 once 10*(W-e')/W <= 9 in
			// the next window: e' = 6s, 66s from now.
			r := must(s.Hit(ctx, "k", rule, 10))(t)
			idx := uint64(clock.Now().UnixMicro() / time.Minute.Microseconds())
			assert.Equal(t, store.Result{Allowed: true, Limit: 10, ResetAfter: 66 * time.Second,
				Receipt: store.Receipt{ID: idx + 1, Cost: 10, Rule: rule}}, r)

			clock.Advance(90 * time.Second)
			// Next window, e=30s: prev 10 weighs 10*30/60 = 5. 5+6 > 10
			// fits once 10*(W-e')/W + 6 <= 10: e' = 36s; the count 5 drops
			// to 4 at the same e'.
			assert.Equal(t, result{false, 5, 6 * time.Second, 6 * time.Second}, hitResult(t, s, "k", rule, 6))
			// 5+5 fits; curr 5, count 10, which drops to 9 at e' = 36s.
			r = must(s.Hit(ctx, "k", rule, 5))(t)
			assert.Equal(t, store.Result{Allowed: true, Limit: 10, ResetAfter: 6 * time.Second,
				Receipt: store.Receipt{ID: idx + 2, Cost: 5, Rule: rule}}, r)
			assert.Equal(t, result{false, 0, 6 * time.Second, 6 * time.Second}, hitResult(t, s, "k", rule, 1))

			clock.Advance(6*time.Second - µs)
			// 10*(24s+1µs)/60s + 5 is just above 9.
			assert.Equal(t, result{false, 0, µs, µs}, hitResult(t, s, "k", rule, 1))
			clock.Advance(µs)
			assert.Equal(t, result{true, 0, 0, 6 * time.Second}, hitResult(t, s, "k", rule, 1))
		})

		t.Run("RetryAfter exact to the microsecond", func(t *testing.T) {
			clock := newFakeClock(time.Minute)
			s, _ := newStore(t, tg, redisstore.WithClock(clock.Now))
			rule := store.Rule{Limit: 7, Window: time.Minute, Algorithm: store.SlidingCounter}
			// curr 7; 6 once 7*(W-e')/W <= 6 next window: e' = W/7 =
			// 8571428.57µs, rounded up.
			assert.Equal(t, result{true, 0, 0, time.Minute + 8571429*µs}, hitResult(t, s, "k", rule, 7))
			clock.Advance(80 * time.Second)
			// e=20s: 7*40/60 = 4.67 (Remaining 2); 3 more fit once
			// 7*(W-e')/W + 3 <= 7: e' = 3W/7 = 25714285.7µs, 5714286µs from
			// now, when the count also drops to 4.
			assert.Equal(t, result{false, 2, 5714286 * µs, 5714286 * µs}, hitResult(t, s, "k", rule, 3))
			clock.Advance(5714285 * µs)
			assert.Equal(t, result{false, 2, µs, µs}, hitResult(t, s, "k", rule, 3))
			clock.Advance(µs)
			// 7*(W-e')/W + 3 drops to 6 at e' = 4W/7 = 34285714.3µs.
			assert.Equal(t, result{true, 0, 0, 8571429 * µs}, hitResult(t, s, "k", rule, 3))
		})
	})
}

func TestGCRAArithmetic(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		t.Run("burst and refill", func(t *testing.T) {
			clock := newFakeClock(time.Second)
			s, _ := newStore(t, tg, redisstore.WithClock(clock.Now))
			// One token every 6s, 20 in the bucket.
			rule := store.Rule{Name: "gcra", Limit: 10, Window: time.Minute, Algorithm: store.GCRA, Burst: 20}

			r := must(s.Hit(ctx, "k", rule, 20))(t)
			assert.Equal(t, store.Result{Allowed: true, Limit: 10, ResetAfter: 120 * time.Second,
				Receipt: store.Receipt{ID: 1, Cost: 20, Rule: rule}}, r, "the whole burst at once; Limit stays the limit")
			assert.Equal(t, result{false, 0, 6 * time.Second, 120 * time.Second}, hitResult(t, s, "k", rule, 1))
			clock.Advance(6*time.Second - µs)
			assert.Equal(t, result{false, 0, µs, 114*time.Second + µs}, hitResult(t, s, "k", rule, 1))
			clock.Advance(µs)
			assert.Equal(t, result{true, 0, 0, 120 * time.Second}, hitResult(t, s, "k", rule, 1))
			clock.Advance(30 * time.Second)
			// Five tokens came back; six need another 6s.
			assert.Equal(t, result{false, 5, 6 * time.Second, 90 * time.Second}, hitResult(t, s, "k", rule, 6))
			assert.Equal(t, result{true, 0, 0, 120 * time.Second}, hitResult(t, s, "k", rule, 5))
			clock.Advance(time.Hour)
			// Full again, and no fuller than the burst.
			assert.Equal(t, result{true, 19, 0, 6 * time.Second}, hitResult(t, s, "k", rule, 1))
			assert.Equal(t, result{false, 19, 6 * time.Second, 6 * time.Second}, hitResult(t, s, "k", rule, 20))
		})

		t.Run("RetryAfter exact to the microsecond", func(t *testing.T) {
			clock := newFakeClock(time.Second)
			s, _ := newStore(t, tg, redisstore.WithClock(clock.Now))
			// A token every 23.3s.
			rule := store.Rule{Limit: 3, Window: 70 * time.Second, Algorithm: store.GCRA}
			assert.Equal(t, result{true, 0, 0, 70 * time.Second}, hitResult(t, s, "k", rule, 3))
			clock.Advance(23 * time.Second)
			// 23/23.33 of a token: the first comes 333333.3µs later,
			// rounded to the nearest microsecond.
			assert.Equal(t, result{false, 0, 333333 * µs, 47 * time.Second}, hitResult(t, s, "k", rule, 1))
			clock.Advance(333332 * µs)
			assert.Equal(t, result{false, 0, µs, 46666668 * µs}, hitResult(t, s, "k", rule, 1))
			clock.Advance(µs)
			assert.Equal(t, result{true, 0, 0, 70 * time.Second}, hitResult(t, s, "k", rule, 1))
		})
	})
}

func TestUndoByAlgorithm(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		pttl := func(t *testing.T, key string) time.Duration {
			t.Helper()
			return must(tg.client.PTTL(ctx, key).Result())(t)
		}

		t.Run("counter", func(t *testing.T) {
			clock := newFakeClock(time.Minute)
			s, prefix := newStore(t, tg, redisstore.WithClock(clock.Now))
			// The counter's undo needs no clock: a store reading Redis TIME
			// (hours away from the fake clock) undoes the same.
			noClock := must(redisstore.New(tg.client, redisstore.WithPrefix(prefix)))(t)
			rule := store.Rule{Name: "ctr", Limit: 10, Window: time.Minute, Algorithm: store.SlidingCounter}
			key := stateKey(prefix, "ctr", store.SlidingCounter, "k")

			r1 := must(s.Hit(ctx, "k", rule, 3))(t)
			clock.Advance(time.Minute)
			r2 := must(s.Hit(ctx, "k", rule, 2))(t) // prev 3, curr 2
			before := pttl(t, key)
			require.NoError(t, noClock.Undo(ctx, "k", r1.Receipt)) // the previous window's hits
			// Read before the next hit, which sets a fresh expiry.
			after := pttl(t, key)
			assert.Greater(t, after, time.Duration(0), "the state keeps an expiry")
			assert.LessOrEqual(t, after, before, "undo keeps the expiry, it does not extend it")
			assert.Equal(t, result{true, 7, 0, time.Minute + 20*time.Second}, hitResult(t, s, "k", rule, 1),
				"prev 0, curr 3; 2 once 3*(W-e')/W <= 2 next window")

			require.NoError(t, noClock.Undo(ctx, "k", r2.Receipt)) // curr 3-2
			require.NoError(t, noClock.Undo(ctx, "k", r2.Receipt)) // curr 1-2, never below 0
			assert.Equal(t, int64(0), must(tg.client.Exists(ctx, key).Result())(t), "an empty state is deleted")
			assert.Equal(t, result{true, 0, 0, time.Minute + 6*time.Second}, hitResult(t, s, "k", rule, 10))

			clock.Advance(2 * time.Minute)
			require.NoError(t, s.Undo(ctx, "k", r2.Receipt)) // two windows back: counts nowhere
			assert.Equal(t, result{true, 9, 0, 2 * time.Minute}, hitResult(t, s, "k", rule, 1))
		})

		t.Run("gcra", func(t *testing.T) {
			clock := newFakeClock(time.Second)
			s, prefix := newStore(t, tg, redisstore.WithClock(clock.Now))
			rule := store.Rule{Limit: 10, Window: time.Minute, Algorithm: store.GCRA} // a token every 6s
			key := stateKey(prefix, "", store.GCRA, "k")

			r1 := must(s.Hit(ctx, "k", rule, 4))(t)
			must(s.Hit(ctx, "k", rule, 6))(t)
			require.NoError(t, s.Undo(ctx, "k", r1.Receipt)) // four tokens back: tat 36s ahead
			ttl := pttl(t, key)
			assert.Greater(t, ttl, 35*time.Second, "the refunded bucket expires when full")
			assert.LessOrEqual(t, ttl, 36*time.Second, "the refunded bucket expires when full")
			assert.Equal(t, result{true, 0, 0, time.Minute}, hitResult(t, s, "k", rule, 4))

			clock.Advance(time.Minute)
			r := must(s.Hit(ctx, "k", rule, 2))(t)
			require.NoError(t, s.Undo(ctx, "k", r.Receipt))
			assert.Equal(t, int64(0), must(tg.client.Exists(ctx, key).Result())(t), "a full bucket is deleted")
			require.NoError(t, s.Undo(ctx, "k", r.Receipt), "a refund finding the bucket full")
			assert.Equal(t, result{true, 0, 0, time.Minute}, hitResult(t, s, "k", rule, 10))
		})
	})
}

// evalCounter is a go-redis hook counting the script calls a client sends.
type evalCounter struct{ n atomic.Int64 }

func (h *evalCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *evalCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *evalCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// calls returns the script calls counted since the last call of calls.
func (h *evalCounter) calls() int64 { return h.n.Swap(0) }

// TestStackAcrossClusterSlots decides stacks whose keys live in different
// slots of the real Cluster: one script call per key, and a stack denied by
// one part is counted by no other once HitAll returns.
func TestStackAcrossClusterSlots(t *testing.T) {
	ctx := context.Background()
	c := redistest.ClusterClient(t)
	counter := &evalCounter{}
	c.AddHook(counter)
	tg := target{name: "cluster", client: c, cluster: true}
	clock := newFakeClock(time.Minute)
	s, prefix := newStore(t, tg, redisstore.WithClock(clock.Now))
	require.NoError(t, s.Preload(ctx))

	userRule := store.Rule{Name: "user", Limit: 5, Window: time.Minute}
	user, ip := "user:alice", "ip:203.0.113.7"
	userKey := stateKey(prefix, "user", store.SlidingLog, user)
	userSlot := must(c.ClusterKeySlot(ctx, userKey).Result())(t)
	for _, alg := range []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			ipRule := store.Rule{Name: "ip-" + alg.String(), Limit: 1, Window: time.Minute, Algorithm: alg}
			ipKey := stateKey(prefix, ipRule.Name, alg, ip)
			require.NotEqual(t, userSlot, must(c.ClusterKeySlot(ctx, ipKey).Result())(t), "the keys must be in different slots")
			userTaken := func() int64 {
				return must(c.ZCard(ctx, userKey).Result())(t)
			}
			base := userTaken()
			counter.calls()

			out := make([]store.Result, 2)
			ok := []store.Hit{{Key: user, Rule: userRule, Cost: 1}, {Key: ip, Rule: ipRule, Cost: 1}}
			require.NoError(t, s.HitAll(ctx, ok, out))
			assert.True(t, out[0].Allowed && out[1].Allowed, "%+v", out)
			assert.Equal(t, 5-int(base)-1, out[0].Remaining)
			assert.Equal(t, int64(2), counter.calls(), "one script call per key")
			assert.Equal(t, base+1, userTaken())
			require.NoError(t, s.Undo(ctx, user, out[0].Receipt))
			counter.calls()

			// ip is now full: the user's part is recorded, then undone.
			require.NoError(t, s.HitAll(ctx, ok, out))
			assert.False(t, out[0].Allowed || out[1].Allowed, "%+v", out)
			assert.Equal(t, store.Result{Limit: 5, Remaining: 5 - int(base)}, out[0], "the user's part as it stood")
			assert.Positive(t, out[1].RetryAfter)
			assert.Equal(t, int64(3), counter.calls(), "two decisions and one undo")
			assert.Equal(t, base, userTaken(), "the denied stack is not counted by the user's rule")

			// ip first: denied at once; the user's part is only read.
			require.NoError(t, s.HitAll(ctx, []store.Hit{{Key: ip, Rule: ipRule, Cost: 1}, {Key: user, Rule: userRule, Cost: 1}}, out))
			assert.False(t, out[0].Allowed || out[1].Allowed, "%+v", out)
			assert.Positive(t, out[0].RetryAfter)
			assert.Equal(t, store.Result{Limit: 5, Remaining: 5 - int(base)}, out[1])
			assert.Equal(t, int64(2), counter.calls(), "one decision and one read")
			assert.Equal(t, base, userTaken())
		})
	}

	// A stack on one key (its rules in one slot) is one script call, even
	// across algorithms.
	counter.calls()
	out := make([]store.Result, 3)
	require.NoError(t, s.HitAll(ctx, []store.Hit{
		{Key: user, Rule: userRule, Cost: 1},
		{Key: user, Rule: store.Rule{Name: "c", Limit: 5, Window: time.Minute, Algorithm: store.SlidingCounter}, Cost: 1},
		{Key: user, Rule: store.Rule{Name: "g", Limit: 5, Window: time.Minute, Algorithm: store.GCRA}, Cost: 1},
	}, out))
	assert.True(t, out[0].Allowed, "%+v", out)
	assert.Equal(t, int64(1), counter.calls())
}

// TestCounterAndGCRAMemoryUsage reports MEMORY USAGE of the O(1) states on
// the real server (run with -v to see the numbers), with a prefix as long as
// the default one, and checks that each takes under 200 bytes.
func TestCounterAndGCRAMemoryUsage(t *testing.T) {
	ctx := context.Background()
	c := redistest.Client(t)
	prefix := "t" + redistest.Token()[:5] + ":" // as long as "sluice:"
	require.Len(t, prefix, len(redisstore.DefaultPrefix))
	redistest.CleanupKeys(t, c, prefix+"*")
	clock := newFakeClock(time.Hour)
	s := must(redisstore.New(c, redisstore.WithPrefix(prefix), redisstore.WithClock(clock.Now)))(t)

	cases := []struct {
		name  string
		rule  store.Rule
		costs []int // one hit each, 10s apart
	}{
		{"counter 100/minute", store.Rule{Name: "api", Limit: 100, Window: time.Minute, Algorithm: store.SlidingCounter}, []int{1, 1}},
		// Long numbers: counts of nine digits in both windows.
		{"counter 1e9/10s, full windows", store.Rule{Name: "api", Limit: store.MaxCounterLimit, Window: 10 * time.Second, Algorithm: store.SlidingCounter},
			[]int{600_000_000, 400_000_000}},
		{"gcra 100/minute", store.Rule{Name: "api", Limit: 100, Window: time.Minute, Algorithm: store.GCRA}, []int{1, 1}},
		{"gcra 3/70s (a fractional tat)", store.Rule{Name: "api", Limit: 3, Window: 70 * time.Second, Algorithm: store.GCRA}, []int{1, 1}},
		{"gcra 7/70s burst 1e9", store.Rule{Name: "api", Limit: 7, Window: 70 * time.Second, Algorithm: store.GCRA, Burst: store.MaxCounterLimit}, []int{3, 5}},
	}
	for i, tc := range cases {
		key := fmt.Sprintf("203.0.113.%d", i)
		for _, cost := range tc.costs {
			require.True(t, must(s.Hit(ctx, key, tc.rule, cost))(t).Allowed)
			clock.Advance(10 * time.Second)
		}
		rk := stateKey(prefix, tc.rule.Name, tc.rule.Algorithm, key)
		bytes := must(c.MemoryUsage(ctx, rk).Result())(t)
		value := must(c.Get(ctx, rk).Result())(t)
		t.Logf("%s: MEMORY USAGE %d bytes (key %d bytes, value %q)", tc.name, bytes, len(rk), value)
		assert.Less(t, bytes, int64(200), tc.name)
	}
}

// TestStackOnRing decides stacks over two keys on a Ring of two miniredis
// shards: one script call per key, and a denied stack counted nowhere.
func TestStackOnRing(t *testing.T) {
	ctx := context.Background()
	m1, m2 := miniredis.RunT(t), miniredis.RunT(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": m1.Addr(), "b": m2.Addr()}})
	t.Cleanup(func() { _ = ring.Close() })
	counter := &evalCounter{}
	ring.AddHook(counter)
	clock := newFakeClock(time.Minute)
	s := must(redisstore.New(ring, redisstore.WithClock(clock.Now)))(t)
	require.NoError(t, s.Preload(ctx))

	userRule := store.Rule{Name: "user", Limit: 5, Window: time.Minute}
	ipRule := store.Rule{Name: "ip", Limit: 1, Window: time.Minute, Algorithm: store.GCRA}
	stack := []store.Hit{{Key: "user:alice", Rule: userRule, Cost: 2}, {Key: "ip:203.0.113.7", Rule: ipRule, Cost: 1}}
	out := make([]store.Result, 2)
	counter.calls()
	require.NoError(t, s.HitAll(ctx, stack, out))
	assert.True(t, out[0].Allowed && out[1].Allowed, "%+v", out)
	assert.Equal(t, 3, out[0].Remaining)
	assert.Equal(t, int64(2), counter.calls(), "one script call per key")

	require.NoError(t, s.HitAll(ctx, stack, out))
	assert.Equal(t, []store.Result{
		{Limit: 5, Remaining: 3, ResetAfter: time.Minute},
		{Limit: 1, RetryAfter: time.Minute, ResetAfter: time.Minute},
	}, out, "denied by ip: the user's part as it stood")
	assert.Equal(t, int64(3), counter.calls(), "two decisions and one undo")
	assert.Equal(t, result{true, 0, 0, time.Minute}, hitResult(t, s, "user:alice", userRule, 3),
		"the denied stack left the user's rule as it was")
}
