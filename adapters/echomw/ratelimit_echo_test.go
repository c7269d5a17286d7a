package echomw_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/adapters/echomw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store/memstore"
)

func rateLimitPolicy(t *testing.T, name string, limit int, opts ...limiter.Option) *limiter.Policy {
	t.Helper()
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	p, err := limiter.NewPolicy(name, limit, time.Minute, st, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func rateLimitGet(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(body)
}

// rateLimitRecover turns a panic into 500, as echo's Recover middleware does
// (which this module does not import: it needs golang.org/x/time).
func rateLimitRecover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = echo.NewHTTPError(http.StatusInternalServerError)
			}
		}()
		return next(c)
	}
}

// TestRateLimitSeesErrorStatus checks that a handler's returned error is
// judged by the status echo's error handler gives it, not by the 200 the
// response has before that handler runs.
func TestRateLimitSeesErrorStatus(t *testing.T) {
	p := rateLimitPolicy(t, "login", 2, limiter.WithSkipSuccessful())
	e := echo.New()
	e.Use(rateLimitRecover)
	g := e.Group("", echomw.RateLimit(p))
	g.GET("/ok", func(c echo.Context) error { return c.String(http.StatusOK, "welcome") })
	g.GET("/unauthorized", func(c echo.Context) error { return echo.NewHTTPError(http.StatusUnauthorized, "wrong password") })
	g.GET("/plain-error", func(c echo.Context) error { return errors.New("boom") })
	g.GET("/written-then-error", func(c echo.Context) error {
		_ = c.String(http.StatusOK, "done")
		return errors.New("after the response")
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	for i := 0; i < 3; i++ {
		code, body := rateLimitGet(t, srv.URL+"/ok")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "welcome", body)
		code, body = rateLimitGet(t, srv.URL+"/written-then-error")
		assert.Equal(t, http.StatusOK, code, "a committed response keeps its status")
		assert.Equal(t, "done", body, "and is not written twice")
	}
	code, body := rateLimitGet(t, srv.URL+"/unauthorized")
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, `{"message":"wrong password"}`, strings.TrimSpace(body), "echo's error handler writes the error once")
	code, _ = rateLimitGet(t, srv.URL+"/plain-error")
	assert.Equal(t, http.StatusInternalServerError, code)
	code, body = rateLimitGet(t, srv.URL+"/ok")
	assert.Equal(t, http.StatusTooManyRequests, code, "the 401 and the 500 were counted")
	assert.Equal(t, "{\"error\":\"too many requests\",\"policy\":\"login\",\"retry_after\":60}\n", body)

	q := rateLimitPolicy(t, "panics", 1, limiter.WithSkipSuccessful())
	e.GET("/panic2", func(c echo.Context) error { panic("boom") }, rateLimitRecover, echomw.RateLimit(q))
	e.GET("/after-panic", func(c echo.Context) error { return c.NoContent(http.StatusOK) }, echomw.RateLimit(q))
	code, _ = rateLimitGet(t, srv.URL+"/panic2")
	assert.Equal(t, http.StatusInternalServerError, code)
	code, _ = rateLimitGet(t, srv.URL+"/after-panic")
	assert.Equal(t, http.StatusTooManyRequests, code, "a panic was counted as a failure")
}

func TestRateLimitWithKeyParam(t *testing.T) {
	p := rateLimitPolicy(t, "users", 1)
	e := echo.New()
	e.GET("/users/:id", func(c echo.Context) error { return c.NoContent(http.StatusOK) }, echomw.RateLimit(p, echomw.WithKey(echomw.ParamKey("id"))))
	e.GET("/nothing", func(c echo.Context) error { return c.NoContent(http.StatusOK) }, echomw.RateLimit(p, echomw.WithKey(echomw.ParamKey("id"))))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	code, _ := rateLimitGet(t, srv.URL+"/users/1")
	assert.Equal(t, http.StatusOK, code)
	code, _ = rateLimitGet(t, srv.URL+"/users/1")
	assert.Equal(t, http.StatusTooManyRequests, code)
	code, _ = rateLimitGet(t, srv.URL+"/users/2")
	assert.Equal(t, http.StatusOK, code)
	code, body := rateLimitGet(t, srv.URL+"/nothing")
	assert.Equal(t, http.StatusBadRequest, code, "a route without the parameter cannot be keyed")
	assert.Equal(t, "{\"error\":\"cannot identify client\"}\n", body)
}

func TestRateLimitRejectsBadWiring(t *testing.T) {
	assert.Panics(t, func() { echomw.RateLimit(nil) })
	assert.Panics(t, func() { echomw.RateLimit(new(limiter.Policy), echomw.WithKey(echomw.ParamKey("id"))) })
}

// TestRateLimitClientGoneIsNotServed checks that a request whose context is
// already cancelled (net/http cancels it when the client closes or
// half-closes its connection) never reaches the handler uncounted under the
// default fail-open mode.
func TestRateLimitClientGoneIsNotServed(t *testing.T) {
	p := rateLimitPolicy(t, "post", 1)
	ran := 0
	e := echo.New()
	e.POST("/orders", func(c echo.Context) error { ran++; return c.NoContent(http.StatusOK) }, echomw.RateLimit(p))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 5; i++ {
		w := httptest.NewRecorder()
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/orders", nil)
		e.ServeHTTP(w, r)
		assert.Equal(t, http.StatusServiceUnavailable, w.Code, "a client that went away gets a 503, not the handler")
	}
	assert.Zero(t, ran, "the handler never ran")
}

