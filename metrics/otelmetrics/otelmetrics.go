package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluicehq/sluice/limiter"
)

// ScopeName is the name of the Meter that holds the instruments (the
// instrumentation scope of their data).
const ScopeName = "github.com/sluicehq/sluice/metrics/otelmetrics"

// ErrInvalidConfig is wrapped by the error of New for an invalid option.
var ErrInvalidConfig = errors.New("otelmetrics: invalid configuration")

// The default upper bounds, in seconds, of the histograms' buckets: store
// latency from 100µs (a Redis call on the same host) to 1s, hold time from
// 5ms to 5 minutes. The SDK's own default is made for milliseconds.
func defaultLatencyBuckets() []float64 {
	return []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
}

func defaultHoldBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
}

// The outcomes whose counters start at zero when a policy or lock name is
// first seen, in the order of their values (Allowed is 1).
var (
	outcomes     = [...]limiter.Outcome{limiter.Allowed, limiter.Denied, limiter.Skipped, limiter.StoreError, limiter.BadRequest}
	lockOutcomes = [...]limiter.LockOutcome{limiter.LockAcquired, limiter.LockConflict, limiter.LockReleased, limiter.LockLost, limiter.LockStoreError}
)

// Option configures an Observer; pass options to New.
type Option func(*config)

type config struct {
	provider metric.MeterProvider
	latency  []float64
	hold     []float64
	err      error
}

func (c *config) setErr(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
}

// WithMeterProvider sets the MeterProvider whose Meter creates the
// instruments; nil is an error. The default is otel.GetMeterProvider() at
// the time New is called (the global provider, which forwards to the one
// given to otel.SetMeterProvider, even later).
func WithMeterProvider(p metric.MeterProvider) Option {
	return func(c *config) {
		if p == nil {
			c.setErr("nil MeterProvider")
			return
		}
		c.provider = p
	}
}

// WithLatencyBuckets sets the upper bounds, in seconds, of the buckets of
// the store latency histograms (sluice.ratelimit.store.duration and
// sluice.lock.store.duration). They must be positive and increasing. The
// default is .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1,
// .25, .5 and 1 (100µs to 1s).
func WithLatencyBuckets(bounds ...float64) Option {
	return func(c *config) {
		if err := checkBuckets(bounds); err != nil {
			c.setErr("latency buckets: %v", err)
			return
		}
		c.latency = append([]float64(nil), bounds...)
	}
}

// WithHoldBuckets sets the upper bounds, in seconds, of the buckets of the
// lock hold-time histogram (sluice.lock.hold.duration). They must be
// positive and increasing. The default is .005, .01, .025, .05, .1, .25,
// .5, 1, 2.5, 5, 10, 30, 60 and 300 (5ms to 5 minutes).
func WithHoldBuckets(bounds ...float64) Option {
	return func(c *config) {
		if err := checkBuckets(bounds); err != nil {
			c.setErr("hold buckets: %v", err)
			return
		}
		c.hold = append([]float64(nil), bounds...)
	}
}

func checkBuckets(bounds []float64) error {
	if len(bounds) == 0 {
		return errors.New("none given")
	}
	for i, b := range bounds {
		if !(b > 0) { // NaN too
			return fmt.Errorf("bound %v is not positive", b)
		}
		if i > 0 && b <= bounds[i-1] {
			return fmt.Errorf("bound %v does not exceed the one before it, %v", b, bounds[i-1])
		}
	}
	return nil
}

// Observer records rate-limit decisions and lock events with OpenTelemetry
// instruments. Create it with New and give it to every policy and guard
// whose events it should record. It is safe for concurrent use.
type Observer struct {
	decisions  metric.Int64Counter
	storeTime  metric.Float64Histogram
	lockEvents metric.Int64Counter
	locksHeld  metric.Int64UpDownCounter
	holdTime   metric.Float64Histogram
	lockTime   metric.Float64Histogram

	policies sync.Map // name → *policyAttrs
	locks    sync.Map // name → *lockAttrs
}

// The measurement options of one policy, made once: the attribute set of
// each outcome (indexed by Outcome-1), and of the policy alone.
type policyAttrs struct {
	outcomes [len(outcomes)][]metric.AddOption
	policy   []metric.RecordOption
}

// The measurement options of one lock name.
type lockAttrs struct {
	outcomes [len(lockOutcomes)][]metric.AddOption
	add      []metric.AddOption
	record   []metric.RecordOption
}

