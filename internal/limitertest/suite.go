package limitertest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store/redisstore"
)

// Route is one route of the server under test.
type Route struct {
	// Method is the HTTP method the route answers.
	Method string
	// Path is the route's path in http.ServeMux syntax, with parameters in
	// braces ("/items/{id}"); ColonPath turns it into echo's and gin's.
	Path string
	// Policies limit the route, stacked: the first is the outermost.
	Policies []*limiter.Policy
	// Param, when not empty, names the route parameter the policies count
	// requests by. Echo and gin mounts pass WithKey(ParamKey(Param)) to
	// RateLimit; a net/http mount uses RateLimit alone, the suite's policies
	// reading the parameter with limiter.PathValueKey.
	Param string
	// Handler answers the route's requests.
	Handler http.Handler
}

// Mount builds the server under test: an http.Handler that serves every
// route through the framework's rate-limit middleware.
type Mount func(routes []Route) http.Handler

// ColonPath turns a path with {name} parameters into one with :name
// parameters, for echo and gin.
func ColonPath(path string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(path, '{')
		j := strings.IndexByte(path, '}')
		if i < 0 || j < i {
			b.WriteString(path)
			return b.String()
		}
		b.WriteString(path[:i])
		b.WriteByte(':')
		b.WriteString(path[i+1 : j])
		path = path[j+1:]
	}
}

// Report is the JSON body the suite's handler answers with.
type Report struct {
	// Route names the route that answered.
	Route string `json:"route"`
	// Decisions are what limiter.FromContext returned to the handler.
	Decisions []ReportDecision `json:"decisions"`
}

// ReportDecision is one limiter.Decision as the handler saw it.
type ReportDecision struct {
	// Policy, Limit, Cost, Allowed and Remaining are the Decision's fields.
	Policy    string `json:"policy"`
	Limit     int    `json:"limit"`
	Cost      int    `json:"cost"`
	Allowed   bool   `json:"allowed"`
	Remaining int    `json:"remaining"`
	// Found reports that limiter.DecisionFor found the decision by name.
	Found bool `json:"found"`
}

// start is the suite clock's initial time: a whole second, so that the
// expected X-RateLimit-Reset values are exact.
var start = time.Unix(1_900_000_000, 0)

// Run runs the suite against mount, once per backend, and the hung-Redis
// test once.
func Run(t *testing.T, mount Mount, backends ...Backend) {
	cases := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"allowed-headers", testAllowedHeaders},
		{"denied-429", testDenied},
		{"per-route-independence", testPerRoute},
		{"stacked-policies", testStacked},
		{"skip-successful-login", testSkipSuccessful},
		{"skip-failed", testSkipFailed},
		{"skip-predicate", testSkipPredicate},
		{"cost", testCost},
		{"header-families", testHeaderFamilies},
		{"decision-in-context", testDecisionInContext},
		{"spoofed-forwarded-for-ignored", testSpoofedXFF},
		{"trusted-proxies", testTrustedProxies},
		{"ipv6-grouped-by-64", testIPv6Grouping},
		{"api-key-32k", testLongAPIKey},
		{"key-error-400", testKeyError},
		{"route-param-key", testParamKey},
		{"concurrent-40-admit-5", testConcurrent},
		{"store-down", testStoreDown},
		{"half-closed-client-not-served", testHalfClosedClient},
	}
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					clk := &clock{now: start}
					inst := b.New(t, clk.Now)
					c.fn(t, &env{mount: mount, inst: inst, clock: clk})
				})
			}
		})
	}
	t.Run("hung-redis", func(t *testing.T) { testHungRedis(t, mount) })
}

// clock is the suite's controllable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one test's server side.
type env struct {
	mount Mount
	inst  Instance
	clock *clock

	mu    sync.Mutex
	errs  []string // policies whose store failures were reported
	calls atomic.Int64
}

