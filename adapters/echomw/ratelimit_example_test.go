package echomw_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sluicehq/sluice/adapters/echomw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store/memstore"
)

// A burst limit and a daily limit stacked on one route: both appear in the
// RateLimit field, and the stricter one denies.
func ExampleRateLimit() {
	st, _ := memstore.New() // or redisstore.New(client) for many instances
	defer st.Close()
	policy := func(name string, limit int, window time.Duration) *limiter.Policy {
		p, err := limiter.NewPolicy(name, limit, window, st)
		if err != nil {
			panic(err)
		}
		return p
	}
	burst := policy("burst", 2, 10*time.Second)
	daily := policy("daily", 1000, 24*time.Hour)

	e := echo.New()
	e.GET("/api/hello", func(c echo.Context) error {
		return c.String(http.StatusOK, "hello")
	}, echomw.RateLimit(burst), echomw.RateLimit(daily))
	srv := httptest.NewServer(e)
	defer srv.Close()

	for i := 0; i < 3; i++ {
		fmt.Print(rateLimitExampleGet(srv.URL + "/api/hello"))
	}
	// Output:
	// 200 RateLimit "burst";r=1;t=10, "daily";r=999;t=86400: hello
	// 200 RateLimit "burst";r=0;t=10, "daily";r=998;t=86400: hello
	// 429 RateLimit "burst";r=0;t=10: {"error":"too many requests","policy":"burst","retry_after":10}
}

// Echo keeps route parameters in echo.Context: WithKey with ParamKey
// counts requests per parameter value.
func ExampleWithKey() {
	st, _ := memstore.New()
	defer st.Close()
	reports, _ := limiter.NewPolicy("reports", 1, time.Hour, st)
	defer reports.Close()

	e := echo.New()
	e.POST("/users/:id/report", func(c echo.Context) error {
		return c.String(http.StatusAccepted, "report for "+c.Param("id"))
	}, echomw.RateLimit(reports, echomw.WithKey(echomw.ParamKey("id"))))
	srv := httptest.NewServer(e)
	defer srv.Close()

	for _, id := range []string{"7", "7", "8"} {
		resp, err := http.Post(srv.URL+"/users/"+id+"/report", "", nil)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(id, resp.StatusCode)
	}
	// Output:
	// 7 202
	// 7 429
	// 8 202
}

func rateLimitExampleGet(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error() + "\n"
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d RateLimit %s: %s\n", resp.StatusCode, resp.Header.Get("RateLimit"), bytes.TrimSpace(body))
}
