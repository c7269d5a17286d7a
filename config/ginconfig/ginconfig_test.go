package ginconfig_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/config/ginconfig"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

const file = `
policies:
  burst: {rate: 2/1m}
  hourly: {rate: 3/1h}
  payments: {rate: 10/1m}
  reports:
    rate: 1/1m
    key: {param: id}
  per-user:
    rate: 1/1m
    key: {context: user, fallback: none}
guards:
  order: {key: {param: id}, ttl: 5s}
routes:
  - {route: GET /api/burst, limit: [burst, hourly]}
  - {route: GET /users/:id/report, limit: reports}
  - {route: GET /me, limit: per-user}
  - route: POST /orders/{id}/pay
    limit: payments
    guard: order
`

func routes(t *testing.T) *config.Routes {
	t.Helper()
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	f, err := config.Parse("sluice.yaml", []byte(file))
	require.NoError(t, err)
	rt, err := f.Build(st, config.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

func do(e *gin.Engine, method, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "192.0.2.1:1234"
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	return w
}

func TestMount(t *testing.T) {
	gin.SetMode(gin.TestMode)
	e := gin.New()
	// An authentication middleware stores the user with c.Set.
	e.Use(func(c *gin.Context) {
		if u := c.GetHeader("X-User"); u != "" {
			c.Set("user", u)
		}
	})
	require.NoError(t, ginconfig.Mount(e, routes(t)))
	ok := func(c *gin.Context) { c.Status(http.StatusOK) }
	e.GET("/api/burst", ok)
	e.GET("/users/:id/report", ok)
	e.GET("/me", ok)
	e.GET("/healthz", ok)
	paying, release := make(chan int64, 4), make(chan struct{})
	e.POST("/orders/:id/pay", func(c *gin.Context) {
		lock, ok := lockguard.FromContext(c.Request.Context())
		if !ok {
			c.Status(http.StatusInternalServerError)
			return
		}
		paying <- lock.Fence()
		<-release
		c.Status(http.StatusOK)
	})

	assert.Equal(t, http.StatusOK, do(e, "GET", "/api/burst").Code)
	w := do(e, "GET", "/api/burst")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"burst";r=0;t=60, "hourly";r=1;t=3600`, w.Header().Get("RateLimit"))
	assert.Equal(t, http.StatusTooManyRequests, do(e, "GET", "/api/burst").Code)

	assert.Equal(t, http.StatusOK, do(e, "GET", "/users/7/report").Code)
	assert.Equal(t, http.StatusTooManyRequests, do(e, "GET", "/users/7/report").Code)
	assert.Equal(t, http.StatusOK, do(e, "GET", "/users/8/report").Code, "keyed by the route parameter")

	assert.Equal(t, http.StatusOK, do(e, "GET", "/me", "X-User", "ann").Code)
	assert.Equal(t, http.StatusTooManyRequests, do(e, "GET", "/me", "X-User", "ann").Code)
	assert.Equal(t, http.StatusOK, do(e, "GET", "/me", "X-User", "bob").Code, "keyed by the c.Set value")
	assert.Equal(t, http.StatusBadRequest, do(e, "GET", "/me").Code, "no user, no fallback")

	w = do(e, "GET", "/healthz")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Empty(t, w.Header().Get("RateLimit"))
	assert.Equal(t, http.StatusNotFound, do(e, "GET", "/nowhere").Code)

	done := make(chan int)
	go func() { done <- do(e, "POST", "/orders/42/pay").Code }()
	assert.Positive(t, <-paying)
	w = do(e, "POST", "/orders/42/pay")
	assert.Equal(t, http.StatusConflict, w.Code)
	assert.NotEmpty(t, w.Header().Get("RateLimit"), "the policy runs before the guard")
	close(release)
	assert.Equal(t, http.StatusOK, <-done)
}

func TestMountAfterRoutes(t *testing.T) {
	gin.SetMode(gin.TestMode)
	e := gin.New()
	e.GET("/api/burst", func(c *gin.Context) {})
	assert.Error(t, ginconfig.Mount(e, routes(t)))
}
