package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
)

// Bounds on every wait, so that a broken example fails the test instead of
// hanging it.
const (
	buildTimeout   = 5 * time.Minute
	startTimeout   = 20 * time.Second
	stopTimeout    = 20 * time.Second
	requestTimeout = 20 * time.Second
)

type example struct {
	name      string // subtest and binary name
	pkg       string // package, relative to the module root
	framework string // as the start-up line names it
}

var examples = []example{
	{name: "nethttp", pkg: "./examples/nethttp", framework: "net/http"},
	{name: "echo", pkg: "./examples/echo", framework: "echo"},
	{name: "gin", pkg: "./examples/gin", framework: "gin"},
	{name: "config", pkg: "./examples/config", framework: "config"},
}

// The contract of the routes (DESIGN.md, "Example servers").
const (
	apiLimit     = 5
	apiWindow    = 10 // seconds
	loginLimit   = 3
	loginWindow  = 60 // seconds
	lockTTL      = 5  // seconds
	holdWork     = "1500"
	correctLogin = `{"user":"ann","password":"correct"}`
	wrongLogin   = `{"user":"ann","password":"guess"}`
)

// The API keys an example accepts when API_KEYS is unset.
var defaultAPIKeys = []string{"demo-key-1", "demo-key-2"}

// binDir receives the example binaries; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// TestContract runs every route of the contract against each example on the
// in-memory store (clients told apart by their address), behind a trusted
// proxy (clients told apart by X-Forwarded-For) and, with REDIS_CLUSTER_ADDRS
// set, on a Redis Cluster.
func TestContract(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			t.Run("memory", func(t *testing.T) {
				in := start(t, ex)
				assert.Equal(t, "memory", in.store)
				runContract(t, in, false, defaultAPIKeys[0])
			})
			t.Run("behind-proxy", func(t *testing.T) {
				key := rand.Text()
				in := start(t, ex, "TRUSTED_PROXIES=127.0.0.0/8, ::1/128", "API_KEYS= "+rand.Text()+" , "+key+",")
				runContract(t, in, true, key)
			})
			t.Run("redis-cluster", func(t *testing.T) {
				cluster := strings.Join(redistest.ClusterAddrs(t), ",")
				// The Cluster outlives this test and is shared by the three
				// examples: every check uses clients, API keys and orders of
				// its own.
				key := rand.Text()
				in := start(t, ex, "REDIS_CLUSTER="+cluster, "TRUSTED_PROXIES=127.0.0.1", "API_KEYS="+key)
				assert.Equal(t, "redis-cluster("+cluster+")", in.store)
				runContract(t, in, true, key)
			})
		})
	}
}

// runContract checks each route on in. With behindProxy, TRUSTED_PROXIES
// covers the loopback address the test connects from, so each check is a new
// client with an X-Forwarded-For address of its own; otherwise every request
// comes from 127.0.0.1, a client only a fresh in-memory instance has not seen.
// apiKey is one of the instance's API_KEYS that no request has used yet.
func runContract(t *testing.T, in *instance, behindProxy bool, apiKey string) {
	t.Run("hello", func(t *testing.T) { checkHello(t, in, behindProxy, apiKey) })
	t.Run("login", func(t *testing.T) { checkLogin(t, in, behindProxy) })
	t.Run("daily", func(t *testing.T) { checkDaily(t, in, behindProxy) })
	t.Run("burst", func(t *testing.T) { checkBurst(t, in, behindProxy) })
	t.Run("pay", func(t *testing.T) { checkPay(t, in) })
	t.Run("healthz", func(t *testing.T) { checkHealthz(t, in) })
	t.Run("metrics", func(t *testing.T) { checkMetrics(t, in) })
}

// checkMetrics runs after the other checks: /metrics is never limited and
// counts, in the Prometheus text format, the decisions and locks they made.
func checkMetrics(t *testing.T, in *instance) {
	for range apiLimit + 2 {
		r := in.do(t, http.MethodGet, "/metrics", "")
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assertNoQuota(t, r)
		assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/plain"), "Content-Type %q", r.header.Get("Content-Type"))
	}
	body := string(in.do(t, http.MethodGet, "/metrics", "").body)
	for _, series := range []string{
		`sluice_ratelimit_decisions_total{outcome="allowed",policy="api"} `,
		`sluice_ratelimit_decisions_total{outcome="denied",policy="api"} `,
		`sluice_ratelimit_decisions_total{outcome="denied",policy="burst"} `,
		`sluice_ratelimit_decisions_total{outcome="allowed",policy="login"} `,
		`sluice_lock_events_total{name="order",outcome="acquired"} `,
		`sluice_lock_events_total{name="order",outcome="conflict"} `,
		`sluice_locks_held{name="order"} 0`,
		`sluice_ratelimit_store_duration_seconds_bucket{`,
	} {
		assert.Contains(t, body, series)
	}
	for _, zero := range []string{
		`sluice_ratelimit_decisions_total{outcome="allowed",policy="api"} 0`,
		`sluice_lock_events_total{name="order",outcome="acquired"} 0`,
	} {
		assert.NotContains(t, body, zero+"\n")
	}
}

