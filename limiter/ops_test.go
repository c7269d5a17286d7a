package limiter_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// sameRedis returns another Store on m, as another instance of an
// application would have.
func sameRedis(t *testing.T, m *miniredis.Miniredis) *redisstore.Store {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	st, err := redisstore.New(client)
	require.NoError(t, err)
	return st
}

// Peek reports what a request of cost 1 would find, and counts nothing.
func TestPeekCountsNothing(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, "api", 3, time.Minute, newMem(t, clk))
	ctx := t.Context()

	d, err := l.Peek(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "api", d.Policy)
	assert.Equal(t, 3, d.Limit)
	assert.Equal(t, time.Minute, d.Window)
	assert.Equal(t, 1, d.Cost)
	assert.True(t, d.Allowed)
	assert.Equal(t, 3, d.Remaining, "a fresh key")
	assert.Zero(t, d.ResetAfter)
	for range 50 {
		again, err := l.Peek(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, d, again)
	}
	require.NoError(t, l.Undo(ctx, d), "a Peek has nothing to undo")

	a, err := l.AllowN(ctx, "k", 2)
	require.NoError(t, err)
	require.True(t, a.Allowed, "the peeks took nothing")
	clk.Advance(10 * time.Second)
	d, err = l.Peek(ctx, "k")
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	assert.Equal(t, 1, d.Remaining)
	assert.Equal(t, 50*time.Second, d.ResetAfter)
	assert.Zero(t, d.RetryAfter)

	a, err = l.Allow(ctx, "k")
	require.NoError(t, err)
	assert.True(t, a.Allowed)
	assert.Equal(t, d.Remaining-1, a.Remaining, "the next request finds what Peek reported")
	d, err = l.Peek(ctx, "k")
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	assert.Zero(t, d.Remaining)
	assert.Equal(t, 50*time.Second, d.RetryAfter)
	denied, err := l.Allow(ctx, "k")
	require.NoError(t, err)
	assert.False(t, denied.Allowed)
	assert.Equal(t, d.RetryAfter, denied.RetryAfter)
}

// Peek follows the limiter's algorithm: GCRA's bucket holds its burst.
func TestPeekUnderGCRA(t *testing.T) {
	clk := newClock()
	l, err := limiter.New("burst", 10, time.Minute, newMem(t, clk),
		limiter.WithAlgorithm(store.GCRA), limiter.WithBurst(20))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	ctx := t.Context()
	d, err := l.Peek(ctx, "k")
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	assert.Equal(t, 20, d.Remaining)
	assert.Equal(t, 10, d.Limit)
	_, err = l.AllowN(ctx, "k", 20)
	require.NoError(t, err)
	d, err = l.Peek(ctx, "k")
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	assert.Equal(t, 6*time.Second, d.RetryAfter, "one token every 6s")
	assert.Equal(t, 120*time.Second, d.ResetAfter, "full again in 20 tokens' time")
}

// Reset gives a key its whole limit back, here and on every instance that
// shares the store, and this instance's deny cache forgets the key at once.
func TestResetGivesTheQuotaBack(t *testing.T) {
	m, st := miniStore(t, nil)
	l := newLimiter(t, "api", 2, time.Minute, st) // a remote store: deny cache on
	ctx := t.Context()
	for _, key := range []string{"k", "other"} {
		for range 2 {
			d, err := l.Allow(ctx, key)
			require.NoError(t, err)
			require.True(t, d.Allowed)
		}
	}
	d, err := l.Allow(ctx, "k")
	require.NoError(t, err)
	require.False(t, d.Allowed)
	before := m.CommandCount()
	d, err = l.Allow(ctx, "k")
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, before, m.CommandCount(), "the denial is cached")

	require.NoError(t, l.Reset(ctx, "k"))
	for i := range 2 {
		d, err := l.Allow(ctx, "k")
		require.NoError(t, err)
		assert.True(t, d.Allowed, "request %d after Reset", i+1)
	}
	d, err = l.Allow(ctx, "other")
	require.NoError(t, err)
	assert.False(t, d.Allowed, "another key keeps its usage")

	// Another instance over the same Redis sees the reset too.
	twin, err := limiter.New("api", 2, time.Minute, sameRedis(t, m))
	require.NoError(t, err)
	t.Cleanup(func() { _ = twin.Close() })
	require.NoError(t, l.Reset(ctx, "other"))
	p, err := twin.Peek(ctx, "other")
	require.NoError(t, err)
	assert.True(t, p.Allowed)
	assert.Equal(t, 2, p.Remaining)

	require.NoError(t, l.Reset(ctx, "never-seen"), "a key without usage")
}

