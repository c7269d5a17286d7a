package limiter_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
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

// A cached stacked denial counts every policy's wait down; a policy whose
// wait has passed no longer denies while another still does, and once the
// longest wait has passed the store decides again.
func TestDenyCacheStackCountdown(t *testing.T) {
	clk := newClock()
	m, st := miniStore(t, clk)
	short := mustPolicy(t, "short", 1, 10*time.Second, st, limiter.WithClock(clk.Now))
	long := mustPolicy(t, "long", 1, time.Hour, st, limiter.WithClock(clk.Now))
	h := chain(ok, mustStack(t, short, long))
	require.Equal(t, 200, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	w := serve(h, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, 429, w.Code)
	require.Equal(t, "3600", w.Header().Get("Retry-After"))
	before := m.CommandCount()

	clk.Advance(4 * time.Second)
	w = serve(h, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, 429, w.Code)
	assert.Equal(t, "3596", w.Header().Get("Retry-After"))
	assert.Equal(t, `"short";r=0;t=6, "long";r=0;t=3596`, w.Header().Get("RateLimit"))

	clk.Advance(6 * time.Second) // short's wait has passed, long's has not
	w = serve(h, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, 429, w.Code)
	assert.Equal(t, "3590", w.Header().Get("Retry-After"))
	assert.Regexp(t, `^"short";r=\d+;t=0, "long";r=0;t=3590$`, w.Header().Get("RateLimit"))
	assert.Contains(t, w.Body.String(), `"policy":"long"`)
	assert.Equal(t, before, m.CommandCount(), "the denials were answered from the cache")

	clk.Advance(3590 * time.Second) // long's wait has passed too
	assert.Equal(t, 200, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	assert.Greater(t, m.CommandCount(), before, "the store decided")
}

// A cached stacked denial answers only a request with the same cost and
// limit for each policy; any other asks the store.
func TestDenyCacheStackSameCostAndLimit(t *testing.T) {
	m, st := miniStore(t, nil)
	header := func(name string, def int) func(*http.Request) (int, error) {
		return func(r *http.Request) (int, error) {
			if v := r.Header.Get(name); v != "" {
				return strconv.Atoi(v)
			}
			return def, nil
		}
	}
	burst := mustPolicy(t, "burst", 2, time.Minute, st, limiter.WithCostFunc(header("X-Cost", 1)))
	hourly := mustPolicy(t, "hourly", 10, time.Hour, st, limiter.WithLimitFunc(header("X-Limit", 10)))
	h := chain(ok, mustStack(t, burst, hourly))
	send := func(cost, limit string) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Cost", cost)
		r.Header.Set("X-Limit", limit)
		return serve(h, r).Code
	}
	require.Equal(t, 200, send("2", "10"))
	require.Equal(t, 429, send("1", "10"))
	for _, tc := range []struct {
		cost, limit string
		cached      bool
	}{{"1", "10", true}, {"2", "10", false}, {"1", "20", false}, {"1", "5", false}} {
		before := m.CommandCount()
		require.Equal(t, 429, send(tc.cost, tc.limit))
		assert.Equal(t, tc.cached, m.CommandCount() == before, "cost %s, limit %s: answered from the cache", tc.cost, tc.limit)
	}
}

// An undo of an admitted stacked request (skip-successful) forgets the
// denial cached since: the next request asks the store, which admits it.
func TestDenyCacheStackForgetsAfterUndo(t *testing.T) {
	m, st := miniStore(t, nil)
	failures := mustPolicy(t, "failures", 1, time.Minute, st, limiter.WithSkipSuccessful())
	all := mustPolicy(t, "all", 100, time.Minute, st)
	s := mustStack(t, failures, all)
	r := httptest.NewRequest("GET", "/", nil)
	_, done, rj := s.Admit(httptest.NewRecorder(), r, nil)
	require.Nil(t, rj)
	require.NotNil(t, done)
	_, _, rj = s.Admit(httptest.NewRecorder(), r, nil)
	require.NotNil(t, rj, "the request in flight holds the failures quota")
	before := m.CommandCount()
	_, _, rj = s.Admit(httptest.NewRecorder(), r, nil)
	require.NotNil(t, rj)
	require.Equal(t, before, m.CommandCount(), "the denial is cached")

	done(200) // a success: its hit on failures is given back
	_, _, rj = s.Admit(httptest.NewRecorder(), r, nil)
	assert.Nil(t, rj, "a denial cached before the undo still answered")
}
