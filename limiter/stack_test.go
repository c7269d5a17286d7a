package limiter_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

func mustPolicy(t *testing.T, name string, limit int, window time.Duration, st store.WindowStore, opts ...limiter.Option) *limiter.Policy {
	t.Helper()
	p, err := limiter.NewPolicy(name, limit, window, st, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func mustStack(t *testing.T, ps ...*limiter.Policy) *limiter.Policy {
	t.Helper()
	s, err := limiter.Stack(ps...)
	require.NoError(t, err)
	return s
}

// A request the daily policy denies uses none of the burst policy's quota.
func TestStackDeniedCountsNowhere(t *testing.T) {
	clk := newClock()
	st := newMem(t, clk)
	burst := mustPolicy(t, "burst", 5, time.Minute, st, limiter.WithClock(clk.Now))
	daily := mustPolicy(t, "daily", 2, 24*time.Hour, st, limiter.WithClock(clk.Now))
	h := chain(ok, mustStack(t, burst, daily))

	var codes []int
	var rl []string
	for range 6 {
		w := serve(h, httptest.NewRequest("GET", "/", nil))
		codes = append(codes, w.Code)
		rl = append(rl, w.Header().Get("RateLimit"))
	}
	assert.Equal(t, []int{200, 200, 429, 429, 429, 429}, codes)
	// The burst policy keeps the 3 hits the two admitted requests left it.
	assert.Equal(t, `"burst";r=3;t=60, "daily";r=0;t=86400`, rl[2])
	assert.Equal(t, `"burst";r=3;t=60, "daily";r=0;t=86400`, rl[5])
	assert.Equal(t, `"burst";q=5;w=60, "daily";q=2;w=86400`, serve(h, httptest.NewRequest("GET", "/", nil)).Header().Get("RateLimit-Policy"))
}

// Retry-After is the longest wait among the policies that denied, and the
// body names that policy.
func TestStackRetryAfterIsLongestWait(t *testing.T) {
	clk := newClock()
	st := newMem(t, clk)
	short := mustPolicy(t, "short", 1, 10*time.Second, st, limiter.WithClock(clk.Now))
	long := mustPolicy(t, "long", 1, time.Hour, st, limiter.WithClock(clk.Now))
	h := chain(ok, mustStack(t, short, long))
	require.Equal(t, 200, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	w := serve(h, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, 429, w.Code)
	assert.Equal(t, "3600", w.Header().Get("Retry-After"))
	assert.Contains(t, w.Body.String(), `"policy":"long"`)
	assert.Equal(t, "0", w.Header().Get("X-RateLimit-Remaining"))

	clk.Advance(10 * time.Second) // short has room again, long does not
	w = serve(h, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, 429, w.Code)
	assert.Equal(t, "3590", w.Header().Get("Retry-After"))
	assert.Equal(t, `"short";r=1;t=0, "long";r=0;t=3590`, w.Header().Get("RateLimit"))
}

// Under concurrency a stack admits exactly the tighter limit and each
// policy counts exactly the admitted requests.
func TestStackConcurrent(t *testing.T) {
	clk := newClock()
	st := newMem(t, clk)
	burst := mustPolicy(t, "burst", 5, time.Minute, st, limiter.WithClock(clk.Now))
	hourly := mustPolicy(t, "hourly", 20, time.Hour, st, limiter.WithClock(clk.Now))
	h := chain(ok, mustStack(t, burst, hourly))
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if serve(h, httptest.NewRequest("GET", "/", nil)).Code == http.StatusOK {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 5, admitted.Load())
	d, err := hourly.Limiter().Allow(t.Context(), "192.0.2.1")
	require.NoError(t, err)
	assert.Equal(t, 20-5-1, d.Remaining, "the hourly policy counted exactly the admitted requests")
}

// Skip-successful undoes the hits of every policy of the stack that asks
// for it, and only those.
func TestStackSkipSuccessful(t *testing.T) {
	clk := newClock()
	st := newMem(t, clk)
	failures := mustPolicy(t, "failures", 3, time.Minute, st, limiter.WithClock(clk.Now), limiter.WithSkipSuccessful())
	all := mustPolicy(t, "all", 100, time.Minute, st, limiter.WithClock(clk.Now))
	h := chain(ok, mustStack(t, failures, all))
	for range 5 {
		require.Equal(t, 200, serve(h, httptest.NewRequest("GET", "/", nil)).Code)
	}
	w := serve(h, httptest.NewRequest("GET", "/?status=401", nil))
	assert.Equal(t, `"failures";r=2;t=60, "all";r=94;t=60`, w.Header().Get("RateLimit"))
}

func TestStackValidates(t *testing.T) {
	clk := newClock()
	st := newMem(t, clk)
	a := mustPolicy(t, "a", 1, time.Minute, st)
	other, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	b := mustPolicy(t, "b", 1, time.Minute, other)
	for name, ps := range map[string][]*limiter.Policy{
		"empty":       nil,
		"nil":         {a, nil},
		"twice":       {a, a},
		"other store": {a, b},
		"nested":      {mustStack(t, a)},
	} {
		_, err := limiter.Stack(ps...)
		assert.ErrorIs(t, err, limiter.ErrInvalidConfig, name)
	}
}