func checkHello(t *testing.T, in *instance, behindProxy bool, apiKey string) {
	c := newClient(behindProxy)
	for i := 1; i <= apiLimit; i++ {
		r := in.do(t, http.MethodGet, "/api/hello", "", c...)
		require.Equal(t, http.StatusOK, r.status, "request %d: %s", i, r.body)
		assertJSON(t, r, `{"message":"hello"}`)
		assertQuota(t, r, "api", apiLimit, apiWindow, apiLimit-i)
	}

	r := in.do(t, http.MethodGet, "/api/hello", "", c...)
	require.Equal(t, http.StatusTooManyRequests, r.status, "request %d: %s", apiLimit+1, r.body)
	ra := retryAfter(t, r, apiWindow)
	assertJSON(t, r, fmt.Sprintf(`{"error":"too many requests","policy":"api","retry_after":%d}`, ra))
	assertQuota(t, r, "api", apiLimit, apiWindow, 0)
	assert.Equal(t, fmt.Sprintf(`"api";r=0;t=%d`, ra), r.header.Get("RateLimit"), "a denial resets when Retry-After says")

	// A known API key is a client of its own, whatever address it comes
	// from; a key the client made up counts against its address.
	r = in.do(t, http.MethodGet, "/api/hello", "", slices.Concat(c, []string{"X-API-Key", apiKey})...)
	require.Equal(t, http.StatusOK, r.status, "with a known X-API-Key: %s", r.body)
	assertQuota(t, r, "api", apiLimit, apiWindow, apiLimit-1)
	r = in.do(t, http.MethodGet, "/api/hello", "", slices.Concat(c, []string{"X-API-Key", rand.Text()})...)
	assert.Equal(t, http.StatusTooManyRequests, r.status, "an unknown X-API-Key must not give a new quota: %s", r.body)

	if !behindProxy {
		// Without TRUSTED_PROXIES forwarding headers are the client's word only.
		for _, h := range [][]string{
			{"X-Forwarded-For", randomIP()},
			{"X-Forwarded-For", randomIP() + ", " + randomIP()},
			{"X-Real-IP", randomIP()},
		} {
			r = in.do(t, http.MethodGet, "/api/hello", "", h...)
			assert.Equal(t, http.StatusTooManyRequests, r.status, "%s: %s must not give a new quota", h[0], h[1])
		}
		return
	}
	// Behind a trusted proxy each forwarded address is a client; an address
	// the client put left of its own proves nothing.
	r = in.do(t, http.MethodGet, "/api/hello", "", newClient(true)...)
	require.Equal(t, http.StatusOK, r.status, "another client behind the proxy: %s", r.body)
	assertQuota(t, r, "api", apiLimit, apiWindow, apiLimit-1)
	r = in.do(t, http.MethodGet, "/api/hello", "", "X-Forwarded-For", randomIP()+", "+c[1])
	assert.Equal(t, http.StatusTooManyRequests, r.status, "a spoofed left-most X-Forwarded-For entry must not give a new quota")
}

func checkLogin(t *testing.T, in *instance, behindProxy bool) {
	c := newClient(behindProxy)
	for i := 1; i <= 2; i++ {
		r := in.do(t, http.MethodPost, "/login", correctLogin, c...)
		require.Equal(t, http.StatusOK, r.status, "login %d: %s", i, r.body)
		assertJSON(t, r, `{"message":"welcome","user":"ann"}`)
		// Counted on the way in, given back once it succeeded.
		assertQuota(t, r, "login", loginLimit, loginWindow, loginLimit-1)
	}

	// Three failures, a malformed body among them, use up the quota.
	for i, f := range []struct {
		body   string
		status int
	}{
		{`{"user":"ann","password":`, http.StatusBadRequest},
		{wrongLogin, http.StatusUnauthorized},
		{wrongLogin, http.StatusUnauthorized},
	} {
		r := in.do(t, http.MethodPost, "/login", f.body, c...)
		require.Equal(t, f.status, r.status, "failure %d (%s): %s", i+1, f.body, r.body)
		assertErrorJSON(t, r)
		assertQuota(t, r, "login", loginLimit, loginWindow, loginLimit-1-i)
	}

	r := in.do(t, http.MethodPost, "/login", correctLogin, c...)
	require.Equal(t, http.StatusTooManyRequests, r.status, "the 4th attempt, even with the right password: %s", r.body)
	ra := retryAfter(t, r, loginWindow)
	assertJSON(t, r, fmt.Sprintf(`{"error":"too many requests","policy":"login","retry_after":%d}`, ra))
	assertQuota(t, r, "login", loginLimit, loginWindow, 0)

	if behindProxy {
		r = in.do(t, http.MethodPost, "/login", correctLogin, newClient(true)...)
		assert.Equal(t, http.StatusOK, r.status, "another client is not locked out: %s", r.body)
	}
}

