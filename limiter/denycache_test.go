package limiter_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store/redisstore"
)

func miniStore(t *testing.T, clk *testClock) (*miniredis.Miniredis, *redisstore.Store) {
	t.Helper()
	m := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	var opts []redisstore.Option
	if clk != nil {
		opts = append(opts, redisstore.WithClock(clk.Now))
	}
	st, err := redisstore.New(client, opts...)
	require.NoError(t, err)
	return m, st
}

// A denied flood from one client costs the store one call, and the cached
// denials carry the same response as the store's.
func TestDenyCacheAnswersFlood(t *testing.T) {
	m, st := miniStore(t, nil)
	p := mustPolicy(t, "api", 2, 10*time.Second, st)
	h := chain(ok, p)
	for range 2 {
		require.Equal(t, 200, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	}
	first := serve(h, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, 429, first.Code)
	before := m.CommandCount()
	for range 500 {
		w := serve(h, httptest.NewRequest("GET", "/", nil))
		require.Equal(t, 429, w.Code)
		assert.Equal(t, "0", w.Header().Get("X-RateLimit-Remaining"))
		assert.Equal(t, first.Header().Get("Retry-After"), w.Header().Get("Retry-After"))
		assert.Equal(t, first.Body.String(), w.Body.String())
	}
	assert.Zero(t, m.CommandCount()-before, "denied requests reached the store")

	// Another client is not affected.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "198.51.100.7:1234"
	assert.Equal(t, 200, serve(h, r).Code)
}

// The cache holds a denial only until its retry-after, and an undo on this
// instance forgets it at once.
func TestDenyCacheExpiresAndForgets(t *testing.T) {
	_, st := miniStore(t, nil)
	l, err := limiter.New("short", 1, 50*time.Millisecond, st)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	ctx := t.Context()
	d, err := l.Allow(ctx, "k")
	require.NoError(t, err)
	require.True(t, d.Allowed)
	denied, err := l.Allow(ctx, "k")
	require.NoError(t, err)
	require.False(t, denied.Allowed)
	time.Sleep(denied.RetryAfter + 5*time.Millisecond)
	again, err := l.Allow(ctx, "k")
	require.NoError(t, err)
	assert.True(t, again.Allowed, "the cache kept a denial past its retry-after")

	// Undo gives the hit back: the next request asks the store.
	_, err = l.Allow(ctx, "k")
	require.NoError(t, err)
	require.NoError(t, l.Undo(ctx, again))
	d, err = l.Allow(ctx, "k")
	require.NoError(t, err)
	assert.True(t, d.Allowed, "a denial cached before an undo still answered")
}

// WithDenyCache(0) turns the cache off: every request asks the store.
func TestDenyCacheOff(t *testing.T) {
	m, st := miniStore(t, nil)
	p := mustPolicy(t, "api", 1, time.Minute, st, limiter.WithDenyCache(0))
	h := chain(ok, p)
	serve(h, httptest.NewRequest("GET", "/", nil))
	before := m.CommandCount()
	for range 10 {
		require.Equal(t, 429, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	}
	assert.GreaterOrEqual(t, m.CommandCount()-before, 10)
}

// A denied stacked request is remembered as a whole: the flood that follows
// costs no store call and carries every policy's headers.
func TestDenyCacheStack(t *testing.T) {
	m, st := miniStore(t, nil)
	burst := mustPolicy(t, "burst", 2, time.Minute, st)
	hourly := mustPolicy(t, "hourly", 10, time.Hour, st)
	h := chain(ok, mustStack(t, burst, hourly))
	for range 2 {
		require.Equal(t, 200, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	}
	first := serve(h, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, 429, first.Code)
	before := m.CommandCount()
	for range 100 {
		w := serve(h, httptest.NewRequest("GET", "/", nil))
		require.Equal(t, 429, w.Code)
		assert.Equal(t, first.Header().Get("RateLimit-Policy"), w.Header().Get("RateLimit-Policy"))
		assert.Regexp(t, `^"burst";r=0;t=\d+, "hourly";r=8;t=\d+$`, w.Header().Get("RateLimit"))
		assert.Equal(t, first.Body.String(), w.Body.String())
	}
	assert.Zero(t, m.CommandCount()-before, "denied requests reached the store")
}

// A Reset or an Undo of one policy's key on this instance forgets the
// stacked denial that policy made: the next request asks the store.
func TestDenyCacheStackForgetsResetAndUndo(t *testing.T) {
	m, st := miniStore(t, nil)
	burst := mustPolicy(t, "burst", 10, time.Minute, st)
	hourly := mustPolicy(t, "hourly", 2, time.Hour, st)
	h := chain(ok, mustStack(t, burst, hourly))
	const client = "192.0.2.1" // httptest's RemoteAddr
	ctx := t.Context()
	for range 2 {
		require.Equal(t, 200, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	}
	require.Equal(t, 429, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	before := m.CommandCount()
	require.Equal(t, 429, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	require.Equal(t, before, m.CommandCount(), "the stacked denial is cached")

	require.NoError(t, hourly.Limiter().Reset(ctx, client))
	assert.Equal(t, 200, serve(h, httptest.NewRequest("GET", "/", nil)).Code, "a Reset of the denying policy")

	d, err := hourly.Limiter().Allow(ctx, client) // the hourly quota's last hit
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 429, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	require.NoError(t, hourly.Limiter().Undo(ctx, d))
	assert.Equal(t, 200, serve(h, httptest.NewRequest("GET", "/", nil)).Code, "an Undo of the denying policy's hit")
}
