// Package observertest is a black-box test suite for the limiter.Observer
// implementations that export metrics (metrics/prommetrics and
// metrics/otelmetrics). It drives an observer through the behaviour a user
// relies on: decisions of real policies served over HTTP counted by policy
// and outcome, every outcome of a decision and of a lock under its label
// (an unknown outcome under its String), store latencies in the right
// buckets, the held-locks value following acquisitions, releases and losses
// per name, the hold time of each release or loss, every outcome's series
// starting at zero with a name's first event, the default bucket bounds,
// events from many goroutines all counted, and observing without
// allocating once a name has been seen.
//
// Each metrics module's tests call Run with a Factory: a constructor of its
// observer and a Reader that converts what the observer exports into Data,
// series named by Metric with their labels. Prometheus counts histogram
// buckets cumulatively and OpenTelemetry does not; the Reader converts both
// to Histogram. The suite uses the standard library only; it is internal
// and not part of the API.
package observertest
