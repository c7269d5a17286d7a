package ginmw_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/adapters/ginmw"
	"github.com/sluicehq/sluice/internal/guardtest"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

// guardEngine returns a gin engine in test mode with gin's Recovery
// middleware, which answers a panic with 500.
func guardEngine() *gin.Engine {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, _ any) {
		c.AbortWithStatus(http.StatusInternalServerError)
	}))
	return r
}

// guardMount serves POST /orders/:id through ginmw.Guard, with gin's
// Recovery outside it.
func guardMount(g *lockguard.Guard, h http.Handler) http.Handler {
	r := guardEngine()
	r.POST("/orders/:id", ginmw.Guard(g), gin.WrapH(h))
	return r
}

// guardByMount is guardMount with the key read by WithKey from gin's route
// parameter.
func guardByMount(g *lockguard.Guard, h http.Handler) http.Handler {
	r := guardEngine()
	key := func(c *gin.Context) (string, error) {
		if c.Param("id") == "abc" {
			return "", errors.New("not a number") // the suite's key-error case
		}
		return ginmw.ParamKey("id")(c)
	}
	r.POST("/orders/:id", ginmw.Guard(g, ginmw.WithKey(key)), gin.WrapH(h))
	return r
}

func guardBackends() []guardtest.Backend {
	mini := guardtest.Emulated("miniredis", func(t *testing.T) guardtest.EmulatedServer { return miniredis.RunT(t) })
	return append([]guardtest.Backend{guardtest.Memory(), mini, guardtest.OwnRedis()}, guardtest.Env()...)
}

func TestGuard(t *testing.T) {
	guardtest.Run(t, guardMount, guardBackends()...)
}

func TestGuardWithKey(t *testing.T) {
	guardtest.Run(t, guardByMount, guardtest.Memory())
}

func guardNew(t *testing.T, ttl time.Duration) *lockguard.Guard {
	t.Helper()
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	locker, err := lockguard.New(st)
	require.NoError(t, err)
	g, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), ttl, lockguard.WithLogger(nil))
	require.NoError(t, err)
	return g
}

// A rejection aborts the chain: later handlers never run, and the 409 is
// gin's JSON with Retry-After.
func TestGuardRejectionAborts(t *testing.T) {
	g := guardNew(t, 30*time.Second)
	entered, leave := make(chan struct{}), make(chan struct{})
	ran := make(chan string, 4)
	r := guardEngine()
	r.POST("/orders/:id", ginmw.Guard(g), func(c *gin.Context) {
		ran <- c.Query("hold")
		if c.Query("hold") != "" {
			close(entered)
			<-leave
		}
		c.Status(http.StatusOK)
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	first := make(chan int, 1)
	go func() {
		resp, err := http.Post(srv.URL+"/orders/1?hold=1", "", nil)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-entered
	resp, err := http.Post(srv.URL+"/orders/1", "", nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	close(leave)

	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "30", resp.Header.Get("Retry-After"))
	assert.JSONEq(t, `{"error":"resource is locked","retry_after":30}`, string(body))
	assert.Equal(t, http.StatusOK, <-first)
	assert.Equal(t, "1", <-ran)
	select {
	case q := <-ran:
		t.Errorf("the handler ran for the rejected request (hold=%q)", q)
	default:
	}
}

// The handler reads the lock from c.Request.Context(), and WithKey keys on
// what an earlier middleware stored with c.Set.
func TestGuardWithKeyContextValue(t *testing.T) {
	r := guardEngine()
	r.Use(func(c *gin.Context) { c.Set("user", c.GetHeader("X-User")) })
	r.POST("/report", ginmw.Guard(guardNew(t, time.Second), ginmw.WithKey(func(c *gin.Context) (string, error) {
		return "user:" + c.GetString("user"), nil
	})), func(c *gin.Context) {
		l, ok := lockguard.FromContext(c.Request.Context())
		if !ok {
			c.String(http.StatusInternalServerError, "no lock")
			return
		}
		c.String(http.StatusOK, l.Key())
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/report", nil)
	require.NoError(t, err)
	req.Header.Set("X-User", "ada")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "order:user:ada", string(body), "the guard's name, a colon and the key")
}

func TestGuardNilPanics(t *testing.T) {
	assert.Panics(t, func() { ginmw.Guard(nil) })
}

// Mounted under a ServeMux pattern with path values of its own, the guard
// gives gin's parameters to its own copy of the request: the request the mux
// matched keeps its values.
func TestGuardUnderServeMux(t *testing.T) {
	cases := []struct {
		name  string
		outer func(r *http.Request) // runs on the mux's request before gin
		want  map[string]string     // the mux's request's values after gin
	}{
		{"pattern-wildcards", nil, map[string]string{"id": "acme", "n": "42", "tenant": ""}},
		{"values-set-outside", func(r *http.Request) { r.SetPathValue("tenant", "outer") },
			map[string]string{"id": "acme", "n": "42", "tenant": "outer"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			engine := guardEngine()
			var key, seen string
			engine.POST("/:tenant/orders/:id", ginmw.Guard(guardNew(t, time.Second)), func(c *gin.Context) {
				if l, ok := lockguard.FromContext(c.Request.Context()); ok {
					key = l.Key()
				}
				seen = c.Request.PathValue("id")
				c.Status(http.StatusOK)
			})
			mux := http.NewServeMux()
			var after map[string]string
			mux.HandleFunc("POST /{id}/orders/{n}", func(w http.ResponseWriter, r *http.Request) {
				if tc.outer != nil {
					tc.outer(r)
				}
				engine.ServeHTTP(w, r)
				after = map[string]string{"id": r.PathValue("id"), "n": r.PathValue("n"), "tenant": r.PathValue("tenant")}
			})
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/acme/orders/42", nil))
			assert.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, "order:param:id:42", key, "the guard keyed on gin's parameter")
			assert.Equal(t, "42", seen, "the handler sees gin's parameters as path values")
			assert.Equal(t, tc.want, after, "the mux's request keeps its path values")
		})
	}
}
