package prommetrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/metrics/prommetrics"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// scraper serves a registry through promhttp on a real HTTP server and
// reads it back as a Prometheus server would.
type scraper struct {
	t   *testing.T
	srv *httptest.Server
}

func newScraper(t *testing.T, cs ...prometheus.Collector) *scraper {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	t.Cleanup(srv.Close)
	return &scraper{t: t, srv: srv}
}

// scrape GETs /metrics and parses the text format.
func (s *scraper) scrape() families {
	s.t.Helper()
	resp, err := http.Get(s.srv.URL + "/metrics")
	if err != nil {
		s.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		s.t.Fatalf("scrape: Content-Type %q, want the text format", ct)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		s.t.Fatalf("scrape: parse the text format: %v", err)
	}
	return families{t: s.t, m: fams}
}

type families struct {
	t *testing.T
	m map[string]*dto.MetricFamily
}

// series returns the one series of the family name whose labels include
// labels ("k=v" pairs), failing the test if there is not exactly one.
func (f families) series(name string, typ dto.MetricType, labels ...string) *dto.Metric {
	f.t.Helper()
	fam, ok := f.m[name]
	if !ok {
		f.t.Fatalf("no metric family %s; have %v", name, f.names())
	}
	if fam.GetType() != typ {
		f.t.Fatalf("%s is a %v, want %v", name, fam.GetType(), typ)
	}
	var found []*dto.Metric
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if got, ok := have[k]; !ok || got != v {
				match = false
			}
		}
		if match {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		f.t.Fatalf("%s%v: %d series match, want 1", name, labels, len(found))
	}
	return found[0]
}

func (f families) counter(name string, labels ...string) float64 {
	f.t.Helper()
	return f.series(name, dto.MetricType_COUNTER, labels...).GetCounter().GetValue()
}

func (f families) gauge(name string, labels ...string) float64 {
	f.t.Helper()
	return f.series(name, dto.MetricType_GAUGE, labels...).GetGauge().GetValue()
}

func (f families) histogram(name string, labels ...string) *dto.Histogram {
	f.t.Helper()
	return f.series(name, dto.MetricType_HISTOGRAM, labels...).GetHistogram()
}

func (f families) names() []string {
	var out []string
	for n := range f.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// bucket returns the cumulative count of the bucket with upper bound le.
func bucket(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket le=%v", le)
	return 0
}

// bounds returns the finite upper bounds of h's buckets.
func bounds(h *dto.Histogram) []float64 {
	var out []float64
	for _, b := range h.GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			out = append(out, b.GetUpperBound())
		}
	}
	return out
}

