package limiter_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/sluicehq/sluice/limiter"
)

// An API key is an identity only once it is known to be one: an invented key
// counts against the client's address, as no key does.
func ExampleValidatedHeaderKey() {
	apiKeys := map[string]bool{"demo-key-1": true, "demo-key-2": true} // e.g. from the environment or a database
	key := limiter.ValidatedHeaderKey("X-API-Key", func(k string) bool { return apiKeys[k] }, limiter.ClientIP)

	for _, sent := range []string{"demo-key-1", "made-up-key", ""} {
		r := httptest.NewRequest(http.MethodGet, "/api/hello", nil)
		r.RemoteAddr = "203.0.113.7:5000"
		if sent != "" {
			r.Header.Set("X-API-Key", sent)
		}
		k, _ := key(r)
		fmt.Printf("%q counts as %s\n", sent, k)
	}
	// Output:
	// "demo-key-1" counts as X-Api-Key:demo-key-1
	// "made-up-key" counts as 203.0.113.7
	// "" counts as 203.0.113.7
}
