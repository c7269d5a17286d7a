module github.com/sluicehq/sluice/metrics/otelmetrics

go 1.24

require (
	github.com/sluicehq/sluice v0.0.0-00010101000000-000000000000
	go.opentelemetry.io/otel v1.20.0
	go.opentelemetry.io/otel/metric v1.20.0
	go.opentelemetry.io/otel/sdk/metric v1.20.0
)

require (
	github.com/go-logr/logr v1.3.0 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	go.opentelemetry.io/otel/sdk v1.20.0 // indirect
	go.opentelemetry.io/otel/trace v1.20.0 // indirect
	golang.org/x/sys v0.14.0 // indirect
)

// The replace serves this repository only (go.work, GOWORK=off builds); a
// module that requires this one ignores it. Before tagging a release of this
// module, require a tagged root module version above.
replace github.com/sluicehq/sluice => ../..
