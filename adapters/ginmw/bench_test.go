package ginmw_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sluicehq/sluice/adapters/ginmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

func benchPolicy(b *testing.B, opts ...limiter.Option) *limiter.Policy {
	b.Helper()
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
	return p
}

// benchServe serves GET /api/hello through handlers on a gin engine, one
// client, on the allowed path.
func benchServe(b *testing.B, handlers ...gin.HandlerFunc) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.GET("/api/hello", append(handlers, func(c *gin.Context) {
		c.Header("Content-Type", "application/json")
		_, _ = c.Writer.Write([]byte(`{"hello":"world"}`))
	})...)
	r := httptest.NewRequest(http.MethodGet, "/api/hello", nil)
	r.RemoteAddr = "203.0.113.7:41234"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// setUser stands for an authentication middleware that stores the user with
// c.Set.
func setUser(c *gin.Context) { c.Set("user", "alice") }

// BenchmarkBare is the handler alone on gin: the baseline of the others.
func BenchmarkBare(b *testing.B) { benchServe(b) }

// BenchmarkRateLimit is the handler behind RateLimit keyed by client IP, on a
// route where nothing was stored with c.Set.
func BenchmarkRateLimit(b *testing.B) {
	benchServe(b, ginmw.RateLimit(benchPolicy(b)))
}

// BenchmarkRateLimitKeysSet is BenchmarkRateLimit behind a middleware that
// stores the user with c.Set, keyed by client IP all the same.
func BenchmarkRateLimitKeysSet(b *testing.B) {
	benchServe(b, setUser, ginmw.RateLimit(benchPolicy(b)))
}

// BenchmarkRateLimitContextKey keys by the user stored with c.Set
// (limiter.ContextKey).
func BenchmarkRateLimitContextKey(b *testing.B) {
	benchServe(b, setUser, ginmw.RateLimit(benchPolicy(b, limiter.WithKey(limiter.ContextKey("user", nil)))))
}

// BenchmarkRateLimitWithKey keys by the same user with a key function of the
// *gin.Context (WithKey), the other way to read c.Set values.
func BenchmarkRateLimitWithKey(b *testing.B) {
	benchServe(b, setUser, ginmw.RateLimit(benchPolicy(b), ginmw.WithKey(func(c *gin.Context) (string, error) {
		return "user:" + c.GetString("user"), nil
	})))
}
