package otelmetrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/metrics/otelmetrics"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// newObserver returns an Observer over an SDK MeterProvider and the manual
// reader that collects from it.
func newObserver(t *testing.T, opts ...otelmetrics.Option) (*otelmetrics.Observer, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	o, err := otelmetrics.New(append([]otelmetrics.Option{otelmetrics.WithMeterProvider(mp)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return o, reader
}

// collected is one collection of the reader, by instrument name.
type collected struct {
	t *testing.T
	m map[string]metricdata.Metrics
}

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	c := collected{t: t, m: map[string]metricdata.Metrics{}}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelmetrics.ScopeName {
			t.Fatalf("scope %q, want %q", sm.Scope.Name, otelmetrics.ScopeName)
		}
		for _, m := range sm.Metrics {
			c.m[m.Name] = m
		}
	}
	return c
}

func (c collected) metric(name, unit string) metricdata.Metrics {
	c.t.Helper()
	m, ok := c.m[name]
	if !ok {
		c.t.Fatalf("no instrument %s", name)
	}
	if m.Unit != unit {
		c.t.Errorf("%s: unit %q, want %q", name, m.Unit, unit)
	}
	return m
}

// matches reports whether set holds every "k=v" of labels.
func matches(set attribute.Set, labels []string) bool {
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		got, ok := set.Value(attribute.Key(k))
		if !ok || got.AsString() != v {
			return false
		}
	}
	return true
}

// sum returns the value of the one point of the int64 sum name whose
// attributes hold labels; monotonic tells a counter from an up-down counter.
func (c collected) sum(name, unit string, monotonic bool, labels ...string) int64 {
	c.t.Helper()
	s, ok := c.metric(name, unit).Data.(metricdata.Sum[int64])
	if !ok {
		c.t.Fatalf("%s: %T, want an int64 sum", name, c.m[name].Data)
	}
	if s.IsMonotonic != monotonic || s.Temporality != metricdata.CumulativeTemporality {
		c.t.Errorf("%s: monotonic %t temporality %v, want %t and cumulative", name, s.IsMonotonic, s.Temporality, monotonic)
	}
	var found []int64
	for _, dp := range s.DataPoints {
		if matches(dp.Attributes, labels) {
			found = append(found, dp.Value)
		}
	}
	if len(found) != 1 {
		c.t.Fatalf("%s%v: %d points match, want 1", name, labels, len(found))
	}
	return found[0]
}

func (c collected) counter(name string, labels ...string) int64 {
	c.t.Helper()
	unit := map[string]string{"sluice.ratelimit.decisions": "{decision}", "sluice.lock.events": "{event}"}[name]
	return c.sum(name, unit, true, labels...)
}

func (c collected) held(labels ...string) int64 {
	c.t.Helper()
	return c.sum("sluice.locks.held", "{lock}", false, labels...)
}

