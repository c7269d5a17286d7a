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
	key := lockguard.PathValue("id", "order:")
	cases := []struct {
		name   string
		locker *lockguard.Locker
		key    lockguard.KeyFunc
		ttl    time.Duration
		opts   []lockguard.GuardOption
		ok     bool
	}{
		{"defaults", l, key, time.Second, nil, true},
		{"all-options", l, key, time.Second, []lockguard.GuardOption{
			lockguard.WithWait(time.Second), lockguard.WithFailOpen(true), lockguard.WithLogger(slog.Default()), nil,
		}, true},
		{"nil-locker", nil, key, time.Second, nil, false},
		{"nil-key", l, nil, time.Second, nil, false},
		{"zero-ttl", l, key, 0, nil, false},
		{"negative-wait", l, key, time.Second, []lockguard.GuardOption{lockguard.WithWait(-time.Second)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := lockguard.NewGuard(tc.locker, tc.key, tc.ttl, tc.opts...)
			if tc.ok {
				require.NoError(t, err)
				assert.NotNil(t, g)
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

func TestPathValue(t *testing.T) {
	key := lockguard.PathValue("id", "order:")
	r := httptest.NewRequest(http.MethodPost, "/orders/42/pay", nil)
	_, err := key(r)
	assert.ErrorIs(t, err, lockguard.ErrNoKey, "no path value")
	r.SetPathValue("id", "42")
	k, err := key(r)
	require.NoError(t, err)
	assert.Equal(t, "order:42", k)
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
	g, err := lockguard.NewGuard(l, lockguard.PathValue("id", "order:"), 10*time.Second, lockguard.WithLogger(logger))
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
	assert.Equal(t, "order:1", lock.Key())

	_, release2, rj := g.Admit(nil, req(), nil)
	require.NotNil(t, rj)
	assert.Equal(t, http.StatusConflict, rj.Status)
	assert.Equal(t, 10*time.Second, rj.RetryAfter.Round(time.Second))
	assert.ErrorIs(t, rj.Err, lockguard.ErrHeld)
	assert.Nil(t, release2, "nothing to release")

	// A key function of the adapter's own overrides the Guard's.
	r3, release3, rj := g.Admit(nil, req(), func(*http.Request) (string, error) { return "order:2", nil })
	require.Nil(t, rj)
	lock3, _ := lockguard.FromContext(r3.Context())
	assert.Equal(t, "order:2", lock3.Key())
	release3(0)

	_, _, rj = g.Admit(nil, req(), func(*http.Request) (string, error) { return "", nil })
	require.NotNil(t, rj)
	assert.Equal(t, http.StatusBadRequest, rj.Status)
	assert.ErrorIs(t, rj.Err, lockguard.ErrNoKey)

	release1(0)
	release1(0) // safe twice
	assert.ErrorIs(t, r1.Context().Err(), context.Canceled, "the handler's context ends with the release")
	_, err = lock.TTL(context.Background())
	assert.ErrorIs(t, err, lockguard.ErrNotHeld, "released")

	// A store failure is logged and answered 503.
	require.NoError(t, st.Close())
	_, _, rj = g.Admit(nil, req(), nil)
	require.NotNil(t, rj)
	assert.Equal(t, http.StatusServiceUnavailable, rj.Status)
	assert.ErrorIs(t, rj.Err, lockguard.ErrStore)
	assert.Contains(t, logs.String(), "fail-closed")
	assert.Contains(t, logs.String(), "order:1")
}

// A request cancelled while it waits for the lock is neither a conflict nor
// a store failure.
func TestAdmitCancelledWhileWaiting(t *testing.T) {
	_, l := newGuardLocker(t)
	g, err := lockguard.NewGuard(l, func(*http.Request) (string, error) { return "k", nil }, 10*time.Second,
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
	g, err := lockguard.NewGuard(l, func(r *http.Request) (string, error) { return r.URL.Path, nil }, time.Minute,
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
	g, err := lockguard.NewGuard(l, lockguard.PathValue("id", "order:"), 10*time.Second,
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
