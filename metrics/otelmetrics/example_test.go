package otelmetrics_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/metrics/otelmetrics"
	"github.com/sluicehq/sluice/store/memstore"
)

// An Observer records the decisions of the policies it is given to with
// the instruments of a MeterProvider; here the SDK's, read by a manual
// reader instead of an exporter.
func ExampleNew() {
	st, err := memstore.New() // or redisstore.New(client)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)) // usually with a periodic reader and an exporter
	defer provider.Shutdown(context.Background())
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })

	// snippet:begin metrics-otel
	metrics, err := otelmetrics.New(otelmetrics.WithMeterProvider(provider)) // default: otel.GetMeterProvider()
	if err != nil {
		log.Fatal(err)
	}
	policy, err := limiter.NewPolicy("api", 2, time.Minute, st, limiter.WithObserver(metrics))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/hello", httpmw.RateLimit(policy)(hello))
	// snippet:end
	defer policy.Close()

	for i := 0; i < 3; i++ {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/hello", nil))
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, outcome := range []string{"allowed", "denied"} {
					for _, dp := range data.DataPoints {
						if v, _ := dp.Attributes.Value("outcome"); v.AsString() == outcome {
							fmt.Printf("%s %s: %d\n", m.Name, outcome, dp.Value)
						}
					}
				}
			case metricdata.Histogram[float64]:
				fmt.Printf("%s: %d store calls\n", m.Name, data.DataPoints[0].Count)
			}
		}
	}
	// Output:
	// sluice.ratelimit.decisions allowed: 2
	// sluice.ratelimit.decisions denied: 1
	// sluice.ratelimit.store.duration: 3 store calls
}
