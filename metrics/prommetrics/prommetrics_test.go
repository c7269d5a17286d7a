package prommetrics_test

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/sluicehq/sluice/internal/observertest"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/metrics/prommetrics"
)

// The instruments of the suite by the names of their families, without a
// namespace.
var families = map[string]observertest.Metric{
	"sluice_ratelimit_decisions_total":        observertest.Decisions,
	"sluice_ratelimit_store_duration_seconds": observertest.StoreTime,
	"sluice_lock_events_total":                observertest.LockEvents,
	"sluice_locks_held":                       observertest.LocksHeld,
	"sluice_lock_hold_duration_seconds":       observertest.HoldTime,
	"sluice_lock_store_duration_seconds":      observertest.LockStoreTime,
}

var kinds = map[dto.MetricType]observertest.Kind{
	dto.MetricType_COUNTER:   observertest.KindCounter,
	dto.MetricType_GAUGE:     observertest.KindGauge,
	dto.MetricType_HISTOGRAM: observertest.KindHistogram,
}

// series converts the families a registry gathered, or a scrape parsed,
// into the suite's data; namespace is the Collector's (WithNamespace).
func series(tb testing.TB, fams []*dto.MetricFamily, namespace string) observertest.Data {
	tb.Helper()
	var d observertest.Data
	for _, fam := range fams {
		name := fam.GetName()
		if namespace != "" {
			name = strings.TrimPrefix(name, namespace+"_")
		}
		m, ok := families[name]
		if !ok {
			tb.Fatalf("unknown metric family %s", fam.GetName())
		}
		kind, ok := kinds[fam.GetType()]
		if !ok {
			tb.Fatalf("%s is a %v", fam.GetName(), fam.GetType())
		}
		for _, pm := range fam.GetMetric() {
			s := observertest.Series{Metric: m, Kind: kind, Labels: map[string]string{}}
			for _, lp := range pm.GetLabel() {
				s.Labels[lp.GetName()] = lp.GetValue()
			}
			switch kind {
			case observertest.KindCounter:
				s.Value = pm.GetCounter().GetValue()
			case observertest.KindGauge:
				s.Value = pm.GetGauge().GetValue()
			case observertest.KindHistogram:
				h := pm.GetHistogram()
				var les []float64
				var cumulative []uint64
				for _, b := range h.GetBucket() {
					les = append(les, b.GetUpperBound())
					cumulative = append(cumulative, b.GetCumulativeCount())
				}
				s.Histogram = observertest.CumulativeHistogram(tb, h.GetSampleCount(), h.GetSampleSum(), les, cumulative)
			}
			d = append(d, s)
		}
	}
	return d
}

func newCollector(tb testing.TB, opts ...prommetrics.Option) *prommetrics.Collector {
	tb.Helper()
	c, err := prommetrics.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// newObserver returns a Collector with the default options, registered with
// a pedantic registry that the reader gathers.
func newObserver(tb testing.TB) (limiter.Observer, observertest.Reader) {
	c := newCollector(tb)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		tb.Fatalf("register: %v", err)
	}
	return c, func(tb testing.TB) observertest.Data {
		tb.Helper()
		fams, err := reg.Gather()
		if err != nil {
			tb.Fatalf("gather: %v", err)
		}
		return series(tb, fams, "")
	}
}

func TestObserver(t *testing.T) { observertest.Run(t, newObserver) }

func BenchmarkObserver(b *testing.B) { observertest.Benchmark(b, newObserver) }

// scrape serves a registry of cs through promhttp on a real HTTP server,
// GETs /metrics and parses the text format, as a Prometheus server would.
func scrape(t *testing.T, cs ...prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("scrape: Content-Type %q, want the text format", ct)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: parse the text format: %v", err)
	}
	return fams
}

// WithNamespace prefixes every name, WithConstLabels labels every series,
// and the bucket options replace the default bounds, as a scrape of the
// text format over HTTP reads them. A name's histograms are exported from
// its first event, before any observation.
func TestOptions(t *testing.T) {
	c := newCollector(t,
		prommetrics.WithNamespace("shop"),
		prommetrics.WithConstLabels(prometheus.Labels{"instance_group": "blue"}),
		prommetrics.WithLatencyBuckets(.001, .01),
		prommetrics.WithHoldBuckets(1, 10, 100),
	)
	c.ObserveDecision(limiter.DecisionEvent{Policy: "api", Outcome: limiter.Denied, Latency: 5 * time.Millisecond})
	c.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockReleased, Latency: time.Millisecond, Held: 5 * time.Second})
	c.ObserveLock(limiter.LockEvent{Name: "jobs", Outcome: limiter.LockAcquired, Latency: time.Millisecond})

	fams := scrape(t, c)
	var names []string
	var list []*dto.MetricFamily
	for n, fam := range fams {
		names = append(names, n)
		list = append(list, fam)
	}
	sort.Strings(names)
	want := []string{
		"shop_sluice_lock_events_total",
		"shop_sluice_lock_hold_duration_seconds",
		"shop_sluice_lock_store_duration_seconds",
		"shop_sluice_locks_held",
		"shop_sluice_ratelimit_decisions_total",
		"shop_sluice_ratelimit_store_duration_seconds",
	}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("families %v, want %v", names, want)
	}
	d := series(t, list, "shop")
	if got := d.Counter(t, observertest.Decisions, "policy=api", "outcome=denied", "instance_group=blue"); got != 1 {
		t.Errorf("denied = %v, want 1", got)
	}
	h := d.Histogram(t, observertest.StoreTime, "policy=api", "instance_group=blue")
	if got := fmt.Sprint(h.Bounds); got != "[0.001 0.01]" {
		t.Errorf("latency histogram bounds %v, want [0.001 0.01]", got)
	}
	if got := h.Cumulative(t, .01); got != 1 {
		t.Errorf("latency bucket le=0.01: %d, want 1", got)
	}
	h = d.Histogram(t, observertest.HoldTime, "name=orders", "instance_group=blue")
	if got := fmt.Sprint(h.Bounds); got != "[1 10 100]" || h.Cumulative(t, 1) != 0 || h.Cumulative(t, 10) != 1 {
		t.Errorf("hold histogram bounds %v, want [1 10 100] with the 5s hold under 10", got)
	}
	if h := d.Histogram(t, observertest.HoldTime, "name=jobs", "instance_group=blue"); h.Count != 0 {
		t.Errorf("jobs hold time: count %d before any release, want 0", h.Count)
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
		{"the histograms' bucket label", prommetrics.WithConstLabels(prometheus.Labels{"le": "x"}), `"le"`},
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
