package lockguard_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

type lockRecorder struct {
	mu     sync.Mutex
	events []limiter.LockEvent
}

func (r *lockRecorder) ObserveDecision(limiter.DecisionEvent) {}

func (r *lockRecorder) ObserveLock(e limiter.LockEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *lockRecorder) outcomes() []limiter.LockOutcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []limiter.LockOutcome
	for _, e := range r.events {
		out = append(out, e.Outcome)
	}
	return out
}

// The Guard tells its Observer about each lock's life: acquired, a
// conflict while held, released with the hold time, and lost when the lock
// is deleted under a running handler.
func TestGuardObserver(t *testing.T) {
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	locker, err := lockguard.New(st)
	require.NoError(t, err)
	rec := &lockRecorder{}
	g, err := lockguard.NewGuard("orders", locker, limiter.PathValueKey("id"), time.Minute, lockguard.WithObserver(rec))
	require.NoError(t, err)

	req := func(id string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/orders/"+id+"/pay", nil)
		r.SetPathValue("id", id)
		return r
	}
	_, done, rj := g.Admit(httptest.NewRecorder(), req("1"), nil)
	require.Nil(t, rj)
	_, _, rj2 := g.Admit(httptest.NewRecorder(), req("1"), nil)
	require.NotNil(t, rj2)
	assert.Equal(t, http.StatusConflict, rj2.Status)
	done(http.StatusOK)

	// Lost: the lock is deleted while the handler runs.
	next, done, rj := g.Admit(httptest.NewRecorder(), req("2"), nil)
	require.Nil(t, rj)
	lock, ok := lockguard.FromContext(next.Context())
	require.True(t, ok)
	require.NoError(t, st.Release(t.Context(), lock.Key(), lock.Token()))
	done(http.StatusOK)

	assert.Equal(t, []limiter.LockOutcome{
		limiter.LockAcquired, limiter.LockConflict, limiter.LockReleased,
		limiter.LockAcquired, limiter.LockLost,
	}, rec.outcomes())
	for _, e := range rec.events {
		assert.Equal(t, "orders", e.Name)
	}
	assert.Positive(t, rec.events[2].Held, "hold time of the released lock")
}

// A release the store fails is one store error, timed once, and the lock
// counts as released (the guard retries the release in the background).
func TestGuardObserverReleaseFails(t *testing.T) {
	st, rec, _, done := admitObserved(t, time.Minute)
	require.NoError(t, st.Close()) // the store fails from now on
	done(http.StatusOK)

	require.Equal(t, []limiter.LockOutcome{limiter.LockAcquired, limiter.LockStoreError, limiter.LockReleased}, rec.outcomes())
	assert.Positive(t, rec.events[1].Latency, "the failed release's store time")
	assert.Zero(t, rec.events[2].Latency, "the same call is not timed twice")
	assert.Positive(t, rec.events[2].Held)
}

// A lock whose store stops answering while the handler runs is lost once
// its TTL has passed (the keep-alive could not extend it): the Observer is
// told lost, after the store error of the release, not released.
func TestGuardObserverLostWhileStoreDown(t *testing.T) {
	st, rec, next, done := admitObserved(t, 300*time.Millisecond)
	require.NoError(t, st.Close()) // the store fails from now on
	select {
	case <-next.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context outlived the lock's TTL")
	}
	require.ErrorIs(t, context.Cause(next.Context()), lockguard.ErrLockLost)
	done(http.StatusOK)

	require.Equal(t, []limiter.LockOutcome{limiter.LockAcquired, limiter.LockStoreError, limiter.LockLost}, rec.outcomes())
	assert.Positive(t, rec.events[2].Held)
}

// admitObserved admits a request for order 1 through a guard of the given
// TTL over a fresh memstore, with a recording Observer and a short release
// timeout, and returns the store, the recorder, the admitted request and
// its done.
func admitObserved(t *testing.T, ttl time.Duration) (*memstore.Store, *lockRecorder, *http.Request, func(int)) {
	t.Helper()
	st, err := memstore.New()
	require.NoError(t, err)
	locker, err := lockguard.New(st, lockguard.WithReleaseTimeout(50*time.Millisecond))
	require.NoError(t, err)
	rec := &lockRecorder{}
	g, err := lockguard.NewGuard("orders", locker, limiter.PathValueKey("id"), ttl,
		lockguard.WithObserver(rec), lockguard.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/orders/1/pay", nil)
	r.SetPathValue("id", "1")
	next, done, rj := g.Admit(httptest.NewRecorder(), r, nil)
	require.Nil(t, rj)
	return st, rec, next, done
}
