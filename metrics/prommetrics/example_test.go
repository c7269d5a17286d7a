package prommetrics_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/metrics/prommetrics"
	"github.com/sluicehq/sluice/store/memstore"
)

// A Collector counts the decisions of the policies it is given to and
// serves them, with the rest of a registry, on GET /metrics.
func ExampleNew() {
	st, err := memstore.New() // or redisstore.New(client)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })

	// snippet:begin metrics-prometheus
	metrics, err := prommetrics.New()
	if err != nil {
		log.Fatal(err)
	}
	reg := prometheus.NewRegistry() // or prometheus.DefaultRegisterer
	reg.MustRegister(metrics)

	policy, err := limiter.NewPolicy("api", 2, time.Minute, st, limiter.WithObserver(metrics))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/hello", httpmw.RateLimit(policy)(hello))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// snippet:end
	defer policy.Close()

	for i := 0; i < 3; i++ {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/hello", nil))
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(w.Body.String(), "\n") {
		if strings.HasPrefix(line, "sluice_ratelimit_decisions_total") ||
			strings.HasPrefix(line, "sluice_ratelimit_store_duration_seconds_count") {
			fmt.Println(line)
		}
	}
	// Output:
	// sluice_ratelimit_decisions_total{outcome="allowed",policy="api"} 2
	// sluice_ratelimit_decisions_total{outcome="bad_request",policy="api"} 0
	// sluice_ratelimit_decisions_total{outcome="denied",policy="api"} 1
	// sluice_ratelimit_decisions_total{outcome="skipped",policy="api"} 0
	// sluice_ratelimit_decisions_total{outcome="store_error",policy="api"} 0
	// sluice_ratelimit_store_duration_seconds_count{policy="api"} 3
}
