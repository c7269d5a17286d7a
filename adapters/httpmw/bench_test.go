package httpmw_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// benchHandler is a typical small JSON handler.
var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"hello":"world"}`))
})

func benchRun(b *testing.B, h http.Handler) {
	r := httptest.NewRequest(http.MethodGet, "/api/hello", nil)
	r.RemoteAddr = "203.0.113.7:41234"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkBare is the handler alone: the baseline of BenchmarkRateLimit.
func BenchmarkBare(b *testing.B) {
	benchRun(b, benchHandler)
}

// BenchmarkRateLimit is the handler behind RateLimit over memstore, on the
// allowed path: one client, a limit it never reaches.
func BenchmarkRateLimit(b *testing.B) {
	st, err := memstore.New()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	p, err := limiter.NewPolicy("api", store.MaxLimit, time.Millisecond, st)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	benchRun(b, httpmw.RateLimit(p)(benchHandler))
}
