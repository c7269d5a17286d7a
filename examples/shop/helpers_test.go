package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
)

// backend is one Redis the shop's tests run against.
type backend struct {
	name   string
	client redis.UniversalClient
	mr     *miniredis.Miniredis // nil for a real server
	token  string               // unique to the test; in every key it writes
}

// eachBackend runs fn as subtests against a fresh miniredis, the server at
// REDIS_ADDR and the cluster at REDIS_CLUSTER_ADDRS; the real ones skip when
// unset and have every key holding the test's token deleted at the end.
func eachBackend(t *testing.T, fn func(t *testing.T, b *backend)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		fn(t, &backend{name: "miniredis", client: c, mr: mr, token: redistest.Token()})
	})
	t.Run("redis", func(t *testing.T) {
		b := &backend{name: "redis", client: redistest.Client(t), token: redistest.Token()}
		redistest.CleanupKeys(t, b.client, "*"+b.token+"*")
		fn(t, b)
	})
	t.Run("cluster", func(t *testing.T) {
		b := &backend{name: "cluster", client: redistest.ClusterClient(t), token: redistest.Token()}
		redistest.CleanupKeys(t, b.client, "*"+b.token+"*")
		fn(t, b)
	})
}

// testConfig is defaultConfig with keys unique to b's test.
func testConfig(b *backend) config {
	cfg := defaultConfig()
	cfg.tag = "shoptest-" + b.token
	cfg.storePrefix = "shoptest:" + b.token + ":"
	cfg.logger = nil // discard
	return cfg
}

// startShop builds a shop on b from cfg, preloads its scripts, seeds the
// stock and serves it over HTTP until the test ends.
func startShop(t *testing.T, b *backend, cfg config) (*shop, *httptest.Server) {
	t.Helper()
	s, err := newShop(b.client, cfg)
	require.NoError(t, err)
	t.Cleanup(s.close)
	ctx := context.Background()
	require.NoError(t, s.preload(ctx))
	require.NoError(t, s.seed(ctx))
	srv := httptest.NewServer(s.routes())
	t.Cleanup(srv.Close)
	return s, srv
}

// reply is an HTTP response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v.
func (r reply) json(t *testing.T, v any) {
	t.Helper()
	require.Equal(t, "application/json", r.header.Get("Content-Type"), "body %s", r.body)
	require.NoError(t, json.Unmarshal(r.body, v), "body %s", r.body)
}

// errorMsg returns the "error" member of a JSON error body.
func (r reply) errorMsg(t *testing.T) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	r.json(t, &e)
	return e.Error
}

// testClient bounds every request, so that a broken lock or a hung handler
// fails the test instead of hanging it.
var testClient = &http.Client{Timeout: 30 * time.Second}

// do sends a request with body (none if empty) and, when set, header
// X-User: user.
func do(t *testing.T, method, url, user, body string) reply {
	t.Helper()
	r, err := doErr(context.Background(), method, url, user, body)
	require.NoError(t, err)
	return r
}

// doErr is do without the test, for goroutines.
func doErr(ctx context.Context, method, url, user, body string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return reply{}, err
	}
	if user != "" {
		req.Header.Set("X-User", user)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := testClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// checkout posts items to cart as user.
func checkout(t *testing.T, srv *httptest.Server, cart, user, items string) reply {
	t.Helper()
	return do(t, http.MethodPost, srv.URL+"/carts/"+cart+"/checkout", user, `{"items":`+items+`}`)
}

// stock returns GET /stock.
func stock(t *testing.T, srv *httptest.Server) map[string]int64 {
	t.Helper()
	r := do(t, http.MethodGet, srv.URL+"/stock", "", "")
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	var s struct {
		Stock map[string]int64 `json:"stock"`
	}
	r.json(t, &s)
	return s.Stock
}

// fakeClock returns a clock that starts at start and moves one millisecond on
// every reading.
func fakeClock(start time.Time) func() time.Time {
	var mu sync.Mutex
	now := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
}