// histogram returns the one point of the histogram name whose attributes
// hold labels, or nil if there is none.
func (c collected) histogram(name string, labels ...string) *metricdata.HistogramDataPoint[float64] {
	c.t.Helper()
	m, ok := c.m[name]
	if !ok {
		return nil
	}
	if m.Unit != "s" {
		c.t.Errorf("%s: unit %q, want s", name, m.Unit)
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		c.t.Fatalf("%s: %T, want a float64 histogram", name, m.Data)
	}
	var found []*metricdata.HistogramDataPoint[float64]
	for i := range h.DataPoints {
		if matches(h.DataPoints[i].Attributes, labels) {
			found = append(found, &h.DataPoints[i])
		}
	}
	if len(found) > 1 {
		c.t.Fatalf("%s%v: %d points match, want 1", name, labels, len(found))
	}
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

// bucket returns the count of the bucket whose upper bound is le (not
// cumulative, as OpenTelemetry counts them).
func bucket(t *testing.T, dp *metricdata.HistogramDataPoint[float64], le float64) uint64 {
	t.Helper()
	for i, b := range dp.Bounds {
		if b == le {
			return dp.BucketCounts[i]
		}
	}
	t.Fatalf("no bucket le=%v in %v", le, dp.Bounds)
	return 0
}

func newMemstore(t *testing.T) *memstore.Store {
	t.Helper()
	st, err := memstore.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newPolicy(t *testing.T, name string, limit int, st store.WindowStore, opts ...limiter.Option) *limiter.Policy {
	t.Helper()
	p, err := limiter.NewPolicy(name, limit, time.Minute, st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// downStore is a WindowStore whose every call fails, as a store whose
// backend is unreachable does.
type downStore struct{ store.WindowStore }

var errDown = errors.New("store down")

func (downStore) Hit(context.Context, string, store.Rule, int) (store.Result, error) {
	return store.Result{}, errDown
}

func (downStore) HitAll(context.Context, []store.Hit, []store.Result) error { return errDown }

func (downStore) Undo(context.Context, string, store.Receipt) error { return errDown }

// Decisions of real policies, served over HTTP, are counted by policy and
// outcome, and the store calls among them timed.
func TestDecisionsOfPolicies(t *testing.T) {
	o, reader := newObserver(t)
	quiet := limiter.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	api := newPolicy(t, "api", 2, newMemstore(t), limiter.WithObserver(o), quiet,
		limiter.WithKey(limiter.HeaderKey("X-User", nil)),
		limiter.WithSkip(func(r *http.Request) bool { return r.URL.Path == "/api/health" }))
	flaky := newPolicy(t, "flaky", 10, downStore{newMemstore(t)}, limiter.WithObserver(o), quiet,
		limiter.WithFailMode(limiter.FailOpen))
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("/api/", httpmw.RateLimit(api)(ok))
	mux.Handle("/flaky", httpmw.RateLimit(flaky)(ok))
	app := httptest.NewServer(mux)
	defer app.Close()

	if c := collect(t, reader); len(c.m) != 0 {
		t.Fatalf("data before any event: %v", c.m)
	}

	get := func(path, user string, want int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, app.URL+path, nil)
		if user != "" {
			req.Header.Set("X-User", user)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s as %q: status %d, want %d", path, user, resp.StatusCode, want)
		}
	}
	get("/api/items", "ann", 200)
	get("/api/items", "ann", 200)
	get("/api/items", "ann", 429)
	get("/api/items", "bob", 200)
	get("/api/items", "", 400) // no key
	get("/api/health", "", 200)
	get("/flaky", "", 200) // the store fails; FailOpen serves

	c := collect(t, reader)
	for _, w := range []struct {
		policy, outcome string
		want            int64
	}{
		{"api", "allowed", 3},
		{"api", "denied", 1},
		{"api", "skipped", 1},
		{"api", "bad_request", 1},
		{"api", "store_error", 0},
		{"flaky", "store_error", 1},
		{"flaky", "allowed", 0},
	} {
		if got := c.counter("sluice.ratelimit.decisions", "policy="+w.policy, "outcome="+w.outcome); got != w.want {
			t.Errorf("decisions{policy=%q,outcome=%q} = %d, want %d", w.policy, w.outcome, got, w.want)
		}
	}
	h := c.histogram("sluice.ratelimit.store.duration", "policy=api")
	if h == nil || h.Count != 4 || !(h.Sum > 0) {
		t.Fatalf("api store latency: %+v, want 4 calls taking > 0s", h)
	}
	if h.Attributes.Len() != 1 {
		t.Errorf("api store latency attributes %v, want policy alone", h.Attributes.ToSlice())
	}
	if h := c.histogram("sluice.ratelimit.store.duration", "policy=flaky"); h == nil || h.Count != 1 {
		t.Errorf("flaky store latency: %+v, want 1 (the failed call)", h)
	}
}

// Every outcome of a decision and of a lock is recorded under its
// attribute value, and the latencies go to the right buckets.
func TestEventsByOutcome(t *testing.T) {
	o, reader := newObserver(t)
	for i, oc := range []limiter.Outcome{limiter.Allowed, limiter.Denied, limiter.Skipped, limiter.StoreError, limiter.BadRequest} {
		for j := 0; j <= i; j++ {
			o.ObserveDecision(limiter.DecisionEvent{Policy: "p", Outcome: oc})
		}
	}
	o.ObserveDecision(limiter.DecisionEvent{Policy: "p", Outcome: limiter.Allowed, Cost: 1, Latency: 300 * time.Microsecond})
	o.ObserveDecision(limiter.DecisionEvent{Policy: "p", Outcome: limiter.Denied, Cost: 1, Latency: 20 * time.Millisecond})
	o.ObserveDecision(limiter.DecisionEvent{Policy: "p", Outcome: limiter.Denied, Cost: 1, Cached: true}) // no store call
	o.ObserveDecision(limiter.DecisionEvent{Policy: "p", Outcome: limiter.Outcome(42)})                   // a future outcome
	for i, oc := range []limiter.LockOutcome{limiter.LockAcquired, limiter.LockConflict, limiter.LockReleased, limiter.LockLost, limiter.LockStoreError} {
		for j := 0; j <= i; j++ {
			o.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: oc, Latency: time.Millisecond})
		}
	}

	c := collect(t, reader)
	for _, w := range []struct {
		outcome string
		want    int64
	}{{"allowed", 2}, {"denied", 4}, {"skipped", 3}, {"store_error", 4}, {"bad_request", 5}, {"Outcome(42)", 1}} {
		if got := c.counter("sluice.ratelimit.decisions", "policy=p", "outcome="+w.outcome); got != w.want {
			t.Errorf("decisions{outcome=%q} = %d, want %d", w.outcome, got, w.want)
		}
	}
	h := c.histogram("sluice.ratelimit.store.duration", "policy=p")
	if h == nil || h.Count != 2 || math.Abs(h.Sum-0.0203) > 1e-9 {
		t.Fatalf("store latency: %+v, want 2 calls taking 0.0203s", h)
	}
	for _, b := range []struct {
		le   float64
		want uint64
	}{{.00025, 0}, {.0005, 1}, {.01, 0}, {.025, 1}} {
		if got := bucket(t, h, b.le); got != b.want {
			t.Errorf("store latency bucket le=%v: %d, want %d", b.le, got, b.want)
		}
	}
	for i, oc := range []string{"acquired", "conflict", "released", "lost", "store_error"} {
		if got := c.counter("sluice.lock.events", "name=orders", "outcome="+oc); got != int64(i+1) {
			t.Errorf("lock events{outcome=%q} = %d, want %d", oc, got, i+1)
		}
	}
	// One acquired, then three released and four lost: the counter adds
	// what it is told.
	if got := c.held("name=orders"); got != 1-3-4 {
		t.Errorf("locks held = %d, want %d", got, 1-3-4)
	}
	if h := c.histogram("sluice.lock.store.duration", "name=orders"); h == nil || h.Count != 15 {
		t.Errorf("lock store latency: %+v, want 15", h)
	}
}

// The held-locks counter follows acquisitions, releases and losses per
// name, and the hold time of each release or loss is recorded.
func TestLocksHeldAndHoldTime(t *testing.T) {
	o, reader := newObserver(t)
	ev := func(name string, oc limiter.LockOutcome, held time.Duration) {
		o.ObserveLock(limiter.LockEvent{Name: name, Outcome: oc, Latency: 200 * time.Microsecond, Held: held})
	}
	ev("orders", limiter.LockAcquired, 0)
	ev("orders", limiter.LockAcquired, 0)
	ev("orders", limiter.LockConflict, 0)
	ev("reports", limiter.LockAcquired, 0)

	c := collect(t, reader)
	if got := c.held("name=orders"); got != 2 {
		t.Errorf("orders held = %d, want 2", got)
	}
	if got := c.held("name=reports"); got != 1 {
		t.Errorf("reports held = %d, want 1", got)
	}
	if h := c.histogram("sluice.lock.hold.duration", "name=orders"); h != nil {
		t.Errorf("orders hold time recorded before any release: %+v", h)
	}

	ev("orders", limiter.LockReleased, 40*time.Millisecond)
	o.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockLost, Held: 90 * time.Second}) // no store call
	ev("reports", limiter.LockStoreError, 0)

	c = collect(t, reader)
	if got := c.held("name=orders"); got != 0 {
		t.Errorf("orders held after a release and a loss = %d, want 0", got)
	}
	if got := c.held("name=reports"); got != 1 {
		t.Errorf("reports held after a store error = %d, want 1", got)
	}
	h := c.histogram("sluice.lock.hold.duration", "name=orders")
	if h == nil || h.Count != 2 || math.Abs(h.Sum-90.04) > 1e-9 {
		t.Fatalf("orders hold time: %+v, want 2 holds of 90.04s in all", h)
	}
	if got := bucket(t, h, .05); got != 1 {
		t.Errorf("hold time bucket le=0.05: %d, want 1", got)
	}
	if got := bucket(t, h, 300); got != 1 {
		t.Errorf("hold time bucket le=300: %d, want 1", got)
	}
	if h := c.histogram("sluice.lock.store.duration", "name=orders"); h == nil || h.Count != 4 {
		t.Errorf("orders lock store latency: %+v, want 4 (the loss made no store call)", h)
	}
}

