package limiter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store/memstore"
)

// A Limiter on its own: two hits per key in any minute.
func ExampleLimiter_Allow() {
	now := time.Unix(1_900_000_000, 0)
	st, _ := memstore.New(memstore.WithClock(func() time.Time { return now })) // or redisstore.New(client)
	defer st.Close()
	l, err := limiter.New("api", 2, time.Minute, st)
	if err != nil {
		panic(err)
	}
	defer l.Close()

	for i := 0; i < 3; i++ {
		d, err := l.Allow(context.Background(), "user:42")
		if err != nil {
			panic(err) // a store failure: decide whether to serve anyway
		}
		fmt.Printf("allowed=%t remaining=%d retry after %v\n", d.Allowed, d.Remaining, d.RetryAfter)
	}
	// Output:
	// allowed=true remaining=1 retry after 0s
	// allowed=true remaining=0 retry after 0s
	// allowed=false remaining=0 retry after 1m0s
}

// A Policy decides HTTP requests and sets the quota headers; the adapters in
// adapters/httpmw, adapters/echomw and adapters/ginmw call Admit for you.
func ExampleNewPolicy() {
	now := func() time.Time { return time.Unix(1_900_000_000, 0) }
	st, _ := memstore.New(memstore.WithClock(now))
	defer st.Close()
	p, err := limiter.NewPolicy("api", 5, 10*time.Second, st,
		limiter.WithKey(limiter.ValidatedHeaderKey("X-API-Key", knownKey, limiter.ClientIP)),
		limiter.WithClock(now), // only for the example's fixed X-RateLimit-Reset
	)
	if err != nil {
		panic(err)
	}
	defer p.Close()

	r := httptest.NewRequest(http.MethodGet, "/api/hello", nil)
	w := httptest.NewRecorder()
	_, _, rj := p.Admit(w, r, nil)
	fmt.Println("proceed:", rj == nil)
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit"} {
		fmt.Printf("%s: %s\n", h, w.Header().Get(h))
	}
	// Output:
	// proceed: true
	// X-RateLimit-Limit: 5
	// X-RateLimit-Remaining: 4
	// X-RateLimit-Reset: 1900000010
	// RateLimit-Policy: "api";q=5;w=10
	// RateLimit: "api";r=4;t=10
}

// Behind reverse proxies, trust X-Forwarded-For only from their addresses:
// the client is the right-most address that is not a proxy.
func ExampleTrustedProxyIP() {
	key, err := limiter.TrustedProxyIP("10.0.0.0/8") // e.g. strings.Split(os.Getenv("TRUSTED_PROXIES"), ",")...
	if err != nil {
		panic(err)
	}
	for _, c := range []struct{ peer, xff string }{
		{"10.0.0.2:5000", "198.51.100.1, 203.0.113.9, 10.0.0.7"}, // via two proxies; the left part is the client's claim
		{"203.0.113.50:5000", "192.0.2.1"},                       // straight from a client: the header is ignored
		{"10.0.0.2:5000", "2001:db8:1:2::99"},                    // IPv6 clients are grouped by /64
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.peer
		r.Header.Set("X-Forwarded-For", c.xff)
		k, _ := key(r)
		fmt.Println(k)
	}
	// Output:
	// 203.0.113.9
	// 203.0.113.50
	// 2001:db8:1:2::/64
}

// The handler finds the decisions of the limiters that let the request in.
func ExampleFromContext() {
	st, _ := memstore.New()
	defer st.Close()
	p, _ := limiter.NewPolicy("api", 5, time.Minute, st)
	defer p.Close()

	handler := func(w http.ResponseWriter, r *http.Request) {
		for _, d := range limiter.FromContext(r.Context()) {
			fmt.Printf("%s: %d of %d left\n", d.Policy, d.Remaining, d.Limit)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	if next, _, rj := p.Admit(w, r, nil); rj == nil {
		handler(w, next)
	}
	// Output:
	// api: 4 of 5 left
}

// knownKey reports whether an X-API-Key value is one of the application's
// keys; in a real application it looks the key up where the keys live.
func knownKey(k string) bool { return k == "demo-key-1" || k == "demo-key-2" }