// policy returns a policy over the test's store, with the suite's clock and
// error recorder before opts.
func (e *env) policy(t *testing.T, name string, limit int, window time.Duration, opts ...limiter.Option) *limiter.Policy {
	t.Helper()
	// A deadline far above the default, so that a loaded machine does not
	// turn a slow answer into a fail-open; the hung-Redis test sets its own.
	base := []limiter.Option{limiter.WithClock(e.clock.Now), limiter.WithErrorHandler(e.recordError), limiter.WithTimeout(10 * time.Second)}
	p, err := limiter.NewPolicy(name, limit, window, e.inst.Store, append(base, opts...)...)
	if err != nil {
		t.Fatalf("limiter.NewPolicy(%q): %v", name, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func (e *env) recordError(_ context.Context, policy string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.errs = append(e.errs, policy)
	}
}

func (e *env) reported() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.errs...)
}

// serve starts a server for routes and returns its URL.
func (e *env) serve(t *testing.T, routes ...Route) string {
	t.Helper()
	srv := httptest.NewServer(e.mount(routes))
	t.Cleanup(srv.Close)
	return srv.URL
}

// route returns a GET route at path named by path whose handler is the
// suite's reporting handler.
func (e *env) route(path string, policies ...*limiter.Policy) Route {
	return Route{Method: http.MethodGet, Path: path, Policies: policies, Handler: e.handler(path)}
}

// handler reports the decisions it finds in its context. The query
// parameter status sets the status it answers with (default 200).
func (e *env) handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.calls.Add(1)
		rep := Report{Route: name, Decisions: []ReportDecision{}}
		for _, d := range limiter.FromContext(r.Context()) {
			_, found := limiter.DecisionFor(r.Context(), d.Policy)
			rep.Decisions = append(rep.Decisions, ReportDecision{
				Policy: d.Policy, Limit: d.Limit, Cost: d.Cost, Allowed: d.Allowed,
				Remaining: d.Remaining, Found: found,
			})
		}
		status := http.StatusOK
		if s := r.URL.Query().Get("status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(rep)
	})
}

// response is what the client received.
type response struct {
	status int
	header http.Header
	body   string
	err    error
}

// get sends GET url with the header lines hdr ("Name: value").
func get(ctx context.Context, url string, hdr ...string) response {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return response{err: err}
	}
	for _, h := range hdr {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(name, strings.TrimSpace(value))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(body), err: err}
}

func getT(t *testing.T, url string, hdr ...string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := get(ctx, url, hdr...)
	if r.err != nil {
		t.Fatalf("GET %s: %v", url, r.err)
	}
	return r
}

// quota lists the expected rate-limit headers; an empty field must be
// absent.
type quota struct {
	limit, remaining, reset string // X-RateLimit-*
	policy, rateLimit       string // RateLimit-Policy, RateLimit
	retryAfter              string
}

var quotaHeaders = []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit", "Retry-After"}

func (q quota) values() []string {
	return []string{q.limit, q.remaining, q.reset, q.policy, q.rateLimit, q.retryAfter}
}

// check compares r's rate-limit headers with q, each exactly one line.
func (q quota) check(t *testing.T, what string, r response) {
	t.Helper()
	for i, name := range quotaHeaders {
		want := q.values()[i]
		got := r.header.Values(name)
		switch {
		case want == "" && len(got) != 0:
			t.Errorf("%s: %s = %q, want absent", what, name, got)
		case want != "" && (len(got) != 1 || got[0] != want):
			t.Errorf("%s: %s = %q, want %q", what, name, got, want)
		}
	}
}

// unix returns the suite's start plus sec seconds as Unix seconds.
func unix(sec int64) string { return strconv.FormatInt(start.Unix()+sec, 10) }

func expectStatus(t *testing.T, what string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d (body %q)", what, r.status, status, r.body)
	}
}

// expectJSON checks a JSON error response: status, Content-Type and the
// exact body.
func expectJSON(t *testing.T, what string, r response, status int, body string) {
	t.Helper()
	expectStatus(t, what, r, status)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q, want nosniff", what, got)
	}
	if got := strings.TrimSpace(r.body); got != body {
		t.Errorf("%s: body %q, want %q", what, got, body)
	}
}

