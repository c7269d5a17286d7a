package echoconfig_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/adapters/echomw"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/config/echoconfig"
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
guards:
  order: {key: {param: id}, ttl: 5s}
routes:
  - {route: GET /api/burst, limit: [burst, hourly]}
  - {route: GET /users/:id/report, limit: reports}
  - route: POST /orders/{id}/pay
    limit: payments
    guard: order
`

func newServer(t *testing.T, opts ...echomw.Option) (*echo.Echo, chan int64, chan struct{}) {
	t.Helper()
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	f, err := config.Parse("sluice.yaml", []byte(file))
	require.NoError(t, err)
	routes, err := f.Build(st)
	require.NoError(t, err)
	t.Cleanup(func() { _ = routes.Close() })

	e := echo.New()
	ok := func(c echo.Context) error { return c.NoContent(http.StatusOK) }
	e.GET("/api/burst", ok) // registered before Mount: covered all the same
	echoconfig.Mount(e, routes, opts...)
	e.GET("/users/:id/report", ok)
	e.GET("/healthz", ok)
	paying, release := make(chan int64, 4), make(chan struct{})
	e.POST("/orders/:id/pay", func(c echo.Context) error {
		lock, ok := lockguard.FromContext(c.Request().Context())
		if !ok {
			return c.NoContent(http.StatusInternalServerError)
		}
		paying <- lock.Fence()
		<-release
		return c.NoContent(http.StatusOK)
	})
	return e, paying, release
}

func do(e *echo.Echo, method, target string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "192.0.2.1:1234"
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	return w
}

func TestMount(t *testing.T) {
	e, paying, release := newServer(t)

	assert.Equal(t, http.StatusOK, do(e, "GET", "/api/burst").Code)
	w := do(e, "GET", "/api/burst")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"burst";r=0;t=60, "hourly";r=1;t=3600`, w.Header().Get("RateLimit"))
	assert.Equal(t, http.StatusTooManyRequests, do(e, "GET", "/api/burst").Code)

	assert.Equal(t, http.StatusOK, do(e, "GET", "/users/7/report").Code)
	assert.Equal(t, http.StatusTooManyRequests, do(e, "GET", "/users/7/report").Code)
	assert.Equal(t, http.StatusOK, do(e, "GET", "/users/8/report").Code, "keyed by the route parameter")

	// Echo answers 405 to a HEAD on a GET-only route; the file's GET
	// pattern also covers HEAD, but a request echo does not route is not
	// counted.
	assert.Equal(t, http.StatusMethodNotAllowed, do(e, "HEAD", "/users/9/report").Code)
	assert.Equal(t, http.StatusOK, do(e, "GET", "/users/9/report").Code, "the HEAD used none of user 9's quota")

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

func TestMountOptions(t *testing.T) {
	e, _, _ := newServer(t, echomw.WithDeny(echomw.HTTPError))
	var handled error
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		handled = err
		_ = c.NoContent(499)
	}
	for range 2 {
		do(e, "GET", "/users/7/report")
	}
	assert.Error(t, handled)
	assert.Equal(t, 499, do(e, "GET", "/users/7/report").Code)
}
