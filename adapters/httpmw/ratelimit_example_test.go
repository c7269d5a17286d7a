package httpmw_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store/memstore"
)

// Two requests per 10 seconds per client on one route; the third is denied.
func ExampleRateLimit() {
	st, _ := memstore.New() // or redisstore.New(client) for many instances
	defer st.Close()
	api, err := limiter.NewPolicy("api", 2, 10*time.Second, st, limiter.WithKey(limiter.ValidatedHeaderKey("X-API-Key", knownKey, limiter.ClientIP)))
	if err != nil {
		panic(err)
	}
	defer api.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /api/hello", httpmw.RateLimit(api)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {}) // not limited
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for i := 0; i < 3; i++ {
		fmt.Print(rateLimitExampleGet(srv.URL + "/api/hello"))
	}
	// Output:
	// 200 RateLimit "api";r=1;t=10: hello
	// 200 RateLimit "api";r=0;t=10: hello
	// 429 RateLimit "api";r=0;t=10: {"error":"too many requests","policy":"api","retry_after":10}
}

// A login form: three wrong passwords per minute per client. Only failed
// attempts count (WithSkipSuccessful), and when the store is down nobody may
// guess (FailClosed).
func ExampleRateLimit_login() {
	st, _ := memstore.New()
	defer st.Close()
	login, err := limiter.NewPolicy("login", 3, time.Minute, st, limiter.WithSkipSuccessful(), limiter.WithFailMode(limiter.FailClosed))
	if err != nil {
		panic(err)
	}
	defer login.Close()
	handler := httpmw.RateLimit(login)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("password") != "correct" {
			http.Error(w, "wrong password", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "welcome")
	}))
	srv := httptest.NewServer(handler)
	defer srv.Close()

	for _, pw := range []string{"correct", "correct", "guess1", "guess2", "guess3", "correct"} {
		resp, err := http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader("password="+pw))
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(pw, resp.StatusCode)
	}
	// Output:
	// correct 200
	// correct 200
	// guess1 401
	// guess2 401
	// guess3 401
	// correct 429
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

// knownKey reports whether an X-API-Key value is one of the application's
// keys; in a real application it looks the key up where the keys live.
func knownKey(k string) bool { return k == "demo-key-1" || k == "demo-key-2" }