func report(t *testing.T, what string, r response) Report {
	t.Helper()
	var rep Report
	if err := json.Unmarshal([]byte(r.body), &rep); err != nil {
		t.Fatalf("%s: body %q is not the handler's report: %v", what, r.body, err)
	}
	return rep
}

func (e *env) expectCalls(t *testing.T, n int64) {
	t.Helper()
	if got := e.calls.Load(); got != n {
		t.Errorf("handler ran %d times, want %d", got, n)
	}
}

func testAllowedHeaders(t *testing.T, e *env) {
	url := e.serve(t, e.route("/api", e.policy(t, "api", 5, 10*time.Second)))
	r := getT(t, url+"/api")
	expectStatus(t, "first request", r, http.StatusOK)
	quota{"5", "4", unix(10), `"api";q=5;w=10`, `"api";r=4;t=10`, ""}.check(t, "first request", r)
	if rep := report(t, "first request", r); rep.Route != "/api" {
		t.Errorf("handler's body not passed through: %+v", rep)
	}

	e.clock.Advance(3 * time.Second)
	r = getT(t, url+"/api")
	expectStatus(t, "second request", r, http.StatusOK)
	// The first hit leaves the window at start+10s: 7 s from now.
	quota{"5", "3", unix(10), `"api";q=5;w=10`, `"api";r=3;t=7`, ""}.check(t, "second request", r)
}

func testDenied(t *testing.T, e *env) {
	url := e.serve(t, e.route("/api", e.policy(t, "api", 5, 10*time.Second)))
	for i := 0; i < 5; i++ {
		expectStatus(t, "request within limit", getT(t, url+"/api"), http.StatusOK)
	}
	e.clock.Advance(2500 * time.Millisecond)
	r := getT(t, url+"/api")
	// 7.5 s until the first hit leaves: Retry-After rounds up to 8.
	expectJSON(t, "sixth request", r, http.StatusTooManyRequests,
		`{"error":"too many requests","policy":"api","retry_after":8}`)
	quota{"5", "0", unix(10), `"api";q=5;w=10`, `"api";r=0;t=8`, "8"}.check(t, "sixth request", r)
	e.expectCalls(t, 5)

	e.clock.Advance(7500 * time.Millisecond)
	r = getT(t, url+"/api")
	expectStatus(t, "after the window", r, http.StatusOK)
	quota{"5", "4", unix(20), `"api";q=5;w=10`, `"api";r=4;t=10`, ""}.check(t, "after the window", r)
}

func testPerRoute(t *testing.T, e *env) {
	url := e.serve(t,
		e.route("/a", e.policy(t, "a", 2, time.Minute)),
		e.route("/b", e.policy(t, "b", 3, time.Minute)),
	)
	expectStatus(t, "a 1", getT(t, url+"/a"), http.StatusOK)
	expectStatus(t, "a 2", getT(t, url+"/a"), http.StatusOK)
	expectStatus(t, "a 3", getT(t, url+"/a"), http.StatusTooManyRequests)
	r := getT(t, url+"/b")
	expectStatus(t, "b after a is exhausted", r, http.StatusOK)
	quota{"3", "2", unix(60), `"b";q=3;w=60`, `"b";r=2;t=60`, ""}.check(t, "b", r)
	if r := getT(t, url+"/a"); !strings.Contains(r.body, `"policy":"a"`) {
		t.Errorf("a still denied by its own policy: body %q", r.body)
	}
}

