package guardtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/redisstore"
)

// Mount builds the server under test: an http.Handler that serves the route
// POST /orders/{id} (a route parameter named "id", in the framework's syntax,
// such as "/orders/:id" for echo and gin) through the framework's middleware
// for g, with h as the route's handler. A panic in h must reach a recovery
// middleware mounted outside the guard that answers 500 (for net/http, a
// recovering wrapper around the mux).
type Mount func(g *lockguard.Guard, h http.Handler) http.Handler

// Report is the JSON body the suite's handler answers with.
type Report struct {
	// Locked reports whether the handler found a lock with
	// lockguard.FromContext.
	Locked bool `json:"locked"`
	// Key and Fence are the lock's key and fencing token.
	Key   string `json:"key"`
	Fence int64  `json:"fence"`
	// Cause names why the handler's context was cancelled: "" (it was not),
	// "lost" (lockguard.ErrLockLost), "max-hold"
	// (lockguard.ErrMaxHoldExceeded), "canceled" or "other".
	Cause string `json:"cause"`
}

// Run runs the suite against mount, once per backend.
func Run(t *testing.T, mount Mount, backends ...Backend) {
	cases := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"busy-resource-409", testBusy},
		{"other-resources-in-parallel", testParallel},
		{"fence-increases", testFences},
		{"keep-alive-past-ttl", testKeepAlive},
		{"deleted-lock-cancels-handler", testLost},
		{"max-hold-cancels-handler", testMaxHold},
		{"panic-releases", testPanic},
		{"client-hang-up-releases", testHangUp},
		{"wait-for-lock", testWait},
		{"key-error-400", testKeyError},
		{"store-down", testStoreDown},
	}
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					inst := b.New(t)
					c.fn(t, newEnv(t, mount, inst))
				})
			}
		})
	}
	t.Run("hung-redis-503", func(t *testing.T) { testHungRedis(t, mount) })
	t.Run("hung-redis-store-timeout-503", func(t *testing.T) { testHungRedisStoreTimeout(t, mount) })
}

// env is one test's server side: the store, the handler and the channels
// that steer it.
type env struct {
	mount   Mount
	inst    Instance
	entered chan struct{} // a holding handler has started
	leave   chan struct{} // closed: holding handlers return
	once    sync.Once
}

func newEnv(t *testing.T, mount Mount, inst Instance) *env {
	e := &env{mount: mount, inst: inst, entered: make(chan struct{}, 64), leave: make(chan struct{})}
	return e
}

func (e *env) release() { e.once.Do(func() { close(e.leave) }) }

type config struct {
	ttl        time.Duration
	key        limiter.KeyFunc
	lockerOpts []lockguard.Option
	guardOpts  []lockguard.GuardOption
}

// serve starts a server for a new Guard over the test's store and returns
// its URL.
func (e *env) serve(t *testing.T, c config) string {
	t.Helper()
	if c.key == nil {
		c.key = limiter.PathValueKey("id")
	}
	locker, err := lockguard.New(e.inst.Store, c.lockerOpts...)
	if err != nil {
		t.Fatalf("lockguard.New: %v", err)
	}
	opts := append([]lockguard.GuardOption{lockguard.WithLogger(nil)}, c.guardOpts...)
	g, err := lockguard.NewGuard("order", locker, c.key, c.ttl, opts...)
	if err != nil {
		t.Fatalf("lockguard.NewGuard: %v", err)
	}
	srv := httptest.NewServer(e.mount(g, e.handler()))
	t.Cleanup(srv.Close)
	t.Cleanup(e.release) // runs first: lets holding handlers return
	return srv.URL
}

// handler reports the lock it finds. Query parameters steer it: panic=1
// panics; delete=1 deletes the lock behind its back and waits for the
// context to end; hold=MS signals entered and waits MS milliseconds, until
// leave is closed or the context ends.
func (e *env) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		lock, locked := lockguard.FromContext(ctx)
		q := r.URL.Query()
		if q.Get("panic") != "" {
			panic("guardtest: the handler panics")
		}
		if q.Get("delete") != "" && locked {
			if err := e.inst.Delete(context.WithoutCancel(ctx), lock.Key(), lock.Token()); err != nil {
				http.Error(w, "delete failed", http.StatusInternalServerError)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
		}
		if ms := q.Get("hold"); ms != "" {
			n, _ := strconv.Atoi(ms)
			select {
			case e.entered <- struct{}{}:
			default:
			}
			select {
			case <-ctx.Done():
			case <-e.leave:
			case <-time.After(time.Duration(n) * time.Millisecond):
			}
		}
		rep := Report{Locked: locked, Cause: causeName(ctx)}
		if locked {
			rep.Key, rep.Fence = lock.Key(), lock.Fence()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})
}

