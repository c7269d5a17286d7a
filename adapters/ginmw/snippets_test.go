package ginmw_test

// The gin code of README.md, docs/ratelimit.md, docs/locks.md and
// docs/examples.md: each "snippet:begin NAME" region below is shown by a Go
// block of those files, which internal/doccheck (root module) keeps equal
// to it.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sluicehq/sluice/adapters/ginmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

// docs/ratelimit.md, "gin": a policy per client, and one keyed by a route
// parameter.
func ExampleRateLimit_perUser() {
	st, _ := memstore.New()
	defer st.Close()
	api := snippetPolicy(st, "api", 5, 10*time.Second)
	perUser := snippetPolicy(st, "reports", 1, time.Hour)
	hello := func(c *gin.Context) { c.String(http.StatusOK, "hello") }
	report := func(c *gin.Context) { c.String(http.StatusAccepted, "report for %s", c.Param("id")) }

	// snippet:begin ratelimit-gin
	r := gin.New()
	r.GET("/api/hello", ginmw.RateLimit(api), hello)
	r.POST("/users/:id/report", ginmw.RateLimit(perUser, ginmw.WithKey(ginmw.ParamKey("id"))), report)
	// snippet:end

	srv := httptest.NewServer(r)
	defer srv.Close()
	fmt.Println(snippetStatus(http.MethodGet, srv.URL+"/api/hello"))
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/users/7/report"))
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/users/7/report"))
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/users/8/report"))
	// Output:
	// 200
	// 202
	// 429
	// 202
}

// README.md, "Rate limiting", and docs/ratelimit.md, "Per-route
// configuration and stacking", in gin: handlers run left to right.
func ExampleRateLimit_stacked() {
	now := func() time.Time { return time.Unix(1_900_000_000, 0) }
	st, _ := memstore.New(memstore.WithClock(now)) // the window does not move during the example
	defer st.Close()
	api := snippetPolicy(st, "api", 5, 10*time.Second)
	burst := snippetPolicy(st, "burst", 5, time.Second)
	daily := snippetPolicy(st, "daily", 1000, 24*time.Hour)
	limits, _ := limiter.Stack(burst, daily) // decided together
	hello := func(c *gin.Context) { c.String(http.StatusOK, "hello") }
	search := func(c *gin.Context) { c.String(http.StatusOK, "results") }
	r := gin.New()

	// snippet:begin readme-ratelimit-gin
	r.GET("/api/hello", ginmw.RateLimit(api), hello)
	// snippet:end
	// snippet:begin ratelimit-stack-gin
	r.GET("/api/search", ginmw.RateLimit(limits), search)
	// snippet:end

	srv := httptest.NewServer(r)
	defer srv.Close()
	fmt.Println(snippetStatus(http.MethodGet, srv.URL+"/api/hello"))
	var codes []int
	for i := 0; i < 6; i++ {
		codes = append(codes, snippetStatus(http.MethodGet, srv.URL+"/api/search"))
	}
	fmt.Println(codes)
	// Output:
	// 200
	// [200 200 200 200 200 429]
}

// README.md and docs/locks.md, "gin": one payment per order at a time.
func ExampleGuard_payment() {
	st, _ := memstore.New()
	defer st.Close()
	locker, _ := lockguard.New(st)
	guard, _ := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second)

	// snippet:begin guard-gin
	r := gin.New()
	r.Use(gin.Recovery())
	r.POST("/orders/:id/pay", ginmw.Guard(guard), pay)
	// snippet:end

	srv := httptest.NewServer(r)
	defer srv.Close()
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/orders/42/pay"))
	// Output: 200
}

// docs/examples.md, "How the routes are mounted": the routes of
// examples/gin.
func Example_routes() {
	st, _ := memstore.New()
	defer st.Close()
	api := snippetPolicy(st, "api", 5, 10*time.Second)
	login := snippetPolicy(st, "login", 3, time.Minute, limiter.WithSkipSuccessful())
	locker, _ := lockguard.New(st)
	orders, _ := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second)
	hello := func(c *gin.Context) { c.String(http.StatusOK, "hello") }
	loginHandler := func(c *gin.Context) { c.String(http.StatusOK, "welcome") }
	validWork := func(c *gin.Context) {
		if ms, err := strconv.Atoi(c.Query("work")); err != nil || ms < 0 || ms > 10000 {
			c.AbortWithStatus(http.StatusBadRequest)
		}
	}
	r := gin.New()

	// snippet:begin examples-gin
	r.GET("/api/hello", ginmw.RateLimit(api), hello)
	r.POST("/login", ginmw.RateLimit(login), loginHandler)
	r.POST("/orders/:id/pay", validWork, ginmw.Guard(orders), pay)
	// snippet:end

	srv := httptest.NewServer(r)
	defer srv.Close()
	fmt.Println(snippetStatus(http.MethodGet, srv.URL+"/api/hello"))
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/login"))
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/orders/42/pay?work=0"))
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/orders/42/pay?work=abc"))
	// Output:
	// 200
	// 200
	// 200
	// 400
}

// pay is the guarded handler of the examples: it finds its lock in the
// request's context.
func pay(c *gin.Context) {
	lock, ok := lockguard.FromContext(c.Request.Context())
	if !ok {
		c.String(http.StatusServiceUnavailable, "payments are unavailable")
		return
	}
	c.String(http.StatusOK, "order %s paid, fence %t", c.Param("id"), lock.Fence() > 0)
}

func snippetPolicy(st *memstore.Store, name string, limit int, window time.Duration, opts ...limiter.Option) *limiter.Policy {
	p, err := limiter.NewPolicy(name, limit, window, st, opts...)
	if err != nil {
		panic(err)
	}
	return p
}

func snippetStatus(method, url string) int {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		panic(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
