package redisstore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// The operators' calls on Redis, beyond the conformance suite: what they
// leave in Redis, the fence counter's expiry, and malformed replies.

// TestPeekWritesNothing checks that Peek leaves Redis as it found it: no key
// for a key never hit, and a state whose hits have all left the window
// (which a Hit would prune or rewrite) untouched, members, value and TTL.
func TestPeekWritesNothing(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		clock := newFakeClock(time.Minute)
		s, prefix := newStore(t, tg, redisstore.WithClock(clock.Now))
		rules := map[store.Algorithm]store.Rule{}
		for _, alg := range []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA} {
			rules[alg] = store.Rule{Name: "peek", Limit: 5, Window: time.Minute, Algorithm: alg}
			res := must(s.Peek(ctx, "fresh", rules[alg]))(t)
			assert.Equal(t, store.Result{Allowed: true, Limit: 5, Remaining: 5}, res, "%v", alg)
		}
		assert.Empty(t, allKeys(t, tg, prefix), "Peek of keys never hit")

		// Hits now; Peeks two windows later, by the Store's clock (Redis
		// expires the keys by its own clock, a minute on).
		type state struct {
			value any
			pttl  time.Duration
		}
		read := func(alg store.Algorithm) state {
			k := stateKey(prefix, "peek", alg, "used")
			var v any
			var err error
			if alg == store.SlidingLog {
				v, err = tg.client.ZRangeWithScores(ctx, k, 0, -1).Result()
			} else {
				v, err = tg.client.Get(ctx, k).Result()
			}
			require.NoError(t, err)
			return state{v, must(tg.client.PTTL(ctx, k).Result())(t)}
		}
		before := map[store.Algorithm]state{}
		for alg, rule := range rules {
			require.True(t, must(s.Hit(ctx, "used", rule, 2))(t).Allowed)
			before[alg] = read(alg)
		}
		clock.Advance(2 * time.Minute)
		for alg, rule := range rules {
			res := must(s.Peek(ctx, "used", rule))(t)
			assert.Equal(t, store.Result{Allowed: true, Limit: 5, Remaining: 5}, res, "%v: the hits have left", alg)
			after := read(alg)
			assert.Equal(t, before[alg].value, after.value, "%v: state after Peek", alg)
			assert.LessOrEqual(t, after.pttl, before[alg].pttl, "%v: TTL after Peek", alg)
		}
	})
}

// TestResetAndForceReleaseDeleteTheirKeys checks what the two calls delete:
// Reset the state's key, ForceRelease the lock's key but not its fence
// counter.
func TestResetAndForceReleaseDeleteTheirKeys(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		s, prefix := newStore(t, tg)
		for _, alg := range []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA} {
			rule := store.Rule{Name: "reset", Limit: 5, Window: time.Minute, Algorithm: alg}
			must(s.Hit(ctx, "k", rule, 1))(t)
			k := stateKey(prefix, "reset", alg, "k")
			require.Equal(t, int64(1), must(tg.client.Exists(ctx, k).Result())(t), "%v", alg)
			require.NoError(t, s.Reset(ctx, "k", rule))
			assert.Equal(t, int64(0), must(tg.client.Exists(ctx, k).Result())(t), "%v after Reset", alg)
		}

		must(s.Acquire(ctx, "lock", "tok", time.Minute))(t)
		require.NoError(t, s.ForceRelease(ctx, "lock"))
		assert.Equal(t, int64(0), must(tg.client.Exists(ctx, lockKey(prefix, "lock")).Result())(t), "lock key")
		assert.Equal(t, int64(1), must(tg.client.Exists(ctx, fenceKey(prefix, "lock")).Result())(t), "fence counter")
		assert.Empty(t, allKeys(t, tg, prefix+"r:"), "no state left")
	})
}

// TestInspectAfterFenceCounterExpires checks that Inspect reports the fence
// while the counter lives and 0 once it has expired, and that the TTL is
// the lock's on the Redis clock, in whole milliseconds.
func TestInspectAfterFenceCounterExpires(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		s, _ := newStore(t, tg, redisstore.WithFenceTTL(redisstore.MinFenceTTL))
		res := must(s.Acquire(ctx, "lock", "tok", 1500*time.Millisecond))(t)
		require.True(t, res.Acquired)
		info := must(s.Inspect(ctx, "lock"))(t)
		assert.True(t, info.Held)
		assert.Equal(t, res.Fence, info.Fence)
		assert.LessOrEqual(t, info.TTL, 1500*time.Millisecond)
		assert.Greater(t, info.TTL, time.Second)
		assert.Zero(t, info.TTL%time.Millisecond, "whole milliseconds")

		require.NoError(t, s.Release(ctx, "lock", "tok"))
		assert.Equal(t, store.LockInfo{Fence: res.Fence}, must(s.Inspect(ctx, "lock"))(t), "released")
		if tg.mini != nil {
			tg.mini.FastForward(redisstore.MinFenceTTL + 100*time.Millisecond)
		} else {
			time.Sleep(redisstore.MinFenceTTL + 100*time.Millisecond)
		}
		assert.Equal(t, store.LockInfo{}, must(s.Inspect(ctx, "lock"))(t), "the fence counter expired")
		next := must(s.Acquire(ctx, "lock", "tok", time.Second))(t)
		assert.Greater(t, next.Fence, res.Fence, "fences keep increasing")
	})
}

