package limiter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/limitertest"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// chain applies policies (the first outermost) in front of h the way the
// adapters do: Admit, then the handler, then done with the final status.
// It runs on an httptest.ResponseRecorder.
func chain(h http.Handler, policies ...*limiter.Policy) http.Handler {
	for i := len(policies) - 1; i >= 0; i-- {
		p, next := policies[i], h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r, done, ok := admit(p, w, r)
			if !ok {
				return
			}
			next.ServeHTTP(w, r)
			if done != nil {
				done(w.(*httptest.ResponseRecorder).Code)
			}
		})
	}
	return h
}

// admit runs p's Admit on r and writes a rejection, as an adapter does: it
// returns the request for the handler, done, and whether the handler may
// run.
func admit(p *limiter.Policy, w http.ResponseWriter, r *http.Request) (*http.Request, func(int), bool) {
	next, done, rj := p.Admit(w, r, nil)
	if rj != nil {
		rj.Write(w)
		return next, nil, false
	}
	return next, done, true
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	status, _ := strconv.Atoi(r.URL.Query().Get("status"))
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
})

func newPolicy(t *testing.T, l *limiter.Limiter, clk *testClock, opts ...limiter.Option) *limiter.Policy {
	t.Helper()
	p, err := limiter.PolicyOf(l, append([]limiter.Option{limiter.WithClock(clk.Now)}, opts...)...)
	require.NoError(t, err)
	return p
}

func TestNewPolicyValidates(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, "api", 5, time.Second, newMem(t, clk))
	cases := map[string]limiter.Option{
		"nil key":                   limiter.WithKey(nil),
		"zero cost":                 limiter.WithCost(0),
		"cost above limit":          limiter.WithCost(6),
		"nil cost func":             limiter.WithCostFunc(nil),
		"nil skip":                  limiter.WithSkip(nil),
		"nil success":               limiter.WithSuccess(nil),
		"unknown headers":           limiter.WithHeaders(limiter.Headers(8)),
		"unknown fail mode":         limiter.WithFailMode(limiter.FailMode(7)),
		"negative timeout":          limiter.WithTimeout(-time.Second),
		"nil deny handler":          limiter.WithDenyHandler(nil),
		"nil request error handler": limiter.WithRequestErrorHandler(nil),
		"nil error handler":         limiter.WithErrorHandler(nil),
		"nil clock":                 limiter.WithClock(nil),
	}
	for name, opt := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := limiter.PolicyOf(l, opt)
			require.ErrorIs(t, err, limiter.ErrInvalidConfig)
			assert.Nil(t, p)
		})
	}
	big := newLimiter(t, "big", store.MaxLimit, time.Second, newMem(t, clk))
	p, err := limiter.PolicyOf(big, limiter.WithCost(store.MaxCost+1))
	require.ErrorIs(t, err, limiter.ErrInvalidConfig, "a cost above store.MaxCost is refused at construction, not failed at every request")
	assert.Nil(t, p)
	p, err = limiter.PolicyOf(l, limiter.WithSkipSuccessful(), limiter.WithSkipFailed())
	require.ErrorIs(t, err, limiter.ErrInvalidConfig, "skipping both successful and failed requests would count none")
	assert.Nil(t, p)
	p, err = limiter.PolicyOf(l, nil, limiter.WithTimeout(0), limiter.WithCost(5))
	require.NoError(t, err, "nil options are ignored; cost = limit and no timeout are valid")
	assert.Equal(t, "api", p.Name())
	assert.Same(t, l, p.Limiter())
	assert.Equal(t, "", (*limiter.Policy)(nil).Name())
	assert.Equal(t, "", new(limiter.Policy).Name())
}