func testStacked(t *testing.T, e *env) {
	burst := e.policy(t, "burst", 2, 5*time.Second)
	daily := e.policy(t, "daily", 3, 24*time.Hour)
	url := e.serve(t, e.route("/s", burst, daily))
	both := `"burst";q=2;w=5, "daily";q=3;w=86400`

	r := getT(t, url+"/s")
	expectStatus(t, "request 1", r, http.StatusOK)
	quota{"2", "1", unix(5), both, `"burst";r=1;t=5, "daily";r=2;t=86400`, ""}.check(t, "request 1", r)
	rep := report(t, "request 1", r)
	if len(rep.Decisions) != 2 || rep.Decisions[0].Policy != "burst" || rep.Decisions[1].Policy != "daily" {
		t.Errorf("handler saw decisions %+v, want burst then daily", rep.Decisions)
	}

	r = getT(t, url+"/s")
	quota{"2", "0", unix(5), both, `"burst";r=0;t=5, "daily";r=1;t=86400`, ""}.check(t, "request 2", r)

	// The burst limit denies; the daily limiter never runs.
	r = getT(t, url+"/s")
	expectJSON(t, "request 3", r, http.StatusTooManyRequests,
		`{"error":"too many requests","policy":"burst","retry_after":5}`)
	quota{"2", "0", unix(5), `"burst";q=2;w=5`, `"burst";r=0;t=5`, "5"}.check(t, "request 3", r)

	e.clock.Advance(5 * time.Second)
	r = getT(t, url+"/s")
	expectStatus(t, "request 4", r, http.StatusOK)
	// The daily quota has less left: it owns the X-RateLimit-* fields.
	quota{"3", "0", unix(86400), both, `"burst";r=1;t=5, "daily";r=0;t=86395`, ""}.check(t, "request 4", r)

	r = getT(t, url+"/s")
	expectJSON(t, "request 5", r, http.StatusTooManyRequests,
		`{"error":"too many requests","policy":"daily","retry_after":86395}`)
	quota{"3", "0", unix(86400), both, `"burst";r=0;t=5, "daily";r=0;t=86395`, "86395"}.check(t, "request 5", r)
	e.expectCalls(t, 3)
}

func testSkipSuccessful(t *testing.T, e *env) {
	url := e.serve(t, e.route("/login", e.policy(t, "login", 3, time.Minute, limiter.WithSkipSuccessful())))
	for i := 0; i < 5; i++ {
		r := getT(t, url+"/login?status=200")
		expectStatus(t, "successful login", r, http.StatusOK)
		// Counted on the way in, undone after: the quota never shrinks.
		quota{"3", "2", unix(60), `"login";q=3;w=60`, `"login";r=2;t=60`, ""}.check(t, "successful login", r)
	}
	for i, left := range []string{"2", "1", "0"} {
		r := getT(t, url+"/login?status=401")
		expectStatus(t, "failed login "+strconv.Itoa(i+1), r, http.StatusUnauthorized)
		if got := r.header.Get("X-RateLimit-Remaining"); got != left {
			t.Errorf("failed login %d: X-RateLimit-Remaining %q, want %q", i+1, got, left)
		}
	}
	r := getT(t, url+"/login?status=200")
	expectJSON(t, "login after three failures", r, http.StatusTooManyRequests,
		`{"error":"too many requests","policy":"login","retry_after":60}`)
	e.expectCalls(t, 8)

	e.clock.Advance(time.Minute)
	expectStatus(t, "login a window later", getT(t, url+"/login?status=200"), http.StatusOK)
}

func testSkipFailed(t *testing.T, e *env) {
	url := e.serve(t, e.route("/f", e.policy(t, "f", 2, time.Minute, limiter.WithSkipFailed())))
	for i := 0; i < 4; i++ {
		r := getT(t, url+"/f?status=500")
		expectStatus(t, "failed request", r, http.StatusInternalServerError)
		if got := r.header.Get("X-RateLimit-Remaining"); got != "1" {
			t.Errorf("failed request %d: X-RateLimit-Remaining %q, want 1 (not counted)", i+1, got)
		}
	}
	expectStatus(t, "success 1", getT(t, url+"/f"), http.StatusOK)
	expectStatus(t, "success 2", getT(t, url+"/f"), http.StatusOK)
	expectStatus(t, "success 3", getT(t, url+"/f"), http.StatusTooManyRequests)
}