func checkPay(t *testing.T, in *instance) {
	id := newOrder()
	for _, work := range []string{"abc", "20000", "10001", "-1", "1.5", "1e3", "0x10", ""} {
		r := in.do(t, http.MethodPost, payPath(id, work), "")
		assert.Equal(t, http.StatusBadRequest, r.status, "work=%s: %s", work, r.body)
		assertErrorJSON(t, r)
	}

	// Two concurrent payments of one order: one waits for the other's lock.
	var bad, other, escaped response
	won, lost, during := hold(t, in, id, func() {
		bad = in.do(t, http.MethodPost, payPath(id, "abc"), "")
		other = in.do(t, http.MethodPost, payPath(newOrder(), "0"), "")
		// The same order with its first letter escaped ("e" is %65).
		escaped = in.do(t, http.MethodPost, payPath("%65"+id[1:], "0"), "")
	})
	assertPaid(t, won, id)
	assertLocked(t, lost)
	if during {
		assert.Equal(t, http.StatusBadRequest, bad.status,
			"a bad work= is refused before the guard, also while the order is locked: %s", bad.body)
		assert.Equal(t, http.StatusOK, other.status, "another order is not locked: %s", other.body)
		assert.Equal(t, http.StatusConflict, escaped.status,
			"the order's id written with an escape is the same order, locked: %s", escaped.body)
	} else {
		t.Log("the payment finished before the probes did; their answers prove nothing")
	}

	// Fences increase with every payment of the order.
	last := fence(t, won)
	for i := range 3 {
		r := in.do(t, http.MethodPost, payPath(id, "0"), "")
		assertPaid(t, r, id)
		f := fence(t, r)
		assert.Greater(t, f, last, "payment %d of order %s", i+2, id)
		last = f
	}

	// No work= is no work.
	r := in.do(t, http.MethodPost, "/orders/"+id+"/pay", "")
	assertPaid(t, r, id)
}

func checkHealthz(t *testing.T, in *instance) {
	for i := range 2 * apiLimit {
		r := in.do(t, http.MethodGet, "/healthz", "")
		require.Equal(t, http.StatusOK, r.status, "call %d: %s", i+1, r.body)
		assertNoQuota(t, r)
	}
}

// TestSharedRedis runs two instances of each example on one Redis (REDIS_ADDR)
// and checks that they share one quota and one set of locks.
func TestSharedRedis(t *testing.T) {
	redisURL := "redis://" + redistest.Addr(t) + "/0"
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			// The server outlives this test: a new API key is a new client,
			// and so is a new forwarded address.
			apiKey := rand.Text()
			env := []string{"REDIS_URL=" + redisURL, "API_KEYS=" + apiKey, "TRUSTED_PROXIES=127.0.0.1"}
			a := start(t, ex, env...)
			b := start(t, ex, env...)
			assert.Equal(t, "redis("+redisURL+")", a.store)

			// Invented keys from one client, sent to either instance: one
			// quota, that of the client's address.
			checkInventedKeys(t, newClient(true), a, b)

			key := []string{"X-API-Key", apiKey}
			for i := range apiLimit {
				in := []*instance{a, b}[i%2]
				r := in.do(t, http.MethodGet, "/api/hello", "", key...)
				require.Equal(t, http.StatusOK, r.status, "request %d: %s", i+1, r.body)
				assertQuota(t, r, "api", apiLimit, apiWindow, apiLimit-1-i)
			}
			for name, in := range map[string]*instance{"A": a, "B": b} {
				r := in.do(t, http.MethodGet, "/api/hello", "", key...)
				assert.Equal(t, http.StatusTooManyRequests, r.status, "instance %s after %d shared requests: %s", name, apiLimit, r.body)
			}

			id := newOrder()
			var onB response
			won, lost, during := hold(t, a, id, func() {
				onB = b.do(t, http.MethodPost, payPath(id, "0"), "")
			})
			assertPaid(t, won, id)
			assertLocked(t, lost)
			if during {
				assertLocked(t, onB)
			} else {
				t.Log("the payment on A finished before B answered; B's answer proves nothing")
			}

			// One fence counter for both instances.
			last := fence(t, won)
			for i, in := range []*instance{b, a, b} {
				r := in.do(t, http.MethodPost, payPath(id, "0"), "")
				assertPaid(t, r, id)
				f := fence(t, r)
				assert.Greater(t, f, last, "payment %d", i+2)
				last = f
			}
		})
	}
}

