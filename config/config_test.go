package config_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// testFile declares the example servers' routes, and a route group.
const testFile = `
policies:
  api:
    rate: 5/10s
    key: {header: X-API-Key, known: api-keys}
  daily:
    rate: 1000/24h
    algorithm: sliding-counter
  burst: {rate: 3/10s}
  hourly: {rate: 5/h}
  login:
    rate: 3/60s
    count: failures
    fail: closed
  reports:
    rate: 2/1m
    key: {param: id}
guards:
  order:
    key: {param: id}
    ttl: 5s
routes:
  - {route: GET /api/hello, limit: api}
  - {route: GET /api/daily, limit: daily}
  - {route: GET /api/burst, limit: [burst, hourly]}
  - {route: POST /login, limit: login}
  - {route: "POST /orders/{id}/pay", guard: order}
  - {route: "GET /users/{id}/report", limit: reports}
  - {route: "GET /users/{id}/report.csv", limit: reports}
`

// app is the handler the file's routes guard: every route answers 200,
// except a login with the wrong password (401) and a payment, which holds
// its lock until release is closed.
type app struct {
	mux     *http.ServeMux
	release chan struct{}
	paying  chan int64 // the fence of each payment that started
}

func newApp() *app {
	a := &app{mux: http.NewServeMux(), release: make(chan struct{}), paying: make(chan int64, 8)}
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
	for _, p := range []string{"GET /healthz", "GET /api/hello", "GET /api/daily", "GET /api/burst", "GET /users/{id}/report", "GET /users/{id}/report.csv", "GET /login"} {
		a.mux.HandleFunc(p, ok)
	}
	a.mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("password") != "correct" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	a.mux.HandleFunc("POST /orders/{id}/pay", func(w http.ResponseWriter, r *http.Request) {
		lock, ok := lockguard.FromContext(r.Context())
		if !ok {
			http.Error(w, "no lock", http.StatusInternalServerError)
			return
		}
		a.paying <- lock.Fence()
		<-a.release
		w.WriteHeader(http.StatusOK)
	})
	return a
}

func build(t *testing.T, st store.Store, src string, opts ...config.Option) *config.Routes {
	t.Helper()
	f, err := config.Parse("sluice.yaml", []byte(src))
	require.NoError(t, err)
	rt, err := f.Build(st, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

func do(t *testing.T, h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "192.0.2.1:1234"
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func statuses(t *testing.T, h http.Handler, n int, method, target string, header ...string) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		out[i] = do(t, h, method, target, header...).Code
	}
	return out
}

func repeat(code, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = code
	}
	return out
}

// eachStore runs fn over memstore, miniredis, the Redis at REDIS_ADDR and
// the Cluster at REDIS_CLUSTER_ADDRS (those skip when unset).
func eachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("memstore", func(t *testing.T) { fn(t, newMemstore(t)) })
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		st, err := redisstore.New(tg.Client, redisstore.WithPrefix(tg.Untagged("")))
		require.NoError(t, err)
		fn(t, st)
	})
}