func newCollector(t *testing.T, opts ...prommetrics.Option) *prommetrics.Collector {
	t.Helper()
	c, err := prommetrics.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
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
func TestDecisionsOfPoliciesAreScraped(t *testing.T) {
	c := newCollector(t)
	s := newScraper(t, c)

	quiet := limiter.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	api := newPolicy(t, "api", 2, newMemstore(t), limiter.WithObserver(c), quiet,
		limiter.WithKey(limiter.HeaderKey("X-User", nil)),
		limiter.WithSkip(func(r *http.Request) bool { return r.URL.Path == "/api/health" }))
	flaky := newPolicy(t, "flaky", 10, downStore{newMemstore(t)}, limiter.WithObserver(c), quiet,
		limiter.WithFailMode(limiter.FailOpen))
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("/api/", httpmw.RateLimit(api)(ok))
	mux.Handle("/flaky", httpmw.RateLimit(flaky)(ok))
	app := httptest.NewServer(mux)
	defer app.Close()

	// Before any event the collector exports no series.
	if fams := s.scrape(); len(fams.m) != 0 {
		t.Fatalf("series before any event: %v", fams.names())
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

	f := s.scrape()
	for _, c := range []struct {
		policy, outcome string
		want            float64
	}{
		{"api", "allowed", 3},
		{"api", "denied", 1},
		{"api", "skipped", 1},
		{"api", "bad_request", 1},
		{"api", "store_error", 0},
		{"flaky", "store_error", 1},
		{"flaky", "allowed", 0},
	} {
		got := f.counter("sluice_ratelimit_decisions_total", "policy="+c.policy, "outcome="+c.outcome)
		if got != c.want {
			t.Errorf("decisions{policy=%q,outcome=%q} = %v, want %v", c.policy, c.outcome, got, c.want)
		}
	}
	// The four store calls of api are timed; the skip and the request
	// without a key made none.
	h := f.histogram("sluice_ratelimit_store_duration_seconds", "policy=api")
	if h.GetSampleCount() != 4 || !(h.GetSampleSum() > 0) {
		t.Errorf("api store latency: count %d sum %v, want 4 and > 0", h.GetSampleCount(), h.GetSampleSum())
	}
	if got := bucket(t, h, 1); got != 4 {
		t.Errorf("api store latency: %d in-memory calls took up to 1s, want 4", got)
	}
	if h := f.histogram("sluice_ratelimit_store_duration_seconds", "policy=flaky"); h.GetSampleCount() != 1 {
		t.Errorf("flaky store latency: count %d, want 1 (the failed call)", h.GetSampleCount())
	}
}

// Every outcome of a decision and of a lock is exported under its label
// value, and the latencies go to the right buckets.
func TestEventsByOutcome(t *testing.T) {
	c := newCollector(t)
	s := newScraper(t, c)

	for i, o := range []limiter.Outcome{limiter.Allowed, limiter.Denied, limiter.Skipped, limiter.StoreError, limiter.BadRequest} {
		for j := 0; j <= i; j++ {
			c.ObserveDecision(limiter.DecisionEvent{Policy: "p", Outcome: o})
		}
	}
	c.ObserveDecision(limiter.DecisionEvent{Policy: "p", Outcome: limiter.Allowed, Cost: 1, Latency: 300 * time.Microsecond})
	c.ObserveDecision(limiter.DecisionEvent{Policy: "p", Outcome: limiter.Denied, Cost: 1, Latency: 20 * time.Millisecond})
	c.ObserveDecision(limiter.DecisionEvent{Policy: "p", Outcome: limiter.Denied, Cost: 1, Cached: true}) // no store call
	c.ObserveDecision(limiter.DecisionEvent{Policy: "p", Outcome: limiter.Outcome(42)})                   // a future outcome

	for i, o := range []limiter.LockOutcome{limiter.LockAcquired, limiter.LockConflict, limiter.LockReleased, limiter.LockLost, limiter.LockStoreError} {
		for j := 0; j <= i; j++ {
			c.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: o, Latency: time.Millisecond})
		}
	}

	f := s.scrape()
	for _, w := range []struct {
		outcome string
		want    float64
	}{{"allowed", 2}, {"denied", 4}, {"skipped", 3}, {"store_error", 4}, {"bad_request", 5}, {"Outcome(42)", 1}} {
		if got := f.counter("sluice_ratelimit_decisions_total", "policy=p", "outcome="+w.outcome); got != w.want {
			t.Errorf("decisions{outcome=%q} = %v, want %v", w.outcome, got, w.want)
		}
	}
	h := f.histogram("sluice_ratelimit_store_duration_seconds", "policy=p")
	if h.GetSampleCount() != 2 || math.Abs(h.GetSampleSum()-0.0203) > 1e-9 {
		t.Errorf("store latency: count %d sum %v, want 2 and 0.0203", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range []struct {
		le   float64
		want uint64
	}{{.00025, 0}, {.0005, 1}, {.01, 1}, {.025, 2}} {
		if got := bucket(t, h, b.le); got != b.want {
			t.Errorf("store latency bucket le=%v: %d, want %d", b.le, got, b.want)
		}
	}

	for i, o := range []string{"acquired", "conflict", "released", "lost", "store_error"} {
		if got := f.counter("sluice_lock_events_total", "name=orders", "outcome="+o); got != float64(i+1) {
			t.Errorf("lock events{outcome=%q} = %v, want %d", o, got, i+1)
		}
	}
	// One acquired, then three released and four lost: the gauge counts
	// what it is told.
	if got := f.gauge("sluice_locks_held", "name=orders"); got != 1-3-4 {
		t.Errorf("locks held = %v, want %d", got, 1-3-4)
	}
	if h := f.histogram("sluice_lock_store_duration_seconds", "name=orders"); h.GetSampleCount() != 15 {
		t.Errorf("lock store latency: count %d, want 15", h.GetSampleCount())
	}
}

// The held-locks gauge follows acquisitions, releases and losses per name,
// and the hold time of each release or loss is observed.
func TestLocksHeldAndHoldTime(t *testing.T) {
	c := newCollector(t)
	s := newScraper(t, c)
	ev := func(name string, o limiter.LockOutcome, held time.Duration) {
		c.ObserveLock(limiter.LockEvent{Name: name, Outcome: o, Latency: 200 * time.Microsecond, Held: held})
	}
	ev("orders", limiter.LockAcquired, 0)
	ev("orders", limiter.LockAcquired, 0)
	ev("orders", limiter.LockConflict, 0)
	ev("reports", limiter.LockAcquired, 0)

	f := s.scrape()
	if got := f.gauge("sluice_locks_held", "name=orders"); got != 2 {
		t.Errorf("orders held = %v, want 2", got)
	}
	if got := f.gauge("sluice_locks_held", "name=reports"); got != 1 {
		t.Errorf("reports held = %v, want 1", got)
	}
	if h := f.histogram("sluice_lock_hold_duration_seconds", "name=orders"); h.GetSampleCount() != 0 {
		t.Errorf("orders hold time observed %d times before any release", h.GetSampleCount())
	}

	ev("orders", limiter.LockReleased, 40*time.Millisecond)
	c.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockLost, Held: 90 * time.Second}) // no store call
	ev("reports", limiter.LockStoreError, 0)

	f = s.scrape()
	if got := f.gauge("sluice_locks_held", "name=orders"); got != 0 {
		t.Errorf("orders held after a release and a loss = %v, want 0", got)
	}
	if got := f.gauge("sluice_locks_held", "name=reports"); got != 1 {
		t.Errorf("reports held after a store error = %v, want 1", got)
	}
	h := f.histogram("sluice_lock_hold_duration_seconds", "name=orders")
	if h.GetSampleCount() != 2 || math.Abs(h.GetSampleSum()-90.04) > 1e-9 {
		t.Errorf("orders hold time: count %d sum %v, want 2 and 90.04", h.GetSampleCount(), h.GetSampleSum())
	}
	if got := bucket(t, h, .05); got != 1 {
		t.Errorf("hold time bucket le=0.05: %d, want 1", got)
	}
	if got := bucket(t, h, 60); got != 1 {
		t.Errorf("hold time bucket le=60: %d, want 1", got)
	}
	if got := bucket(t, h, 300); got != 2 {
		t.Errorf("hold time bucket le=300: %d, want 2", got)
	}
	if h := f.histogram("sluice_lock_store_duration_seconds", "name=orders"); h.GetSampleCount() != 4 {
		t.Errorf("orders lock store latency: count %d, want 4 (the loss made no store call)", h.GetSampleCount())
	}
}