func testSkipPredicate(t *testing.T, e *env) {
	p := e.policy(t, "sk", 1, time.Minute, limiter.WithSkip(func(r *http.Request) bool {
		return r.Header.Get("X-Internal") == "1"
	}))
	url := e.serve(t, e.route("/sk", p))
	for i := 0; i < 3; i++ {
		r := getT(t, url+"/sk", "X-Internal: 1")
		expectStatus(t, "skipped request", r, http.StatusOK)
		quota{}.check(t, "skipped request", r)
		if rep := report(t, "skipped", r); len(rep.Decisions) != 0 {
			t.Errorf("skipped request carries decisions %+v", rep.Decisions)
		}
	}
	r := getT(t, url+"/sk")
	expectStatus(t, "counted request", r, http.StatusOK)
	quota{"1", "0", unix(60), `"sk";q=1;w=60`, `"sk";r=0;t=60`, ""}.check(t, "counted request", r)
	expectStatus(t, "second counted request", getT(t, url+"/sk"), http.StatusTooManyRequests)
}

func testCost(t *testing.T, e *env) {
	fixed := e.policy(t, "fixed", 5, 10*time.Second, limiter.WithCost(2))
	byQuery := e.policy(t, "byquery", 5, 10*time.Second, limiter.WithCostFunc(func(r *http.Request) (int, error) {
		return strconv.Atoi(r.URL.Query().Get("cost"))
	}))
	url := e.serve(t, e.route("/fixed", fixed), e.route("/q", byQuery))

	if got := getT(t, url+"/fixed").header.Get("X-RateLimit-Remaining"); got != "3" {
		t.Errorf("cost 2: remaining %q, want 3", got)
	}
	if got := getT(t, url+"/fixed").header.Get("X-RateLimit-Remaining"); got != "1" {
		t.Errorf("cost 2 again: remaining %q, want 1", got)
	}
	r := getT(t, url+"/fixed")
	expectJSON(t, "cost 2 with 1 left", r, http.StatusTooManyRequests,
		`{"error":"too many requests","policy":"fixed","retry_after":10}`)

	r = getT(t, url+"/q?cost=4")
	expectStatus(t, "cost 4", r, http.StatusOK)
	if got := report(t, "cost 4", r).Decisions; len(got) != 1 || got[0].Cost != 4 || got[0].Remaining != 1 {
		t.Errorf("cost 4: decisions %+v, want cost 4, remaining 1", got)
	}
	for _, bad := range []string{"6", "0", "-1", "abc"} {
		r := getT(t, url+"/q?cost="+bad)
		expectJSON(t, "cost "+bad, r, http.StatusBadRequest, `{"error":"invalid request cost"}`)
		quota{}.check(t, "cost "+bad, r)
	}
	e.expectCalls(t, 3)
}

func testHeaderFamilies(t *testing.T, e *env) {
	url := e.serve(t,
		e.route("/legacy", e.policy(t, "legacy", 1, time.Minute, limiter.WithHeaders(limiter.LegacyHeaders))),
		e.route("/ietf", e.policy(t, "ietf", 1, time.Minute, limiter.WithHeaders(limiter.IETFHeaders))),
		e.route("/none", e.policy(t, "none", 1, time.Minute, limiter.WithHeaders(limiter.NoHeaders))),
	)
	quota{"1", "0", unix(60), "", "", ""}.check(t, "legacy only", getT(t, url+"/legacy"))
	quota{"1", "0", unix(60), "", "", "60"}.check(t, "legacy only, denied", getT(t, url+"/legacy"))
	quota{"", "", "", `"ietf";q=1;w=60`, `"ietf";r=0;t=60`, ""}.check(t, "IETF only", getT(t, url+"/ietf"))
	quota{"", "", "", `"ietf";q=1;w=60`, `"ietf";r=0;t=60`, "60"}.check(t, "IETF only, denied", getT(t, url+"/ietf"))
	quota{}.check(t, "no headers", getT(t, url+"/none"))
	r := getT(t, url+"/none")
	expectStatus(t, "no headers, denied", r, http.StatusTooManyRequests)
	quota{retryAfter: "60"}.check(t, "no headers, denied", r)
}