func causeName(ctx context.Context) string {
	cause := context.Cause(ctx)
	switch {
	case cause == nil:
		return ""
	case errors.Is(cause, lockguard.ErrLockLost):
		return "lost"
	case errors.Is(cause, lockguard.ErrMaxHoldExceeded):
		return "max-hold"
	case errors.Is(cause, context.Canceled):
		return "canceled"
	default:
		return "other"
	}
}

// waitEntered waits for a holding handler to start.
func (e *env) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-e.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the holding request never reached its handler")
	}
}

// response is what a client got.
type response struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func post(ctx context.Context, url string) response {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return response{err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

// postT sends a request that must be answered within 10 s.
func postT(t *testing.T, url string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := post(ctx, url)
	if r.err != nil {
		t.Fatalf("POST %s: %v", url, r.err)
	}
	return r
}

// async sends a request in the background.
func async(ctx context.Context, url string) <-chan response {
	ch := make(chan response, 1)
	go func() { ch <- post(ctx, url) }()
	return ch
}

func await(t *testing.T, ch <-chan response) response {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("request: %v", r.err)
		}
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("request not answered within 20s")
		return response{}
	}
}

// report checks a 200 answer of the handler and decodes it.
func report(t *testing.T, r response) Report {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", r.status, r.body)
	}
	var rep Report
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return rep
}