// The first event of a name creates its series for every outcome at zero.
func TestSeriesStartAtZero(t *testing.T) {
	c := newCollector(t)
	s := newScraper(t, c)
	c.ObserveDecision(limiter.DecisionEvent{Policy: "login", Outcome: limiter.Allowed, Latency: time.Millisecond})
	c.ObserveLock(limiter.LockEvent{Name: "jobs", Outcome: limiter.LockConflict, Latency: time.Millisecond})

	f := s.scrape()
	for _, o := range []string{"denied", "skipped", "store_error", "bad_request"} {
		if got := f.counter("sluice_ratelimit_decisions_total", "policy=login", "outcome="+o); got != 0 {
			t.Errorf("decisions{outcome=%q} = %v, want 0", o, got)
		}
	}
	for _, o := range []string{"acquired", "released", "lost", "store_error"} {
		if got := f.counter("sluice_lock_events_total", "name=jobs", "outcome="+o); got != 0 {
			t.Errorf("lock events{outcome=%q} = %v, want 0", o, got)
		}
	}
	if got := f.gauge("sluice_locks_held", "name=jobs"); got != 0 {
		t.Errorf("locks held = %v, want 0", got)
	}
	if got := f.counter("sluice_lock_events_total", "name=jobs", "outcome=conflict"); got != 1 {
		t.Errorf("conflicts = %v, want 1", got)
	}
}