// The first event of a name adds zero to its counters for every outcome.
func TestCountersStartAtZero(t *testing.T) {
	o, reader := newObserver(t)
	o.ObserveDecision(limiter.DecisionEvent{Policy: "login", Outcome: limiter.Allowed, Latency: time.Millisecond})
	o.ObserveLock(limiter.LockEvent{Name: "jobs", Outcome: limiter.LockConflict, Latency: time.Millisecond})

	c := collect(t, reader)
	for _, oc := range []string{"denied", "skipped", "store_error", "bad_request"} {
		if got := c.counter("sluice.ratelimit.decisions", "policy=login", "outcome="+oc); got != 0 {
			t.Errorf("decisions{outcome=%q} = %d, want 0", oc, got)
		}
	}
	for _, oc := range []string{"acquired", "released", "lost", "store_error"} {
		if got := c.counter("sluice.lock.events", "name=jobs", "outcome="+oc); got != 0 {
			t.Errorf("lock events{outcome=%q} = %d, want 0", oc, got)
		}
	}
	if got := c.held("name=jobs"); got != 0 {
		t.Errorf("locks held = %d, want 0", got)
	}
	if got := c.counter("sluice.lock.events", "name=jobs", "outcome=conflict"); got != 1 {
		t.Errorf("conflicts = %d, want 1", got)
	}
}