func testDecisionInContext(t *testing.T, e *env) {
	url := e.serve(t, e.route("/api", e.policy(t, "api", 5, 10*time.Second)))
	getT(t, url+"/api")
	rep := report(t, "second request", getT(t, url+"/api"))
	want := []ReportDecision{{Policy: "api", Limit: 5, Cost: 1, Allowed: true, Remaining: 3, Found: true}}
	if len(rep.Decisions) != 1 || rep.Decisions[0] != want[0] {
		t.Errorf("handler saw %+v, want %+v", rep.Decisions, want)
	}
}

func testSpoofedXFF(t *testing.T, e *env) {
	url := e.serve(t, e.route("/x", e.policy(t, "x", 2, time.Minute)))
	for i, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		r := getT(t, url+"/x", "X-Forwarded-For: "+ip, "X-Real-IP: "+ip)
		expectStatus(t, "request "+strconv.Itoa(i+1), r, http.StatusOK)
	}
	r := getT(t, url+"/x", "X-Forwarded-For: 203.0.113.3", "X-Real-IP: 203.0.113.3")
	expectStatus(t, "third request claiming a third address", r, http.StatusTooManyRequests)
}

// trusting returns a policy that believes X-Forwarded-For from the loopback
// peer and from 10.0.0.0/8.
func (e *env) trusting(t *testing.T, name string, limit int) *limiter.Policy {
	t.Helper()
	kf, err := limiter.TrustedProxyIP("127.0.0.0/8", "::1", "10.0.0.0/8")
	if err != nil {
		t.Fatalf("TrustedProxyIP: %v", err)
	}
	return e.policy(t, name, limit, time.Minute, limiter.WithKey(kf))
}

func testTrustedProxies(t *testing.T, e *env) {
	url := e.serve(t, e.route("/p", e.trusting(t, "p", 1)))
	steps := []struct {
		what   string
		hdr    []string
		status int
	}{
		{"client A", []string{"X-Forwarded-For: 203.0.113.1"}, http.StatusOK},
		{"client B is counted apart", []string{"X-Forwarded-For: 203.0.113.2"}, http.StatusOK},
		{"client A again", []string{"X-Forwarded-For: 203.0.113.1"}, http.StatusTooManyRequests},
		{"right-most untrusted is the client", []string{"X-Forwarded-For: 198.51.100.1, 203.0.113.5, 10.0.0.7"}, http.StatusOK},
		{"spoofed left part changes nothing", []string{"X-Forwarded-For: 198.51.100.2, 203.0.113.5, 10.1.2.3"}, http.StatusTooManyRequests},
		{"several header lines read in order", []string{"X-Forwarded-For: 198.51.100.3", "X-Forwarded-For: 203.0.113.5, 10.0.0.1"}, http.StatusTooManyRequests},
		{"IPv4-mapped IPv6 is IPv4", []string{"X-Forwarded-For: ::ffff:203.0.113.2"}, http.StatusTooManyRequests},
		{"X-Real-IP from a trusted peer", []string{"X-Real-IP: 203.0.113.9"}, http.StatusOK},
		{"X-Real-IP again", []string{"X-Real-IP: 203.0.113.9"}, http.StatusTooManyRequests},
		{"malformed entry: the hop that sent it is the client", []string{"X-Forwarded-For: bogus, 10.9.9.9"}, http.StatusOK},
		{"malformed entry again, other junk", []string{"X-Forwarded-For: junk, 10.9.9.9"}, http.StatusTooManyRequests},
	}
	for _, s := range steps {
		expectStatus(t, s.what, getT(t, url+"/p", s.hdr...), s.status)
	}
}