func TestCheckDeniedContract(t *testing.T) {
	clk := newClock()
	p := newPolicy(t, newLimiter(t, "api", 1, 10*time.Second, newMem(t, clk)), clk)
	r := request("192.0.2.1:1")

	w := httptest.NewRecorder()
	next, _, ok := admit(p, w, r)
	require.True(t, ok)
	require.NotSame(t, r, next, "the decision travels in a new request's context")
	d, found := limiter.DecisionFor(next.Context(), "api")
	require.True(t, found)
	assert.True(t, d.Allowed)
	assert.Nil(t, limiter.FromContext(r.Context()), "the caller's request is not changed")
	_, found = limiter.DecisionFor(r.Context(), "api")
	assert.False(t, found)
	_, found = limiter.DecisionFor(next.Context(), "other")
	assert.False(t, found)

	clk.Advance(1500 * time.Millisecond)
	w = httptest.NewRecorder()
	_, _, ok = admit(p, w, r)
	assert.False(t, ok)
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "9", w.Header().Get("Retry-After"), "8.5 s rounded up")
	assert.Equal(t, `"api";r=0;t=9`, w.Header().Get("RateLimit"))
	assert.Equal(t, strconv.FormatInt(t0.Unix()+10, 10), w.Header().Get("X-RateLimit-Reset"), "when the request would fit")
	assert.Equal(t, "{\"error\":\"too many requests\",\"policy\":\"api\",\"retry_after\":9}\n", w.Body.String())
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
}

func TestCustomHandlers(t *testing.T) {
	clk := newClock()
	st := newMem(t, clk)
	var denied limiter.Decision
	var reqErr error
	p := newPolicy(t, newLimiter(t, "api", 1, time.Minute, st), clk,
		limiter.WithKey(limiter.HeaderKey("X-User", nil)),
		limiter.WithDenyHandler(func(w http.ResponseWriter, r *http.Request, d limiter.Decision) {
			denied = d
			assert.Equal(t, "60", w.Header().Get("Retry-After"), "headers are set before the deny handler runs")
			http.Error(w, "slow down", http.StatusServiceUnavailable)
		}),
		limiter.WithRequestErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			reqErr = err
			w.WriteHeader(http.StatusUnauthorized)
		}),
	)
	h := chain(ok, p)
	assert.Equal(t, http.StatusOK, serve(h, request("192.0.2.1:1", "X-User: u1")).Code)
	w := serve(h, request("192.0.2.1:1", "X-User: u1"))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, "api", denied.Policy)
	assert.False(t, denied.Allowed)
	assert.Equal(t, time.Minute, denied.RetryAfter)

	w = serve(h, request("192.0.2.1:1"))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	require.ErrorIs(t, reqErr, limiter.ErrNoKey)
}

func TestKeyFuncErrorsAre400(t *testing.T) {
	clk := newClock()
	boom := errors.New("database down")
	p := newPolicy(t, newLimiter(t, "api", 1, time.Minute, newMem(t, clk)), clk,
		limiter.WithKey(func(*http.Request) (string, error) { return "", boom }))
	var got error
	q := newPolicy(t, newLimiter(t, "api2", 1, time.Minute, newMem(t, clk)), clk,
		limiter.WithKey(func(*http.Request) (string, error) { return "", boom }),
		limiter.WithRequestErrorHandler(func(w http.ResponseWriter, _ *http.Request, err error) { got = err }))

	w := serve(chain(ok, p), request("192.0.2.1:1"))
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Equal(t, "{\"error\":\"cannot identify client\"}\n", w.Body.String())
	assert.NotContains(t, w.Body.String(), "database", "error text never reaches the client")

	serve(chain(ok, q), request("192.0.2.1:1"))
	require.ErrorIs(t, got, limiter.ErrNoKey)
	require.ErrorIs(t, got, boom)

	empty := newPolicy(t, newLimiter(t, "api3", 1, time.Minute, newMem(t, clk)), clk,
		limiter.WithKey(func(*http.Request) (string, error) { return "", nil }))
	assert.Equal(t, http.StatusBadRequest, serve(chain(ok, empty), request("192.0.2.1:1")).Code, "an empty key is an error")

	var reported []error
	rep := newPolicy(t, newLimiter(t, "api4", 1, time.Minute, newMem(t, clk)), clk,
		limiter.WithKey(func(*http.Request) (string, error) { return "", boom }),
		limiter.WithErrorHandler(func(_ context.Context, policy string, err error) {
			assert.Equal(t, "api4", policy)
			reported = append(reported, err)
		}))
	serve(chain(ok, rep), request("192.0.2.1:1"))
	require.Len(t, reported, 1, "a request without a key is reported")
	require.ErrorIs(t, reported[0], limiter.ErrNoKey)
}