// newMemstore returns a memstore closed when the test ends.
func newMemstore(t *testing.T) store.Store {
	t.Helper()
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// okMux serves 200 on each pattern.
func okMux(patterns ...string) *http.ServeMux {
	mux := http.NewServeMux()
	for _, p := range patterns {
		mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	return mux
}

// quiet keeps the policies' expected warnings out of the test output.
var quiet = config.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// routeName is the pattern of r, or "-" for no route.
func routeName(r *config.Route) string {
	if r == nil {
		return "-"
	}
	return r.Pattern
}

func TestHandlerServesTheFile(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		isKey := func(k string) bool { return k == "demo-key-1" }
		rt := build(t, st, testFile, config.WithKnown("api-keys", isKey))
		a := newApp()
		h := rt.Handler(a.mux)

		t.Run("policy with headers and 429", func(t *testing.T) {
			assert.Equal(t, repeat(200, 5), statuses(t, h, 5, "GET", "/api/hello"))
			w := do(t, h, "GET", "/api/hello")
			assert.Equal(t, http.StatusTooManyRequests, w.Code)
			assert.Equal(t, "5", w.Header().Get("X-RateLimit-Limit"))
			assert.Equal(t, `"api";q=5;w=10`, w.Header().Get("RateLimit-Policy"))
			assert.NotEmpty(t, w.Header().Get("Retry-After"))
			var body map[string]any
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
			assert.Equal(t, "api", body["policy"])
			// A known key is its own client; an invented one counts against the address.
			assert.Equal(t, http.StatusOK, do(t, h, "GET", "/api/hello", "X-API-Key", "demo-key-1").Code)
			assert.Equal(t, http.StatusTooManyRequests, do(t, h, "GET", "/api/hello", "X-API-Key", "made-up").Code)
		})
		t.Run("routes not in the file pass untouched", func(t *testing.T) {
			w := do(t, h, "GET", "/healthz")
			assert.Equal(t, http.StatusOK, w.Code)
			assert.Empty(t, w.Header().Get("X-RateLimit-Limit"))
			assert.Equal(t, http.StatusNotFound, do(t, h, "GET", "/nowhere").Code)
			// The login policy is for POST only.
			assert.Empty(t, do(t, h, "GET", "/login").Header().Get("X-RateLimit-Limit"))
		})
		t.Run("algorithm", func(t *testing.T) {
			w := do(t, h, "GET", "/api/daily")
			assert.Equal(t, http.StatusOK, w.Code)
			assert.True(t, strings.HasPrefix(w.Header().Get("RateLimit"), `"daily";r=999;t=`), w.Header().Get("RateLimit"))
		})
		t.Run("stack decided together", func(t *testing.T) {
			assert.Equal(t, []int{200, 200, 200, 429}, statuses(t, h, 4, "GET", "/api/burst"))
			w := do(t, h, "GET", "/api/burst")
			assert.Contains(t, w.Header().Get("RateLimit"), `"hourly";r=2`)
		})
		t.Run("count failures only", func(t *testing.T) {
			assert.Equal(t, repeat(200, 5), statuses(t, h, 5, "POST", "/login?password=correct"))
			assert.Equal(t, []int{401, 401, 401, 429, 429}, statuses(t, h, 5, "POST", "/login?password=wrong"))
		})
		t.Run("route group shares a policy, keyed by a parameter", func(t *testing.T) {
			assert.Equal(t, 200, do(t, h, "GET", "/users/7/report").Code)
			assert.Equal(t, 200, do(t, h, "GET", "/users/7/report.csv").Code)
			assert.Equal(t, 429, do(t, h, "GET", "/users/7/report").Code)
			assert.Equal(t, 200, do(t, h, "GET", "/users/8/report.csv").Code)
		})
		t.Run("guard", func(t *testing.T) {
			var wg sync.WaitGroup
			wg.Add(1)
			var first int
			go func() {
				defer wg.Done()
				first = do(t, h, "POST", "/orders/42/pay").Code
			}()
			fence := <-a.paying
			assert.Positive(t, fence)
			w := do(t, h, "POST", "/orders/42/pay")
			assert.Equal(t, http.StatusConflict, w.Code)
			assert.NotEmpty(t, w.Header().Get("Retry-After"))
			// Another order is another lock.
			go func() { <-a.paying }()
			close(a.release)
			assert.Equal(t, http.StatusOK, do(t, h, "POST", "/orders/43/pay").Code)
			wg.Wait()
			assert.Equal(t, http.StatusOK, first)
			// Released: the same order can be paid again.
			go func() { <-a.paying }()
			assert.Equal(t, http.StatusOK, do(t, h, "POST", "/orders/42/pay").Code)
		})
	})
}

func TestOperatorResetsAClient(t *testing.T) {
	st := newMemstore(t)
	rt := build(t, st, "policies: {api: {rate: 1/1h}}\nroutes: [{route: GET /x, limit: api}]\n")
	h := rt.Handler(okMux("GET /x"))
	assert.Equal(t, []int{200, 429}, statuses(t, h, 2, "GET", "/x"))
	p := rt.Policy("api")
	require.NotNil(t, p)
	require.NoError(t, p.Limiter().Reset(context.Background(), "192.0.2.1"))
	assert.Equal(t, 200, do(t, h, "GET", "/x").Code)
	assert.Nil(t, rt.Policy("nope"))
}

