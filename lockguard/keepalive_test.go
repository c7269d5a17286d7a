package lockguard_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/guardtest"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

// TestKeepAlivePastTTL runs work for more than three TTLs: the lock stays
// held all along and nobody else gets it.
func TestKeepAlivePastTTL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		ctx := context.Background()
		owner, rival := newLocker(t, inst.Store), newLocker(t, inst.Store)
		tries := 0
		err := owner.Do(ctx, "job", ttl, func(ctx context.Context) error {
			end := time.Now().Add(4 * ttl)
			for time.Now().Before(end) {
				if _, err := rival.Obtain(ctx, "job", ttl); !errors.Is(err, lockguard.ErrHeld) {
					return errors.New("a rival got in (or failed otherwise): " + errString(err))
				}
				tries++
				select {
				case <-ctx.Done():
					return context.Cause(ctx)
				case <-time.After(20 * time.Millisecond):
				}
			}
			return nil
		})
		require.NoError(t, err)
		assert.Greater(t, tries, 10)
		lock, err := rival.Obtain(ctx, "job", ttl)
		require.NoError(t, err, "released when the work returned")
		require.NoError(t, lock.Release(ctx))
	})
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// TestKeepAliveLostLock deletes the lock behind its owner's back: the work's
// context is cancelled with ErrLockLost.
func TestKeepAliveLostLock(t *testing.T) {
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		ctx := context.Background()
		l := newLocker(t, inst.Store)
		var cause error
		err := l.Do(ctx, "job", 300*time.Millisecond, func(ctx context.Context) error {
			lock, ok := lockguard.FromContext(ctx)
			if !ok {
				return errors.New("no lock in the context")
			}
			if err := inst.Delete(ctx, lock.Key(), lock.Token()); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				cause = context.Cause(ctx)
			case <-time.After(5 * time.Second):
			}
			return nil
		})
		require.Error(t, cause, "the work's context was cancelled")
		assert.ErrorIs(t, cause, lockguard.ErrLockLost)
		assert.ErrorIs(t, cause, lockguard.ErrNotHeld)
		assert.ErrorIs(t, err, lockguard.ErrLockLost, "Do reports that the work may not have been exclusive")
	})
}

// TestKeepAliveStoreErrors injects errors into Redis: the keep-alive retries
// while the lock may still be held, and reports the lock lost once its TTL
// would have lapsed.
func TestKeepAliveStoreErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("outage-shorter-than-ttl", func(t *testing.T) {
		var m *miniredis.Miniredis
		inst := miniredisBackend(&m).New(t)
		const ttl = 600 * time.Millisecond
		owner, rival := newLocker(t, inst.Store), newLocker(t, inst.Store)
		err := owner.Do(ctx, "job", ttl, func(ctx context.Context) error {
			time.Sleep(ttl / 4)
			m.SetError("ERR injected outage")
			time.Sleep(ttl / 4)
			m.SetError("")
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(2 * ttl):
			}
			if _, err := rival.Obtain(ctx, "job", ttl); !errors.Is(err, lockguard.ErrHeld) {
				return errors.New("the lock did not survive the outage: " + errString(err))
			}
			return nil
		})
		require.NoError(t, err)
	})

	t.Run("outage-past-ttl", func(t *testing.T) {
		var m *miniredis.Miniredis
		inst := miniredisBackend(&m).New(t)
		const ttl = 300 * time.Millisecond
		l := newLocker(t, inst.Store)
		var cause error
		err := l.Do(ctx, "job", ttl, func(ctx context.Context) error {
			m.SetError("ERR injected outage")
			defer m.SetError("")
			select {
			case <-ctx.Done():
				cause = context.Cause(ctx)
			case <-time.After(5 * time.Second):
			}
			return nil
		})
		require.Error(t, cause, "the work's context was cancelled")
		assert.ErrorIs(t, cause, lockguard.ErrLockLost)
		assert.ErrorIs(t, cause, lockguard.ErrStore, "the cause carries the store error")
		assert.ErrorIs(t, err, lockguard.ErrLockLost)
	})
}

func TestKeepAliveMaxHold(t *testing.T) {
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		ctx := context.Background()
		l := newLocker(t, inst.Store, lockguard.WithMaxHold(700*time.Millisecond))
		var cause error
		err := l.Do(ctx, "job", 300*time.Millisecond, func(ctx context.Context) error {
			select {
			case <-ctx.Done():
				cause = context.Cause(ctx)
				return ctx.Err()
			case <-time.After(5 * time.Second):
				return nil
			}
		})
		assert.ErrorIs(t, cause, lockguard.ErrMaxHoldExceeded)
		assert.ErrorIs(t, err, lockguard.ErrMaxHoldExceeded)
		assert.ErrorIs(t, err, context.Canceled)

		// Work that ends in time is not affected.
		require.NoError(t, l.Do(ctx, "job", 300*time.Millisecond, func(context.Context) error { return nil }))
	})
}