func TestStackedLegacyHeadersShowTheDenial(t *testing.T) {
	clk := newClock()
	st := newMem(t, clk)
	a := newPolicy(t, newLimiter(t, "a", 2, time.Minute, st), clk)
	b := newPolicy(t, newLimiter(t, "b", 10, time.Hour, st), clk, limiter.WithCost(4))
	h := chain(ok, a, b)
	r := request("192.0.2.1:1")

	w := serve(h, r) // a: 1 left; b: 6 left
	assert.Equal(t, "1", w.Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, "2", w.Header().Get("X-RateLimit-Limit"))
	serve(chain(ok, b), r) // b: 2 left
	w = serve(h, r)        // a: 0 left, allowed; b: 2 left, needs 4: denied
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "10", w.Header().Get("X-RateLimit-Limit"), "the denying policy wins the legacy fields")
	assert.Equal(t, "2", w.Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, `"a";r=0;t=60, "b";r=2;t=3600`, w.Header().Get("RateLimit"))
	assert.Contains(t, w.Body.String(), `"policy":"b"`)
}

func TestManyStackedPolicies(t *testing.T) {
	for _, derive := range []bool{false, true} {
		t.Run("derived requests "+strconv.FormatBool(derive), func(t *testing.T) {
			testManyStacked(t, derive)
		})
	}
}

// testManyStacked stacks six policies with long names: more than a request
// state's inline room for decisions, header values and strings. With derive,
// a middleware between the policies derives a new request each time, so each
// policy starts a new state from the previous one.
func testManyStacked(t *testing.T, derive bool) {
	clk := newClock()
	st := newMem(t, clk)
	type traceKey struct{}
	var policies []*limiter.Policy
	names := []string{"p0", "p1", "p2", "p3", "p4", "p5"}
	for _, n := range names {
		policies = append(policies, newPolicy(t, newLimiter(t, n+"-with-a-longer-name", 100, time.Hour, st), clk))
	}
	var seen []limiter.Decision
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = limiter.FromContext(r.Context())
	}))
	for i := len(policies) - 1; i >= 0; i-- {
		next := h
		if derive {
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), traceKey{}, i)))
			})
		}
		h = chain(h, policies[i])
	}
	for round := 1; round <= 2; round++ {
		w := serve(h, request("192.0.2.1:1"))
		require.Equal(t, http.StatusOK, w.Code)
		require.Len(t, seen, len(names))
		var wantPolicy, wantRL []string
		for i, n := range names {
			assert.Equal(t, n+"-with-a-longer-name", seen[i].Policy)
			assert.Equal(t, 100-round, seen[i].Remaining)
			wantPolicy = append(wantPolicy, `"`+n+`-with-a-longer-name";q=100;w=3600`)
			wantRL = append(wantRL, `"`+n+`-with-a-longer-name";r=`+strconv.Itoa(100-round)+`;t=3600`)
		}
		assert.Equal(t, []string{strings.Join(wantPolicy, ", ")}, w.Header().Values("RateLimit-Policy"))
		assert.Equal(t, []string{strings.Join(wantRL, ", ")}, w.Header().Values("RateLimit"))
		assert.Equal(t, []string{strconv.Itoa(100 - round)}, w.Header().Values("X-RateLimit-Remaining"))
	}
}