func testIPv6Grouping(t *testing.T, e *env) {
	url := e.serve(t, e.route("/v6", e.trusting(t, "v6", 1)))
	expectStatus(t, "2001:db8:1:2::1", getT(t, url+"/v6", "X-Forwarded-For: 2001:db8:1:2::1"), http.StatusOK)
	expectStatus(t, "same /64", getT(t, url+"/v6", "X-Forwarded-For: 2001:db8:1:2:ffff:ee:dd:cc"), http.StatusTooManyRequests)
	expectStatus(t, "other /64", getT(t, url+"/v6", "X-Forwarded-For: 2001:db8:1:3::1"), http.StatusOK)
}

func testLongAPIKey(t *testing.T, e *env) {
	url := e.serve(t, e.route("/k", e.policy(t, "k", 1, time.Minute, limiter.WithKey(limiter.HeaderKey("X-API-Key", limiter.ClientIP)))))
	keyA := strings.Repeat("a", 32<<10)
	keyB := strings.Repeat("a", 32<<10-1) + "b"
	expectStatus(t, "32 KB key A", getT(t, url+"/k", "X-API-Key: "+keyA), http.StatusOK)
	expectStatus(t, "32 KB key A again", getT(t, url+"/k", "X-API-Key: "+keyA), http.StatusTooManyRequests)
	expectStatus(t, "32 KB key B", getT(t, url+"/k", "X-API-Key: "+keyB), http.StatusOK)
	expectStatus(t, "no key: the client IP", getT(t, url+"/k"), http.StatusOK)
	expectStatus(t, "no key again", getT(t, url+"/k"), http.StatusTooManyRequests)
	// An API key that spells the client's address is not that address.
	expectStatus(t, "key 127.0.0.1", getT(t, url+"/k", "X-API-Key: 127.0.0.1"), http.StatusOK)
}

func testKeyError(t *testing.T, e *env) {
	url := e.serve(t, e.route("/k", e.policy(t, "k", 5, time.Minute, limiter.WithKey(limiter.HeaderKey("X-API-Key", nil)))))
	r := getT(t, url+"/k")
	expectJSON(t, "no API key", r, http.StatusBadRequest, `{"error":"cannot identify client"}`)
	quota{}.check(t, "no API key", r)
	e.expectCalls(t, 0)
	expectStatus(t, "with API key", getT(t, url+"/k", "X-API-Key: k1"), http.StatusOK)
}

func testParamKey(t *testing.T, e *env) {
	p := e.policy(t, "items", 1, time.Minute, limiter.WithKey(limiter.PathValueKey("id")))
	rt := Route{Method: http.MethodGet, Path: "/items/{id}", Policies: []*limiter.Policy{p}, Param: "id", Handler: e.handler("items")}
	url := e.serve(t, rt)
	expectStatus(t, "item 1", getT(t, url+"/items/1"), http.StatusOK)
	expectStatus(t, "item 1 again", getT(t, url+"/items/1"), http.StatusTooManyRequests)
	expectStatus(t, "item 2", getT(t, url+"/items/2"), http.StatusOK)
}

func testConcurrent(t *testing.T, e *env) {
	url := e.serve(t, e.route("/c", e.policy(t, "c", 5, time.Minute)))
	const n = 40
	var wg sync.WaitGroup
	codes := make([]int, n)
	errs := make([]error, n)
	gate := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := get(ctx, url+"/c")
			codes[i], errs[i] = r.status, r.err
		}()
	}
	close(gate)
	wg.Wait()
	count := map[int]int{}
	for i := range codes {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		count[codes[i]]++
	}
	if count[http.StatusOK] != 5 || count[http.StatusTooManyRequests] != n-5 {
		t.Errorf("statuses %v, want 5 × 200 and %d × 429", count, n-5)
	}
	e.expectCalls(t, 5)
	if errs := e.reported(); len(errs) != 0 {
		t.Errorf("store failures reported: %d", len(errs))
	}
}

func testStoreDown(t *testing.T, e *env) {
	url := e.serve(t,
		e.route("/open", e.policy(t, "open", 5, time.Minute)),
		e.route("/closed", e.policy(t, "closed", 5, time.Minute, limiter.WithFailMode(limiter.FailClosed))),
	)
	expectStatus(t, "open, store up", getT(t, url+"/open"), http.StatusOK)
	expectStatus(t, "closed, store up", getT(t, url+"/closed"), http.StatusOK)
	e.inst.Stop()
	checkStoreDown(t, e, url)
}

