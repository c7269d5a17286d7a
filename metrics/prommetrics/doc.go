// Package prommetrics exports sluice's rate-limit decisions and lock events
// as Prometheus metrics. A Collector is both a limiter.Observer, to give to
// limiter.WithObserver and lockguard.WithObserver, and a
// prometheus.Collector, to register with a prometheus.Registerer:
//
//	metrics, err := prommetrics.New()
//	...
//	prometheus.MustRegister(metrics)
//	policy, err := limiter.NewPolicy("api", 100, time.Minute, st, limiter.WithObserver(metrics))
//
// It exports, with the default namespace:
//
//	sluice_ratelimit_decisions_total{policy,outcome}      counter
//	sluice_ratelimit_store_duration_seconds{policy}       histogram
//	sluice_lock_events_total{name,outcome}                counter
//	sluice_locks_held{name}                               gauge
//	sluice_lock_hold_duration_seconds{name}               histogram
//	sluice_lock_store_duration_seconds{name}              histogram
//
// The outcome label takes the values of limiter.Outcome.String ("allowed",
// "denied", "skipped", "store_error", "bad_request") on decisions and of
// limiter.LockOutcome.String ("acquired", "conflict", "released", "lost",
// "store_error") on lock events. The policy label is the policy's name and
// the name label the guard's name: never a client's key, so the
// number of series grows with the application's configuration, not with
// its traffic. The first event of a policy or lock name creates its series
// for every outcome, at zero, so that rate() and ratios work from the start.
//
// Observing an event takes no lock and allocates nothing once its policy or
// lock name has been seen.
//
// This package is its own Go module, so that only applications that import
// it have prometheus/client_golang in their module graph.
package prommetrics