// New returns an Observer whose instruments come from the Meter named
// ScopeName of the configured MeterProvider. An invalid option is an error
// wrapping ErrInvalidConfig; an instrument that the provider refuses is
// returned as the provider reported it.
func New(opts ...Option) (*Observer, error) {
	cfg := config{latency: defaultLatencyBuckets(), hold: defaultHoldBuckets()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	if cfg.provider == nil {
		cfg.provider = otel.GetMeterProvider()
	}
	m := cfg.provider.Meter(ScopeName)
	o := &Observer{}
	var err error
	if o.decisions, err = m.Int64Counter("sluice.ratelimit.decisions",
		metric.WithUnit("{decision}"),
		metric.WithDescription("Rate-limit decisions, by policy and outcome (allowed, denied, skipped, store_error, bad_request).")); err != nil {
		return nil, err
	}
	if o.storeTime, err = m.Float64Histogram("sluice.ratelimit.store.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time the store took to decide, by policy; decisions made without a store call are not recorded."),
		metric.WithExplicitBucketBoundaries(cfg.latency...)); err != nil {
		return nil, err
	}
	if o.lockEvents, err = m.Int64Counter("sluice.lock.events",
		metric.WithUnit("{event}"),
		metric.WithDescription("Lock events, by guard name and outcome (acquired, conflict, released, lost, store_error).")); err != nil {
		return nil, err
	}
	if o.locksHeld, err = m.Int64UpDownCounter("sluice.locks.held",
		metric.WithUnit("{lock}"),
		metric.WithDescription("Locks held now by this process, by guard name.")); err != nil {
		return nil, err
	}
	if o.holdTime, err = m.Float64Histogram("sluice.lock.hold.duration",
		metric.WithUnit("s"),
		metric.WithDescription("How long locks were held, from acquisition to release or loss, by guard name."),
		metric.WithExplicitBucketBoundaries(cfg.hold...)); err != nil {
		return nil, err
	}
	if o.lockTime, err = m.Float64Histogram("sluice.lock.store.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time the store took to acquire or release a lock, by guard name."),
		metric.WithExplicitBucketBoundaries(cfg.latency...)); err != nil {
		return nil, err
	}
	return o, nil
}

// ObserveDecision counts one decision of a policy and, when the store was
// asked (e.Latency > 0), records its latency. It implements
// limiter.Observer.
func (o *Observer) ObserveDecision(e limiter.DecisionEvent) {
	ctx := context.Background()
	a := byName(&o.policies, e.Policy, o.newPolicy)
	if i := int(e.Outcome) - 1; i >= 0 && i < len(a.outcomes) {
		o.decisions.Add(ctx, 1, a.outcomes[i]...)
	} else {
		o.decisions.Add(ctx, 1, metric.WithAttributes(attribute.String("policy", e.Policy), attribute.String("outcome", e.Outcome.String())))
	}
	if e.Latency > 0 {
		o.storeTime.Record(ctx, e.Latency.Seconds(), a.policy...)
	}
}

// ObserveLock counts one lock event. An acquisition adds one to the
// held-locks counter, a release or loss takes one away and records the
// hold time, and an event with a store call (e.Latency > 0) records its
// latency. It implements limiter.Observer.
func (o *Observer) ObserveLock(e limiter.LockEvent) {
	ctx := context.Background()
	a := byName(&o.locks, e.Name, o.newLock)
	if i := int(e.Outcome) - 1; i >= 0 && i < len(a.outcomes) {
		o.lockEvents.Add(ctx, 1, a.outcomes[i]...)
	} else {
		o.lockEvents.Add(ctx, 1, metric.WithAttributes(attribute.String("name", e.Name), attribute.String("outcome", e.Outcome.String())))
	}
	switch e.Outcome {
	case limiter.LockAcquired:
		o.locksHeld.Add(ctx, 1, a.add...)
	case limiter.LockReleased, limiter.LockLost:
		o.locksHeld.Add(ctx, -1, a.add...)
		o.holdTime.Record(ctx, e.Held.Seconds(), a.record...)
	}
	if e.Latency > 0 {
		o.lockTime.Record(ctx, e.Latency.Seconds(), a.record...)
	}
}

func (o *Observer) newPolicy(policy string) *policyAttrs {
	p := attribute.String("policy", policy)
	a := &policyAttrs{policy: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(p))}}
	for i, oc := range outcomes {
		a.outcomes[i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(p, attribute.String("outcome", oc.String())))}
		o.decisions.Add(context.Background(), 0, a.outcomes[i]...)
	}
	return a
}

func (o *Observer) newLock(name string) *lockAttrs {
	n := attribute.String("name", name)
	set := metric.WithAttributeSet(attribute.NewSet(n))
	a := &lockAttrs{add: []metric.AddOption{set}, record: []metric.RecordOption{set}}
	for i, oc := range lockOutcomes {
		a.outcomes[i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(n, attribute.String("outcome", oc.String())))}
		o.lockEvents.Add(context.Background(), 0, a.outcomes[i]...)
	}
	o.locksHeld.Add(context.Background(), 0, a.add...)
	return a
}

// byName returns what m holds for name, made by create the first time.
// Names come from the application's configuration: few, written once and
// read on every event, which is what sync.Map is for. Two first events of a
// name may both create; one is kept, and creating is idempotent.
func byName[T any](m *sync.Map, name string, create func(string) *T) *T {
	if v, ok := m.Load(name); ok {
		return v.(*T)
	}
	v, _ := m.LoadOrStore(name, create(name))
	return v.(*T)
}