// TestInventedAPIKeys checks that X-API-Key is an identity only when it is one
// of API_KEYS: a client that sends a fresh random key with every request is
// counted by its address, and a known key has a quota of its own.
func TestInventedAPIKeys(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			t.Run("default-keys", func(t *testing.T) {
				in := start(t, ex)
				checkInventedKeys(t, nil, in)
				for _, key := range defaultAPIKeys {
					r := in.do(t, http.MethodGet, "/api/hello", "", "X-API-Key", key)
					require.Equal(t, http.StatusOK, r.status, "known key %s: %s", key, r.body)
					assertQuota(t, r, "api", apiLimit, apiWindow, apiLimit-1)
				}
				r := in.do(t, http.MethodGet, "/api/hello", "", "X-API-Key", strings.ToUpper(defaultAPIKeys[0]))
				assert.Equal(t, http.StatusTooManyRequests, r.status, "keys are compared exactly: %s", r.body)
			})
			t.Run("API_KEYS", func(t *testing.T) {
				key := rand.Text()
				in := start(t, ex, "API_KEYS="+key)
				checkInventedKeys(t, nil, in)
				r := in.do(t, http.MethodGet, "/api/hello", "", "X-API-Key", key)
				require.Equal(t, http.StatusOK, r.status, "known key: %s", r.body)
				assertQuota(t, r, "api", apiLimit, apiWindow, apiLimit-1)
				r = in.do(t, http.MethodGet, "/api/hello", "", "X-API-Key", defaultAPIKeys[0])
				assert.Equal(t, http.StatusTooManyRequests, r.status, "API_KEYS replaces the default keys: %s", r.body)
			})
			t.Run("no-keys", func(t *testing.T) {
				in := start(t, ex, "API_KEYS=")
				for i := 1; i <= apiLimit; i++ {
					r := in.do(t, http.MethodGet, "/api/hello", "", "X-API-Key", defaultAPIKeys[i%2])
					require.Equal(t, http.StatusOK, r.status, "request %d: %s", i, r.body)
					assertQuota(t, r, "api", apiLimit, apiWindow, apiLimit-i)
				}
				r := in.do(t, http.MethodGet, "/api/hello", "")
				assert.Equal(t, http.StatusTooManyRequests, r.status, "empty API_KEYS accepts no key: %s", r.body)
			})
		})
	}
}

// checkInventedKeys sends 20 requests from client (headers, as newClient
// returns them) to the instances in turn, each with a fresh random X-API-Key:
// the first 5 are served and the other 15 denied, as they would be without a
// key.
func checkInventedKeys(t *testing.T, client []string, instances ...*instance) {
	t.Helper()
	const n = 20
	for i := 1; i <= n; i++ {
		in := instances[i%len(instances)]
		r := in.do(t, http.MethodGet, "/api/hello", "", slices.Concat(client, []string{"X-API-Key", rand.Text()})...)
		if i <= apiLimit {
			require.Equal(t, http.StatusOK, r.status, "request %d of %d, each with a new key: %s", i, n, r.body)
			assertQuota(t, r, "api", apiLimit, apiWindow, apiLimit-i)
			continue
		}
		require.Equal(t, http.StatusTooManyRequests, r.status, "request %d of %d, each with a new key: %s", i, n, r.body)
		assertQuota(t, r, "api", apiLimit, apiWindow, 0)
	}
	r := instances[0].do(t, http.MethodGet, "/api/hello", "", client...)
	assert.Equal(t, http.StatusTooManyRequests, r.status, "the invented keys used up the client's own quota: %s", r.body)
}

// TestStoreFailure stops the Redis an example uses, for real: /api/hello fails
// open, /login and the payments fail closed, /healthz does not care; once
// Redis is back (empty, without the scripts) every route works again.
func TestStoreFailure(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			addr, stop := redistest.StartServer(t)
			in := start(t, ex, "REDIS_URL=redis://"+addr+"/0")
			r := in.do(t, http.MethodGet, "/api/hello", "")
			require.Equal(t, http.StatusOK, r.status, r.body)
			assertQuota(t, r, "api", apiLimit, apiWindow, apiLimit-1)

			stop()
			r = in.do(t, http.MethodGet, "/api/hello", "")
			assert.Equal(t, http.StatusOK, r.status, "fail-open: %s", r.body)
			assertNoQuota(t, r)
			r = in.do(t, http.MethodPost, "/login", correctLogin)
			assert.Equal(t, http.StatusServiceUnavailable, r.status, "fail-closed: %s", r.body)
			assertErrorJSON(t, r)
			r = in.do(t, http.MethodPost, payPath(newOrder(), "0"), "")
			assert.Equal(t, http.StatusServiceUnavailable, r.status, "fail-closed: %s", r.body)
			assertErrorJSON(t, r)
			r = in.do(t, http.MethodGet, "/healthz", "")
			assert.Equal(t, http.StatusOK, r.status)

			redistest.StartServerAt(t, addr)
			deadline := time.Now().Add(10 * time.Second)
			for {
				r = in.do(t, http.MethodGet, "/api/hello", "")
				if r.header.Get("X-RateLimit-Limit") != "" || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			require.Equal(t, http.StatusOK, r.status, r.body)
			assertQuota(t, r, "api", apiLimit, apiWindow, apiLimit-1)
			r = in.do(t, http.MethodPost, "/login", correctLogin)
			assert.Equal(t, http.StatusOK, r.status, r.body)
			id := newOrder()
			assertPaid(t, in.do(t, http.MethodPost, payPath(id, "0"), ""), id)
		})
	}
}

