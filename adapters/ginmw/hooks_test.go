package ginmw_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/adapters/ginmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
)

// The hooks of WithKey, WithSkip and WithDeny take the *gin.Context: a key
// from c.Set, a skip by header, and a denial written by the application.
func TestHooksTakeTheGinContext(t *testing.T) {
	gin.SetMode(gin.TestMode)
	p := rateLimitPolicy(t, "api", 1)
	r := gin.New()
	r.Use(func(c *gin.Context) { c.Set("user", c.GetHeader("X-User")) })
	var denied []error
	r.GET("/", ginmw.RateLimit(p,
		ginmw.WithKey(func(c *gin.Context) (string, error) { return "user:" + c.GetString("user"), nil }),
		ginmw.WithSkip(func(c *gin.Context) bool { return c.GetHeader("X-Internal") != "" }),
		ginmw.WithDeny(func(c *gin.Context, err error) {
			denied = append(denied, err)
			c.String(http.StatusTooManyRequests, "slow down")
		})), func(c *gin.Context) { c.Status(http.StatusOK) })

	serve := func(hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	assert.Equal(t, http.StatusOK, serve("X-User", "alice").Code)
	assert.Equal(t, http.StatusOK, serve("X-User", "bob").Code, "keyed by the c.Set value: bob has his own quota")
	assert.Equal(t, http.StatusOK, serve("X-User", "alice", "X-Internal", "1").Code, "skipped")
	w := serve("X-User", "alice")
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "slow down", w.Body.String())
	assert.NotEmpty(t, w.Header().Get("Retry-After"), "the quota headers are set before the hook runs")
	require.Len(t, denied, 1)
	var rj *limiter.Rejection
	require.ErrorAs(t, denied[0], &rj)
	assert.Equal(t, http.StatusTooManyRequests, rj.Status)
}

// A guard's WithDeny hook gets the *lockguard.Rejection.
func TestGuardDenyHook(t *testing.T) {
	gin.SetMode(gin.TestMode)
	g := guardNew(t, 30*time.Second)
	r := gin.New()
	hold, release := make(chan struct{}), make(chan struct{})
	r.POST("/orders/:id", ginmw.Guard(g, ginmw.WithDeny(func(c *gin.Context, err error) {
		var rj *lockguard.Rejection
		require.ErrorAs(t, err, &rj)
		c.JSON(rj.Status, gin.H{"busy": rj.RetryAfter > 0})
	})), func(c *gin.Context) {
		if c.Query("hold") == "1" {
			close(hold)
			<-release
		}
		c.Status(http.StatusOK)
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/orders/1?hold=1", nil))
	}()
	<-hold
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/orders/1", nil))
	assert.Equal(t, http.StatusConflict, w.Code)
	assert.JSONEq(t, `{"busy":true}`, w.Body.String())
	assert.NotEmpty(t, w.Header().Get("Retry-After"), "set before the hook runs")
	close(release)
	<-done
}