// The histograms' bucket boundaries are the defaults, in seconds, or those
// of the options.
func TestBuckets(t *testing.T) {
	observe := func(o *otelmetrics.Observer) {
		o.ObserveDecision(limiter.DecisionEvent{Policy: "api", Outcome: limiter.Allowed, Latency: time.Millisecond})
		o.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockReleased, Latency: time.Millisecond, Held: 5 * time.Second})
	}
	o, reader := newObserver(t)
	observe(o)
	c := collect(t, reader)
	for _, w := range []struct{ name, label, want string }{
		{"sluice.ratelimit.store.duration", "policy=api", "[0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1]"},
		{"sluice.lock.store.duration", "name=orders", "[0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1]"},
		{"sluice.lock.hold.duration", "name=orders", "[0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 300]"},
	} {
		if h := c.histogram(w.name, w.label); h == nil || fmt.Sprint(h.Bounds) != w.want {
			t.Errorf("%s: %+v, want bounds %s", w.name, h, w.want)
		}
	}

	o, reader = newObserver(t, otelmetrics.WithLatencyBuckets(.001, .01), otelmetrics.WithHoldBuckets(1, 10, 100))
	observe(o)
	c = collect(t, reader)
	if h := c.histogram("sluice.ratelimit.store.duration", "policy=api"); h == nil || fmt.Sprint(h.Bounds) != "[0.001 0.01]" || bucket(t, h, .001) != 1 {
		t.Errorf("latency: %+v, want bounds [0.001 0.01] with the 1ms call under 0.001", h)
	}
	if h := c.histogram("sluice.lock.hold.duration", "name=orders"); h == nil || fmt.Sprint(h.Bounds) != "[1 10 100]" || bucket(t, h, 10) != 1 {
		t.Errorf("hold: %+v, want bounds [1 10 100] with the 5s hold under 10", h)
	}
}