// TestStartupErrors checks that a bad configuration or an unreachable Redis
// ends the process at once with status 1 and a message naming the cause, and
// that a password in REDIS_URL is never printed.
func TestStartupErrors(t *testing.T) {
	closed := redistest.ClosedAddr(t)
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"bad TRUSTED_PROXIES", []string{"TRUSTED_PROXIES=10.0.0.0/8,10.0.0.0/33"}, `TRUSTED_PROXIES: limiter: invalid configuration: trusted proxy "10.0.0.0/33"`},
		{"bad REDIS_URL", []string{"REDIS_URL=http://" + closed + "/0"}, "REDIS_URL: "},
		{"unparsable REDIS_URL", []string{"REDIS_URL=redis://:s3cret@" + closed + "/%zz"}, "REDIS_URL: "},
		{"unreachable Redis", []string{"REDIS_URL=redis://:s3cret@" + closed + "/0"}, "cannot use redis(redis://:xxxxx@" + closed + "/0): "},
		{"unreachable Cluster", []string{"REDIS_CLUSTER=" + closed, "REDIS_URL=redis://" + closed + "/0"}, "cannot use redis-cluster(" + closed + "): "},
	}
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
					defer cancel()
					cmd := exec.CommandContext(ctx, binary(t, ex))
					cmd.Env = environ(tc.env...)
					var stdout, stderr bytes.Buffer
					cmd.Stdout, cmd.Stderr = &stdout, &stderr
					err := cmd.Run()
					var exit *exec.ExitError
					require.ErrorAs(t, err, &exit, "stderr:\n%s", &stderr)
					assert.Equal(t, 1, exit.ExitCode(), "stderr:\n%s", &stderr)
					assert.Empty(t, stdout.String(), "nothing on stdout: it never listened")
					assert.Contains(t, stderr.String(), "sluice example ("+ex.framework+"): "+tc.want)
					assert.NotContains(t, stderr.String(), "s3cret")
				})
			}
		})
	}
}

// TestConfigFile runs examples/config on a file of the operator's
// (SLUICE_CONFIG): its limits are served without a rebuild, and a file with
// a mistake stops the server at start with the mistake's line.
func TestConfigFile(t *testing.T) {
	ex := examples[len(examples)-1]
	require.Equal(t, "config", ex.name)
	dir := t.TempDir()

	t.Run("served", func(t *testing.T) {
		path := filepath.Join(dir, "limits.yaml")
		require.NoError(t, os.WriteFile(path, []byte("policies:\n  api: {rate: 2/1m}\nroutes:\n  - {route: GET /api/hello, limit: api}\n"), 0o600))
		in := start(t, ex, "SLUICE_CONFIG="+path)
		assert.Equal(t, http.StatusOK, in.do(t, "GET", "/api/hello", "").status)
		r := in.do(t, "GET", "/api/hello", "")
		assert.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, `"api";q=2;w=60`, r.header.Get("RateLimit-Policy"))
		assert.Equal(t, http.StatusTooManyRequests, in.do(t, "GET", "/api/hello", "").status)
		// Routes the file leaves out are not limited.
		r = in.do(t, "GET", "/api/burst", "")
		assert.Equal(t, http.StatusOK, r.status)
		assert.Empty(t, r.header.Get("RateLimit-Policy"))
	})
	t.Run("mistake", func(t *testing.T) {
		path := filepath.Join(dir, "bad.yaml")
		require.NoError(t, os.WriteFile(path, []byte("policies:\n  api:\n    rate: 5 per second\n"), 0o600))
		ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary(t, ex))
		cmd.Env = environ("SLUICE_CONFIG=" + path)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "stderr:\n%s", &stderr)
		assert.Equal(t, 1, exit.ExitCode())
		assert.Empty(t, stdout.String())
		assert.Contains(t, stderr.String(), "sluice example (config): "+path+`:3: policy "api": rate "5 per second"`)
	})
}

// TestGracefulShutdown sends SIGTERM while a payment is in flight: the payment
// completes and the process exits with status 0.
func TestGracefulShutdown(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			in := start(t, ex)
			id := newOrder()
			won, _, during := hold(t, in, id, func() { in.signal(t, syscall.SIGTERM) })
			require.True(t, during, "the payment had finished before SIGTERM was sent")
			assertPaid(t, won, id)
			in.wait(t)
		})
	}
}