// Peek and Reset refuse an empty key and a closed Limiter, and pass a store
// failure on.
func TestPeekAndResetErrors(t *testing.T) {
	m := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	st, err := redisstore.New(client)
	require.NoError(t, err)
	l, err := limiter.New("api", 2, time.Minute, st)
	require.NoError(t, err)
	ctx := t.Context()

	_, err = l.Peek(ctx, "")
	assert.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.ErrorIs(t, l.Reset(ctx, ""), store.ErrInvalidArgument)

	m.Close()
	_, err = l.Peek(ctx, "k")
	assert.Error(t, err)
	assert.NotErrorIs(t, err, store.ErrInvalidArgument)
	assert.Error(t, l.Reset(ctx, "k"))

	require.NoError(t, l.Close())
	_, err = l.Peek(ctx, "k")
	assert.ErrorIs(t, err, limiter.ErrClosed)
	assert.ErrorIs(t, l.Reset(ctx, "k"), limiter.ErrClosed)
}

// countingObserver counts the decisions it is told of.
type countingObserver struct {
	mu        sync.Mutex
	decisions int
}

func (o *countingObserver) ObserveDecision(limiter.DecisionEvent) {
	o.mu.Lock()
	o.decisions++
	o.mu.Unlock()
}

func (o *countingObserver) ObserveLock(limiter.LockEvent) {}

// Peek and Reset are no decisions: the Observer hears of neither.
func TestPeekAndResetAreNotObserved(t *testing.T) {
	obs := &countingObserver{}
	l, err := limiter.New("api", 2, time.Minute, newMem(t, newClock()), limiter.WithObserver(obs))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	ctx := t.Context()
	_, err = l.Allow(ctx, "k")
	require.NoError(t, err)
	_, err = l.Peek(ctx, "k")
	require.NoError(t, err)
	require.NoError(t, l.Reset(ctx, "k"))
	assert.Equal(t, 1, obs.decisions, "the Allow only")
}

// A Policy's Limiter resets the key the Policy counts requests under.
func TestResetThroughPolicy(t *testing.T) {
	clk := newClock()
	p := mustPolicy(t, "login", 1, time.Minute, newMem(t, clk))
	h := chain(ok, p)
	require.Equal(t, 200, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	require.Equal(t, 429, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	// httptest requests come from 192.0.2.1, the key of the default KeyFunc.
	d, err := p.Limiter().Peek(t.Context(), "192.0.2.1")
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.NoError(t, p.Limiter().Reset(t.Context(), "192.0.2.1"))
	assert.Equal(t, 200, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
}

// docs/ratelimit.md, "Operations".
func ExampleLimiter_Reset() {
	st, _ := memstore.New()
	defer st.Close()
	api, _ := limiter.NewPolicy("api", 5, time.Minute, st)
	defer api.Close()
	ctx := context.Background()
	l := api.Limiter()
	for range 5 {
		_, _ = l.Allow(ctx, "203.0.113.9")
	}

	// snippet:begin ratelimit-ops
	key := "203.0.113.9" // the key the policy's KeyFunc gives for the client
	d, err := l.Peek(ctx, key)
	if err != nil {
		log.Fatal(err) // the store failed
	}
	fmt.Printf("%d of %d left, admitted now: %v\n", d.Remaining, d.Limit, d.Allowed)
	if err := l.Reset(ctx, key); err != nil {
		log.Fatal(err)
	}
	d, _ = l.Peek(ctx, key)
	fmt.Printf("after Reset: %d of %d left\n", d.Remaining, d.Limit)
	// snippet:end

	// Output:
	// 0 of 5 left, admitted now: false
	// after Reset: 5 of 5 left
}
