package lockguard_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

func newGuardLocker(t *testing.T) (*memstore.Store, *lockguard.Locker) {
	t.Helper()
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st, newLocker(t, st)
}

func TestNewGuard(t *testing.T) {
	_, l := newGuardLocker(t)
	key := limiter.PathValueKey("id")
	cases := []struct {
		name   string
		guard  string
		locker *lockguard.Locker
		key    limiter.KeyFunc
		ttl    time.Duration
		opts   []lockguard.GuardOption
		ok     bool
	}{
		{"defaults", "order", l, key, time.Second, nil, true},
		{"all-options", "order", l, key, time.Second, []lockguard.GuardOption{
			lockguard.WithWait(time.Second), lockguard.WithFailMode(limiter.FailOpen), lockguard.WithLogger(slog.Default()),
			lockguard.WithDenyHandler(func(http.ResponseWriter, *http.Request, *lockguard.Rejection) {}), nil,
		}, true},
		{"free-form name", "POST /orders/{id}/pay", l, key, time.Second, nil, true},
		{"empty-name", "", l, key, time.Second, nil, false},
		{"nil-locker", "order", nil, key, time.Second, nil, false},
		{"nil-key", "order", l, nil, time.Second, nil, false},
		{"zero-ttl", "order", l, key, 0, nil, false},
		{"negative-wait", "order", l, key, time.Second, []lockguard.GuardOption{lockguard.WithWait(-time.Second)}, false},
		{"unknown-fail-mode", "order", l, key, time.Second, []lockguard.GuardOption{lockguard.WithFailMode(limiter.FailMode(7))}, false},
		{"nil-deny-handler", "order", l, key, time.Second, []lockguard.GuardOption{lockguard.WithDenyHandler(nil)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := lockguard.NewGuard(tc.guard, tc.locker, tc.key, tc.ttl, tc.opts...)
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, tc.guard, g.Name())
			} else {
				assert.ErrorIs(t, err, lockguard.ErrInvalidConfig)
				assert.Nil(t, g)
			}
		})
	}
}