// ---- processes ----

var moduleRoot = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not in a module")
	}
	return filepath.Dir(gomod), nil
})

// builds builds each example once per test binary, on first use.
var builds = func() map[string]func() (string, error) {
	m := make(map[string]func() (string, error), len(examples))
	for _, ex := range examples {
		m[ex.name] = sync.OnceValues(func() (string, error) {
			root, err := moduleRoot()
			if err != nil {
				return "", err
			}
			ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
			defer cancel()
			bin := filepath.Join(binDir, ex.name)
			cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ex.pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("go build %s: %w\n%s", ex.pkg, err, out)
			}
			return bin, nil
		})
	}
	return m
}()

func binary(t *testing.T, ex example) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the end-to-end test, which builds the examples")
	}
	bin, err := builds[ex.name]()
	require.NoError(t, err)
	return bin
}

// environ is the test's environment without the variables the examples read,
// with ADDR asking for a free loopback port, and with env added.
func environ(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "ADDR", "REDIS_URL", "REDIS_CLUSTER", "REDIS_SENTINELS", "REDIS_MASTER", "TRUSTED_PROXIES", "API_KEYS", "GIN_MODE", "SLUICE_CONFIG":
		default:
			out = append(out, kv)
		}
	}
	return append(append(out, "ADDR=127.0.0.1:0"), env...)
}

var startLine = regexp.MustCompile(`^sluice example \(([^)]+)\): store=(\S+) listening on (\S+)$`)

// instance is a running example process.
type instance struct {
	ex     example
	url    string // http://host:port
	store  string // as the start-up line names it
	cmd    *exec.Cmd
	stdout *output
	stderr *output
	exited chan struct{} // closed once the process has exited and err is set
	err    error         // from cmd.Wait

	mu        sync.Mutex
	signalled bool
	waited    bool
}

// start runs ex with env added to its environment and waits for its start-up
// line. The process is stopped with SIGTERM when the test ends, and must then
// exit with status 0 having printed nothing more on stdout.
func start(t *testing.T, ex example, env ...string) *instance {
	t.Helper()
	in := &instance{
		ex:     ex,
		cmd:    exec.Command(binary(t, ex)),
		stdout: newOutput(),
		stderr: newOutput(),
		exited: make(chan struct{}),
	}
	in.cmd.Env = environ(env...)
	in.cmd.Stdout, in.cmd.Stderr = in.stdout, in.stderr
	require.NoError(t, in.cmd.Start())
	go func() {
		in.err = in.cmd.Wait()
		close(in.exited)
	}()
	t.Cleanup(func() {
		in.stop(t)
		if t.Failed() {
			t.Logf("stderr of %s:\n%s", ex.name, in.stderr)
		}
	})

	select {
	case line := <-in.stdout.first:
		m := startLine.FindStringSubmatch(line)
		require.NotNil(t, m, "start-up line %q", line)
		require.Equal(t, ex.framework, m[1], "start-up line %q", line)
		in.store, in.url = m[2], "http://"+m[3]
	case <-in.exited:
		t.Fatalf("%s exited before listening (%v); stderr:\n%s", ex.name, in.err, in.stderr)
	case <-time.After(startTimeout):
		t.Fatalf("%s printed no start-up line within %v; stderr:\n%s", ex.name, startTimeout, in.stderr)
	}
	return in
}

func (in *instance) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	in.mu.Lock()
	in.signalled = true
	in.mu.Unlock()
	require.NoError(t, in.cmd.Process.Signal(sig))
}

// wait waits for the process to exit after a signal and checks that it exited
// cleanly, having printed only its start-up line on stdout.
func (in *instance) wait(t *testing.T) {
	t.Helper()
	in.mu.Lock()
	if in.waited {
		in.mu.Unlock()
		return
	}
	in.waited = true
	in.mu.Unlock()
	select {
	case <-in.exited:
	case <-time.After(stopTimeout):
		_ = in.cmd.Process.Kill()
		<-in.exited
		t.Errorf("%s did not exit within %v of SIGTERM", in.ex.name, stopTimeout)
		return
	}
	assert.NoError(t, in.err, "%s exit status after SIGTERM", in.ex.name)
	assert.Equal(t, 1, strings.Count(in.stdout.String(), "\n"), "stdout holds only the start-up line:\n%s", in.stdout)
}

func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.mu.Lock()
	signalled := in.signalled
	in.mu.Unlock()
	if !signalled {
		select {
		case <-in.exited:
			t.Errorf("%s exited before the test ended: %v", in.ex.name, in.err)
			return
		default:
		}
		in.signal(t, syscall.SIGTERM)
	}
	in.wait(t)
}

// output collects what a process writes and hands out its first line.
type output struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	first chan string // receives the first complete line
	sent  bool
}

