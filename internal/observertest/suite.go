package observertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// Factory makes a fresh observer with its default options for one test or
// benchmark, registering its own cleanup with tb.Cleanup, and the Reader of
// what it exports.
type Factory func(tb testing.TB) (limiter.Observer, Reader)

// Reader returns every series the observer exports now, as a scrape or a
// collection of its metrics system reads them. It fails tb for data the
// observer must not export: an instrument it does not know, a wrong unit or
// temporality.
type Reader func(tb testing.TB) Data

// Run runs the suite against the observers newObserver makes.
func Run(t *testing.T, newObserver Factory) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, o limiter.Observer, read Reader)
	}{
		{"decisions-of-policies-over-http", testPolicies},
		{"events-by-outcome", testEventsByOutcome},
		{"locks-held-and-hold-time", testLocksHeld},
		{"series-start-at-zero", testStartAtZero},
		{"default-buckets", testDefaultBuckets},
		{"concurrent-events", testConcurrent},
		{"observe-does-not-allocate", testNoAllocs},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, read := newObserver(t)
			c.fn(t, o, read)
		})
	}
}

// Benchmark measures observing decisions of four policies from parallel
// goroutines, and the acquisition and release of one lock.
func Benchmark(b *testing.B, newObserver Factory) {
	b.Run("decision", func(b *testing.B) {
		o, _ := newObserver(b)
		names := []string{"api", "login", "search", "upload"}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				o.ObserveDecision(limiter.DecisionEvent{Policy: names[i%len(names)], Outcome: limiter.Allowed, Cost: 1, Latency: 500 * time.Microsecond})
				i++
			}
		})
	})
	b.Run("lock", func(b *testing.B) {
		o, _ := newObserver(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				o.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockAcquired, Latency: 500 * time.Microsecond})
				o.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockReleased, Latency: 500 * time.Microsecond, Held: time.Second})
			}
		})
	})
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

