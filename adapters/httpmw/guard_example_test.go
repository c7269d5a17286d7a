package httpmw_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

// One payment per order at a time: a second request for an order being paid
// gets 409 Conflict.
func ExampleGuard() {
	st, _ := memstore.New() // or redisstore.New(client) for many instances
	defer st.Close()
	locker, _ := lockguard.New(st)
	guard, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second)
	if err != nil {
		panic(err)
	}

	paying, finish := make(chan struct{}), make(chan struct{})
	pay := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lock, _ := lockguard.FromContext(r.Context()) // lock.Fence() goes with every write
		if r.URL.Query().Has("slow") {
			close(paying)
			<-finish
		}
		fmt.Fprintf(w, "order %s paid: %t\n", r.PathValue("id"), lock.Fence() > 0)
	})
	mux := http.NewServeMux()
	mux.Handle("POST /orders/{id}/pay", httpmw.Guard(guard)(pay)) // the route, not the mux
	srv := httptest.NewServer(mux)
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
