package prommetrics

import (
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/limiter"
)

// ErrInvalidConfig is wrapped by the error of New for an invalid option.
var ErrInvalidConfig = errors.New("prommetrics: invalid configuration")

// The default upper bounds, in seconds, of the histograms' buckets: store
// latency from 100µs (a Redis call on the same host) to 1s, hold time from
// 5ms to 5 minutes.
func defaultLatencyBuckets() []float64 {
	return []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
}

func defaultHoldBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
}

// The outcomes whose series are made when a policy or lock name is first
// seen, in the order of their values (Allowed is 1).
var (
	outcomes     = [...]limiter.Outcome{limiter.Allowed, limiter.Denied, limiter.Skipped, limiter.StoreError, limiter.BadRequest}
	lockOutcomes = [...]limiter.LockOutcome{limiter.LockAcquired, limiter.LockConflict, limiter.LockReleased, limiter.LockLost, limiter.LockStoreError}
)

// Option configures a Collector; pass options to New.
type Option func(*config)

type config struct {
	namespace   string
	constLabels prometheus.Labels
	latency     []float64
	hold        []float64
	err         error
}

func (c *config) setErr(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
}

var namespaceRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// WithNamespace puts namespace and an underscore in front of every metric
// name: WithNamespace("shop") exports shop_sluice_ratelimit_decisions_total.
// The namespace is letters, digits and underscores, not starting with a
// digit. The default is no namespace (sluice_ratelimit_decisions_total).
func WithNamespace(namespace string) Option {
	return func(c *config) {
		if !namespaceRE.MatchString(namespace) {
			c.setErr("namespace %q: use letters, digits and underscores, not starting with a digit", namespace)
			return
		}
		c.namespace = namespace
	}
}

// WithConstLabels adds labels with fixed values to every series, for
// instance to tell apart two Collectors registered with one registry. The
// names policy, name and outcome are taken, and le is the histograms' own.
// The default is none.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(c *config) {
		for name := range labels {
			switch name {
			case "policy", "name", "outcome":
				c.setErr("const label %q is one of the metrics' own labels", name)
				return
			case "le": // a histogram's bucket bound, which Prometheus refuses only when a series is made
				c.setErr("const label %q is the label of the histograms' buckets", name)
				return
			}
		}
		c.constLabels = labels
	}
}

// WithLatencyBuckets sets the upper bounds, in seconds, of the buckets of
// the store latency histograms (sluice_ratelimit_store_duration_seconds
// and sluice_lock_store_duration_seconds). They must be positive and
// increasing. The default is .0001, .00025, .0005, .001, .0025, .005, .01,
// .025, .05, .1, .25, .5 and 1 (100µs to 1s).
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
// lock hold-time histogram (sluice_lock_hold_duration_seconds). They must be
// positive and increasing. The default is .005, .01, .025, .05, .1, .25, .5,
// 1, 2.5, 5, 10, 30, 60 and 300 (5ms to 5 minutes).
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

// Collector counts rate-limit decisions and lock events (as a
// limiter.Observer) and exports them (as a prometheus.Collector). Create it
// with New, register it with a prometheus.Registerer, and give it to every
// policy and guard whose events it should count. It is safe for concurrent
// use.
type Collector struct {
	decisions  *prometheus.CounterVec
	storeTime  *prometheus.HistogramVec
	lockEvents *prometheus.CounterVec
	locksHeld  *prometheus.GaugeVec
	holdTime   *prometheus.HistogramVec
	lockTime   *prometheus.HistogramVec

	policies sync.Map // name → *policySeries
	locks    sync.Map // name → *lockSeries
}

// The series of one policy: a counter per outcome, indexed by Outcome-1.
type policySeries struct {
	outcomes  [len(outcomes)]prometheus.Counter
	storeTime prometheus.Observer
}

// The series of one lock name: a counter per outcome, indexed by
// LockOutcome-1.
type lockSeries struct {
	outcomes [len(lockOutcomes)]prometheus.Counter
	held     prometheus.Gauge
	holdTime prometheus.Observer
	lockTime prometheus.Observer
}

