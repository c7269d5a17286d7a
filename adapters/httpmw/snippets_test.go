package httpmw_test

// The net/http code of README.md, docs/ratelimit.md, docs/locks.md and
// docs/examples.md: each "snippet:begin NAME" region below is shown by a Go
// block of those files, which internal/doccheck keeps equal to it.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// README.md, "Rate limiting": a known API key is a client of its own, any
// other request counts against its address.
func ExampleRateLimit_apiKey() {
	hello := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") }
	mux := http.NewServeMux()

	// snippet:begin readme-ratelimit
	st, err := memstore.New() // or redisstore.New(redisClient)
	if err != nil {
		log.Fatal(err)
	}
	api, err := limiter.NewPolicy("api", 5, 10*time.Second, st, // per known API key, else per client IP
		limiter.WithKey(limiter.ValidatedHeaderKey("X-API-Key", knownKey, limiter.ClientIP)))
	if err != nil {
		log.Fatal(err)
	}
	// snippet:end
	defer api.Close()
	defer st.Close()

	// snippet:begin readme-ratelimit-nethttp
	mux.Handle("GET /api/hello", httpmw.RateLimit(api)(http.HandlerFunc(hello)))
	// snippet:end

	srv := httptest.NewServer(mux)
	defer srv.Close()
	var codes []int
	for i := 0; i < 6; i++ {
		codes = append(codes, snippetStatus(http.MethodGet, srv.URL+"/api/hello"))
	}
	fmt.Println(codes)
	fmt.Println(snippetStatus(http.MethodGet, srv.URL+"/api/hello", "X-API-Key", "demo-key-1"))
	fmt.Println(snippetStatus(http.MethodGet, srv.URL+"/api/hello", "X-API-Key", "made-up"))
	// Output:
	// [200 200 200 200 200 429]
	// 200
	// 429
}

// README.md, "Route guards and locks": one payment per order at a time.
func ExampleGuard_payment() {
	st, _ := memstore.New()
	defer st.Close()
	mux := http.NewServeMux()

	// snippet:begin readme-guard
	locker, err := lockguard.New(st)
	if err != nil {
		log.Fatal(err)
	}
	guard, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("POST /orders/{id}/pay", httpmw.Guard(guard)(http.HandlerFunc(pay)))
	// snippet:end

	srv := httptest.NewServer(mux)
	defer srv.Close()
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/orders/41/pay"))
	fmt.Println(orders.Paid("41"))
	// Output:
	// 200
	// true
}

// docs/locks.md, "Inside the handler". The write carries the lock's fence,
// and the orders table refuses a fence older than the last it accepted.
//
// snippet:begin locks-handler
func pay(w http.ResponseWriter, r *http.Request) {
	lock, ok := lockguard.FromContext(r.Context())
	if !ok { // only behind a fail-open Guard whose store failed
		http.Error(w, "payments are unavailable", http.StatusServiceUnavailable)
		return
	}
	// MarkPaid gives up once r.Context() is cancelled: the client has gone or the lock was lost.
	if err := orders.MarkPaid(r.Context(), r.PathValue("id"), lock.Fence()); err != nil {
		http.Error(w, "payment not recorded", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "order %s paid\n", r.PathValue("id"))
}

// snippet:end

// orders stands for the application's orders table (see "Fencing tokens" in
// docs/locks.md).
var orders = &orderTable{lastFence: map[string]int64{}}

type orderTable struct {
	mu        sync.Mutex
	lastFence map[string]int64
}

// MarkPaid records a payment unless a newer owner has written since:
// UPDATE orders SET status = 'paid', last_fence = $2 WHERE id = $1 AND last_fence < $2.
func (t *orderTable) MarkPaid(ctx context.Context, id string, fence int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if fence <= t.lastFence[id] {
		return errors.New("orders: stale fence")
	}
	t.lastFence[id] = fence
	return nil
}

func (t *orderTable) Paid(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastFence[id] > 0
}

// docs/ratelimit.md, "Quick start": 5 requests per 10 s per client IP.
func ExampleRateLimit_perClient() {
	hello := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") }

	// snippet:begin ratelimit-quickstart
	st, err := memstore.New() // or redisstore.New(redisClient)
	if err != nil {
		log.Fatal(err)
	}
	api, err := limiter.NewPolicy("api", 5, 10*time.Second, st) // per client IP, both header families, fail-open
	if err != nil {
		log.Fatal(err)
	}
	// snippet:end
	defer api.Close()
	defer st.Close()

	// snippet:begin ratelimit-nethttp
	mux := http.NewServeMux()
	mux.Handle("GET /api/hello", httpmw.RateLimit(api)(http.HandlerFunc(hello)))
	// snippet:end

	srv := httptest.NewServer(mux)
	defer srv.Close()
	var codes []int
	for i := 0; i < 6; i++ {
		codes = append(codes, snippetStatus(http.MethodGet, srv.URL+"/api/hello"))
	}
	fmt.Println(codes)
	// Output: [200 200 200 200 200 429]
}

// docs/ratelimit.md, "Per-route configuration and stacking".
func ExampleRateLimit_stacked() {
	now := func() time.Time { return time.Unix(1_900_000_000, 0) }
	st, _ := memstore.New(memstore.WithClock(now)) // the window does not move during the example
	defer st.Close()
	search := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "results") }
	mux := http.NewServeMux()

	// snippet:begin ratelimit-stack
	burst, _ := limiter.NewPolicy("burst", 5, time.Second, st)     // "burst": 5 per second
	daily, _ := limiter.NewPolicy("daily", 1000, 24*time.Hour, st) // "daily": 1000 per day
	limits, _ := limiter.Stack(burst, daily)                       // decided together
	defer limits.Close()                                           // closes both

	mux.Handle("GET /api/search", httpmw.RateLimit(limits)(http.HandlerFunc(search)))
	// snippet:end

	srv := httptest.NewServer(mux)
	defer srv.Close()
	for i := 0; i < 6; i++ {
		resp, err := http.Get(srv.URL + "/api/search")
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("RateLimit"))
	}
	// Output:
	// 200 "burst";r=4;t=1, "daily";r=999;t=86400
	// 200 "burst";r=3;t=1, "daily";r=998;t=86400
	// 200 "burst";r=2;t=1, "daily";r=997;t=86400
	// 200 "burst";r=1;t=1, "daily";r=996;t=86400
	// 200 "burst";r=0;t=1, "daily";r=995;t=86400
	// 429 "burst";r=0;t=1, "daily";r=995;t=86400
}

