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

// IPv6 clients are grouped by /64 unless ClientIPPrefix says otherwise: here
// a whole /48 (one site) is one client. IPv4 clients are unaffected.
func ExampleClientIPPrefix() {
	key, err := limiter.ClientIPPrefix(48) // or ClientIPPrefix(48, "10.0.0.0/8") behind proxies
	if err != nil {
		panic(err)
	}
	for _, remote := range []string{"[2001:db8:1:2::7]:5000", "[2001:db8:1:ffff::9]:5000", "203.0.113.7:5000"} {
		r := httptest.NewRequest(http.MethodGet, "/api/hello", nil)
		r.RemoteAddr = remote
		k, _ := key(r)
		fmt.Printf("%s counts as %s\n", remote, k)
	}
	_, err = limiter.ClientIPPrefix(0)
	fmt.Println(err)
	// Output:
	// [2001:db8:1:2::7]:5000 counts as 2001:db8:1::/48
	// [2001:db8:1:ffff::9]:5000 counts as 2001:db8:1::/48
	// 203.0.113.7:5000 counts as 203.0.113.7
	// limiter: invalid configuration: IPv6 prefix length 0 outside 1..128
}