// New returns a Collector configured by opts. An invalid option is an error
// wrapping ErrInvalidConfig, and so is a const label that Prometheus would
// refuse to register.
func New(opts ...Option) (*Collector, error) {
	cfg := config{latency: defaultLatencyBuckets(), hold: defaultHoldBuckets()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	name := func(n string) string { return prometheus.BuildFQName(cfg.namespace, "", n) }
	c := &Collector{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        name("sluice_ratelimit_decisions_total"),
			Help:        "Rate-limit decisions, by policy and outcome (allowed, denied, skipped, store_error, bad_request).",
			ConstLabels: cfg.constLabels,
		}, []string{"policy", "outcome"}),
		storeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        name("sluice_ratelimit_store_duration_seconds"),
			Help:        "Time the store took to decide, by policy; decisions made without a store call are not observed.",
			ConstLabels: cfg.constLabels,
			Buckets:     cfg.latency,
		}, []string{"policy"}),
		lockEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        name("sluice_lock_events_total"),
			Help:        "Lock events, by guard name and outcome (acquired, conflict, released, lost, store_error).",
			ConstLabels: cfg.constLabels,
		}, []string{"name", "outcome"}),
		locksHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name:        name("sluice_locks_held"),
			Help:        "Locks held now by this process, by guard name.",
			ConstLabels: cfg.constLabels,
		}, []string{"name"}),
		holdTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        name("sluice_lock_hold_duration_seconds"),
			Help:        "How long locks were held, from acquisition to release or loss, by guard name.",
			ConstLabels: cfg.constLabels,
			Buckets:     cfg.hold,
		}, []string{"name"}),
		lockTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        name("sluice_lock_store_duration_seconds"),
			Help:        "Time the store took to acquire or release a lock, by guard name.",
			ConstLabels: cfg.constLabels,
			Buckets:     cfg.latency,
		}, []string{"name"}),
	}
	// A registry reports the descriptors' errors (a bad const label name
	// or value) when the collector is registered; find them now instead.
	if err := prometheus.NewRegistry().Register(c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return c, nil
}

// ObserveDecision counts one decision of a policy and, when the store was
// asked (e.Latency > 0), observes its latency. It implements
// limiter.Observer.
func (c *Collector) ObserveDecision(e limiter.DecisionEvent) {
	s := byName(&c.policies, e.Policy, c.newPolicy)
	if i := int(e.Outcome) - 1; i >= 0 && i < len(s.outcomes) {
		s.outcomes[i].Inc()
	} else {
		c.decisions.WithLabelValues(e.Policy, e.Outcome.String()).Inc()
	}
	if e.Latency > 0 {
		s.storeTime.Observe(e.Latency.Seconds())
	}
}

// ObserveLock counts one lock event. An acquisition raises the held-locks
// gauge, a release or loss lowers it and observes the hold time, and an
// event with a store call (e.Latency > 0) observes its latency. It
// implements limiter.Observer.
func (c *Collector) ObserveLock(e limiter.LockEvent) {
	s := byName(&c.locks, e.Name, c.newLock)
	if i := int(e.Outcome) - 1; i >= 0 && i < len(s.outcomes) {
		s.outcomes[i].Inc()
	} else {
		c.lockEvents.WithLabelValues(e.Name, e.Outcome.String()).Inc()
	}
	switch e.Outcome {
	case limiter.LockAcquired:
		s.held.Inc()
	case limiter.LockReleased, limiter.LockLost:
		s.held.Dec()
		s.holdTime.Observe(e.Held.Seconds())
	}
	if e.Latency > 0 {
		s.lockTime.Observe(e.Latency.Seconds())
	}
}

// Describe sends the descriptors of the Collector's metrics. It implements
// prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.decisions.Describe(ch)
	c.storeTime.Describe(ch)
	c.lockEvents.Describe(ch)
	c.locksHeld.Describe(ch)
	c.holdTime.Describe(ch)
	c.lockTime.Describe(ch)
}

// Collect sends the current value of every series. It implements
// prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.decisions.Collect(ch)
	c.storeTime.Collect(ch)
	c.lockEvents.Collect(ch)
	c.locksHeld.Collect(ch)
	c.holdTime.Collect(ch)
	c.lockTime.Collect(ch)
}

func (c *Collector) newPolicy(policy string) *policySeries {
	s := &policySeries{storeTime: c.storeTime.WithLabelValues(policy)}
	for i, o := range outcomes {
		s.outcomes[i] = c.decisions.WithLabelValues(policy, o.String())
	}
	return s
}

func (c *Collector) newLock(name string) *lockSeries {
	s := &lockSeries{
		held:     c.locksHeld.WithLabelValues(name),
		holdTime: c.holdTime.WithLabelValues(name),
		lockTime: c.lockTime.WithLabelValues(name),
	}
	for i, o := range lockOutcomes {
		s.outcomes[i] = c.lockEvents.WithLabelValues(name, o.String())
	}
	return s
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
