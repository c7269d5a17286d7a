package limiter_test

// The code of docs/ratelimit.md that needs no adapter: each
// "snippet:begin NAME" region below is shown by a Go block of that file,
// which internal/doccheck keeps equal to it.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// docs/ratelimit.md, "A header is an identity only once validated".
func ExampleValidatedHeaderKey_policy() {
	st, _ := memstore.New()
	defer st.Close()

	// snippet:begin ratelimit-validated-header
	known := map[string]bool{"demo-key-1": true, "demo-key-2": true} // from your key store
	key := limiter.ValidatedHeaderKey("X-API-Key", func(k string) bool { return known[k] }, limiter.ClientIP)
	api, _ := limiter.NewPolicy("api", 5, 10*time.Second, st, limiter.WithKey(key))
	// snippet:end
	defer api.Close()

	for _, v := range []string{"demo-key-1", "made-up-1", "made-up-2", ""} {
		r := httptest.NewRequest(http.MethodGet, "/api/hello", nil)
		r.Header.Set("X-API-Key", v)
		k, _ := key(r)
		fmt.Printf("%q counts as %s\n", v, k)
	}
	// Output:
	// "demo-key-1" counts as X-Api-Key:demo-key-1
	// "made-up-1" counts as 192.0.2.1
	// "made-up-2" counts as 192.0.2.1
	// "" counts as 192.0.2.1
}

// docs/ratelimit.md, "Behind a reverse proxy": the trusted proxies from the
// environment. Compiled, not run: its result depends on TRUSTED_PROXIES.
func ExampleTrustedProxyIP_environment() {
	st, _ := memstore.New()
	defer st.Close()

	// snippet:begin ratelimit-trusted-proxies
	key, err := limiter.TrustedProxyIP(strings.Split(os.Getenv("TRUSTED_PROXIES"), ",")...) // "10.0.0.0/8,2001:db8::/32"
	if err != nil {
		log.Fatal(err) // a malformed CIDR
	}
	api, _ := limiter.NewPolicy("api", 5, 10*time.Second, st, limiter.WithKey(key))
	// snippet:end
	defer api.Close()

	fmt.Println(api.Name())
}

// docs/ratelimit.md, "The decision in the handler".
func ExampleDecisionFor() {
	st, _ := memstore.New()
	defer st.Close()
	api, _ := limiter.NewPolicy("api", 100, time.Minute, st)
	defer api.Close()
	daily, _ := limiter.NewPolicy("daily", 10, 24*time.Hour, st)
	defer daily.Close()

	// What an adapter does: each policy admits the request in turn, and the
	// request that reaches the handler carries their decisions.
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/api/search", nil)
	for _, p := range []*limiter.Policy{api, daily} {
		next, _, rj := p.Admit(w, r, nil)
		if rj != nil {
			return
		}
		r = next
	}
	log.SetOutput(os.Stdout)
	log.SetFlags(0)
	defer log.SetOutput(os.Stderr)
	defer log.SetFlags(log.LstdFlags)
	hello(w, r)
	fmt.Println("Warning:", w.Header().Get("Warning"))
	// Output:
	// api: 99 of 100 left
	// daily: 9 of 10 left
	// Warning: 199 - "daily quota almost used up"
}

// snippet:begin ratelimit-decision
func hello(w http.ResponseWriter, r *http.Request) {
	for _, d := range limiter.FromContext(r.Context()) { // every policy that decided, outermost first
		log.Printf("%s: %d of %d left", d.Policy, d.Remaining, d.Limit)
	}
	if d, ok := limiter.DecisionFor(r.Context(), "daily"); ok && d.Remaining < 10 {
		w.Header().Set("Warning", `199 - "daily quota almost used up"`)
	}
}

// snippet:end

// docs/ratelimit.md, "Using a Limiter directly".
func ExampleLimiter_AllowN() {
	st, _ := memstore.New()
	defer st.Close()
	l, _ := limiter.New("jobs", 5, time.Minute, st)
	defer l.Close()
	ctx := context.Background()

	for i := 0; i < 2; i++ {
		// snippet:begin ratelimit-allown
		d, err := l.AllowN(ctx, "tenant:42", 3) // 3 hits at once
		switch {
		case err != nil:
			log.Print(err) // the store failed: your fail mode
		case !d.Allowed:
			fmt.Println("denied: retry in", d.RetryAfter.Round(time.Second))
		default:
			fmt.Println("allowed:", d.Remaining, "left") // l.Undo(ctx, d) gives the hits back
		}
		// snippet:end
	}
	// Output:
	// allowed: 2 left
	// denied: retry in 1m0s
}

