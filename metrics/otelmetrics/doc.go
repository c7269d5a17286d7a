// Package otelmetrics records sluice's rate-limit decisions and lock events
// as OpenTelemetry metrics, through the go.opentelemetry.io/otel/metric API.
// An Observer is a limiter.Observer, to give to limiter.WithObserver and
// lockguard.WithObserver:
//
//	metrics, err := otelmetrics.New() // the global MeterProvider, or WithMeterProvider
//	...
//	policy, err := limiter.NewPolicy("api", 100, time.Minute, st, limiter.WithObserver(metrics))
//
// Its instruments, of the meter named by ScopeName:
//
//	sluice.ratelimit.decisions       counter {decision}   attributes policy, outcome
//	sluice.ratelimit.store.duration  histogram s          attribute policy
//	sluice.lock.events               counter {event}      attributes name, outcome
//	sluice.locks.held                up-down counter {lock}  attribute name
//	sluice.lock.hold.duration        histogram s          attribute name
//	sluice.lock.store.duration       histogram s          attribute name
//
// The attributes are those of the Prometheus labels of
// github.com/sluicehq/sluice/metrics/prommetrics, and so are the values of
// outcome: limiter.Outcome.String ("allowed", "denied", "skipped",
// "store_error", "bad_request") on decisions and limiter.LockOutcome.String
// ("acquired", "conflict", "released", "lost", "store_error") on lock
// events. policy is the policy's name and name the guard's
// name: never a client's key, so the number of series grows with the
// application's configuration, not with its traffic. The first event of a
// policy or lock name adds zero to its counters for every outcome, so that
// rates and ratios work from the start.
//
// Durations are in seconds, with explicit bucket boundaries suited to them
// (see WithLatencyBuckets and WithHoldBuckets) given to the SDK as advice;
// a View configured in the SDK takes precedence.
//
// Once a policy or lock name has been seen, this package allocates nothing
// to record its events (what the SDK does with them is the SDK's business).
//
// This package is its own Go module, so that only applications that import
// it have OpenTelemetry in their module graph.
package otelmetrics
