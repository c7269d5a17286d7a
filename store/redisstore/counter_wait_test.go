package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// At the largest limit and window, float rounding puts the counter's closed
// form for the wait about two million microseconds from the exact answer.
// Both stores must still find the least waiting time (denied a microsecond
// before it, admitted at it) and agree, without a search that steps one
// microsecond at a time and would hold Redis for seconds.
func TestCounterWaitAtTheBounds(t *testing.T) {
	rule := store.Rule{Limit: store.MaxCounterLimit, Window: store.MaxWindow, Algorithm: store.SlidingCounter}
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		clock := newFakeClock(rule.Window)
		rs, _ := newStore(t, tg, redisstore.WithClock(clock.Now))
		ms, err := memstore.New(memstore.WithClock(clock.Now))
		require.NoError(t, err)
		t.Cleanup(func() { _ = ms.Close() })

		both := func(cost int) (store.Result, store.Result) {
			t.Helper()
			r := must(rs.Hit(ctx, "k", rule, cost))(t)
			m := must(ms.Hit(ctx, "k", rule, cost))(t)
			r.Receipt, m.Receipt = store.Receipt{}, store.Receipt{}
			require.Equal(t, m, r, "redisstore and memstore disagree")
			return r, m
		}
		// One hit at the end of a fixed window, then the limit less one at
		// the start of the next: the previous window's single hit still
		// weighs almost 1.
		clock.Advance(rule.Window - time.Microsecond)
		both(1)
		clock.Advance(2 * time.Microsecond)
		res, _ := both(store.MaxCounterLimit - 1)
		require.True(t, res.Allowed)
		denied, _ := both(1)
		require.False(t, denied.Allowed)
		wait := denied.RetryAfter
		require.Greater(t, wait, time.Duration(0))

		clock.Advance(wait - time.Microsecond)
		before, _ := both(1)
		assert.False(t, before.Allowed, "admitted a microsecond before RetryAfter (%v)", wait)
		clock.Advance(time.Microsecond)
		at, _ := both(1)
		assert.True(t, at.Allowed, "denied at RetryAfter (%v)", wait)
	})
}
