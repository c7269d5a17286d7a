package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// TestSlidingLogHitsThatLeft follows a log whose oldest hit has left the
// window while the hits after it have not: a denial leaves that hit in the
// log and must count and rank around it (the retry time is that of the
// second hit in the window, not of the second in the log), alone and in a
// stack; the next recorded hit drops it.
func TestSlidingLogHitsThatLeft(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		clock := newFakeClock(time.Minute)
		s, prefix := newStore(t, tg, redisstore.WithClock(clock.Now))
		rule := store.Rule{Name: "log", Limit: 3, Window: 10 * time.Second}
		other := store.Rule{Name: "other", Limit: 5, Window: time.Minute, Algorithm: store.GCRA}
		key := stateKey(prefix, rule.Name, store.SlidingLog, "k")
		members := func() int64 { return must(tg.client.ZCard(ctx, key).Result())(t) }

		for _, step := range []time.Duration{0, 4 * time.Second, 2 * time.Second} {
			clock.Advance(step)
			require.True(t, must(s.Hit(ctx, "k", rule, 1))(t).Allowed)
		}
		// Hits at 0s, 4s and 6s; at 10s the first has left the window.
		clock.Advance(4 * time.Second)

		want := store.Result{Limit: 3, Remaining: 1, RetryAfter: 6 * time.Second, ResetAfter: 4 * time.Second}
		assert.Equal(t, want, must(s.Hit(ctx, "k", rule, 3))(t), "cost 3 waits for the hit at 6s")
		assert.Equal(t, int64(3), members(), "a denial writes nothing")

		out := make([]store.Result, 2)
		require.NoError(t, s.HitAll(ctx, []store.Hit{{Key: "k", Rule: rule, Cost: 3}, {Key: "k", Rule: other, Cost: 1}}, out))
		assert.Equal(t, want, out[0], "the stack decides the log part as Hit does")
		assert.False(t, out[1].Allowed)

		res := must(s.Hit(ctx, "k", rule, 1))(t)
		assert.True(t, res.Allowed)
		assert.Equal(t, 0, res.Remaining)
		assert.Equal(t, 4*time.Second, res.ResetAfter)
		assert.Equal(t, int64(3), members(), "the hit that left is dropped when one is recorded")

		// Every hit leaves: the next one finds a log with nothing in the window.
		clock.Advance(time.Minute)
		res = must(s.Hit(ctx, "k", rule, 2))(t)
		assert.True(t, res.Allowed)
		assert.Equal(t, store.Result{Allowed: true, Limit: 3, Remaining: 1, ResetAfter: 10 * time.Second, Receipt: res.Receipt}, res)
		assert.Equal(t, int64(2), members())
	})
}
