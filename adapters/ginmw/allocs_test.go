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

// allocsPerRequest returns the allocations of one GET /api/hello served
// through handlers on a gin engine, one client, on the allowed path.
func allocsPerRequest(t *testing.T, handlers ...gin.HandlerFunc) float64 {
	t.Helper()
	gin.SetMode(gin.TestMode)
	e := gin.New()
	e.GET("/api/hello", append(handlers, func(c *gin.Context) {
		c.Header("Content-Type", "application/json")
		_, _ = c.Writer.Write([]byte(`{"hello":"world"}`))
	})...)
	r := httptest.NewRequest(http.MethodGet, "/api/hello", nil)
	r.RemoteAddr = "203.0.113.7:41234"
	return testing.AllocsPerRun(200, func() {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
	})
}

// unlimited returns a policy keyed by client IP that allows every request
// of the test.
func unlimited(t *testing.T, name string) *limiter.Policy {
	t.Helper()
	st, err := memstore.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	p, err := limiter.NewPolicy(name, store.MaxLimit, time.Millisecond, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Values stored with c.Set cost a request at most one allocation more, for
// one RateLimit or for two stacked, when the policies key by client IP and
// never read them.
func TestKeysSetAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	one := func() []gin.HandlerFunc { return []gin.HandlerFunc{ginmw.RateLimit(unlimited(t, "one"))} }
	two := func() []gin.HandlerFunc {
		return []gin.HandlerFunc{ginmw.RateLimit(unlimited(t, "one")), ginmw.RateLimit(unlimited(t, "two"))}
	}
	for _, tc := range []struct {
		name     string
		handlers func() []gin.HandlerFunc
	}{{"one RateLimit", one}, {"two RateLimits", two}} {
		t.Run(tc.name, func(t *testing.T) {
			bare := allocsPerRequest(t)
			without := allocsPerRequest(t, tc.handlers()...) - bare
			bareSet := allocsPerRequest(t, setUser)
			with := allocsPerRequest(t, append([]gin.HandlerFunc{setUser}, tc.handlers()...)...) - bareSet
			t.Logf("allocations over gin alone: %v without c.Set values, %v with", without, with)
			if with > without+1 {
				t.Errorf("c.Set values cost %v allocations, want at most 1", with-without)
			}
		})
	}
}
