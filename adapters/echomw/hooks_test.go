package echomw_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/adapters/echomw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
)

// The hooks of WithSkip and WithDeny take the echo.Context, and
// WithDeny(HTTPError) sends a denial through echo's HTTPErrorHandler with the
// quota headers set and the Rejection as the internal error.
func TestHooksTakeTheEchoContext(t *testing.T) {
	p := rateLimitPolicy(t, "api", 1)
	e := echo.New()
	var handled []error
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		handled = append(handled, err)
		var he *echo.HTTPError
		require.ErrorAs(t, err, &he)
		_ = c.String(he.Code, "custom: "+http.StatusText(he.Code))
	}
	ok := func(c echo.Context) error { return c.NoContent(http.StatusOK) }
	e.GET("/", ok, echomw.RateLimit(p,
		echomw.WithSkip(func(c echo.Context) bool { return c.QueryParam("internal") == "1" }),
		echomw.WithDeny(echomw.HTTPError)))

	serve := func(target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		return w
	}
	assert.Equal(t, http.StatusOK, serve("/").Code)
	for range 3 {
		w := serve("/?internal=1")
		assert.Equal(t, http.StatusOK, w.Code, "skipped by the echo.Context hook")
		assert.Empty(t, w.Header().Get("RateLimit"), "a skipped request gets no quota headers")
	}
	w := serve("/")
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "custom: Too Many Requests", w.Body.String(), "written by the HTTPErrorHandler")
	assert.NotEmpty(t, w.Header().Get("Retry-After"))
	assert.Equal(t, `"api";r=0;t=60`, w.Header().Get("RateLimit"))
	require.Len(t, handled, 1)
	var rj *limiter.Rejection
	require.ErrorAs(t, handled[0], &rj)
	assert.Equal(t, "api", rj.Decision.Policy)
}

// A guard's 409 through HTTPError keeps its Retry-After, and the guard's
// WithSkip hook runs the handler without a lock.
func TestGuardHooks(t *testing.T) {
	g := guardNew(t)
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		var rj *lockguard.Rejection
		if errors.As(err, &rj) {
			_ = c.JSON(rj.Status, map[string]string{"locked": "yes"})
		}
	}
	hold, release := make(chan struct{}), make(chan struct{})
	e.POST("/orders/:id", func(c echo.Context) error {
		_, locked := lockguard.FromContext(c.Request().Context())
		if c.QueryParam("hold") == "1" {
			close(hold)
			<-release
		}
		if !locked {
			return c.String(http.StatusOK, "unlocked")
		}
		return c.String(http.StatusOK, "locked")
	}, echomw.Guard(g,
		echomw.WithSkip(func(c echo.Context) bool { return c.Request().Header.Get("X-Read-Only") != "" }),
		echomw.WithDeny(echomw.HTTPError)))

	done := make(chan struct{})
	go func() {
		defer close(done)
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/orders/1?hold=1", nil))
	}()
	<-hold
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/orders/1", nil))
	assert.Equal(t, http.StatusConflict, w.Code)
	assert.JSONEq(t, `{"locked":"yes"}`, w.Body.String())
	assert.NotEmpty(t, w.Header().Get("Retry-After"))

	r := httptest.NewRequest(http.MethodPost, "/orders/1", nil)
	r.Header.Set("X-Read-Only", "1")
	w = httptest.NewRecorder()
	e.ServeHTTP(w, r)
	assert.Equal(t, "unlocked", w.Body.String(), "skipped: no lock")
	close(release)
	<-done
}