func newOutput() *output { return &output{first: make(chan string, 1)} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if !o.sent {
		if line, _, ok := strings.Cut(o.buf.String(), "\n"); ok {
			o.first <- line
			o.sent = true
		}
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// ---- requests ----

type response struct {
	status int
	header http.Header
	body   []byte
}

var httpClient = &http.Client{Timeout: requestTimeout}

// request sends a request with a JSON body (if any) and headers given as
// name, value pairs.
func (in *instance) request(ctx context.Context, method, path, body string, headers ...string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, in.url+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (in *instance) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	r, err := in.request(t.Context(), method, path, body, headers...)
	require.NoError(t, err, "%s %s on %s", method, path, in.ex.name)
	return r
}

// hold sends two payments of order id with work=1500 to in at once. The one
// that does not get the lock is answered first, with 409: then, while the
// other still holds the lock, hold calls probe. It returns the paid answer,
// the conflict, and whether the payment was still running when probe
// returned (if not, what probe saw proves nothing about the lock).
func hold(t *testing.T, in *instance, id string, probe func()) (won, lost response, during bool) {
	t.Helper()
	type result struct {
		r   response
		err error
	}
	answers := make(chan result, 2)
	for range 2 {
		go func() {
			r, err := in.request(t.Context(), http.MethodPost, payPath(id, holdWork), "")
			answers <- result{r, err}
		}()
	}
	next := func() result {
		select {
		case a := <-answers:
			require.NoError(t, a.err, "payment of order %s", id)
			return a
		case <-time.After(2 * requestTimeout):
			t.Fatalf("no answer to a payment of order %s", id)
			return result{}
		}
	}
	first := next()
	require.Equal(t, http.StatusConflict, first.r.status,
		"the first answer to two concurrent payments of one order is a conflict: %s", first.r.body)
	probe()
	select {
	case a := <-answers:
		require.NoError(t, a.err, "payment of order %s", id)
		return a.r, first.r, false
	default:
	}
	return next().r, first.r, true
}

// ---- checks ----

func assertJSON(t *testing.T, r response, want string) {
	t.Helper()
	assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "application/json"),
		"Content-Type %q", r.header.Get("Content-Type"))
	assert.JSONEq(t, want, string(r.body))
}

// assertErrorJSON checks for a JSON body {"error":"<something>",...}.
func assertErrorJSON(t *testing.T, r response) {
	t.Helper()
	assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "application/json"),
		"Content-Type %q", r.header.Get("Content-Type"))
	assert.Regexp(t, `^\{"error":"[^"]+"`, string(r.body))
}

// checkDaily: 1000 per day per client IP, counted by the sliding-window
// counter, whose reset is when the remaining quota next grows: at most two
// windows ahead, and for a client's first hit the end of the next window,
// a multiple of the day in Unix seconds.
func checkDaily(t *testing.T, in *instance, behindProxy bool) {
	c := newClient(behindProxy)
	for i := 1; i <= 3; i++ {
		r := in.do(t, http.MethodGet, "/api/daily", "", c...)
		require.Equal(t, http.StatusOK, r.status, "request %d: %s", i, r.body)
		assert.Equal(t, "1000", r.header.Get("X-RateLimit-Limit"))
		assert.Equal(t, strconv.Itoa(1000-i), r.header.Get("X-RateLimit-Remaining"))
		assert.Equal(t, `"daily";q=1000;w=86400`, r.header.Get("RateLimit-Policy"))
		m := regexp.MustCompile(`^"daily";r=(\d+);t=(\d+)$`).FindStringSubmatch(r.header.Get("RateLimit"))
		if assert.NotNil(t, m, "RateLimit: %q", r.header.Get("RateLimit")) {
			assert.Equal(t, strconv.Itoa(1000-i), m[1])
			reset, _ := strconv.Atoi(m[2])
			assert.True(t, reset >= 1 && reset <= 2*86400, "RateLimit t=%d", reset)
		}
		if i == 1 {
			at, err := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
			if assert.NoError(t, err) {
				assert.Zero(t, at%86400, "X-RateLimit-Reset %d is not the end of a day window", at)
			}
		}
	}
}