func TestFinish(t *testing.T) {
	clk := newClock()
	st := newMem(t, clk)
	success := newPolicy(t, newLimiter(t, "s", 5, time.Minute, st), clk, limiter.WithSkipSuccessful(),
		limiter.WithSuccess(func(status int) bool { return status != http.StatusUnauthorized }))
	r := request("192.0.2.1:1")

	remaining := func() int {
		next, _, _ := admit(success, httptest.NewRecorder(), r)
		d, _ := limiter.DecisionFor(next.Context(), "s")
		return d.Remaining
	}
	for _, c := range []struct {
		status  int
		counted bool
	}{{0, false}, {200, false}, {500, false}, {401, true}} {
		before := remaining() + 1 // that check counted one (and is never finished)
		_, done, ok := admit(success, httptest.NewRecorder(), r)
		require.True(t, ok)
		require.NotNil(t, done, "a skip-successful policy needs the status")
		done(c.status)
		after := remaining() + 1
		if c.counted {
			assert.Equal(t, before-2, after, "status %d is counted", c.status)
		} else {
			assert.Equal(t, before-1, after, "status %d is undone", c.status)
		}
		clk.Advance(time.Minute) // empty the window
	}

	plain := newPolicy(t, newLimiter(t, "plain", 5, time.Minute, st), clk)
	_, done, ok := admit(plain, httptest.NewRecorder(), r)
	assert.True(t, ok)
	assert.Nil(t, done, "a policy that counts every request needs no status")
}

// TestClientGoneIsNeverServed checks a request whose own context is already
// cancelled, as net/http cancels it when the client closes or half-closes its
// connection: the store refuses to count it, and whatever the fail mode the
// handler must not run, or a client could escape a fail-open limit (on a
// side-effecting POST) by hanging up right after sending its request. It gets
// a 503 and nothing is reported: the client is gone, the store is fine.
func TestClientGoneIsNeverServed(t *testing.T) {
	mini := limitertest.Emulated("miniredis", func(t *testing.T) limitertest.EmulatedServer { return miniredis.RunT(t) })
	backends := append([]limitertest.Backend{limitertest.Memory(), mini}, limitertest.Env()...)
	modes := []struct {
		name string
		mode limiter.FailMode
	}{{"fail-open", limiter.FailOpen}, {"fail-closed", limiter.FailClosed}}
	for _, b := range backends {
		for _, m := range modes {
			t.Run(b.Name+"/"+m.name, func(t *testing.T) {
				clk := newClock()
				inst := b.New(t, clk.Now)
				var reported []error
				p := newPolicy(t, newLimiter(t, "post", 1, time.Minute, inst.Store), clk,
					limiter.WithFailMode(m.mode),
					limiter.WithErrorHandler(func(_ context.Context, _ string, err error) { reported = append(reported, err) }))
				ran := 0
				h := chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran++ }), p)
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				for i := 0; i < 5; i++ {
					r := request("192.0.2.1:1").WithContext(ctx)
					w := httptest.NewRecorder()
					next, _, ok := admit(p, w, r)
					assert.False(t, ok, "attempt %d: a client that went away is not served", i+1)
					assert.Same(t, r, next)
					assert.Equal(t, http.StatusServiceUnavailable, w.Code, "a client that went away gets no quota, only a 503")
					assert.Equal(t, "{\"error\":\"request cancelled\"}\n", w.Body.String())
					assert.Empty(t, w.Header().Get("X-RateLimit-Remaining"))

					w = serve(h, r)
					assert.Equal(t, http.StatusServiceUnavailable, w.Code)
				}
				assert.Zero(t, ran, "the handler never ran")
				assert.Empty(t, reported, "a client that went away is not a store failure")

				w := serve(h, request("192.0.2.1:1"))
				assert.Equal(t, http.StatusOK, w.Code, "a client that stays is served")
				assert.Equal(t, 1, ran)
			})
		}
	}
}