// docs/ratelimit.md, "Another framework": the sequence every adapter runs.
func ExamplePolicy_Admit() {
	st, _ := memstore.New()
	defer st.Close()
	p, _ := limiter.NewPolicy("login", 2, time.Minute, st, limiter.WithSkipSuccessful())
	defer p.Close()

	// A framework whose handlers return the status they wrote.
	h := limitedHandler(p, func(w http.ResponseWriter, r *http.Request) int {
		if r.URL.Query().Get("password") != "correct" {
			w.WriteHeader(http.StatusUnauthorized)
			return http.StatusUnauthorized
		}
		return http.StatusOK
	})
	var codes []int
	for _, pw := range []string{"correct", "guess", "correct", "guess", "correct"} {
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest(http.MethodPost, "/login?password="+pw, nil))
		codes = append(codes, w.Code)
	}
	fmt.Println(codes)
	// Output: [200 401 200 401 429]
}

// limitedHandler puts policy p in front of a handler of a framework whose
// handlers report the status they wrote.
func limitedHandler(p *limiter.Policy, next func(w http.ResponseWriter, r *http.Request) int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// snippet:begin ratelimit-adapter
		r, done, rj := p.Admit(w, r, nil) // skip predicate, key, cost, store, headers
		if rj != nil {
			rj.Write(w) // 429, 400 or 503, with the policy's handlers
			return
		}
		if done == nil {
			next(w, r) // r carries the decision in its context
			return
		}
		status := http.StatusInternalServerError // what counts if next panics
		defer func() { done(status) }()          // undo for skip-successful/failed
		status = next(w, r)
		// snippet:end
	}
}

// docs/ratelimit.md, "Algorithms".
func ExampleWithAlgorithm() {
	now := func() time.Time { return time.Unix(1_900_000_000, 0) } // 17:46:40 UTC
	st, _ := memstore.New(memstore.WithClock(now))
	defer st.Close()

	// snippet:begin ratelimit-algorithms
	// 10,000 a day per client in O(1) memory: the sliding-window counter.
	daily, _ := limiter.NewPolicy("daily", 10_000, 24*time.Hour, st,
		limiter.WithAlgorithm(store.SlidingCounter))
	// 10 a second on average, bursts of up to 50: GCRA, a token bucket.
	bursty, _ := limiter.NewPolicy("bursty", 10, time.Second, st,
		limiter.WithAlgorithm(store.GCRA), limiter.WithBurst(50))
	// snippet:end
	defer daily.Close()
	defer bursty.Close()

	for _, p := range []*limiter.Policy{daily, bursty} {
		d, _ := p.Limiter().AllowN(context.Background(), "client", 5)
		fmt.Printf("%s (%v): allowed=%v remaining=%d reset=%v\n", p.Name(), p.Limiter().Algorithm(), d.Allowed, d.Remaining, d.ResetAfter)
	}
	// Output:
	// daily (sliding-counter): allowed=true remaining=9995 reset=11h1m20s
	// bursty (gcra): allowed=true remaining=45 reset=500ms
}

// docs/ratelimit.md, "Plans: a limit per request".
func ExampleWithLimitFunc() {
	st, _ := memstore.New()
	defer st.Close()

	// snippet:begin ratelimit-plans
	plans := map[string]int{"free": 100, "pro": 10_000} // per hour
	perPlan := func(r *http.Request) (int, error) {
		if limit, ok := plans[r.Header.Get("X-Plan")]; ok { // from your auth layer
			return limit, nil
		}
		return 0, errors.New("unknown plan") // 400, never a silent allow
	}
	api, _ := limiter.NewPolicy("api", 100, time.Hour, st,
		limiter.WithAlgorithm(store.GCRA), limiter.WithLimitFunc(perPlan))
	// snippet:end
	defer api.Close()

	for _, plan := range []string{"free", "pro"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/api/hello", nil)
		r.Header.Set("X-Plan", plan)
		r.RemoteAddr = "192.0.2.1:1234"
		if plan == "pro" {
			r.RemoteAddr = "192.0.2.2:1234"
		}
		api.Admit(w, r, nil)
		fmt.Println(plan, w.Header().Get("RateLimit-Policy"), w.Header().Get("X-RateLimit-Remaining"))
	}
	// Output:
	// free "api";q=100;w=3600 99
	// pro "api";q=10000;w=3600 9999
}