// checkBurst: "burst" (3 per 10 s) and "hourly" (5 per hour) decided
// together: the requests "burst" denies leave "hourly" uncounted.
func checkBurst(t *testing.T, in *instance, behindProxy bool) {
	c := newClient(behindProxy)
	rl := regexp.MustCompile(`^"burst";r=(\d+);t=(\d+), "hourly";r=(\d+);t=(\d+)$`)
	for i := 1; i <= 3; i++ {
		r := in.do(t, http.MethodGet, "/api/burst", "", c...)
		require.Equal(t, http.StatusOK, r.status, "request %d: %s", i, r.body)
		assert.Equal(t, `"burst";q=3;w=10, "hourly";q=5;w=3600`, r.header.Get("RateLimit-Policy"))
		m := rl.FindStringSubmatch(r.header.Get("RateLimit"))
		if assert.NotNil(t, m, "RateLimit: %q", r.header.Get("RateLimit")) {
			assert.Equal(t, []string{strconv.Itoa(3 - i), strconv.Itoa(5 - i)}, []string{m[1], m[3]})
		}
		// The legacy fields show the most restrictive policy: burst.
		assert.Equal(t, "3", r.header.Get("X-RateLimit-Limit"))
	}
	for i := 4; i <= 6; i++ {
		r := in.do(t, http.MethodGet, "/api/burst", "", c...)
		require.Equal(t, http.StatusTooManyRequests, r.status, "request %d: %s", i, r.body)
		assert.Contains(t, string(r.body), `"policy":"burst"`)
		retryAfter(t, r, 10)
		m := rl.FindStringSubmatch(r.header.Get("RateLimit"))
		if assert.NotNil(t, m, "RateLimit: %q", r.header.Get("RateLimit")) {
			assert.Equal(t, "0", m[1], "burst remaining")
			assert.Equal(t, "2", m[3], "a request burst denied was counted by hourly")
		}
	}
}

// assertQuota checks both families of rate-limit headers.
func assertQuota(t *testing.T, r response, policy string, limit, window, remaining int) {
	t.Helper()
	h := r.header
	assert.Equal(t, strconv.Itoa(limit), h.Get("X-RateLimit-Limit"))
	assert.Equal(t, strconv.Itoa(remaining), h.Get("X-RateLimit-Remaining"))
	assert.Equal(t, fmt.Sprintf(`"%s";q=%d;w=%d`, policy, limit, window), h.Get("RateLimit-Policy"))
	m := regexp.MustCompile(`^"` + policy + `";r=(\d+);t=(\d+)$`).FindStringSubmatch(h.Get("RateLimit"))
	if assert.NotNil(t, m, "RateLimit: %q", h.Get("RateLimit")) {
		assert.Equal(t, strconv.Itoa(remaining), m[1], "RateLimit remaining")
		reset, _ := strconv.Atoi(m[2])
		assert.True(t, reset >= 1 && reset <= window, "RateLimit t=%d not in 1..%d", reset, window)
	}
	// Unix seconds, rounded up: from about now to a window ahead.
	reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if assert.NoError(t, err, "X-RateLimit-Reset: %q", h.Get("X-RateLimit-Reset")) {
		now := time.Now().Unix()
		assert.True(t, reset >= now-1 && reset <= now+int64(window)+1, "X-RateLimit-Reset %d, now %d", reset, now)
	}
}

func assertNoQuota(t *testing.T, r response) {
	t.Helper()
	for k := range r.header {
		k = strings.ToLower(k)
		assert.False(t, strings.HasPrefix(k, "x-ratelimit") || strings.HasPrefix(k, "ratelimit") || k == "retry-after",
			"unexpected header %s", k)
	}
}

// retryAfter checks Retry-After is a whole number of seconds in 1..most.
func retryAfter(t *testing.T, r response, most int) int {
	t.Helper()
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After: %q", r.header.Get("Retry-After"))
	assert.True(t, ra >= 1 && ra <= most, "Retry-After %d not in 1..%d", ra, most)
	return ra
}

func assertPaid(t *testing.T, r response, id string) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "payment of order %s: %s", id, r.body)
	assert.Regexp(t, fmt.Sprintf(`^\{"order":%q,"paid":true,"fence":[1-9][0-9]*\}\s*$`, id), string(r.body))
	assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "application/json"))
}

func assertLocked(t *testing.T, r response) {
	t.Helper()
	require.Equal(t, http.StatusConflict, r.status, r.body)
	ra := retryAfter(t, r, lockTTL)
	assertJSON(t, r, fmt.Sprintf(`{"error":"resource is locked","retry_after":%d}`, ra))
}

func fence(t *testing.T, r response) int64 {
	t.Helper()
	m := regexp.MustCompile(`"fence":(\d+)`).FindSubmatch(r.body)
	require.NotNil(t, m, "no fence in %s", r.body)
	f, err := strconv.ParseInt(string(m[1]), 10, 64)
	require.NoError(t, err)
	return f
}

// ---- identities ----

// newClient returns the headers of a client no earlier request came from:
// behind a trusted proxy, a new X-Forwarded-For address; otherwise none (the
// client is the test's own address).
func newClient(behindProxy bool) []string {
	if !behindProxy {
		return nil
	}
	return []string{"X-Forwarded-For", randomIP()}
}

// randomIP returns an IPv6 address in a random /64 of the documentation
// prefix 2001:db8::/32: IPv6 clients are counted per /64.
func randomIP() string {
	return fmt.Sprintf("2001:db8:%x:%x::1", mrand.N(0x10000), mrand.N(0x10000))
}

func newOrder() string { return "e2e-" + rand.Text()[:12] }

func payPath(id, work string) string { return "/orders/" + id + "/pay?work=" + work }