// checkJSONError checks a rejection: status, JSON content type, the error
// message, and that no error text leaks. It returns the body's retry_after.
func checkJSONError(t *testing.T, r response, status int, msg string) int {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		t.Errorf("Content-Type %q, want application/json", r.header.Get("Content-Type"))
	}
	if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", got)
	}
	var body struct {
		Error      string `json:"error"`
		RetryAfter *int   `json:"retry_after"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	if body.Error != msg {
		t.Errorf("error %q, want %q", body.Error, msg)
	}
	if strings.Contains(string(r.body), "lockguard") || strings.Contains(string(r.body), "store") {
		t.Errorf("body %q leaks an error's text", r.body)
	}
	if body.RetryAfter == nil {
		return 0
	}
	return *body.RetryAfter
}

// checkLocked checks a 409 answer whose holder has at most maxTTL left.
func checkLocked(t *testing.T, r response, maxTTL time.Duration) {
	t.Helper()
	ra := checkJSONError(t, r, http.StatusConflict, "resource is locked")
	h, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil {
		t.Fatalf("Retry-After %q: %v", r.header.Get("Retry-After"), err)
	}
	if most := int(max((maxTTL+time.Second-1)/time.Second, 1)); h < 1 || h > most {
		t.Errorf("Retry-After %d, want 1..%d", h, most)
	}
	if ra != h {
		t.Errorf("retry_after %d in the body, Retry-After %d in the header", ra, h)
	}
}

func testBusy(t *testing.T, e *env) {
	url := e.serve(t, config{ttl: 5 * time.Second})
	a := async(context.Background(), url+"/orders/1?hold=15000")
	e.waitEntered(t)

	checkLocked(t, postT(t, url+"/orders/1"), 5*time.Second)

	e.release()
	rep := report(t, await(t, a))
	if !rep.Locked || rep.Key != "order:param:id:1" || rep.Cause != "" {
		t.Errorf("holder saw %+v, want the lock on order:param:id:1 and no cancellation", rep)
	}
	if rep := report(t, postT(t, url+"/orders/1")); !rep.Locked {
		t.Errorf("after release: %+v, want a lock", rep)
	}
}

func testParallel(t *testing.T, e *env) {
	url := e.serve(t, config{ttl: 5 * time.Second})
	a := async(context.Background(), url+"/orders/1?hold=15000")
	e.waitEntered(t)

	rep := report(t, postT(t, url+"/orders/2"))
	if !rep.Locked || rep.Key != "order:param:id:2" {
		t.Errorf("order 2 while order 1 is held: %+v, want the lock on order:param:id:2", rep)
	}
	select {
	case r := <-a:
		t.Fatalf("order 1 answered before its handler was let go: %d %s", r.status, r.body)
	default:
	}
	e.release()
	report(t, await(t, a))
}

func testFences(t *testing.T, e *env) {
	url := e.serve(t, config{ttl: 5 * time.Second})
	var last int64
	for i := 0; i < 5; i++ {
		rep := report(t, postT(t, url+"/orders/7"))
		if !rep.Locked || rep.Fence <= last {
			t.Fatalf("request %d: %+v, want a fence above %d", i, rep, last)
		}
		last = rep.Fence
	}
}

func testKeepAlive(t *testing.T, e *env) {
	// A TTL long enough that a loaded machine's late extend (every ttl/3)
	// does not lose the lock, and a hold of three TTLs.
	const ttl = time.Second
	url := e.serve(t, config{ttl: ttl})
	a := async(context.Background(), url+"/orders/1?hold=3000") // 3 TTLs
	e.waitEntered(t)
	// Near the end of its work the holder lets go before its own response
	// arrives here: stop trying half a second before, so that a request
	// that finds the lock free then is not mistaken for a lost lock.
	stopTrying := time.Now().Add(3*ttl - 500*time.Millisecond)

	tries := 0
	for done := false; !done; {
		if time.Now().After(stopTrying) {
			r := <-a
			if r.err != nil {
				t.Fatalf("holder: %v", r.err)
			}
			if rep := report(t, r); !rep.Locked || rep.Cause != "" {
				t.Errorf("holder saw %+v, want its lock and no cancellation", rep)
			}
			break
		}
		select {
		case r := <-a:
			if r.err != nil {
				t.Fatalf("holder: %v", r.err)
			}
			rep := report(t, r)
			if !rep.Locked || rep.Cause != "" {
				t.Errorf("holder saw %+v, want its lock and no cancellation", rep)
			}
			done = true
		case <-time.After(100 * time.Millisecond):
			r := postT(t, url+"/orders/1")
			if r.status != http.StatusConflict {
				t.Fatalf("a request during the holder's work got %d %s, want 409", r.status, r.body)
			}
			tries++
		}
	}
	if tries < 5 {
		t.Errorf("only %d requests were tried while the holder worked", tries)
	}
	report(t, postT(t, url+"/orders/1"))
}

func testLost(t *testing.T, e *env) {
	url := e.serve(t, config{ttl: time.Second})
	rep := report(t, postT(t, url+"/orders/1?delete=1"))
	if rep.Cause != "lost" {
		t.Errorf("handler's context cause %q, want lost (lockguard.ErrLockLost)", rep.Cause)
	}
	report(t, postT(t, url+"/orders/1"))
}

func testMaxHold(t *testing.T, e *env) {
	url := e.serve(t, config{
		ttl:        300 * time.Millisecond,
		lockerOpts: []lockguard.Option{lockguard.WithMaxHold(700 * time.Millisecond)},
	})
	rep := report(t, postT(t, url+"/orders/1?hold=10000"))
	if rep.Cause != "max-hold" {
		t.Errorf("handler's context cause %q, want max-hold (lockguard.ErrMaxHoldExceeded)", rep.Cause)
	}
	report(t, postT(t, url+"/orders/1"))
}

func testPanic(t *testing.T, e *env) {
	url := e.serve(t, config{ttl: 30 * time.Second})
	r := postT(t, url+"/orders/1?panic=1")
	if r.status != http.StatusInternalServerError {
		t.Fatalf("panicking handler: status %d, want 500 from the recovery middleware outside the guard", r.status)
	}
	// At once: no polling, the lock must already be free.
	rep := report(t, postT(t, url+"/orders/1"))
	if !rep.Locked {
		t.Errorf("after the panic: %+v, want a lock", rep)
	}
}

func testHangUp(t *testing.T, e *env) {
	url := e.serve(t, config{ttl: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	a := async(ctx, url+"/orders/1?hold=25000")
	e.waitEntered(t)
	cancel()
	if r := <-a; r.err == nil {
		t.Fatalf("the cancelled request was answered: %d", r.status)
	}
	// The TTL is 30 s; the lock must be free long before.
	deadline := time.Now().Add(2 * time.Second)
	for {
		r := postT(t, url+"/orders/1")
		if r.status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("resource still locked 2s after the client hung up (status %d)", r.status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testWait(t *testing.T, e *env) {
	url := e.serve(t, config{
		ttl:       5 * time.Second,
		guardOpts: []lockguard.GuardOption{lockguard.WithWait(5 * time.Second)},
	})
	a := async(context.Background(), url+"/orders/1?hold=300")
	e.waitEntered(t)
	second := report(t, postT(t, url+"/orders/1"))
	first := report(t, await(t, a))
	if second.Fence <= first.Fence {
		t.Errorf("the waiting request got fence %d, the holder %d: want it to run after", second.Fence, first.Fence)
	}
}

func testKeyError(t *testing.T, e *env) {
	url := e.serve(t, config{ttl: 5 * time.Second, key: func(r *http.Request) (string, error) {
		id := r.PathValue("id")
		if _, err := strconv.Atoi(id); err != nil {
			return "", errors.New("guardtest: order id is not a number")
		}
		return id, nil
	}})
	r := postT(t, url+"/orders/abc")
	if ra := checkJSONError(t, r, http.StatusBadRequest, "invalid resource key"); ra != 0 || r.header.Get("Retry-After") != "" {
		t.Errorf("400 with a retry-after (%d, %q)", ra, r.header.Get("Retry-After"))
	}
	report(t, postT(t, url+"/orders/12"))
}

func testStoreDown(t *testing.T, e *env) {
	if e.inst.Stop == nil {
		t.Skip("this backend cannot be stopped")
	}
	closed := e.serve(t, config{ttl: 5 * time.Second})
	open := e.serve(t, config{ttl: 5 * time.Second, guardOpts: []lockguard.GuardOption{lockguard.WithFailMode(limiter.FailOpen)}})
	report(t, postT(t, closed+"/orders/1"))
	report(t, postT(t, open+"/orders/1"))

	e.inst.Stop()
	checkStoreDown(t, closed, open)
}

// checkStoreDown checks that a fail-closed guard answers 503 and a fail-open
// one serves without a lock, both within 5 s.
func checkStoreDown(t *testing.T, closed, open string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := post(ctx, closed+"/orders/1")
	if r.err != nil {
		t.Fatalf("fail-closed guard, store down: %v", r.err)
	}
	checkJSONError(t, r, http.StatusServiceUnavailable, "lock service unavailable")
	if r.header.Get("Retry-After") != "" {
		t.Errorf("503 with Retry-After %q", r.header.Get("Retry-After"))
	}
	r = post(ctx, open+"/orders/1")
	if r.err != nil {
		t.Fatalf("fail-open guard, store down: %v", r.err)
	}
	if rep := report(t, r); rep.Locked {
		t.Errorf("fail-open guard, store down: %+v, want no lock", rep)
	}
}

// hungRedis returns a go-redis client with default options (no
// ContextTimeoutEnabled, a 3 s ReadTimeout) whose server is a listener that
// accepts connections and never answers.
func hungRedis(t *testing.T) *redis.Client {
	addr, _ := redistest.HungListener(t)
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// testHungRedis points redisstore at a listener that accepts connections and
// never answers: with the store's per-call timeout the guard answers 503 (or
// serves, fail-open) instead of hanging.
func testHungRedis(t *testing.T, mount Mount) {
	s, err := redisstore.New(hungRedis(t), redisstore.WithTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	e := newEnv(t, mount, Instance{Store: s, Delete: func(context.Context, string, string) error { return nil }})
	closed := e.serve(t, config{ttl: 5 * time.Second})
	open := e.serve(t, config{ttl: 5 * time.Second, guardOpts: []lockguard.GuardOption{lockguard.WithFailMode(limiter.FailOpen)}})
	checkStoreDown(t, closed, open)
}

// testHungRedisStoreTimeout points a redisstore without a timeout of its own
// at a listener that never answers: the Locker's store timeout bounds the
// guard's store calls, so the guard answers 503 (or serves, fail-open) long
// before go-redis's 3 s ReadTimeout.
func testHungRedisStoreTimeout(t *testing.T, mount Mount) {
	s, err := redisstore.New(hungRedis(t))
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	e := newEnv(t, mount, Instance{Store: s, Delete: func(context.Context, string, string) error { return nil }})
	lockerOpts := []lockguard.Option{lockguard.WithStoreTimeout(200 * time.Millisecond)}
	closed := e.serve(t, config{ttl: 5 * time.Second, lockerOpts: lockerOpts})
	open := e.serve(t, config{ttl: 5 * time.Second, lockerOpts: lockerOpts,
		guardOpts: []lockguard.GuardOption{lockguard.WithFailMode(limiter.FailOpen)}})
	for _, url := range []string{closed, open} {
		start := time.Now()
		r := post(context.Background(), url+"/orders/1")
		if r.err != nil {
			t.Fatalf("POST %s: %v", url, r.err)
		}
		// A sanity bound far below the ReadTimeout, not a speed test: the
		// store timeout is 200ms, and so is the release after the attempt.
		if d := time.Since(start); d >= 2*time.Second {
			t.Errorf("a hung store held the request %v (status %d), want well under go-redis's 3s ReadTimeout", d, r.status)
		}
		if url == closed {
			checkJSONError(t, r, http.StatusServiceUnavailable, "lock service unavailable")
		} else if rep := report(t, r); rep.Locked {
			t.Errorf("fail-open guard, store hung: %+v, want no lock", rep)
		}
	}
}