// docs/ratelimit.md, "Counting only failures (the login pattern)".
func ExampleRateLimit_countFailures() {
	st, _ := memstore.New()
	defer st.Close()

	// snippet:begin ratelimit-login
	login, _ := limiter.NewPolicy("login", 3, time.Minute, st, limiter.WithSkipSuccessful(), limiter.WithFailMode(limiter.FailClosed))
	// snippet:end
	defer login.Close()

	handler := httpmw.RateLimit(login)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("password") != "correct" {
			http.Error(w, "wrong password", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "welcome")
	}))
	srv := httptest.NewServer(handler)
	defer srv.Close()
	var codes []int
	for _, pw := range []string{"correct", "guess1", "correct", "guess2", "guess3", "correct"} {
		codes = append(codes, snippetStatus(http.MethodPost, srv.URL+"/?password="+pw))
	}
	fmt.Println(codes)
	// Output: [200 401 200 401 401 429]
}

// docs/locks.md, "Guarding a route": locks shared through Redis. Compiled,
// not run: it needs a Redis server.
func ExampleGuard_redis() {
	// snippet:begin locks-guard-setup
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	st, err := redisstore.New(client) // memstore.New() for a single process
	if err != nil {
		log.Fatal(err)
	}
	locker, err := lockguard.New(st)
	if err != nil {
		log.Fatal(err)
	}
	guard, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	// snippet:end

	// snippet:begin locks-guard-nethttp
	mux := http.NewServeMux()
	mux.Handle("POST /orders/{id}/pay", httpmw.Guard(guard)(http.HandlerFunc(pay)))
	// snippet:end

	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// docs/examples.md, "How the routes are mounted": the policies, the guard
// and the routes of examples/nethttp.
func Example_routes() {
	st, _ := memstore.New()
	defer st.Close()
	apiKeys := map[string]bool{"demo-key-1": true, "demo-key-2": true}
	clientIP, _ := limiter.TrustedProxyIP() // no TRUSTED_PROXIES: limiter.ClientIP
	hello := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") }
	loginHandler := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("password") != "correct" {
			http.Error(w, "wrong user or password", http.StatusUnauthorized)
		}
	}
	validWork := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ms, err := strconv.Atoi(r.URL.Query().Get("work")); err != nil || ms < 0 || ms > 10000 {
				http.Error(w, "bad work", http.StatusBadRequest)
				return
			}
			next.ServeHTTP(w, r)
		})
	}

	// The guard is called orders here, as in examples/nethttp; pay writes to
	// the orders table of this file.
	// snippet:begin examples-policies
	isKey := func(k string) bool { return apiKeys[k] }        // the set API_KEYS lists
	api, _ := limiter.NewPolicy("api", 5, 10*time.Second, st, // fail-open: the default
		limiter.WithKey(limiter.ValidatedHeaderKey("X-API-Key", isKey, clientIP)))
	defer api.Close()
	login, _ := limiter.NewPolicy("login", 3, time.Minute, st, limiter.WithKey(clientIP),
		limiter.WithSkipSuccessful(), limiter.WithFailMode(limiter.FailClosed))
	defer login.Close()
	locker, _ := lockguard.New(st)
	orders, _ := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second) // fail-closed: the default
	// snippet:end
	mux := http.NewServeMux()

	// snippet:begin examples-nethttp
	mux.Handle("GET /api/hello", httpmw.RateLimit(api)(http.HandlerFunc(hello)))
	mux.Handle("POST /login", httpmw.RateLimit(login)(http.HandlerFunc(loginHandler)))
	mux.Handle("POST /orders/{id}/pay", validWork(httpmw.Guard(orders)(http.HandlerFunc(pay))))
	// snippet:end

	srv := httptest.NewServer(mux)
	defer srv.Close()
	fmt.Println(snippetStatus(http.MethodGet, srv.URL+"/api/hello"))
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/login?password=correct"))
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/orders/43/pay?work=0"))
	fmt.Println(snippetStatus(http.MethodPost, srv.URL+"/orders/43/pay?work=abc"))
	// Output:
	// 200
	// 200
	// 200
	// 400
}

// snippetStatus sends a request with the given header name and value pairs
// and returns the response's status.
func snippetStatus(method, url string, header ...string) int {
	req, err := http.NewRequest(method, url, strings.NewReader(""))
	if err != nil {
		panic(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