func TestMatch(t *testing.T) {
	st := newMemstore(t)
	rt := build(t, st, `
policies:
  a: {rate: 1/s}
  b: {rate: 1/s}
  c: {rate: 1/s}
guards:
  g: {key: {param: id}, ttl: 1s}
routes:
  - route: GET /orders/{id}
    limit: a
  - route: /orders/{id}
    guard: g
  - {route: GET /files/*path, limit: b}
  - route: POST /users/:id/items/{item}
    limit: c
`)
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/orders/:id", "GET /orders/{id}"},
		{"HEAD", "/orders/:oid", "GET /orders/{id}"},
		{"DELETE", "/orders/:id", "/orders/{id}"},
		{"GET", "/orders/{id}", "GET /orders/{id}"},
		{"GET", "/orders", "-"},
		{"GET", "/files/*", "GET /files/*path"},
		{"GET", "/files/*filepath", "GET /files/*path"},
		{"POST", "/users/:uid/items/:i", "POST /users/:id/items/{item}"},
		{"GET", "/users/:uid/items/:i", "-"},
		{"GET", "", "-"},
	} {
		assert.Equal(t, tc.want, routeName(rt.Match(tc.method, tc.path)), "%s %s", tc.method, tc.path)
	}
	r := rt.Match("GET", "/orders/:id")
	assert.Equal(t, "a", r.Policy.Name())
	assert.Nil(t, r.Guard)
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in     string
		limit  int
		window time.Duration
	}{
		{"5/10s", 5, 10 * time.Second},
		{"1000/24h", 1000, 24 * time.Hour},
		{"3/1m30s", 3, 90 * time.Second},
		{" 60 / m ", 60, time.Minute},
		{"10/s", 10, time.Second},
		{"7/1d", 7, 24 * time.Hour},
		{"1000/d", 1000, 24 * time.Hour},
		{"2/500ms", 2, 500 * time.Millisecond},
	} {
		limit, window, err := config.ParseRate(tc.in)
		if assert.NoError(t, err, tc.in) {
			assert.Equal(t, tc.limit, limit, tc.in)
			assert.Equal(t, tc.window, window, tc.in)
		}
	}
	for _, bad := range []string{"", "5", "5/", "/10s", "0/10s", "-1/10s", "x/10s", "5/10", "5/ten", "5/-1s", "5/0s", "5/0d", "1.5/s"} {
		_, _, err := config.ParseRate(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// TestParseErrors checks that each mistake is reported with the line of
// the value at fault.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line      int
		want      string
	}{
		{"syntax", "policies:\n  a: [\n", 0, "did not find expected node content"},
		{"empty", "", 1, "the file is empty"},
		{"not a mapping", "- a\n", 1, "must be a mapping"},
		{"unknown top field", "policy: {}\n", 1, `unknown field "policy"`},
		{"unknown policy field", "policies:\n  a:\n    rate: 1/s\n    limit: 3\n", 4, `policy "a": unknown field "limit"`},
		{"missing rate", "policies:\n  a: {cost: 1}\n", 2, `policy "a": rate is required`},
		{"bad rate", "policies:\n  a:\n    rate: 5 per second\n", 3, `rate "5 per second"`},
		{"bad count", "policies:\n  a: {rate: 1/s,\n      count: some}\n", 3, `count "some"`},
		{"bad fail", "policies:\n  a: {rate: 1/s, fail: maybe}\n", 2, `fail "maybe"`},
		{"bad algorithm", "policies:\n  a: {rate: 1/s, algorithm: leaky}\n", 2, `algorithm "leaky"`},
		{"burst without gcra", "policies:\n  a: {rate: 1/s, burst: 5}\n", 2, "burst is for algorithm gcra only"},
		{"limit too large for the log", "policies:\n  a: {rate: 5000/s}\n", 2, "limit"},
		{"cost above limit", "policies:\n  a: {rate: 2/s,\n   cost: 3}\n", 3, "cost 3 is more than the limit 2"},
		{"cost above burst", "policies:\n  a: {rate: 10/h, algorithm: gcra, burst: 3,\n   cost: 5}\n", 3, "cost 5 is more than the burst 3"},
		{"cost above the log's bound", "policies:\n  a: {rate: 1000/h,\n   cost: 300}\n", 3, "cost 300 is more than 256"},
		{"name not ASCII", "policies:\n  \"caf\\u00e9\": {rate: 5/10s}\n", 2, "1 to 64 bytes of printable ASCII"},
		{"empty name", "policies:\n  \"\": {rate: 5/10s}\n", 2, "1 to 64 bytes of printable ASCII"},
		{"unchecked header", "policies:\n  a:\n    rate: 1/s\n    key: {header: X-API-Key}\n", 4, "known: <validator>"},
		{"two key kinds", "policies:\n  a:\n    rate: 1/s\n    key: {param: id, context: user}\n", 4, "exactly one of header, param or context"},
		{"bad key", "policies:\n  a:\n    rate: 1/s\n    key: user\n", 4, `key "user"`},
		{"param fallback", "policies:\n  a:\n    rate: 1/s\n    key: {param: id, fallback: ip}\n", 4, "fallback is for header and context keys"},
		{"guard without ttl", "guards:\n  g: {key: {param: id}}\n", 2, `guard "g": ttl is required`},
		{"guard bad ttl", "guards:\n  g:\n    key: {param: id}\n    ttl: soon\n", 4, `ttl "soon"`},
		{"guard without key", "guards:\n  g: {ttl: 1s}\n", 2, `guard "g": key is required`},
		{"route without pattern", "routes:\n  - {limit: a}\n", 2, "route: <pattern>"},
		{"route bad path", "policies: {a: {rate: 1/s}}\nroutes:\n  - {route: GET orders, limit: a}\n", 3, "the path must start with /"},
		{"route bad method", "policies: {a: {rate: 1/s}}\nroutes:\n  - {route: get /x, limit: a}\n", 3, `method "get"`},
		{"route bad wildcard", "policies: {a: {rate: 1/s}}\nroutes:\n  - {route: 'GET /x/{a', limit: a}\n", 3, `route "GET /x/{a"`},
		{"route nothing", "routes:\n  - {route: GET /x}\n", 2, "give it a limit, a guard or both"},
		{"unknown policy", "policies: {a: {rate: 1/s}}\nroutes:\n  - {route: GET /x, limit: [a, b]}\n", 3, `no policy "b" (declared: a)`},
		{"unknown guard", "routes:\n  - {route: GET /x, guard: g}\n", 2, `no guard "g" (none is declared)`},
		{"unknown policy on its line", "policies: {a: {rate: 1/s}}\nroutes:\n  - route: GET /x\n    limit:\n      - a\n      - b\n", 6, `no policy "b"`},
		{"unknown guard on its line", "routes:\n  - route: GET /x\n\n    guard: g\n", 4, `no guard "g"`},
		{"route twice", "policies: {a: {rate: 1/s}}\nroutes:\n  - {route: 'GET /x/{id}', limit: a}\n  - {route: GET /x/:n, limit: a}\n", 4, "the same route as line 3"},
		{"routes conflict", "policies: {a: {rate: 1/s}}\nroutes:\n  - {route: 'GET /x/{id}', limit: a}\n  - {route: 'GET /{y}/z', limit: a}\n", 4, "conflicts"},
		{"policy twice in a stack", "policies: {a: {rate: 1/s}}\nroutes:\n  - {route: GET /x, limit: [a, a]}\n", 3, `policy "a" named twice`},
		{"bad proxy", "trusted_proxies: [10.0.0.0/8, proxy.local, unix]\n", 1, `"proxy.local" is neither`},
		{"rate overflows", "policies:\n  a: {rate: 5/213504d}\n", 2, "is not a whole number of days"},
		{"second document", "policies:\n  a: {rate: 1/s}\n---\npolicies:\n  b: {rate: nonsense}\n", 3, "a second YAML document"},
		{"tab", "policies:\n\ta: {rate: 1/s}\n", 2, "found character that cannot start any token"},
		{"param missing from the pattern", "policies: {a: {rate: 1/s, key: {param: id}}}\nroutes:\n  - {route: 'POST /x/{oid}', limit: a}\n", 3, `policy "a" counts by parameter "id", which the pattern does not have`},
		{"guard param missing from the pattern", "guards: {g: {key: {param: id}, ttl: 1s}}\nroutes:\n  - {route: POST /x/:oid, guard: g}\n", 3, `guard "g" locks by parameter "id"`},
		{"guard ttl too short", "guards:\n  g:\n    key: {param: id}\n    ttl: 1ns\n", 4, "ttl must be at least 1ms"},
		{"null key", "policies:\n  a:\n    rate: 1/s\n    key: ~\n", 4, "key must be a value"},
		{"bad header name", "policies:\n  a:\n    rate: 1/s\n    key: {header: X API Key, authenticated: true}\n", 4, `"X API Key" is not a header name`},
		{"duplicate policy", "policies:\n  a: {rate: 1/s}\n  a: {rate: 2/s}\n", 3, `"a" is declared twice (first at line 2)`},
		{"duplicate field", "policies:\n  a:\n    rate: 1/s\n    rate: 2/s\n", 4, "rate given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("sluice.yaml", []byte(tc.src))
			require.Error(t, err)
			assert.ErrorIs(t, err, config.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tc.want)
			if tc.line > 0 {
				var ce *config.Error
				require.ErrorAs(t, err, &ce)
				require.Len(t, ce.Problems, 1, "%v", err)
				assert.Equal(t, tc.line, ce.Problems[0].Line, "%v", err)
				assert.True(t, strings.HasPrefix(err.Error(), "sluice.yaml:"), err.Error())
			}
		})
	}
}