// TestServerDeadlineIsAStoreFailure checks that a request whose context
// passed a deadline the server set (a timeout middleware), rather than being
// cancelled by its client, is an ordinary store failure: reported, and
// served under FailOpen or answered 503 under FailClosed.
func TestServerDeadlineIsAStoreFailure(t *testing.T) {
	mini := limitertest.Emulated("miniredis", func(t *testing.T) limitertest.EmulatedServer { return miniredis.RunT(t) })
	for _, b := range []limitertest.Backend{limitertest.Memory(), mini} {
		for _, tc := range []struct {
			mode   limiter.FailMode
			status int
		}{{limiter.FailOpen, http.StatusOK}, {limiter.FailClosed, http.StatusServiceUnavailable}} {
			t.Run(fmt.Sprintf("%s/%d", b.Name, tc.status), func(t *testing.T) {
				clk := newClock()
				inst := b.New(t, clk.Now)
				var reported []error
				p := newPolicy(t, newLimiter(t, "slow", 1, time.Minute, inst.Store), clk,
					limiter.WithFailMode(tc.mode),
					limiter.WithErrorHandler(func(_ context.Context, _ string, err error) { reported = append(reported, err) }))
				h := chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), p)
				ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
				defer cancel()
				w := serve(h, request("192.0.2.1:1").WithContext(ctx))
				assert.Equal(t, tc.status, w.Code)
				if assert.Len(t, reported, 1, "a passed server deadline is reported") {
					assert.ErrorIs(t, reported[0], context.DeadlineExceeded)
				}
			})
		}
	}
}

// logBuffer collects slog output.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestDefaultErrorLogIsThrottled(t *testing.T) {
	var buf logBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })

	clk := newClock()
	st := newMem(t, clk)
	p := newPolicy(t, newLimiter(t, "api", 5, time.Minute, st), clk)
	require.NoError(t, st.Close())
	for i := 0; i < 50; i++ {
		w := serve(chain(ok, p), request("198.51.100.77:1"))
		require.Equal(t, http.StatusOK, w.Code, "fail-open by default")
		require.Empty(t, w.Header().Get("X-RateLimit-Limit"), "no quota headers when failing open")
	}
	out := buf.String()
	assert.Equal(t, 1, strings.Count(out, "\n"), "one line per second, not per request: %s", out)
	assert.Contains(t, out, "level=ERROR")
	assert.Contains(t, out, "policy=api")
	assert.NotContains(t, out, "198.51.100.77", "no client data in the log")
}

// TestFreeFormNamesAreEscaped checks that a name with quotes and backslashes
// reaches the headers as a valid structured-field string and the body as
// valid JSON.
func TestFreeFormNamesAreEscaped(t *testing.T) {
	clk := newClock()
	st := newMem(t, clk)
	p := newPolicy(t, newLimiter(t, `GET /a"b\c`, 1, 10*time.Second, st), clk)
	r := request("192.0.2.1:1")
	w := httptest.NewRecorder()
	_, _, ok := admit(p, w, r)
	require.True(t, ok)
	assert.Equal(t, `"GET /a\"b\\c";q=1;w=10`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"GET /a\"b\\c";r=0;t=10`, w.Header().Get("RateLimit"))
	w = httptest.NewRecorder()
	_, _, ok = admit(p, w, r)
	require.False(t, ok)
	var body struct {
		Policy string `json:"policy"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	assert.Equal(t, `GET /a"b\c`, body.Policy)
}

// TestPolicyTwiceCountsOnce mounts one policy twice in front of a handler,
// as an echo group and one of its routes would: each request counts once and
// carries one set of headers.
func TestPolicyTwiceCountsOnce(t *testing.T) {
	clk := newClock()
	p := newPolicy(t, newLimiter(t, "api", 2, 10*time.Second, newMem(t, clk)), clk)
	h := chain(ok, p, p)
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		w := serve(h, request("192.0.2.1:1"))
		require.Equal(t, want, w.Code, "request %d", i+1)
		if want == http.StatusOK {
			assert.Equal(t, strconv.Itoa(1-i), w.Header().Get("X-RateLimit-Remaining"), "request %d", i+1)
			assert.Equal(t, `"api";q=2;w=10`, w.Header().Get("RateLimit-Policy"), "one list member")
		}
	}
}

