package otelmetrics_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sluicehq/sluice/internal/observertest"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/metrics/otelmetrics"
)

// The instruments of the suite by their names, with their units.
var instruments = map[string]struct {
	metric observertest.Metric
	unit   string
}{
	"sluice.ratelimit.decisions":      {observertest.Decisions, "{decision}"},
	"sluice.ratelimit.store.duration": {observertest.StoreTime, "s"},
	"sluice.lock.events":              {observertest.LockEvents, "{event}"},
	"sluice.locks.held":               {observertest.LocksHeld, "{lock}"},
	"sluice.lock.hold.duration":       {observertest.HoldTime, "s"},
	"sluice.lock.store.duration":      {observertest.LockStoreTime, "s"},
}

// collect reads r once and converts the data into the suite's: int64 sums
// (counters when monotonic, gauges when not) and float64 histograms, all
// cumulative, of the Meter named ScopeName.
func collect(tb testing.TB, r sdkmetric.Reader) observertest.Data {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		tb.Fatalf("collect: %v", err)
	}
	var d observertest.Data
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelmetrics.ScopeName {
			tb.Fatalf("scope %q, want %q", sm.Scope.Name, otelmetrics.ScopeName)
		}
		for _, m := range sm.Metrics {
			inst, ok := instruments[m.Name]
			if !ok {
				tb.Fatalf("unknown instrument %s", m.Name)
			}
			if m.Unit != inst.unit {
				tb.Errorf("%s: unit %q, want %q", m.Name, m.Unit, inst.unit)
			}
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				if data.Temporality != metricdata.CumulativeTemporality {
					tb.Errorf("%s: temporality %v, want cumulative", m.Name, data.Temporality)
				}
				kind := observertest.KindGauge
				if data.IsMonotonic {
					kind = observertest.KindCounter
				}
				for _, dp := range data.DataPoints {
					d = append(d, observertest.Series{Metric: inst.metric, Kind: kind, Labels: labels(dp.Attributes.ToSlice()), Value: float64(dp.Value)})
				}
			case metricdata.Histogram[float64]:
				if data.Temporality != metricdata.CumulativeTemporality {
					tb.Errorf("%s: temporality %v, want cumulative", m.Name, data.Temporality)
				}
				for _, dp := range data.DataPoints {
					d = append(d, observertest.Series{Metric: inst.metric, Kind: observertest.KindHistogram, Labels: labels(dp.Attributes.ToSlice()),
						Histogram: observertest.Histogram{Count: dp.Count, Sum: dp.Sum, Bounds: dp.Bounds, Counts: dp.BucketCounts}})
				}
			default:
				tb.Fatalf("%s: %T, want an int64 sum or a float64 histogram", m.Name, m.Data)
			}
		}
	}
	return d
}

func labels(kvs []attribute.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

// newSDKObserver returns an Observer over an SDK MeterProvider and the
// manual reader that collects from it.
func newSDKObserver(tb testing.TB, opts ...otelmetrics.Option) (*otelmetrics.Observer, *sdkmetric.ManualReader) {
	tb.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tb.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	o, err := otelmetrics.New(append([]otelmetrics.Option{otelmetrics.WithMeterProvider(mp)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return o, reader
}

func newObserver(tb testing.TB) (limiter.Observer, observertest.Reader) {
	o, reader := newSDKObserver(tb)
	return o, func(tb testing.TB) observertest.Data { return collect(tb, reader) }
}

func TestObserver(t *testing.T) { observertest.Run(t, newObserver) }

func BenchmarkObserver(b *testing.B) { observertest.Benchmark(b, newObserver) }

// The bucket options replace the default bounds.
func TestBuckets(t *testing.T) {
	o, reader := newSDKObserver(t, otelmetrics.WithLatencyBuckets(.001, .01), otelmetrics.WithHoldBuckets(1, 10, 100))
	o.ObserveDecision(limiter.DecisionEvent{Policy: "api", Outcome: limiter.Allowed, Latency: time.Millisecond})
	o.ObserveLock(limiter.LockEvent{Name: "orders", Outcome: limiter.LockReleased, Latency: time.Millisecond, Held: 5 * time.Second})
	d := collect(t, reader)
	if h := d.Histogram(t, observertest.StoreTime, "policy=api"); fmt.Sprint(h.Bounds) != "[0.001 0.01]" || h.Bucket(t, .001) != 1 {
		t.Errorf("latency: %+v, want bounds [0.001 0.01] with the 1ms call under 0.001", h)
	}
	if h := d.Histogram(t, observertest.HoldTime, "name=orders"); fmt.Sprint(h.Bounds) != "[1 10 100]" || h.Bucket(t, 10) != 1 {
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
	if got := collect(t, reader).Counter(t, observertest.Decisions, "policy=api", "outcome=denied"); got != 1 {
		t.Errorf("denied = %v, want 1", got)
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