// Decisions of real policies, served over HTTP, are counted by policy and
// outcome, and the store calls among them timed.
func testPolicies(t *testing.T, o limiter.Observer, read Reader) {
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

	if d := read(t); len(d) != 0 {
		t.Fatalf("series before any event: %v", d)
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

	d := read(t)
	for _, w := range []struct {
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
		if got := d.Counter(t, Decisions, "policy="+w.policy, "outcome="+w.outcome); got != w.want {
			t.Errorf("decisions{policy=%q,outcome=%q} = %v, want %v", w.policy, w.outcome, got, w.want)
		}
	}
	// The four store calls of api are timed, under the policy alone; the
	// skip and the request without a key made none.
	h := d.Histogram(t, StoreTime, "policy=api")
	if h.Count != 4 || !(h.Sum > 0) {
		t.Errorf("api store latency: count %d sum %v, want 4 and > 0", h.Count, h.Sum)
	}
	if got := h.Cumulative(t, 1); got != 4 {
		t.Errorf("api store latency: %d in-memory calls took up to 1s, want 4", got)
	}
	if h := d.Histogram(t, StoreTime, "policy=flaky"); h.Count != 1 {
		t.Errorf("flaky store latency: count %d, want 1 (the failed call)", h.Count)
	}
}

// Every outcome of a decision and of a lock is exported under its label
// value, and the latencies go to the right buckets.
func testEventsByOutcome(t *testing.T, o limiter.Observer, read Reader) {
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

	d := read(t)
	for _, w := range []struct {
		outcome string
		want    float64
	}{{"allowed", 2}, {"denied", 4}, {"skipped", 3}, {"store_error", 4}, {"bad_request", 5}, {"Outcome(42)", 1}} {
		if got := d.Counter(t, Decisions, "policy=p", "outcome="+w.outcome); got != w.want {
			t.Errorf("decisions{outcome=%q} = %v, want %v", w.outcome, got, w.want)
		}
	}
	h := d.Histogram(t, StoreTime, "policy=p")
	if h.Count != 2 || math.Abs(h.Sum-0.0203) > 1e-9 {
		t.Errorf("store latency: count %d sum %v, want 2 and 0.0203", h.Count, h.Sum)
	}
	for _, b := range []struct {
		le               float64
		bucket, atMostLE uint64
	}{{.00025, 0, 0}, {.0005, 1, 1}, {.01, 0, 1}, {.025, 1, 2}} {
		if got := h.Bucket(t, b.le); got != b.bucket {
			t.Errorf("store latency bucket le=%v: %d, want %d", b.le, got, b.bucket)
		}
		if got := h.Cumulative(t, b.le); got != b.atMostLE {
			t.Errorf("store latency up to le=%v: %d, want %d", b.le, got, b.atMostLE)
		}
	}

	for i, oc := range []string{"acquired", "conflict", "released", "lost", "store_error"} {
		if got := d.Counter(t, LockEvents, "name=orders", "outcome="+oc); got != float64(i+1) {
			t.Errorf("lock events{outcome=%q} = %v, want %d", oc, got, i+1)
		}
	}
	// One acquired, then three released and four lost: the gauge counts
	// what it is told.
	if got := d.Gauge(t, LocksHeld, "name=orders"); got != 1-3-4 {
		t.Errorf("locks held = %v, want %d", got, 1-3-4)
	}
	if h := d.Histogram(t, LockStoreTime, "name=orders"); h.Count != 15 {
		t.Errorf("lock store latency: count %d, want 15", h.Count)
	}
}

// The held-locks gauge follows acquisitions, releases and losses per name,
// and the hold time of each release or loss is observed.
func testLocksHeld(t *testing.T, o limiter.Observer, read Reader) {
	ev := func(name string, oc limiter.LockOutcome, held time.Duration) {
		o.ObserveLock(limiter.LockEvent{Name: name, Outcome: oc, Latency: 200 * time.Microsecond, Held: held})
	}
	ev("orders", limiter.LockAcquired, 0)
	ev("orders", limiter.LockAcquired, 0)
	ev("orders", limiter.LockConflict, 0)
	ev("reports", limiter.LockAcquired, 0)

	d := read(t)
	if got := d.Gauge(t, LocksHeld, "name=orders"); got != 2 {
		t.Errorf("orders held = %v, want 2", got)
	}
	if got := d.Gauge(t, LocksHeld, "name=reports"); got != 1 {
		t.Errorf("reports held = %v, want 1", got)
	}
	// A series with no observation, or none at all.
	if s, ok := d.Find(t, HoldTime, KindHistogram, "name=orders"); ok && s.Histogram.Count != 0 {
		t.Errorf("orders hold time observed %d times before any release", s.Histogram.Count)
	}

	ev("orders", limiter.LockReleased, 40*time.Millisecond)
	o.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockLost, Held: 90 * time.Second}) // no store call
	ev("reports", limiter.LockStoreError, 0)

	d = read(t)
	if got := d.Gauge(t, LocksHeld, "name=orders"); got != 0 {
		t.Errorf("orders held after a release and a loss = %v, want 0", got)
	}
	if got := d.Gauge(t, LocksHeld, "name=reports"); got != 1 {
		t.Errorf("reports held after a store error = %v, want 1", got)
	}
	h := d.Histogram(t, HoldTime, "name=orders")
	if h.Count != 2 || math.Abs(h.Sum-90.04) > 1e-9 {
		t.Errorf("orders hold time: count %d sum %v, want 2 and 90.04", h.Count, h.Sum)
	}
	for _, b := range []struct {
		le               float64
		bucket, atMostLE uint64
	}{{.05, 1, 1}, {60, 0, 1}, {300, 1, 2}} {
		if got := h.Bucket(t, b.le); got != b.bucket {
			t.Errorf("hold time bucket le=%v: %d, want %d", b.le, got, b.bucket)
		}
		if got := h.Cumulative(t, b.le); got != b.atMostLE {
			t.Errorf("hold time up to le=%v: %d, want %d", b.le, got, b.atMostLE)
		}
	}
	if h := d.Histogram(t, LockStoreTime, "name=orders"); h.Count != 4 {
		t.Errorf("orders lock store latency: count %d, want 4 (the loss made no store call)", h.Count)
	}
}