func TestRejectionWrite(t *testing.T) {
	cases := []struct {
		name   string
		rj     lockguard.Rejection
		header string
		body   string
	}{
		{"locked", lockguard.Rejection{Status: 409, RetryAfter: 2500 * time.Millisecond, Message: "resource is locked", Err: errors.New("secret")},
			"3", `{"error":"resource is locked","retry_after":3}`},
		{"locked, under a second", lockguard.Rejection{Status: 409, RetryAfter: time.Millisecond, Message: "resource is locked"},
			"1", `{"error":"resource is locked","retry_after":1}`},
		{"unavailable", lockguard.Rejection{Status: 503, Message: "lock service unavailable", Err: errors.New("secret")},
			"", `{"error":"lock service unavailable"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.rj.Write(rec)
			assert.Equal(t, tc.rj.Status, rec.Code)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.Equal(t, tc.header, rec.Header().Get("Retry-After"))
			assert.JSONEq(t, tc.body, rec.Body.String())
			assert.NotContains(t, rec.Body.String(), "secret")
		})
	}
}

func TestFromContextOutsideGuard(t *testing.T) {
	l, ok := lockguard.FromContext(context.Background())
	assert.False(t, ok)
	assert.Nil(t, l)
}

func TestAdmit(t *testing.T) {
	st, l := newGuardLocker(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	g, err := lockguard.NewGuard("order", l, limiter.PathValueKey("id"), 10*time.Second, lockguard.WithLogger(logger))
	require.NoError(t, err)
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/orders/1", nil)
		r.SetPathValue("id", "1")
		return r
	}

	r1, release1, rj := g.Admit(nil, req(), nil)
	require.Nil(t, rj)
	lock, ok := lockguard.FromContext(r1.Context())
	require.True(t, ok)
	assert.Equal(t, "order:param:id:1", lock.Key(), "the guard's name, a colon and the resource's key")

	_, release2, rj := g.Admit(nil, req(), nil)
	require.NotNil(t, rj)
	assert.Equal(t, http.StatusConflict, rj.Status)
	assert.Equal(t, 10*time.Second, rj.RetryAfter.Round(time.Second))
	assert.ErrorIs(t, rj.Err, lockguard.ErrHeld)
	assert.Nil(t, release2, "nothing to release")

	// A key function of the adapter's own overrides the Guard's; the lock
	// still carries the Guard's name.
	r3, release3, rj := g.Admit(nil, req(), func(*http.Request) (string, error) { return "2", nil })
	require.Nil(t, rj)
	lock3, _ := lockguard.FromContext(r3.Context())
	assert.Equal(t, "order:2", lock3.Key())
	release3(0)

	release1(0)
	release1(0) // safe twice
	assert.ErrorIs(t, r1.Context().Err(), context.Canceled, "the handler's context ends with the release")
	_, err = lock.TTL(context.Background())
	assert.ErrorIs(t, err, lockguard.ErrNotHeld, "released")

	// A store failure is logged, with the guard's name, and answered 503.
	require.NoError(t, st.Close())
	_, _, rj = g.Admit(nil, req(), nil)
	require.NotNil(t, rj)
	assert.Equal(t, http.StatusServiceUnavailable, rj.Status)
	assert.ErrorIs(t, rj.Err, lockguard.ErrStore)
	assert.Contains(t, logs.String(), "fail-closed")
	assert.Contains(t, logs.String(), "guard=order")
	assert.Contains(t, logs.String(), "level=ERROR")
}

// A key function's error, or an empty key, is answered 400, wraps
// limiter.ErrNoKey (as under a limiter.Policy) and is reported.
func TestAdmitKeyErrors(t *testing.T) {
	_, l := newGuardLocker(t)
	cause := errors.New("order id is not a number")
	cases := []struct {
		name string
		key  limiter.KeyFunc
		want error
	}{
		{"no path value", nil, limiter.ErrNoKey},
		{"empty key", func(*http.Request) (string, error) { return "", nil }, limiter.ErrNoKey},
		{"key error of its own", func(*http.Request) (string, error) { return "", cause }, cause},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			g, err := lockguard.NewGuard("order", l, limiter.PathValueKey("id"), 10*time.Second,
				lockguard.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			require.NoError(t, err)
			_, done, rj := g.Admit(nil, httptest.NewRequest(http.MethodPost, "/orders/", nil), tc.key)
			require.NotNil(t, rj)
			assert.Nil(t, done)
			assert.Equal(t, http.StatusBadRequest, rj.Status)
			assert.ErrorIs(t, rj.Err, limiter.ErrNoKey)
			assert.ErrorIs(t, rj.Err, tc.want)
			rec := httptest.NewRecorder()
			rj.Write(rec)
			assert.JSONEq(t, `{"error":"invalid resource key"}`, rec.Body.String())
			assert.Contains(t, logs.String(), "level=WARN")
			assert.Contains(t, logs.String(), "no lock key")
			assert.Contains(t, logs.String(), "guard=order")
		})
	}
}

// A Guard fails closed by default; WithFailMode(limiter.FailOpen) serves the
// request without a lock instead.
func TestAdmitFailMode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []lockguard.GuardOption
		status int // 0: served
	}{
		{"default", nil, http.StatusServiceUnavailable},
		{"FailClosed", []lockguard.GuardOption{lockguard.WithFailMode(limiter.FailClosed)}, http.StatusServiceUnavailable},
		{"FailOpen", []lockguard.GuardOption{lockguard.WithFailMode(limiter.FailOpen)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, l := newGuardLocker(t)
			g, err := lockguard.NewGuard("order", l, limiter.PathValueKey("id"), 10*time.Second,
				append([]lockguard.GuardOption{lockguard.WithLogger(nil)}, tc.opts...)...)
			require.NoError(t, err)
			require.NoError(t, st.Close()) // every store call fails from now on
			r := httptest.NewRequest(http.MethodPost, "/orders/1", nil)
			r.SetPathValue("id", "1")
			next, done, rj := g.Admit(nil, r, nil)
			if tc.status != 0 {
				require.NotNil(t, rj)
				assert.Equal(t, tc.status, rj.Status)
				rec := httptest.NewRecorder()
				rj.Write(rec)
				assert.JSONEq(t, `{"error":"lock service unavailable"}`, rec.Body.String())
				return
			}
			require.Nil(t, rj)
			assert.Nil(t, done, "nothing to release")
			assert.Same(t, r, next)
			_, ok := lockguard.FromContext(next.Context())
			assert.False(t, ok, "served without a lock")
		})
	}
}

// Failures are logged at most once per second per kind and Guard, as a
// limiter.Policy logs its own: an outage does not flood the log.
func TestAdmitLogThrottled(t *testing.T) {
	st, l := newGuardLocker(t)
	logs := &countingHandler{counts: map[string]int{}}
	g, err := lockguard.NewGuard("order", l, limiter.PathValueKey("id"), 10*time.Second,
		lockguard.WithLogger(slog.New(logs)))
	require.NoError(t, err)
	require.NoError(t, st.Close())
	for range 100 {
		r := httptest.NewRequest(http.MethodPost, "/orders/1", nil)
		r.SetPathValue("id", "1")
		_, _, rj := g.Admit(nil, r, nil)
		require.NotNil(t, rj)
		_, _, rj = g.Admit(nil, httptest.NewRequest(http.MethodPost, "/orders/", nil), nil)
		require.NotNil(t, rj)
	}
	got := logs.snapshot()
	assert.Equal(t, 1, got["sluice: lock store failed, request refused (fail-closed)"], "logged: %v", got)
	assert.Equal(t, 1, got["sluice: request refused: no lock key"], "logged: %v", got)
	assert.Len(t, got, 2, "logged: %v", got)
}

// Guards of different names never share a lock; one Guard mounted on two
// routes lets one request at a time work on the resource across both.
func TestGuardNamesSeparateLocks(t *testing.T) {
	_, l := newGuardLocker(t)
	orders, err := lockguard.NewGuard("order", l, limiter.PathValueKey("id"), 10*time.Second, lockguard.WithLogger(nil))
	require.NoError(t, err)
	carts, err := lockguard.NewGuard("cart", l, limiter.PathValueKey("id"), 10*time.Second, lockguard.WithLogger(nil))
	require.NoError(t, err)
	req := func(path string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		r.SetPathValue("id", "42")
		return r
	}
	_, done, rj := orders.Admit(nil, req("/orders/42/pay"), nil)
	require.Nil(t, rj)
	defer done(0)

	_, doneCart, rj := carts.Admit(nil, req("/carts/42/checkout"), nil)
	require.Nil(t, rj, "cart 42 is not order 42")
	doneCart(0)

	_, _, rj = orders.Admit(nil, req("/orders/42/cancel"), nil)
	require.NotNil(t, rj, "cancelling order 42 while it is being paid")
	assert.Equal(t, http.StatusConflict, rj.Status)
}

// A request cancelled while it waits for the lock is neither a conflict nor
// a store failure.
func TestAdmitCancelledWhileWaiting(t *testing.T) {
	_, l := newGuardLocker(t)
	g, err := lockguard.NewGuard("job", l, func(*http.Request) (string, error) { return "k", nil }, 10*time.Second,
		lockguard.WithWait(10*time.Second), lockguard.WithLogger(nil))
	require.NoError(t, err)
	_, release, rj := g.Admit(nil, httptest.NewRequest(http.MethodPost, "/", nil), nil)
	require.Nil(t, rj)
	defer release(0)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, _, rj = g.Admit(nil, httptest.NewRequest(http.MethodPost, "/", nil).WithContext(ctx), nil)
	require.NotNil(t, rj)
	assert.Equal(t, http.StatusServiceUnavailable, rj.Status)
	assert.Equal(t, "request cancelled", rj.Message)
	assert.ErrorIs(t, rj.Err, context.Canceled)
}

// Every guarded request's keep-alive ends with its release.
func TestAdmitNoGoroutineLeak(t *testing.T) {
	_, l := newGuardLocker(t)
	g, err := lockguard.NewGuard("path", l, func(r *http.Request) (string, error) { return r.URL.Path, nil }, time.Minute,
		lockguard.WithLogger(nil))
	require.NoError(t, err)
	before := runtime.NumGoroutine()
	for i := range 100 {
		r, release, rj := g.Admit(nil, httptest.NewRequest(http.MethodPost, "/orders/"+strconv.Itoa(i%7), nil), nil)
		require.Nil(t, rj)
		_, ok := lockguard.FromContext(r.Context())
		require.True(t, ok)
		release(0)
	}
	settleGoroutines(t, before)
}

// WithDenyHandler replaces the default answer to a rejection, for every
// adapter that writes it.
func TestWithDenyHandler(t *testing.T) {
	_, l := newGuardLocker(t)
	g, err := lockguard.NewGuard("order", l, limiter.PathValueKey("id"), 10*time.Second,
		lockguard.WithLogger(nil),
		lockguard.WithDenyHandler(func(w http.ResponseWriter, r *http.Request, rj *lockguard.Rejection) {
			w.Header().Set("X-Order", r.PathValue("id"))
			http.Error(w, "busy for "+rj.RetryAfter.Round(time.Second).String(), rj.Status)
		}))
	require.NoError(t, err)
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/orders/7", nil)
		r.SetPathValue("id", "7")
		return r
	}
	_, done, rj := g.Admit(nil, req(), nil)
	require.Nil(t, rj)
	defer done(0)
	_, _, rj = g.Admit(nil, req(), nil)
	require.NotNil(t, rj)
	w := httptest.NewRecorder()
	rj.Write(w)
	assert.Equal(t, http.StatusConflict, w.Code)
	assert.Equal(t, "7", w.Header().Get("X-Order"))
	assert.Equal(t, "busy for 10s\n", w.Body.String())
	assert.ErrorIs(t, rj, lockguard.ErrHeld, "a Rejection unwraps to its reason")
}
