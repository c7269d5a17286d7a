package observertest

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
)

// Metric names an instrument an observer exports, whatever the name its
// metrics system gives it.
type Metric string

// The instruments of an observer, with their labels.
const (
	// Decisions is a counter of decisions, by policy and outcome.
	Decisions Metric = "decisions"
	// StoreTime is a histogram of the store latency of decisions, in
	// seconds, by policy.
	StoreTime Metric = "store time"
	// LockEvents is a counter of lock events, by name and outcome.
	LockEvents Metric = "lock events"
	// LocksHeld is a gauge of the locks held now, by name.
	LocksHeld Metric = "locks held"
	// HoldTime is a histogram of how long locks were held, in seconds, by
	// name.
	HoldTime Metric = "hold time"
	// LockStoreTime is a histogram of the store latency of lock events, in
	// seconds, by name.
	LockStoreTime Metric = "lock store time"
)

// Kind is what a series holds.
type Kind int

const (
	// KindCounter is a value that only grows: a Prometheus counter, an
	// OpenTelemetry monotonic cumulative sum.
	KindCounter Kind = iota + 1
	// KindGauge is a value that goes up and down: a Prometheus gauge, an
	// OpenTelemetry non-monotonic cumulative sum (an up-down counter).
	KindGauge
	// KindHistogram is a Histogram.
	KindHistogram
)

// String returns the kind's name: counter, gauge or histogram.
func (k Kind) String() string {
	switch k {
	case KindCounter:
		return "counter"
	case KindGauge:
		return "gauge"
	case KindHistogram:
		return "histogram"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Series is one series (a Prometheus metric, an OpenTelemetry data point)
// an observer exports.
type Series struct {
	// Metric is the instrument the series belongs to.
	Metric Metric
	// Kind is what the series holds.
	Kind Kind
	// Labels are all the series' labels (attributes), constant ones
	// included.
	Labels map[string]string
	// Value is the value of a counter or gauge.
	Value float64
	// Histogram is the value of a histogram.
	Histogram Histogram
}

// Histogram is the value of a histogram series.
type Histogram struct {
	// Count and Sum are the number and sum of the observations.
	Count uint64
	Sum   float64
	// Bounds are the finite upper bounds of the buckets, increasing.
	Bounds []float64
	// Counts are the observations of each bucket, not cumulative: Counts[i]
	// those above Bounds[i-1] and at most Bounds[i], and the last one, at
	// Counts[len(Bounds)], those above every bound.
	Counts []uint64
}

// Bucket returns the observations of the bucket whose upper bound is le
// (not counting those of the buckets below), failing tb if there is none.
func (h Histogram) Bucket(tb testing.TB, le float64) uint64 {
	tb.Helper()
	return h.Counts[h.index(tb, le)]
}

// Cumulative returns the observations at most le, failing tb if no bucket
// has the upper bound le.
func (h Histogram) Cumulative(tb testing.TB, le float64) uint64 {
	tb.Helper()
	var n uint64
	for _, c := range h.Counts[:h.index(tb, le)+1] {
		n += c
	}
	return n
}

func (h Histogram) index(tb testing.TB, le float64) int {
	tb.Helper()
	if len(h.Counts) != len(h.Bounds)+1 {
		tb.Fatalf("histogram with %d bounds has %d bucket counts", len(h.Bounds), len(h.Counts))
	}
	for i, b := range h.Bounds {
		if b == le {
			return i
		}
	}
	tb.Fatalf("no bucket le=%v in %v", le, h.Bounds)
	return 0
}

// Data is every series an observer exports at one time.
type Data []Series

// Find returns the one series of m whose labels are exactly labels ("k=v"
// pairs), and whether there is one; it fails tb if there are several or
// the series is not of kind.
func (d Data) Find(tb testing.TB, m Metric, kind Kind, labels ...string) (Series, bool) {
	tb.Helper()
	want := map[string]string{}
	for _, kv := range labels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			tb.Fatalf("label %q is not k=v", kv)
		}
		want[k] = v
	}
	var found []Series
	for _, s := range d {
		if s.Metric == m && sameLabels(s.Labels, want) {
			found = append(found, s)
		}
	}
	switch {
	case len(found) > 1:
		tb.Fatalf("%s%v: %d series, want 1", m, labels, len(found))
	case len(found) == 0:
		return Series{}, false
	case found[0].Kind != kind:
		tb.Fatalf("%s%v is a %v, want a %v", m, labels, found[0].Kind, kind)
	}
	return found[0], true
}

func (d Data) get(tb testing.TB, m Metric, kind Kind, labels []string) Series {
	tb.Helper()
	s, ok := d.Find(tb, m, kind, labels...)
	if !ok {
		tb.Fatalf("no series %s%v; have %v", m, labels, d)
	}
	return s
}

// Counter returns the value of the counter series of m with exactly labels,
// failing tb if there is none.
func (d Data) Counter(tb testing.TB, m Metric, labels ...string) float64 {
	tb.Helper()
	return d.get(tb, m, KindCounter, labels).Value
}

// Gauge returns the value of the gauge series of m with exactly labels,
// failing tb if there is none.
func (d Data) Gauge(tb testing.TB, m Metric, labels ...string) float64 {
	tb.Helper()
	return d.get(tb, m, KindGauge, labels).Value
}

// Histogram returns the histogram series of m with exactly labels, failing
// tb if there is none.
func (d Data) Histogram(tb testing.TB, m Metric, labels ...string) Histogram {
	tb.Helper()
	return d.get(tb, m, KindHistogram, labels).Histogram
}

// String lists the series' metrics and labels, sorted.
func (d Data) String() string {
	var out []string
	for _, s := range d {
		var ls []string
		for k, v := range s.Labels {
			ls = append(ls, k+"="+v)
		}
		sort.Strings(ls)
		out = append(out, string(s.Metric)+fmt.Sprint(ls))
	}
	sort.Strings(out)
	return "[" + strings.Join(out, " ") + "]"
}

func sameLabels(have, want map[string]string) bool {
	if len(have) != len(want) {
		return false
	}
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// CumulativeHistogram returns the Histogram of count observations summing
// to sum in buckets with the upper bounds les and the cumulative counts
// cumulative (each bucket counting the observations at most its bound, as
// Prometheus does). An infinite bound and its count are left out: the last
// bucket is what count holds above the last finite bound.
func CumulativeHistogram(tb testing.TB, count uint64, sum float64, les []float64, cumulative []uint64) Histogram {
	tb.Helper()
	if len(les) != len(cumulative) {
		tb.Fatalf("%d bucket bounds and %d counts", len(les), len(cumulative))
	}
	h := Histogram{Count: count, Sum: sum}
	var below uint64
	for i, le := range les {
		if math.IsInf(le, 1) {
			continue
		}
		if cumulative[i] < below || cumulative[i] > count {
			tb.Fatalf("cumulative bucket le=%v holds %d after %d, of %d in all", le, cumulative[i], below, count)
		}
		h.Bounds = append(h.Bounds, le)
		h.Counts = append(h.Counts, cumulative[i]-below)
		below = cumulative[i]
	}
	h.Counts = append(h.Counts, count-below)
	return h
}
