package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sethvargo/go-limiter/httplimit"
	"github.com/sethvargo/go-limiter/memorystore"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// handler is a typical small JSON handler.
var handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"hello":"world"}` + "\n"))
})

// discardWriter is a ResponseWriter that keeps the header map and the status
// and throws the body away, as a server writing to a socket would: unlike
// httptest.ResponseRecorder it copies no header map, so what a benchmark
// measures is the middleware, not the recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(b), nil
}

// serve runs h on one request per iteration from one client, reusing the
// writer (its header map is cleared between requests, as a server reuses
// its buffers), and checks the status.
func serve(b *testing.B, h http.Handler) {
	r := httptest.NewRequest(http.MethodGet, "/api/hello", nil)
	r.RemoteAddr = "203.0.113.7:41234"
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkMiddleware measures a bare handler and the same handler behind
// each library's net/http middleware over its in-memory store, on the
// allowed path: one client, a limit it does not reach. The middleware's
// cost is its ns/op minus Bare's. Names read Middleware/<library>;
// Middleware/contextOnly is the floor of the rows whose handler can read the
// decision from its request's context (see contextOnly).
func BenchmarkMiddleware(b *testing.B) {
	b.Run("Bare", func(b *testing.B) { serve(b, handler) })

	b.Run("sluice", func(b *testing.B) { serve(b, sluiceMiddleware(b)(handler)) })
	b.Run("sluiceNoHeaders", func(b *testing.B) {
		serve(b, sluiceMiddleware(b, limiter.WithHeaders(limiter.NoHeaders))(handler))
	})

	b.Run("contextOnly", func(b *testing.B) { serve(b, contextOnly(handler)) })

	b.Run("golimiter", func(b *testing.B) {
		s, err := memorystore.New(&memorystore.Config{Tokens: 1 << 40, Interval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		m, err := httplimit.NewMiddleware(s, httplimit.IPKeyFunc())
		if err != nil {
			b.Fatal(err)
		}
		serve(b, m.Handle(handler))
	})
}

// sluiceMiddleware returns httpmw.RateLimit over memstore with the most
// generous limit, released when b ends.
func sluiceMiddleware(b *testing.B, opts ...limiter.Option) func(http.Handler) http.Handler {
	st, err := memstore.New()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	p, err := limiter.NewPolicy("api", store.MaxLimit, time.Millisecond, st, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return httpmw.RateLimit(p)
}

// contextOnly is the floor of every middleware that hands its handler a
// decision in the request's context, as limiter.FromContext reads it: it
// decides nothing and sets no header, and only passes on a copy of the
// request whose context answers one key. The copy is the one way to change
// a request's context (http.Request.WithContext); here it and the context
// share one allocation, as they do in sluice.
func contextOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, carry(r))
	})
}

// carry returns a copy of r whose context is a carrier.
func carry(r *http.Request) *http.Request {
	c := &carrier{Context: r.Context()}
	c.req = *r.WithContext(c)
	return &c.req
}

// carrierKey is the key a carrier answers.
type carrierKey struct{}

// carrier is a context that answers carrierKey with itself, and the request
// that carries it.
type carrier struct {
	context.Context
	req http.Request
}

func (c *carrier) Value(key any) any {
	if key == (carrierKey{}) {
		return c
	}
	return c.Context.Value(key)
}
