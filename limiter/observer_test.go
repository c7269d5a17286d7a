package limiter_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu    sync.Mutex
	decs  []limiter.DecisionEvent
	locks []limiter.LockEvent
}

func (r *recorder) ObserveDecision(e limiter.DecisionEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decs = append(r.decs, e)
}

func (r *recorder) ObserveLock(e limiter.LockEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.locks = append(r.locks, e)
}

func (r *recorder) outcomes() []limiter.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []limiter.Outcome
	for _, e := range r.decs {
		out = append(out, e.Outcome)
	}
	return out
}

func TestObserverSeesEveryOutcome(t *testing.T) {
	clk := newClock()
	rec := &recorder{}
	p := mustPolicy(t, "obs", 1, time.Minute, newMem(t, clk), limiter.WithClock(clk.Now), limiter.WithObserver(rec),
		limiter.WithKey(limiter.HeaderKey("X-User", nil)),
		limiter.WithSkip(func(r *http.Request) bool { return r.URL.Path == "/skip" }))
	h := chain(ok, p)
	req := func(path, user string) *http.Request {
		r := httptest.NewRequest("GET", path, nil)
		if user != "" {
			r.Header.Set("X-User", user)
		}
		return r
	}
	serve(h, req("/", "alice"))
	serve(h, req("/", "alice"))
	serve(h, req("/skip", "alice"))
	serve(h, req("/", ""))
	assert.Equal(t, []limiter.Outcome{limiter.Allowed, limiter.Denied, limiter.Skipped, limiter.BadRequest}, rec.outcomes())
	for _, e := range rec.decs {
		assert.Equal(t, "obs", e.Policy)
	}
	assert.Equal(t, 1, rec.decs[0].Cost)
}

// With no observer a decision on memstore still allocates nothing.
func TestNoObserverNoAllocs(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, "noobs", 1000, time.Minute, newMem(t, clk))
	ctx := t.Context()
	allocs := testing.AllocsPerRun(200, func() { _, _ = l.Allow(ctx, "k") })
	assert.Zero(t, allocs)
}

// WithLimitFunc chooses the limit per request; the headers show it.
func TestLimitFunc(t *testing.T) {
	clk := newClock()
	plan := func(r *http.Request) (int, error) {
		switch r.Header.Get("X-Plan") {
		case "pro":
			return 4, nil
		case "free":
			return 2, nil
		}
		return 0, errors.New("no plan")
	}
	p := mustPolicy(t, "plans", 2, time.Minute, newMem(t, clk), limiter.WithClock(clk.Now),
		limiter.WithKey(limiter.HeaderKey("X-User", nil)), limiter.WithLimitFunc(plan))
	h := chain(ok, p)
	send := func(user, plan string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-User", user)
		r.Header.Set("X-Plan", plan)
		return serve(h, r)
	}
	var free, pro []int
	for range 5 {
		free = append(free, send("f", "free").Code)
		pro = append(pro, send("p", "pro").Code)
	}
	assert.Equal(t, []int{200, 200, 429, 429, 429}, free)
	assert.Equal(t, []int{200, 200, 200, 200, 429}, pro)
	w := send("p2", "pro")
	assert.Equal(t, "4", w.Header().Get("X-RateLimit-Limit"))
	assert.Equal(t, `"plans";q=4;w=60`, w.Header().Get("RateLimit-Policy"))

	// No plan, or a limit out of range: a request error, reported, never a
	// silent allow, under either fail mode.
	w = send("nobody", "")
	assert.Equal(t, 400, w.Code)
	assert.JSONEq(t, `{"error":"invalid request limit"}`, w.Body.String())
	var reported []error
	bad := mustPolicy(t, "badplan", 2, time.Minute, newMem(t, clk),
		limiter.WithLimitFunc(func(*http.Request) (int, error) { return 5000, nil }),
		limiter.WithErrorHandler(func(_ context.Context, _ string, err error) { reported = append(reported, err) }))
	assert.Equal(t, 400, serve(chain(ok, bad), httptest.NewRequest("GET", "/", nil)).Code)
	require.Len(t, reported, 1)
	assert.ErrorIs(t, reported[0], limiter.ErrInvalidLimit)

	// A limit below the policy's fixed cost is a request error too, under
	// the default fail-open: the request is not served unlimited.
	costly := mustPolicy(t, "costly", 10, time.Minute, newMem(t, clk), limiter.WithCost(3),
		limiter.WithLimitFunc(func(*http.Request) (int, error) { return 2, nil }),
		limiter.WithErrorHandler(func(_ context.Context, _ string, err error) { reported = append(reported, err) }))
	w = serve(chain(ok, costly), httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, 400, w.Code)
	assert.JSONEq(t, `{"error":"invalid request limit"}`, w.Body.String())
	require.Len(t, reported, 2)
	assert.ErrorIs(t, reported[1], limiter.ErrInvalidLimit)
}

// New refuses an option that only a Policy uses.
func TestNewRefusesPolicyOptions(t *testing.T) {
	_, err := limiter.New("x", 1, time.Minute, newMem(t, newClock()), limiter.WithKey(limiter.ClientIP))
	require.ErrorIs(t, err, limiter.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "WithKey")
	l, err := limiter.New("y", 1, time.Minute, newMem(t, newClock()), limiter.WithAlgorithm(store.GCRA), limiter.WithBurst(1))
	require.NoError(t, err)
	assert.Equal(t, store.GCRA, l.Algorithm())
	require.NoError(t, l.Close())
}
