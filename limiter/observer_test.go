package limiter_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sluicehq/sluice/limiter"
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