// Cancelling the caller's context cancels the work but does not stop the
// extending: the lock lives as long as the work really runs.
func TestKeepAliveOutlivesCancelledParent(t *testing.T) {
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		const ttl = 300 * time.Millisecond
		l, rival := newLocker(t, inst.Store), newLocker(t, inst.Store)
		parent, cancel := context.WithCancel(context.Background())
		lock, err := l.Obtain(parent, "job", ttl)
		require.NoError(t, err)
		work, stop := lock.KeepAlive(parent)
		cancel()
		<-work.Done()
		assert.ErrorIs(t, context.Cause(work), context.Canceled)
		time.Sleep(3 * ttl)
		_, err = rival.Obtain(context.Background(), "job", ttl)
		assert.ErrorIs(t, err, lockguard.ErrHeld, "still extended while the work winds down")
		stop()
		stop() // safe twice
		require.NoError(t, lock.Release(parent))
	})
}

func TestKeepAliveNoGoroutineLeak(t *testing.T) {
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	before := runtime.NumGoroutine()

	l := newLocker(t, st, lockguard.WithMaxHold(50*time.Millisecond))
	for range 50 { // stopped while running
		lock, err := l.Obtain(ctx, "job", 30*time.Millisecond)
		require.NoError(t, err)
		work, stop := lock.KeepAlive(ctx)
		stop()
		assert.ErrorIs(t, work.Err(), context.Canceled, "stop cancels the work's context")
		require.NoError(t, lock.Release(ctx))
	}
	{ // ended by a lost lock, then stopped
		lock, err := l.Obtain(ctx, "lost", 30*time.Millisecond)
		require.NoError(t, err)
		work, stop := lock.KeepAlive(ctx)
		require.NoError(t, st.Release(ctx, lock.Key(), lock.Token()))
		<-work.Done()
		stop()
	}
	{ // ended by the maximum hold time, then stopped
		lock, err := l.Obtain(ctx, "max", 30*time.Millisecond)
		require.NoError(t, err)
		work, stop := lock.KeepAlive(ctx)
		<-work.Done()
		stop()
	}
	settleGoroutines(t, before)
}

func TestDo(t *testing.T) {
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	l := newLocker(t, st)

	t.Run("returns-fn-error", func(t *testing.T) {
		boom := errors.New("boom")
		err := l.Do(ctx, "job", time.Second, func(context.Context) error { return boom })
		assert.Same(t, boom, err)
	})

	t.Run("passes-the-lock", func(t *testing.T) {
		var fence int64
		require.NoError(t, l.Do(ctx, "job", time.Second, func(ctx context.Context) error {
			lock, ok := lockguard.FromContext(ctx)
			require.True(t, ok)
			fence = lock.Fence()
			return nil
		}))
		assert.Positive(t, fence)
	})

	t.Run("held", func(t *testing.T) {
		lock, err := l.Obtain(ctx, "busy", time.Minute)
		require.NoError(t, err)
		t.Cleanup(func() { _ = lock.Release(ctx) })
		ran := false
		err = l.Do(ctx, "busy", time.Second, func(context.Context) error { ran = true; return nil })
		assert.ErrorIs(t, err, lockguard.ErrHeld)
		assert.False(t, ran)
	})

	t.Run("releases-on-panic", func(t *testing.T) {
		assert.PanicsWithValue(t, "boom", func() {
			_ = l.Do(ctx, "panics", time.Minute, func(context.Context) error { panic("boom") })
		})
		lock, err := l.Obtain(ctx, "panics", time.Second)
		require.NoError(t, err, "released despite the panic")
		require.NoError(t, lock.Release(ctx))
	})
}

// A keep-alive started late, when most of the TTL has passed, extends before
// the lock lapses.
func TestKeepAliveStartedLate(t *testing.T) {
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		const ttl = 600 * time.Millisecond
		ctx := context.Background()
		l, rival := newLocker(t, inst.Store), newLocker(t, inst.Store)
		lock, err := l.Obtain(ctx, "late", ttl)
		require.NoError(t, err)
		time.Sleep(ttl * 2 / 3)
		work, stop := lock.KeepAlive(ctx)
		defer stop()
		time.Sleep(ttl)
		assert.NoError(t, work.Err(), "not lost")
		_, err = rival.Obtain(ctx, "late", ttl)
		assert.ErrorIs(t, err, lockguard.ErrHeld)
	})
}