// WithNamespace prefixes every name, WithConstLabels labels every series,
// and the bucket options replace the default bounds.
func TestOptions(t *testing.T) {
	c := newCollector(t,
		prommetrics.WithNamespace("shop"),
		prommetrics.WithConstLabels(prometheus.Labels{"instance_group": "blue"}),
		prommetrics.WithLatencyBuckets(.001, .01),
		prommetrics.WithHoldBuckets(1, 10, 100),
	)
	s := newScraper(t, c)
	c.ObserveDecision(limiter.DecisionEvent{Policy: "api", Outcome: limiter.Denied, Latency: 5 * time.Millisecond})
	c.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockReleased, Latency: time.Millisecond, Held: 5 * time.Second})

	f := s.scrape()
	want := []string{
		"shop_sluice_lock_events_total",
		"shop_sluice_lock_hold_duration_seconds",
		"shop_sluice_lock_store_duration_seconds",
		"shop_sluice_locks_held",
		"shop_sluice_ratelimit_decisions_total",
		"shop_sluice_ratelimit_store_duration_seconds",
	}
	if got := f.names(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("families %v, want %v", got, want)
	}
	if got := f.counter("shop_sluice_ratelimit_decisions_total", "policy=api", "outcome=denied", "instance_group=blue"); got != 1 {
		t.Errorf("denied = %v, want 1", got)
	}
	h := f.histogram("shop_sluice_ratelimit_store_duration_seconds", "policy=api", "instance_group=blue")
	if got := bounds(h); fmt.Sprint(got) != "[0.001 0.01]" {
		t.Errorf("latency histogram bounds %v, want [0.001 0.01]", got)
	}
	if got := bucket(t, h, .01); got != 1 {
		t.Errorf("latency bucket le=0.01: %d, want 1", got)
	}
	h = f.histogram("shop_sluice_lock_hold_duration_seconds", "name=orders", "instance_group=blue")
	if got := bounds(h); fmt.Sprint(got) != "[1 10 100]" || bucket(t, h, 1) != 0 || bucket(t, h, 10) != 1 {
		t.Errorf("hold histogram bounds %v, want [1 10 100] with the 5s hold under 10", got)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  prommetrics.Option
		want string
	}{
		{"empty namespace", prommetrics.WithNamespace(""), "namespace"},
		{"namespace with a dash", prommetrics.WithNamespace("my-app"), "namespace"},
		{"const label of the metrics", prommetrics.WithConstLabels(prometheus.Labels{"policy": "x"}), `"policy"`},
		{"invalid const label name", prommetrics.WithConstLabels(prometheus.Labels{"a-b": "x"}), "a-b"},
		{"reserved const label name", prommetrics.WithConstLabels(prometheus.Labels{"__x": "x"}), "__x"},
		{"no latency bucket", prommetrics.WithLatencyBuckets(), "latency buckets"},
		{"decreasing latency buckets", prommetrics.WithLatencyBuckets(.1, .01), "latency buckets"},
		{"zero hold bucket", prommetrics.WithHoldBuckets(0, 1), "hold buckets"},
		{"NaN hold bucket", prommetrics.WithHoldBuckets(math.NaN()), "hold buckets"},
		{"repeated hold bucket", prommetrics.WithHoldBuckets(1, 1), "hold buckets"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := prommetrics.New(c.opt)
			if !errors.Is(err, prommetrics.ErrInvalidConfig) {
				t.Fatalf("New: %v, %v; want an error wrapping ErrInvalidConfig", got, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %s", err, c.want)
			}
		})
	}
}