// Without WithMeterProvider, the instruments come from the global
// MeterProvider.
func TestGlobalMeterProvider(t *testing.T) {
	prev := otel.GetMeterProvider()
	t.Cleanup(func() { otel.SetMeterProvider(prev) })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	otel.SetMeterProvider(mp)

	o, err := otelmetrics.New()
	if err != nil {
		t.Fatal(err)
	}
	o.ObserveDecision(limiter.DecisionEvent{Policy: "api", Outcome: limiter.Denied, Latency: time.Millisecond})
	if got := collect(t, reader).counter("sluice.ratelimit.decisions", "policy=api", "outcome=denied"); got != 1 {
		t.Errorf("denied = %d, want 1", got)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  otelmetrics.Option
		want string
	}{
		{"nil provider", otelmetrics.WithMeterProvider(nil), "MeterProvider"},
		{"no latency bucket", otelmetrics.WithLatencyBuckets(), "latency buckets"},
		{"decreasing latency buckets", otelmetrics.WithLatencyBuckets(.1, .01), "latency buckets"},
		{"zero hold bucket", otelmetrics.WithHoldBuckets(0, 1), "hold buckets"},
		{"NaN hold bucket", otelmetrics.WithHoldBuckets(math.NaN()), "hold buckets"},
		{"repeated hold bucket", otelmetrics.WithHoldBuckets(1, 1), "hold buckets"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := otelmetrics.New(c.opt)
			if !errors.Is(err, otelmetrics.ErrInvalidConfig) {
				t.Fatalf("New: %v, %v; want an error wrapping ErrInvalidConfig", got, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %s", err, c.want)
			}
		})
	}
}

// Events from many goroutines over several names are all recorded.
func TestConcurrentEvents(t *testing.T) {
	o, reader := newObserver(t)
	const goroutines, events = 8, 500
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < events; i++ {
				name := fmt.Sprintf("p%d", i%5)
				o.ObserveDecision(limiter.DecisionEvent{Policy: name, Outcome: limiter.Allowed, Latency: time.Microsecond})
				o.ObserveLock(limiter.LockEvent{Name: name, Outcome: limiter.LockAcquired, Latency: time.Microsecond})
				o.ObserveLock(limiter.LockEvent{Name: name, Outcome: limiter.LockReleased, Latency: time.Microsecond, Held: time.Millisecond})
			}
		}()
	}
	wg.Wait()
	c := collect(t, reader)
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("p%d", i)
		want := int64(goroutines * events / 5)
		if got := c.counter("sluice.ratelimit.decisions", "policy="+name, "outcome=allowed"); got != want {
			t.Errorf("%s allowed = %d, want %d", name, got, want)
		}
		if got := c.counter("sluice.lock.events", "name="+name, "outcome=released"); got != want {
			t.Errorf("%s released = %d, want %d", name, got, want)
		}
		if got := c.held("name=" + name); got != 0 {
			t.Errorf("%s held = %d, want 0", name, got)
		}
	}
}

// Once a policy or lock name has been seen, recording its events
// allocates nothing, SDK included.
func TestObserveDoesNotAllocate(t *testing.T) {
	o, _ := newObserver(t)
	dec := limiter.DecisionEvent{Policy: "api", Outcome: limiter.Allowed, Cost: 1, Latency: time.Millisecond}
	denied := limiter.DecisionEvent{Policy: "api", Outcome: limiter.Denied, Cost: 1, Latency: time.Millisecond}
	acq := limiter.LockEvent{Name: "orders", Outcome: limiter.LockAcquired, Latency: time.Millisecond}
	rel := limiter.LockEvent{Name: "orders", Outcome: limiter.LockReleased, Latency: time.Millisecond, Held: time.Second}
	o.ObserveDecision(dec)
	o.ObserveDecision(denied)
	o.ObserveLock(acq)
	o.ObserveLock(rel)
	if n := testing.AllocsPerRun(1000, func() {
		o.ObserveDecision(dec)
		o.ObserveDecision(denied)
	}); n != 0 {
		t.Errorf("ObserveDecision: %v allocations per run, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		o.ObserveLock(acq)
		o.ObserveLock(rel)
	}); n != 0 {
		t.Errorf("ObserveLock: %v allocations per run, want 0", n)
	}
}

func BenchmarkObserveDecision(b *testing.B) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	o, err := otelmetrics.New(otelmetrics.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	names := []string{"api", "login", "search", "upload"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			o.ObserveDecision(limiter.DecisionEvent{Policy: names[i%len(names)], Outcome: limiter.Allowed, Cost: 1, Latency: 500 * time.Microsecond})
			i++
		}
	})
}

func BenchmarkObserveLock(b *testing.B) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	o, err := otelmetrics.New(otelmetrics.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockAcquired, Latency: 500 * time.Microsecond})
			o.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockReleased, Latency: 500 * time.Microsecond, Held: time.Second})
		}
	})
}
