package limiter_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store/redisstore"
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

// events returns the decision events told so far and forgets them.
func (r *recorder) events() []limiter.DecisionEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.decs
	r.decs = nil
	return out
}

// failingRedis returns a store over a miniredis that the test stops to make
// the store fail, with a client that does not retry.
func failingRedis(t *testing.T) (*miniredis.Miniredis, *redisstore.Store) {
	t.Helper()
	m := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	st, err := redisstore.New(client)
	require.NoError(t, err)
	return m, st
}

// fromAddr returns a request from the client at addr.
func fromAddr(addr string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = addr
	return r
}

// Over a remote store the Observer is told how long each store call took,
// that a denial answered from the deny cache took none, and that a store
// failure was one.
func TestObserverStoreLatencyCacheAndError(t *testing.T) {
	m, st := failingRedis(t)
	rec := &recorder{}
	h := chain(ok, mustPolicy(t, "obs", 1, time.Minute, st, limiter.WithObserver(rec)))
	serve(h, fromAddr("192.0.2.1:1"))
	serve(h, fromAddr("192.0.2.1:1"))
	serve(h, fromAddr("192.0.2.1:1"))
	ev := rec.events()
	require.Len(t, ev, 3)
	for i, want := range []limiter.Outcome{limiter.Allowed, limiter.Denied} {
		assert.Equal(t, want, ev[i].Outcome)
		assert.Positive(t, ev[i].Latency, "%s: the store call's time", want)
		assert.False(t, ev[i].Cached)
	}
	assert.Equal(t, limiter.DecisionEvent{Policy: "obs", Outcome: limiter.Denied, Cost: 1, Cached: true}, ev[2],
		"a denial from the deny cache, without a store call")

	m.Close()
	assert.Equal(t, 200, serve(h, fromAddr("192.0.2.2:1")).Code, "fail-open")
	ev = rec.events()
	require.Len(t, ev, 1)
	assert.Equal(t, limiter.StoreError, ev[0].Outcome)
	assert.Equal(t, 1, ev[0].Cost)
	assert.Positive(t, ev[0].Latency, "the failed store call's time")
}

// A Stack tells each policy's Observer the same: the latency of the one
// store call, a cached denial of the policy that denied, a store failure.
func TestObserverStackLatencyCacheAndError(t *testing.T) {
	m, st := failingRedis(t)
	rec := &recorder{}
	burst := mustPolicy(t, "burst", 1, time.Minute, st, limiter.WithObserver(rec))
	hourly := mustPolicy(t, "hourly", 10, time.Hour, st, limiter.WithObserver(rec))
	h := chain(ok, mustStack(t, burst, hourly))
	serve(h, fromAddr("192.0.2.1:1"))
	ev := rec.events()
	require.Len(t, ev, 2)
	for i, name := range []string{"burst", "hourly"} {
		assert.Equal(t, name, ev[i].Policy)
		assert.Equal(t, limiter.Allowed, ev[i].Outcome)
		assert.Positive(t, ev[i].Latency)
	}
	assert.Equal(t, ev[0].Latency, ev[1].Latency, "one store call for both")

	serve(h, fromAddr("192.0.2.1:1"))
	ev = rec.events()
	require.Len(t, ev, 1, "only the policy that denied")
	assert.Equal(t, "burst", ev[0].Policy)
	assert.Equal(t, limiter.Denied, ev[0].Outcome)
	assert.Positive(t, ev[0].Latency)
	assert.False(t, ev[0].Cached)

	serve(h, fromAddr("192.0.2.1:1"))
	assert.Equal(t, []limiter.DecisionEvent{{Policy: "burst", Outcome: limiter.Denied, Cost: 1, Cached: true}}, rec.events())

	m.Close()
	assert.Equal(t, 200, serve(h, fromAddr("192.0.2.2:1")).Code, "fail-open")
	ev = rec.events()
	require.Len(t, ev, 2)
	for i, name := range []string{"burst", "hourly"} {
		assert.Equal(t, name, ev[i].Policy)
		assert.Equal(t, limiter.StoreError, ev[i].Outcome)
		assert.Positive(t, ev[i].Latency)
	}
}