// The first event of a name creates its series for every outcome at zero.
func testStartAtZero(t *testing.T, o limiter.Observer, read Reader) {
	o.ObserveDecision(limiter.DecisionEvent{Policy: "login", Outcome: limiter.Allowed, Latency: time.Millisecond})
	o.ObserveLock(limiter.LockEvent{Name: "jobs", Outcome: limiter.LockConflict, Latency: time.Millisecond})

	d := read(t)
	for _, oc := range []string{"denied", "skipped", "store_error", "bad_request"} {
		if got := d.Counter(t, Decisions, "policy=login", "outcome="+oc); got != 0 {
			t.Errorf("decisions{outcome=%q} = %v, want 0", oc, got)
		}
	}
	for _, oc := range []string{"acquired", "released", "lost", "store_error"} {
		if got := d.Counter(t, LockEvents, "name=jobs", "outcome="+oc); got != 0 {
			t.Errorf("lock events{outcome=%q} = %v, want 0", oc, got)
		}
	}
	if got := d.Gauge(t, LocksHeld, "name=jobs"); got != 0 {
		t.Errorf("locks held = %v, want 0", got)
	}
	if got := d.Counter(t, LockEvents, "name=jobs", "outcome=conflict"); got != 1 {
		t.Errorf("conflicts = %v, want 1", got)
	}
}

// The histograms' bucket bounds are the defaults, in seconds.
func testDefaultBuckets(t *testing.T, o limiter.Observer, read Reader) {
	o.ObserveDecision(limiter.DecisionEvent{Policy: "api", Outcome: limiter.Allowed, Latency: time.Millisecond})
	o.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockReleased, Latency: time.Millisecond, Held: 5 * time.Second})

	d := read(t)
	const latency = "[0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1]"
	for _, w := range []struct {
		m     Metric
		label string
		want  string
	}{
		{StoreTime, "policy=api", latency},
		{LockStoreTime, "name=orders", latency},
		{HoldTime, "name=orders", "[0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 300]"},
	} {
		if got := fmt.Sprint(d.Histogram(t, w.m, w.label).Bounds); got != w.want {
			t.Errorf("%s: bounds %s, want %s", w.m, got, w.want)
		}
	}
}

// Events from many goroutines over several names are all counted.
func testConcurrent(t *testing.T, o limiter.Observer, read Reader) {
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
	d := read(t)
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("p%d", i)
		want := float64(goroutines * events / 5)
		if got := d.Counter(t, Decisions, "policy="+name, "outcome=allowed"); got != want {
			t.Errorf("%s allowed = %v, want %v", name, got, want)
		}
		if got := d.Counter(t, LockEvents, "name="+name, "outcome=released"); got != want {
			t.Errorf("%s released = %v, want %v", name, got, want)
		}
		if got := d.Gauge(t, LocksHeld, "name="+name); got != 0 {
			t.Errorf("%s held = %v, want 0", name, got)
		}
	}
}

// Once a policy or lock name has been seen, observing its events allocates
// nothing, the metrics system included.
func testNoAllocs(t *testing.T, o limiter.Observer, _ Reader) {
	dec := limiter.DecisionEvent{Policy: "api", Outcome: limiter.Allowed, Cost: 1, Latency: time.Millisecond}
	denied := limiter.DecisionEvent{Policy: "api", Outcome: limiter.Denied, Cost: 1, Latency: time.Millisecond}
	acq := limiter.LockEvent{Name: "orders", Outcome: limiter.LockAcquired, Latency: time.Millisecond}
	rel := limiter.LockEvent{Name: "orders", Outcome: limiter.LockReleased, Latency: time.Millisecond, Held: time.Second}
	o.ObserveDecision(dec)
	o.ObserveLock(acq)
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
