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
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

// One payment per order at a time: a second request for an order being paid
// gets 409 Conflict. limiter.PathValueKey reads echo's route parameter.
func ExampleGuard() {
	st, _ := memstore.New() // or redisstore.New(client) for many instances
	defer st.Close()
	locker, _ := lockguard.New(st)
	guard, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second)
	if err != nil {
		panic(err)
	}

	paying, finish := make(chan struct{}), make(chan struct{})
	e := echo.New()
	e.POST("/orders/:id/pay", func(c echo.Context) error {
		lock, _ := lockguard.FromContext(c.Request().Context()) // lock.Fence() goes with every write
		if c.QueryParams().Has("slow") {
			close(paying)
			<-finish
		}
		return c.String(http.StatusOK, fmt.Sprintf("order %s paid: %t\n", c.Param("id"), lock.Fence() > 0))
	}, echomw.Guard(guard))
	srv := httptest.NewServer(e)
	defer srv.Close()

	first := make(chan string)
	go func() { first <- guardPost(srv.URL + "/orders/42/pay?slow") }()
	<-paying
	fmt.Print(guardPost(srv.URL + "/orders/42/pay"))
	close(finish)
	fmt.Print(<-first)
	// Output:
	// 409 Retry-After 5: {"error":"resource is locked","retry_after":5}
	// 200 Retry-After : order 42 paid: true
}

func guardPost(url string) string {
	resp, err := http.Post(url, "", nil)
	if err != nil {
		return err.Error() + "\n"
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d Retry-After %s: %s\n", resp.StatusCode, resp.Header.Get("Retry-After"), bytes.TrimSpace(body))
}