// testHalfClosedClient sends POSTs on connections the client half-closes
// right after the request: net/http cancels such a request's context, the
// store refuses to count the hit, and the handler must not run uncounted
// under either fail mode, or hanging up would escape any fail-open limit.
// Work in front of the middleware (authentication, reading a body) waits for
// the server to notice the half-close, as a slow one would.
func testHalfClosedClient(t *testing.T, e *env) {
	routes := []Route{
		{Method: http.MethodPost, Path: "/open", Policies: []*limiter.Policy{e.policy(t, "open", 1, time.Minute)}, Handler: e.handler("/open")},
		{Method: http.MethodPost, Path: "/closed", Policies: []*limiter.Policy{e.policy(t, "closed", 1, time.Minute, limiter.WithFailMode(limiter.FailClosed))}, Handler: e.handler("/closed")},
	}
	app := e.mount(routes)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
			t.Error("the server never noticed the half-close")
		}
		app.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	for i := 0; i < 3; i++ {
		for _, path := range []string{"/open", "/closed"} {
			halfClosedPost(t, srv.Listener.Addr().String(), path)
		}
	}
	e.expectCalls(t, 0)
	if errs := e.reported(); len(errs) != 0 {
		t.Errorf("clients that went away were reported as store failures: %q", errs)
	}
}

// halfClosedPost sends POST path on a new connection to addr, closes the
// connection's sending side and reads until the server closes it.
func halfClosedPost(t *testing.T, addr, path string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatalf("half-close: %v", err)
	}
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("read: %v", err)
	}
}

// checkStoreDown checks /open (fail-open) and /closed (fail-closed) while the
// store is failing.
func checkStoreDown(t *testing.T, e *env, url string) {
	t.Helper()
	calls := e.calls.Load()
	r := getT(t, url+"/open")
	expectStatus(t, "fail-open, store down", r, http.StatusOK)
	quota{}.check(t, "fail-open, store down", r)
	if rep := report(t, "fail-open", r); len(rep.Decisions) != 0 {
		t.Errorf("fail-open request carries decisions %+v", rep.Decisions)
	}
	r = getT(t, url+"/closed")
	expectJSON(t, "fail-closed, store down", r, http.StatusServiceUnavailable, `{"error":"rate limiter unavailable"}`)
	quota{}.check(t, "fail-closed, store down", r)
	e.expectCalls(t, calls+1)
	got := e.reported()
	if len(got) != 2 || got[0] != "open" || got[1] != "closed" {
		t.Errorf("store failures reported for %q, want [open closed]", got)
	}
}

// testHungRedis points redisstore at a listener that accepts connections and
// never answers: the policy's decision deadline bounds the wait, and the
// request fails open or closed as configured.
func testHungRedis(t *testing.T, mount Mount) {
	addr, _ := redistest.HungListener(t)
	// No timeout of the client or the store: only the policy's deadline
	// can end the wait (go-redis's own read timeout is 3 s).
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: -1, WriteTimeout: -1})
	t.Cleanup(func() { _ = client.Close() })
	s, err := redisstore.New(client)
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	clk := &clock{now: start}
	e := &env{mount: mount, inst: Instance{Store: s, Stop: func() {}}, clock: clk}
	deadline := limiter.WithTimeout(100 * time.Millisecond)
	url := e.serve(t,
		e.route("/open", e.policy(t, "open", 5, time.Minute, deadline)),
		e.route("/closed", e.policy(t, "closed", 5, time.Minute, deadline, limiter.WithFailMode(limiter.FailClosed))),
	)
	began := time.Now()
	checkStoreDown(t, e, url)
	// A generous sanity bound: without the deadline the requests would hang
	// until the client's 30 s timeout.
	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("two requests against a hung Redis took %v", took)
	}
}