// TestRateLimitKeyFuncSeesRouteParams checks that a policy's own KeyFunc
// reads echo's route parameters with r.PathValue, as it would under
// net/http's ServeMux, without writing them into the caller's request.
func TestRateLimitKeyFuncSeesRouteParams(t *testing.T) {
	p := rateLimitPolicy(t, "users", 1, limiter.WithKey(func(r *http.Request) (string, error) { return r.PathValue("id"), nil }))
	var outer []*http.Request
	keep := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			r.SetPathValue("tenant", "t1") // path values of its own, set before the limiter
			outer = append(outer, r)
			return next(c)
		}
	}
	e := echo.New()
	e.GET("/users/:id", func(c echo.Context) error {
		return c.String(http.StatusOK, c.Request().PathValue("id")+" "+c.Request().PathValue("tenant"))
	}, keep, echomw.RateLimit(p))
	e.GET("/nothing", func(c echo.Context) error { return c.NoContent(http.StatusOK) }, echomw.RateLimit(p))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	code, body := rateLimitGet(t, srv.URL+"/users/1")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "1 t1", body, "the handler sees the parameter and the earlier path values")
	code, _ = rateLimitGet(t, srv.URL+"/users/1")
	assert.Equal(t, http.StatusTooManyRequests, code, "user 1 has used its quota")
	code, _ = rateLimitGet(t, srv.URL+"/users/2")
	assert.Equal(t, http.StatusOK, code, "user 2 has its own quota")
	code, body = rateLimitGet(t, srv.URL+"/nothing")
	assert.Equal(t, http.StatusBadRequest, code, "a route without the parameter cannot be keyed")
	assert.Equal(t, "{\"error\":\"cannot identify client\"}\n", body)
	for _, r := range outer {
		assert.Empty(t, r.PathValue("id"), "the outer middleware's request is not written to")
	}
}

func TestRateLimitSkippedRequestSeesRouteParams(t *testing.T) {
	p := rateLimitPolicy(t, "users", 1, limiter.WithSkip(func(r *http.Request) bool { return r.PathValue("id") == "admin" }))
	e := echo.New()
	e.GET("/users/:id", func(c echo.Context) error {
		return c.String(http.StatusOK, c.Request().PathValue("id"))
	}, echomw.RateLimit(p))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	for i := 0; i < 3; i++ {
		code, body := rateLimitGet(t, srv.URL+"/users/admin")
		assert.Equal(t, http.StatusOK, code, "a skipped request is never limited")
		assert.Equal(t, "admin", body, "the handler of a skipped request sees the route parameter")
	}
}

// TestParamKeyNeverPosesAsAddress mounts one policy on two routes, one keyed
// by the client address and one by a route parameter: a client reporting
// user "203.0.113.7" must not use up the quota of the client at 203.0.113.7.
func TestParamKeyNeverPosesAsAddress(t *testing.T) {
	p := rateLimitPolicy(t, "shared", 3)
	e := echo.New()
	e.GET("/api/hello", func(c echo.Context) error { return c.NoContent(http.StatusOK) }, echomw.RateLimit(p))
	e.POST("/users/:id/report", func(c echo.Context) error { return c.NoContent(http.StatusAccepted) },
		echomw.RateLimit(p, echomw.WithKey(echomw.ParamKey("id"))))
	serve := func(method, path, remote string) int {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = remote
		e.ServeHTTP(w, r)
		return w.Code
	}

	for i := range 3 {
		assert.Equal(t, http.StatusAccepted, serve(http.MethodPost, "/users/203.0.113.7/report", "198.51.100.1:4000"), "report %d", i+1)
	}
	assert.Equal(t, http.StatusTooManyRequests, serve(http.MethodPost, "/users/203.0.113.7/report", "198.51.100.1:4000"),
		"the parameter value has used its quota")
	assert.Equal(t, http.StatusOK, serve(http.MethodGet, "/api/hello", "203.0.113.7:5000"),
		"the client at 203.0.113.7 has a quota of its own")
}

// TestRouteParamsDecoded checks that route parameters reach a policy's
// functions and ParamKey decoded, as ServeMux's r.PathValue gives them: echo
// leaves a parameter escaped when the path holds an escape decoding loses
// (%2F) or one not needed (%41), and a client must not get a second quota by
// writing the same value another way.
func TestRouteParamsDecoded(t *testing.T) {
	byPathValue := rateLimitPolicy(t, "bypath", 1, limiter.WithKey(limiter.PathValueKey("id")))
	byParamKey := rateLimitPolicy(t, "byparam", 1)
	e := echo.New()
	echoID := func(c echo.Context) error { return c.String(http.StatusOK, c.Request().PathValue("id")) }
	e.GET("/a/:id", echoID, echomw.RateLimit(byPathValue))
	e.GET("/b/:id", echoID, echomw.RateLimit(byParamKey, echomw.WithKey(echomw.ParamKey("id"))))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	for _, route := range []string{"/a/", "/b/"} {
		for _, c := range []struct{ path, id string }{
			{"x%2Fy", "x/y"},     // echo matches the escaped path: decoded here
			{"x%252Fy", "x%2Fy"}, // echo matches the decoded path: not decoded twice
		} {
			code, body := rateLimitGet(t, srv.URL+route+c.path)
			assert.Equal(t, http.StatusOK, code, route+c.path)
			assert.Equal(t, c.id, body, route+c.path)
		}
		code, body := rateLimitGet(t, srv.URL+route+"A")
		require.Equal(t, http.StatusOK, code, route+"A")
		assert.Equal(t, "A", body)
		code, _ = rateLimitGet(t, srv.URL+route+"%41")
		assert.Equal(t, http.StatusTooManyRequests, code, route+"%41 is the client that used A's quota")
	}
}