// Events from many goroutines over several names are all counted.
func TestConcurrentEvents(t *testing.T) {
	c := newCollector(t)
	s := newScraper(t, c)
	const goroutines, events = 8, 500
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < events; i++ {
				name := fmt.Sprintf("p%d", i%5)
				c.ObserveDecision(limiter.DecisionEvent{Policy: name, Outcome: limiter.Allowed, Latency: time.Microsecond})
				c.ObserveLock(limiter.LockEvent{Name: name, Outcome: limiter.LockAcquired, Latency: time.Microsecond})
				c.ObserveLock(limiter.LockEvent{Name: name, Outcome: limiter.LockReleased, Latency: time.Microsecond, Held: time.Millisecond})
			}
		}()
	}
	wg.Wait()
	f := s.scrape()
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("p%d", i)
		want := float64(goroutines * events / 5)
		if got := f.counter("sluice_ratelimit_decisions_total", "policy="+name, "outcome=allowed"); got != want {
			t.Errorf("%s allowed = %v, want %v", name, got, want)
		}
		if got := f.counter("sluice_lock_events_total", "name="+name, "outcome=released"); got != want {
			t.Errorf("%s released = %v, want %v", name, got, want)
		}
		if got := f.gauge("sluice_locks_held", "name="+name); got != 0 {
			t.Errorf("%s held = %v, want 0", name, got)
		}
	}
}

// Once a policy or lock name has been seen, observing its events
// allocates nothing.
func TestObserveDoesNotAllocate(t *testing.T) {
	c := newCollector(t)
	dec := limiter.DecisionEvent{Policy: "api", Outcome: limiter.Allowed, Cost: 1, Latency: time.Millisecond}
	denied := limiter.DecisionEvent{Policy: "api", Outcome: limiter.Denied, Cost: 1, Latency: time.Millisecond}
	acq := limiter.LockEvent{Name: "orders", Outcome: limiter.LockAcquired, Latency: time.Millisecond}
	rel := limiter.LockEvent{Name: "orders", Outcome: limiter.LockReleased, Latency: time.Millisecond, Held: time.Second}
	c.ObserveDecision(dec)
	c.ObserveLock(acq)
	if n := testing.AllocsPerRun(1000, func() {
		c.ObserveDecision(dec)
		c.ObserveDecision(denied)
	}); n != 0 {
		t.Errorf("ObserveDecision: %v allocations per run, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		c.ObserveLock(acq)
		c.ObserveLock(rel)
	}); n != 0 {
		t.Errorf("ObserveLock: %v allocations per run, want 0", n)
	}
}

func BenchmarkObserveDecision(b *testing.B) {
	c, err := prommetrics.New()
	if err != nil {
		b.Fatal(err)
	}
	names := []string{"api", "login", "search", "upload"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.ObserveDecision(limiter.DecisionEvent{Policy: names[i%len(names)], Outcome: limiter.Allowed, Cost: 1, Latency: 500 * time.Microsecond})
			i++
		}
	})
}

func BenchmarkObserveLock(b *testing.B) {
	c, err := prommetrics.New()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockAcquired, Latency: 500 * time.Microsecond})
			c.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockReleased, Latency: 500 * time.Microsecond, Held: time.Second})
		}
	})
}
