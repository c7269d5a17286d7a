package ginmw_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sluicehq/sluice/adapters/ginmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store/memstore"
)

// Two requests per 10 seconds per client on one route; the handler reads
// its quota from the decision in the request's context.
func ExampleRateLimit() {
	st, _ := memstore.New() // or redisstore.New(client) for many instances
	defer st.Close()
	api, err := limiter.NewPolicy("api", 2, 10*time.Second, st)
	if err != nil {
		panic(err)
	}
	defer api.Close()

	r := gin.New()
	r.GET("/api/hello", ginmw.RateLimit(api), func(c *gin.Context) {
		d, _ := limiter.DecisionFor(c.Request.Context(), "api")
		c.String(http.StatusOK, "hello, %d left", d.Remaining)
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	for i := 0; i < 3; i++ {
		fmt.Print(rateLimitExampleGet(srv.URL + "/api/hello"))
	}
	// Output:
	// 200 Retry-After : hello, 1 left
	// 200 Retry-After : hello, 0 left
	// 429 Retry-After 10: {"error":"too many requests","policy":"api","retry_after":10}
}

// Gin keeps route parameters in *gin.Context: WithKey with ParamKey
// counts requests per parameter value.
func ExampleWithKey() {
	st, _ := memstore.New()
	defer st.Close()
	reports, _ := limiter.NewPolicy("reports", 1, time.Hour, st)
	defer reports.Close()

	r := gin.New()
	r.POST("/users/:id/report", ginmw.RateLimit(reports, ginmw.WithKey(ginmw.ParamKey("id"))), func(c *gin.Context) {
		c.String(http.StatusAccepted, "report for %s", c.Param("id"))
	})
	srv := httptest.NewServer(r)
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
	return fmt.Sprintf("%d Retry-After %s: %s\n", resp.StatusCode, resp.Header.Get("Retry-After"), bytes.TrimSpace(body))
}
