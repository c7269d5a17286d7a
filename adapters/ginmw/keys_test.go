package ginmw_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/adapters/ginmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

// authenticate stands for an authentication middleware: it stores the user
// named by X-User with c.Set, as gin applications do.
func authenticate(c *gin.Context) {
	if u := c.GetHeader("X-User"); u != "" {
		c.Set("user", u)
	}
}

func getAs(t *testing.T, url, user string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("X-User", user)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

// limiter.ContextKey finds a value stored with gin's c.Set: alice and bob,
// on one address, are counted in buckets of their own.
func TestContextKeyReadsGinKeys(t *testing.T) {
	p := rateLimitPolicy(t, "per-user", 1, limiter.WithKey(limiter.ContextKey("user", limiter.ClientIP)))
	r := gin.New()
	r.GET("/report", authenticate, ginmw.RateLimit(p), func(c *gin.Context) { c.Status(http.StatusOK) })
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	assert.Equal(t, http.StatusOK, getAs(t, srv.URL+"/report", "alice"))
	assert.Equal(t, http.StatusOK, getAs(t, srv.URL+"/report", "bob"), "bob is not alice")
	assert.Equal(t, http.StatusTooManyRequests, getAs(t, srv.URL+"/report", "alice"))
	assert.Equal(t, http.StatusTooManyRequests, getAs(t, srv.URL+"/report", "bob"))
	assert.Equal(t, http.StatusOK, getAs(t, srv.URL+"/report", ""), "anonymous: the client IP, a bucket of its own")
	assert.Equal(t, http.StatusTooManyRequests, getAs(t, srv.URL+"/report", ""))
}

// Integer ids stored with c.Set are keys too, as under net/http.
func TestContextKeyReadsGinIntegerKeys(t *testing.T) {
	p := rateLimitPolicy(t, "per-user", 1, limiter.WithKey(limiter.ContextKey("uid", nil)))
	r := gin.New()
	r.GET("/report/:uid", func(c *gin.Context) {
		if c.Param("uid") == "42" {
			c.Set("uid", int64(42))
		} else {
			c.Set("uid", int64(7))
		}
	}, ginmw.RateLimit(p), func(c *gin.Context) { c.Status(http.StatusOK) })
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	assert.Equal(t, http.StatusOK, getAs(t, srv.URL+"/report/42", ""))
	assert.Equal(t, http.StatusOK, getAs(t, srv.URL+"/report/7", ""))
	assert.Equal(t, http.StatusTooManyRequests, getAs(t, srv.URL+"/report/42", ""))
}

// A Guard keyed by limiter.ContextKey locks per user stored with c.Set: bob
// is not held up while alice's report runs.
func TestGuardContextKeyReadsGinKeys(t *testing.T) {
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	locker, err := lockguard.New(st)
	require.NoError(t, err)
	g, err := lockguard.NewGuard("report", locker, limiter.ContextKey("user", nil), time.Minute, lockguard.WithLogger(nil))
	require.NoError(t, err)

	entered, leave := make(chan string, 1), make(chan struct{})
	r := guardEngine()
	r.GET("/report", authenticate, ginmw.Guard(g), func(c *gin.Context) {
		lock, _ := lockguard.FromContext(c.Request.Context())
		if c.Query("hold") != "" {
			entered <- lock.Key()
			<-leave
		}
		c.String(http.StatusOK, lock.Key())
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	done := make(chan int, 1)
	go func() { done <- getAs(t, srv.URL+"/report?hold=1", "alice") }()
	select {
	case key := <-entered:
		assert.Equal(t, "report:ctx:alice", key)
	case code := <-done:
		t.Fatalf("alice's first report answered %d without running", code)
	}
	assert.Equal(t, http.StatusConflict, getAs(t, srv.URL+"/report", "alice"))
	assert.Equal(t, http.StatusOK, getAs(t, srv.URL+"/report", "bob"), "bob's lock is not alice's")
	assert.Equal(t, http.StatusBadRequest, getAs(t, srv.URL+"/report", ""), "no user: no key")
	close(leave)
	assert.Equal(t, http.StatusOK, <-done)
}

// The request's context reads c.Keys live while the request is in flight:
// a value stored or changed with c.Set after the middleware ran is found
// there as c.Get finds it, and a policy stacked behind such a handler is
// keyed by it.
func TestGinKeysSetLaterAreLive(t *testing.T) {
	perIP := rateLimitPolicy(t, "per-ip", 1000)
	perTenant := rateLimitPolicy(t, "per-tenant", 1, limiter.WithKey(limiter.ContextKey("tenant", nil)))
	r := gin.New()
	r.GET("/report", authenticate, ginmw.RateLimit(perIP), func(c *gin.Context) {
		c.Set("tenant", c.GetHeader("X-Tenant"))
	}, ginmw.RateLimit(perTenant), func(c *gin.Context) {
		if u := c.Query("as"); u != "" {
			c.Set("user", u)
		}
		ctx := c.Request.Context()
		c.String(http.StatusOK, "%v %v", ctx.Value("user"), ctx.Value("tenant"))
	})
	serve := func(query, user, tenant string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/report"+query, nil)
		req.Header.Set("X-User", user)
		req.Header.Set("X-Tenant", tenant)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}

	code, body := serve("?as=bob", "alice", "acme")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "bob acme", body, "the values c.Set stored last, not those of the first middleware's time")
	code, _ = serve("", "alice", "acme")
	assert.Equal(t, http.StatusTooManyRequests, code, "acme's quota is spent")
	code, body = serve("", "alice", "initech")
	assert.Equal(t, http.StatusOK, code, "initech is not acme")
	assert.Equal(t, "alice initech", body)
}

// Once the request is over, its context answers from a copy: a request
// context kept after the request (by a goroutine the handler started) still
// answers with its own request's user while gin reuses its Context for other
// requests.
func TestGinKeysOutliveTheRequest(t *testing.T) {
	p := rateLimitPolicy(t, "per-user", 1000, limiter.WithKey(limiter.ContextKey("user", nil)))
	gin.SetMode(gin.TestMode)
	r := gin.New()
	kept := make(chan context.Context, 1)
	var alice *gin.Context
	reused := 0
	r.GET("/report", authenticate, ginmw.RateLimit(p), func(c *gin.Context) {
		switch {
		case c.GetHeader("X-User") == "alice":
			alice = c
			kept <- c.Request.Context()
		case c == alice:
			reused++
		}
		c.Status(http.StatusOK)
	})

	serve := func(user string) {
		req := httptest.NewRequest(http.MethodGet, "/report", nil)
		req.Header.Set("X-User", user)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		require.Equal(t, http.StatusOK, w.Code)
	}
	// gin's pool may drop a Context (it does so at random under the race
	// detector): alice is served again until one of bob's requests gets
	// her Context back.
	for round := 0; reused == 0 && round < 20; round++ {
		serve("alice")
		ctx := <-kept

		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				assert.Equal(t, "alice", ctx.Value("user"))
			}
		}()
		// Served on this goroutine, these requests get alice's pooled
		// Context back from gin.
		for range 50 {
			serve("bob")
			assert.Equal(t, "alice", ctx.Value("user"))
		}
		wg.Wait()
		assert.Equal(t, "alice", ctx.Value("user"))
	}
	require.Positive(t, reused, "gin never reused alice's Context: nothing was tested")
}