// A Rejection made by hand writes the default answers.
func TestRejectionWithoutPolicy(t *testing.T) {
	w := httptest.NewRecorder()
	(&limiter.Rejection{Status: http.StatusTooManyRequests, Decision: limiter.Decision{Policy: "api", RetryAfter: 2 * time.Second}}).Write(w)
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Contains(t, w.Body.String(), `"policy":"api"`)
	w = httptest.NewRecorder()
	(&limiter.Rejection{Status: http.StatusBadRequest, Err: limiter.ErrNoKey}).Write(w)
	assert.Equal(t, "{\"error\":\"cannot identify client\"}\n", w.Body.String())
}

// TestLongNameHeaders checks the headers of a policy whose name is as long
// as a name may be, under a limit chosen per request with many digits: their
// values outgrow the room a request's state keeps for them, and must come
// out whole, on the allowed request and on the denied one (which adds
// Retry-After).
func TestLongNameHeaders(t *testing.T) {
	clk := newClock()
	name := strings.Repeat("n", limiter.MaxNameLen)
	p, err := limiter.NewPolicy(name, 1000, time.Hour, newMem(t, clk),
		limiter.WithAlgorithm(store.SlidingCounter), limiter.WithClock(clk.Now),
		limiter.WithLimitFunc(func(*http.Request) (int, error) { return 123_456_789, nil }),
		limiter.WithCostFunc(func(*http.Request) (int, error) { return 123_456_788, nil }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	r := request("192.0.2.1:1")

	w := httptest.NewRecorder()
	next, _, ok := admit(p, w, r)
	require.True(t, ok)
	d, found := limiter.DecisionFor(next.Context(), name)
	require.True(t, found)
	assert.Equal(t, 1, d.Remaining)
	reset := int64((d.ResetAfter + time.Second - 1) / time.Second)
	require.Positive(t, reset)
	assert.Equal(t, "123456789", w.Header().Get("X-RateLimit-Limit"))
	assert.Equal(t, "1", w.Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, strconv.FormatInt(t0.Unix()+reset, 10), w.Header().Get("X-RateLimit-Reset"))
	assert.Equal(t, `"`+name+`";q=123456789;w=3600`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"`+name+`";r=1;t=`+strconv.FormatInt(reset, 10), w.Header().Get("RateLimit"))

	w = httptest.NewRecorder()
	_, _, ok = admit(p, w, r)
	require.False(t, ok)
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	retry := w.Header().Get("Retry-After")
	require.NotEmpty(t, retry)
	assert.Equal(t, "123456789", w.Header().Get("X-RateLimit-Limit"))
	assert.Equal(t, "1", w.Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, `"`+name+`";q=123456789;w=3600`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"`+name+`";r=1;t=`+retry, w.Header().Get("RateLimit"))
}

// TestResetOnWindowEnd checks X-RateLimit-Reset on the real clocks of a
// policy and of memstore, where the store decides a little after the policy
// reads its clock: the first hit of a client under the sliding-window
// counter leaves the count when the next window ends, on a whole second
// that is a multiple of the window, and the header must name that second,
// not the one after it. Each request is a new client, alone and stacked.
func TestResetOnWindowEnd(t *testing.T) {
	const window = 2 * time.Second
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	newCounter := func(name string) *limiter.Policy {
		p, err := limiter.NewPolicy(name, 10, window, st, limiter.WithAlgorithm(store.SlidingCounter))
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	alone := newCounter("alone")
	stack, err := limiter.Stack(newCounter("first"), newCounter("second"))
	require.NoError(t, err)
	for _, p := range []*limiter.Policy{alone, stack} {
		for i := range 200 {
			w := httptest.NewRecorder()
			before := time.Now()
			_, _, ok := admit(p, w, request("192.0.2."+strconv.Itoa(i)+":1"))
			require.True(t, ok)
			reset, err := strconv.ParseInt(w.Header().Get("X-RateLimit-Reset"), 10, 64)
			require.NoError(t, err)
			// The next window ends at the second multiple of the window
			// after the one the request fell in.
			end := before.Truncate(window).Add(2 * window).Unix()
			if before.Add(time.Millisecond).Truncate(window) != before.Truncate(window) {
				continue // a window began while the request was decided
			}
			require.Equal(t, end, reset, "request %d of %s at %v", i, p.Name(), before)
		}
	}
}