func TestParseReportsEveryMistake(t *testing.T) {
	_, err := config.Parse("limits.yaml", []byte(`
policies:
  a: {rate: 5/x}
  b: {rate: 1/s, fail: sometimes}
routes:
  - {route: GET /a, limit: c}
`))
	var ce *config.Error
	require.ErrorAs(t, err, &ce)
	lines := []int{}
	for _, p := range ce.Problems {
		lines = append(lines, p.Line)
	}
	assert.Equal(t, []int{3, 4, 6}, lines, "%v", err)
	assert.Equal(t, 3, strings.Count(err.Error(), "limits.yaml:"))
}

func TestBuildErrors(t *testing.T) {
	st := newMemstore(t)
	f, err := config.Parse("sluice.yaml", []byte("policies:\n  api:\n    rate: 1/s\n    key: {header: X-API-Key, known: api-keys}\n"))
	require.NoError(t, err)

	_, err = f.Build(st)
	assert.ErrorIs(t, err, config.ErrInvalidConfig)
	assert.Contains(t, err.Error(), `sluice.yaml:2: policy "api"`)
	assert.Contains(t, err.Error(), `no validator "api-keys"`)

	_, err = f.Build(nil)
	assert.ErrorIs(t, err, config.ErrInvalidConfig)

	// The limiter's rules for names are checked by Parse, with the name's
	// line.
	_, err = config.Parse("sluice.yaml", []byte("policies:\n  "+strings.Repeat("n", 65)+": {rate: 1/s}\n"))
	assert.ErrorIs(t, err, config.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "sluice.yaml:2: policy")

	// A failed Build released the names it took: the next one succeeds.
	rt, err := f.Build(st, config.WithKnown("api-keys", func(string) bool { return true }))
	require.NoError(t, err)
	// A second Build over the same store would count under the same names.
	_, err = f.Build(st, config.WithKnown("api-keys", func(string) bool { return true }))
	assert.Error(t, err)
	require.NoError(t, rt.Close())
}