// opsOps are the operators' calls, for the fault tests.
var opsOps = []op{
	{"peek", func(ctx context.Context, s *redisstore.Store) (bool, error) {
		r, err := s.Peek(ctx, "k", store.Rule{Limit: 10, Window: time.Minute})
		return r.Allowed || r != (store.Result{}), err
	}},
	{"reset", func(ctx context.Context, s *redisstore.Store) (bool, error) {
		return false, s.Reset(ctx, "k", store.Rule{Limit: 10, Window: time.Minute})
	}},
	{"inspect", func(ctx context.Context, s *redisstore.Store) (bool, error) {
		info, err := s.Inspect(ctx, "lock")
		return info != (store.LockInfo{}), err
	}},
	{"force-release", func(ctx context.Context, s *redisstore.Store) (bool, error) {
		return false, s.ForceRelease(ctx, "lock")
	}},
}

func TestOpsMalformedReplyIsAnError(t *testing.T) {
	corruptions := []struct {
		name    string
		corrupt func(v any) (any, error)
	}{
		{"nil reply", func(any) (any, error) { return nil, redis.Nil }},
		{"status string", func(any) (any, error) { return "OK", nil }},
		{"integers as strings", func(v any) (any, error) {
			return mapInts(v, func(n int64) any { return strconv.FormatInt(n, 10) }), nil
		}},
		{"out-of-range integers", func(v any) (any, error) {
			return mapInts(v, func(int64) any { return int64(-5) }), nil
		}},
		{"array shape", func(v any) (any, error) {
			if arr, ok := v.([]any); ok {
				return arr[:len(arr)-1], nil
			}
			return []any{v}, nil
		}},
		{"allowed with a retry", func(v any) (any, error) {
			if arr, ok := v.([]any); ok && len(arr) == 4 {
				return []any{int64(1), int64(3), int64(7), int64(0)}, nil
			}
			return "OK", nil
		}},
	}
	for _, cr := range corruptions {
		t.Run(cr.name, func(t *testing.T) {
			_, c := newMiniredis(t)
			s := must(redisstore.New(corruptScripter{Client: c, corrupt: cr.corrupt}))(t)
			for _, o := range opsOps {
				t.Run(o.name, func(t *testing.T) {
					granted, err := o.call(context.Background(), s)
					assertStoreError(t, granted, err)
					assert.ErrorContains(t, err, "redisstore: "+o.name+": unexpected reply")
				})
			}
		})
	}
}

func TestOpsErrorsFromRedisAreWrapped(t *testing.T) {
	_, c := newMiniredis(t)
	boom := errors.New("boom")
	s := must(redisstore.New(corruptScripter{Client: c, corrupt: func(any) (any, error) { return nil, boom }}))(t)
	for _, o := range opsOps {
		t.Run(o.name, func(t *testing.T) {
			granted, err := o.call(context.Background(), s)
			assertStoreError(t, granted, err)
			assert.ErrorIs(t, err, boom)
			assert.ErrorContains(t, err, "redisstore: "+o.name+": ")
		})
	}
}

func TestOpsStoppedServerIsAnError(t *testing.T) {
	m, c := newMiniredis(t)
	s := must(redisstore.New(c))(t)
	m.Close()
	for _, o := range opsOps {
		t.Run(o.name, func(t *testing.T) {
			granted, err := runWithin(t, func() (bool, error) { return o.call(context.Background(), s) })
			assertStoreError(t, granted, err)
		})
	}
}

// TestPeekParity drives memstore and redisstore with the same random traffic
// (hits of random costs, an occasional Reset, random steps of the clock) on
// the same fake clock, and wants every Peek identical, field by field.
func TestPeekParity(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		for _, alg := range []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA} {
			t.Run(alg.String(), func(t *testing.T) {
				ctx := context.Background()
				clock := newFakeClock(time.Hour)
				mem := must(memstore.New(memstore.WithClock(clock.Now)))(t)
				t.Cleanup(func() { _ = mem.Close() })
				red, _ := newStore(t, tg, redisstore.WithClock(clock.Now))
				rng := rand.New(rand.NewPCG(uint64(alg), 7))
				keys := []string{"a", "b"}
				for i := range 300 {
					rule := parityRules[alg][rng.IntN(len(parityRules[alg]))]
					key := keys[rng.IntN(len(keys))]
					switch n := rng.IntN(10); {
					case n == 0:
						require.NoError(t, mem.Reset(ctx, key, rule))
						require.NoError(t, red.Reset(ctx, key, rule))
					case n < 6:
						cost := 1 + rng.IntN(min(rule.Capacity(), 10))
						m := must(mem.Hit(ctx, key, rule, cost))(t)
						r := must(red.Hit(ctx, key, rule, cost))(t)
						require.Equal(t, m.Allowed, r.Allowed, "step %d: hit of cost %d under %+v", i, cost, rule)
					}
					for _, rule := range parityRules[alg] {
						m := must(mem.Peek(ctx, key, rule))(t)
						r := must(red.Peek(ctx, key, rule))(t)
						require.Equal(t, m, r, "step %d: Peek of %q under %+v: memstore, then redisstore", i, key, rule)
					}
					clock.Advance(time.Duration(rng.Int64N(int64(3 * time.Second))).Truncate(µs))
				}
			})
		}
	})
}
