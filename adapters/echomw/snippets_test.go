package echomw_test

// The echo code of README.md, docs/ratelimit.md, docs/locks.md and
// docs/examples.md: each "snippet:begin NAME" region below is shown by a Go
// block of those files, which internal/doccheck (root module) keeps equal
// to it.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sluicehq/sluice/adapters/echomw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

// docs/ratelimit.md, "echo": a policy per client, and one keyed by a route
// parameter.
func ExampleRateLimit_perUser() {
	st, _ := memstore.New()
	defer st.Close()
	api := snippetPolicy(st, "api", 5, 10*time.Second)
	perUser := snippetPolicy(st, "reports", 1, time.Hour)
	hello := func(c echo.Context) error { return c.String(http.StatusOK, "hello") }
	report := func(c echo.Context) error { return c.String(http.StatusAccepted, "report for "+c.Param("id")) }

	// snippet:begin ratelimit-echo
	e := echo.New()
	e.GET("/api/hello", hello, echomw.RateLimit(api))
	e.POST("/users/:id/report", report, echomw.RateLimit(perUser, echomw.WithKey(echomw.ParamKey("id"))))
	// snippet:end

	srv := httptest.NewServer(e)
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
// configuration and stacking", in echo: middleware runs left to right.
func ExampleRateLimit_stacked() {
	now := func() time.Time { return time.Unix(1_900_000_000, 0) }
	st, _ := memstore.New(memstore.WithClock(now)) // the window does not move during the example
	defer st.Close()
	api := snippetPolicy(st, "api", 5, 10*time.Second)
	burst := snippetPolicy(st, "burst", 5, time.Second)
	daily := snippetPolicy(st, "daily", 1000, 24*time.Hour)
	limits, _ := limiter.Stack(burst, daily) // decided together
	hello := func(c echo.Context) error { return c.String(http.StatusOK, "hello") }
	search := func(c echo.Context) error { return c.String(http.StatusOK, "results") }
	e := echo.New()

	// snippet:begin readme-ratelimit-echo
	e.GET("/api/hello", hello, echomw.RateLimit(api))
	// snippet:end
	// snippet:begin ratelimit-stack-echo
	e.GET("/api/search", search, echomw.RateLimit(limits))
	// snippet:end

	srv := httptest.NewServer(e)
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

// README.md and docs/locks.md, "echo": one payment per order at a time.
func ExampleGuard_payment() {
	st, _ := memstore.New()
	defer st.Close()
	locker, _ := lockguard.New(st)
	guard, _ := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second)

	// snippet:begin guard-echo
	e := echo.New()
	e.POST("/orders/:id/pay", pay, echomw.Guard(guard))
	// snippet:end

	srv := httptest.NewServer(e)
	defer srv.Close()
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/orders/42/pay"))
	// Output: 200
}

// docs/examples.md, "How the routes are mounted": the routes of
// examples/echo.
func Example_routes() {
	st, _ := memstore.New()
	defer st.Close()
	api := snippetPolicy(st, "api", 5, 10*time.Second)
	login := snippetPolicy(st, "login", 3, time.Minute, limiter.WithSkipSuccessful())
	locker, _ := lockguard.New(st)
	orders, _ := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second)
	hello := func(c echo.Context) error { return c.String(http.StatusOK, "hello") }
	loginHandler := func(c echo.Context) error { return c.String(http.StatusOK, "welcome") }
	validWork := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if ms, err := strconv.Atoi(c.QueryParam("work")); err != nil || ms < 0 || ms > 10000 {
				return c.String(http.StatusBadRequest, "bad work")
			}
			return next(c)
		}
	}
	e := echo.New()

	// snippet:begin examples-echo
	e.GET("/api/hello", hello, echomw.RateLimit(api))
	e.POST("/login", loginHandler, echomw.RateLimit(login))
	e.POST("/orders/:id/pay", pay, validWork, echomw.Guard(orders))
	// snippet:end

	srv := httptest.NewServer(e)
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
func pay(c echo.Context) error {
	lock, ok := lockguard.FromContext(c.Request().Context())
	if !ok {
		return c.String(http.StatusServiceUnavailable, "payments are unavailable")
	}
	return c.String(http.StatusOK, fmt.Sprintf("order %s paid, fence %t", c.Param("id"), lock.Fence() > 0))
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