func TestTrustedProxies(t *testing.T) {
	st := newMemstore(t)
	rt := build(t, st, "trusted_proxies: [192.0.2.0/24]\npolicies: {a: {rate: 1/h}}\nroutes: [{route: GET /x, limit: a}]\n")
	h := rt.Handler(okMux("GET /x"))
	// Behind the trusted proxy, each forwarded client has its own quota.
	assert.Equal(t, []int{200, 429}, statuses(t, h, 2, "GET", "/x", "X-Forwarded-For", "198.51.100.1"))
	assert.Equal(t, 200, do(t, h, "GET", "/x", "X-Forwarded-For", "198.51.100.2").Code)
}

func TestContextKey(t *testing.T) {
	type userKey struct{}
	st := newMemstore(t)
	rt := build(t, st, "policies: {a: {rate: 1/h, key: {context: user, fallback: none}}}\nroutes: [{route: GET /x, limit: a}]\n",
		config.WithContextKey("user", userKey{}), quiet)
	h := rt.Handler(okMux("GET /x"))
	as := func(user string) int {
		r := httptest.NewRequest("GET", "/x", nil)
		if user != "" {
			r = r.WithContext(context.WithValue(r.Context(), userKey{}, user))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	assert.Equal(t, 200, as("ann"))
	assert.Equal(t, 429, as("ann"))
	assert.Equal(t, 200, as("bob"))
	assert.Equal(t, http.StatusBadRequest, as(""), "no user and no fallback")
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	require.NoError(t, os.WriteFile(path, []byte("policies:\n  a: {rate: 1/s}\n  b: {rate: nope}\n"), 0o600))
	_, err := config.Load(path)
	assert.ErrorIs(t, err, config.ErrInvalidConfig)
	assert.Contains(t, err.Error(), path+":3:")

	_, err = config.Load(filepath.Join(dir, "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("#", config.MaxFileSize+1)), 0o600))
	_, err = config.Load(path)
	assert.ErrorIs(t, err, config.ErrInvalidConfig)
	assert.False(t, errors.Is(err, os.ErrNotExist))
}

func TestConflictNamesNoSource(t *testing.T) {
	_, err := config.Parse("sluice.yaml", []byte("policies: {a: {rate: 1/s}}\nroutes:\n  - {route: 'GET /x/{id}', limit: a}\n  - {route: 'GET /{y}/z', limit: a}\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "conflicts")
	assert.NotContains(t, err.Error(), "registered at")
	assert.NotContains(t, err.Error(), ".go:")
}

// Anchors, aliases and merge keys share settings between entries.
func TestAliasesAndMergeKeys(t *testing.T) {
	st := newMemstore(t)
	rt := build(t, st, `
policies:
  base: &base {rate: 2/1h, fail: closed}
  other:
    <<: *base
    rate: 1/1h
  copy: *base
routes:
  - {route: GET /a, limit: base}
  - {route: GET /b, limit: other}
  - {route: GET /c, limit: copy}
`)
	h := rt.Handler(okMux("GET /a", "GET /b", "GET /c"))
	assert.Equal(t, []int{200, 200, 429}, statuses(t, h, 3, "GET", "/a"))
	assert.Equal(t, []int{200, 429}, statuses(t, h, 2, "GET", "/b"), "the merged mapping's own rate wins")
	assert.Equal(t, []int{200, 200, 429}, statuses(t, h, 3, "GET", "/c"))
}

// Handler leaves to next whatever is not one of the file's routes,
// including the redirects and 405s of its own pattern matching.
func TestHandlerPassesTheRest(t *testing.T) {
	st := newMemstore(t)
	rt := build(t, st, `
policies:
  files: {rate: 1/1h}
  all: {rate: 100/1h}
routes:
  - {route: GET /files/, limit: files}
  - {route: "POST /{rest...}", limit: all}
`)
	mux := okMux("GET /files/{name}", "/")
	mux.HandleFunc("GET /files", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := rt.Handler(mux)

	w := do(t, h, "GET", "/files")
	assert.Equal(t, http.StatusTeapot, w.Code, "the file's /files/ does not redirect /files")
	assert.Empty(t, w.Header().Get("RateLimit"))
	assert.Equal(t, []int{200, 429}, statuses(t, h, 2, "GET", "/files/a.txt"))
	// A catch-all route of the file.
	w = do(t, h, "POST", "/anything/at/all")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"all";r=99;t=3600`, w.Header().Get("RateLimit"))
	assert.Empty(t, do(t, h, "PUT", "/anything").Header().Get("RateLimit"))
}

// Handler gives the route's policy the path values a ServeMux would:
// segments unescaped, and the rest of the path for a final wildcard.
func TestHandlerPathValues(t *testing.T) {
	rt := build(t, newMemstore(t), `
policies:
  one: {rate: 1/1h, key: {param: id}}
  rest: {rate: 1/1h, key: {param: path}}
routes:
  - {route: "GET /users/{id}/report", limit: one}
  - {route: "GET /files/{path...}", limit: rest}
`)
	var seen []string
	mux := http.NewServeMux()
	for _, p := range []string{"GET /users/{id}/report", "GET /files/{path...}"} {
		mux.HandleFunc(p, func(_ http.ResponseWriter, r *http.Request) {
			seen = append(seen, r.PathValue("id")+r.PathValue("path"))
		})
	}
	h := rt.Handler(mux)
	assert.Equal(t, 200, do(t, h, "GET", "/users/a%2Fb/report").Code)
	assert.Equal(t, 429, do(t, h, "GET", "/users/a%2Fb/report").Code)
	assert.Equal(t, 200, do(t, h, "GET", "/users/a%20b/report").Code, "another id")
	assert.Equal(t, 200, do(t, h, "GET", "/files/a/b%20c").Code)
	assert.Equal(t, 429, do(t, h, "GET", "/files/a/b%20c").Code)
	assert.Equal(t, 200, do(t, h, "GET", "/files/a/b").Code, "another path")
	assert.Equal(t, []string{"a/b", "a b", "a/b c", "a/b"}, seen, "the mux's own values reach the handler")
}

// A guard keyed by a header locks nothing for a request without it: that
// request is refused, not locked by its address.
func TestGuardKeyHasNoFallback(t *testing.T) {
	st := newMemstore(t)
	rt := build(t, st, "guards: {g: {key: {header: X-Account, authenticated: true}, ttl: 1s}}\nroutes: [{route: POST /x, guard: g}]\n",
		quiet)
	h := rt.Handler(okMux("POST /x"))
	assert.Equal(t, http.StatusOK, do(t, h, "POST", "/x", "X-Account", "a1").Code)
	assert.Equal(t, http.StatusBadRequest, do(t, h, "POST", "/x").Code)
}

func TestMatchPrefixAndExact(t *testing.T) {
	st := newMemstore(t)
	rt := build(t, st, `
policies:
  a: {rate: 1/s}
  b: {rate: 1/s}
  c: {rate: 1/s}
  d: {rate: 1/s}
routes:
  - {route: GET /static/, limit: a}
  - {route: GET /static/img/, limit: b}
  - {route: "GET /{$}", limit: c}
  - {route: M-SEARCH /ssdp, limit: d}
`)
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/static/:name", "GET /static/"},
		{"GET", "/static/*", "GET /static/"},
		{"GET", "/static/img/*", "GET /static/img/"},
		{"GET", "/static", "-"},
		{"GET", "/", "GET /{$}"},
		{"GET", "/other", "-"},
		{"M-SEARCH", "/ssdp", "M-SEARCH /ssdp"},
	} {
		assert.Equal(t, tc.want, routeName(rt.Match(tc.method, tc.path)), "%s %s", tc.method, tc.path)
	}
}

// TestDocumentedFilesParse keeps the YAML the docs and the example show
// valid.
func TestDocumentedFilesParse(t *testing.T) {
	yamlBlock := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	for _, name := range []string{"../docs/config.md", "../README.md", "../examples/config/sluice.yaml"} {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		blocks := [][]byte{data}
		if strings.HasSuffix(name, ".md") {
			blocks = nil
			for _, m := range yamlBlock.FindAllSubmatch(data, -1) {
				blocks = append(blocks, m[1])
			}
			require.NotEmpty(t, blocks, name)
		}
		for i, b := range blocks {
			_, err := config.Parse(name, b)
			assert.NoError(t, err, "%s, YAML block %d", name, i+1)
		}
	}
}
