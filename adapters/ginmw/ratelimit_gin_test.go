package ginmw_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/adapters/ginmw"
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

func TestRateLimitSeesFinalStatus(t *testing.T) {
	p := rateLimitPolicy(t, "login", 2, limiter.WithSkipSuccessful())
	r := gin.New()
	r.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, _ any) { c.AbortWithStatus(http.StatusInternalServerError) }))
	g := r.Group("", ginmw.RateLimit(p))
	g.GET("/ok", func(c *gin.Context) { c.String(http.StatusOK, "welcome") })
	g.GET("/unauthorized", func(c *gin.Context) { c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "wrong password"}) })
	g.GET("/panic", func(c *gin.Context) { panic("boom") })
	var after int
	g.GET("/aborted", func(c *gin.Context) { after++ })
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	for i := 0; i < 3; i++ {
		code, body := rateLimitGet(t, srv.URL+"/ok")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "welcome", body)
	}
	code, _ := rateLimitGet(t, srv.URL+"/unauthorized")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = rateLimitGet(t, srv.URL+"/panic")
	assert.Equal(t, http.StatusInternalServerError, code)
	code, body := rateLimitGet(t, srv.URL+"/aborted")
	assert.Equal(t, http.StatusTooManyRequests, code, "the 401 and the panic were counted")
	assert.Equal(t, "{\"error\":\"too many requests\",\"policy\":\"login\",\"retry_after\":60}\n", body)
	assert.Zero(t, after, "a denial aborts the chain")
}

func TestRateLimitWithKeyParam(t *testing.T) {
	p := rateLimitPolicy(t, "users", 1)
	r := gin.New()
	r.GET("/users/:id", ginmw.RateLimit(p, ginmw.WithKey(ginmw.ParamKey("id"))), func(c *gin.Context) { c.Status(http.StatusOK) })
	r.GET("/nothing", ginmw.RateLimit(p, ginmw.WithKey(ginmw.ParamKey("id"))), func(c *gin.Context) { c.Status(http.StatusOK) })
	srv := httptest.NewServer(r)
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
	assert.Panics(t, func() { ginmw.RateLimit(nil) })
	assert.Panics(t, func() { ginmw.RateLimit(new(limiter.Policy), ginmw.WithKey(ginmw.ParamKey("id"))) })
}

// TestRateLimitClientGoneIsNotServed checks that a request whose context is
// already cancelled (net/http cancels it when the client closes or
// half-closes its connection) never reaches the handler uncounted under the
// default fail-open mode.
func TestRateLimitClientGoneIsNotServed(t *testing.T) {
	p := rateLimitPolicy(t, "post", 1)
	ran := 0
	r := gin.New()
	r.POST("/orders", ginmw.RateLimit(p), func(c *gin.Context) { ran++; c.Status(http.StatusOK) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 5; i++ {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodPost, "/orders", nil))
		assert.Equal(t, http.StatusServiceUnavailable, w.Code, "a client that went away gets a 503, not the handler")
	}
	assert.Zero(t, ran, "the handler never ran")
}

// TestRateLimitKeyFuncSeesRouteParams checks that a policy's own KeyFunc
// reads gin's route parameters with r.PathValue, as it would under net/http's
// ServeMux, without writing them into the caller's request.
func TestRateLimitKeyFuncSeesRouteParams(t *testing.T) {
	p := rateLimitPolicy(t, "users", 1, limiter.WithKey(func(r *http.Request) (string, error) { return r.PathValue("id"), nil }))
	var outer []*http.Request
	keep := func(c *gin.Context) {
		c.Request.SetPathValue("tenant", "t1") // path values of its own, set before the limiter
		outer = append(outer, c.Request)
	}
	r := gin.New()
	r.GET("/users/:id", keep, ginmw.RateLimit(p), func(c *gin.Context) {
		c.String(http.StatusOK, c.Request.PathValue("id")+" "+c.Request.PathValue("tenant"))
	})
	r.GET("/nothing", ginmw.RateLimit(p), func(c *gin.Context) { c.Status(http.StatusOK) })
	srv := httptest.NewServer(r)
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
	r := gin.New()
	r.GET("/users/:id", ginmw.RateLimit(p), func(c *gin.Context) {
		c.String(http.StatusOK, c.Request.PathValue("id"))
	})
	srv := httptest.NewServer(r)
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
	r := gin.New()
	r.GET("/api/hello", ginmw.RateLimit(p), func(c *gin.Context) { c.Status(http.StatusOK) })
	r.POST("/users/:id/report", ginmw.RateLimit(p, ginmw.WithKey(ginmw.ParamKey("id"))), func(c *gin.Context) { c.Status(http.StatusAccepted) })
	serve := func(method, path, remote string) int {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, nil)
		req.RemoteAddr = remote
		r.ServeHTTP(w, req)
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
