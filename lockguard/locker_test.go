package lockguard_test

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/guardtest"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

func TestNew(t *testing.T) {
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	cases := []struct {
		name  string
		store store.LockStore
		opts  []lockguard.Option
		ok    bool
	}{
		{"defaults", st, nil, true},
		{"all-options", st, []lockguard.Option{
			lockguard.WithRetryStrategy(lockguard.NoRetry()),
			lockguard.WithReleaseTimeout(time.Second),
			lockguard.WithMaxHold(time.Minute),
			lockguard.WithStoreTimeout(time.Second),
		}, true},
		{"no-store-timeout", st, []lockguard.Option{lockguard.WithStoreTimeout(0)}, true},
		{"nil-option", st, []lockguard.Option{nil}, true},
		{"nil-store", nil, nil, false},
		{"zero-release-timeout", st, []lockguard.Option{lockguard.WithReleaseTimeout(0)}, false},
		{"negative-max-hold", st, []lockguard.Option{lockguard.WithMaxHold(-time.Second)}, false},
		{"negative-store-timeout", st, []lockguard.Option{lockguard.WithStoreTimeout(-time.Second)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := lockguard.New(tc.store, tc.opts...)
			if tc.ok {
				require.NoError(t, err)
				assert.NotNil(t, l)
			} else {
				assert.ErrorIs(t, err, lockguard.ErrInvalidConfig)
				assert.Nil(t, l)
			}
		})
	}
}

func TestLockLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		ctx := context.Background()
		a, b := newLocker(t, inst.Store), newLocker(t, inst.Store)

		lock, err := a.Obtain(ctx, "report", 10*time.Second)
		require.NoError(t, err)
		assert.Equal(t, "report", lock.Key())
		assert.Regexp(t, regexp.MustCompile(`^[A-Z2-7]{26}$`), lock.Token())
		assert.Positive(t, lock.Fence())

		ttl, err := lock.TTL(ctx)
		require.NoError(t, err)
		assert.Greater(t, ttl, 5*time.Second)
		assert.LessOrEqual(t, ttl, 10*time.Second)

		require.NoError(t, lock.Extend(ctx, time.Minute))
		ttl, err = lock.TTL(ctx)
		require.NoError(t, err)
		assert.Greater(t, ttl, 50*time.Second, "extended")

		// Held by another: the error carries the holder's TTL.
		_, err = b.Obtain(ctx, "report", time.Second)
		var held *lockguard.HeldError
		require.ErrorAs(t, err, &held)
		assert.ErrorIs(t, err, lockguard.ErrHeld)
		assert.NotErrorIs(t, err, lockguard.ErrStore)
		assert.Equal(t, "report", held.Key)
		assert.Equal(t, 1, held.Attempts)
		assert.Greater(t, held.TTL, 50*time.Second)
		assert.LessOrEqual(t, held.TTL, time.Minute)

		// Another key is free.
		other, err := b.Obtain(ctx, "other", time.Second)
		require.NoError(t, err)
		require.NoError(t, other.Release(ctx))

		require.NoError(t, lock.Release(ctx))
		assert.ErrorIs(t, lock.Release(ctx), lockguard.ErrNotHeld, "second release")
		assert.ErrorIs(t, lock.Extend(ctx, time.Second), lockguard.ErrNotHeld, "extend after release")
		_, err = lock.TTL(ctx)
		assert.ErrorIs(t, err, lockguard.ErrNotHeld, "ttl after release")

		again, err := b.Obtain(ctx, "report", time.Second)
		require.NoError(t, err)
		assert.Greater(t, again.Fence(), lock.Fence())
		assert.NotEqual(t, lock.Token(), again.Token())
		assert.ErrorIs(t, lock.Extend(ctx, time.Second), lockguard.ErrNotHeld, "the old owner cannot extend the new owner's lock")
		require.NoError(t, again.Release(ctx))
	})
}

func TestObtainInvalid(t *testing.T) {
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	l := newLocker(t, st)
	cases := []struct {
		name string
		key  string
		ttl  time.Duration
	}{
		{"empty-key", "", time.Second},
		{"zero-ttl", "k", 0},
		{"negative-ttl", "k", -time.Second},
		{"sub-millisecond-ttl", "k", time.Microsecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lock, err := l.Obtain(context.Background(), tc.key, tc.ttl)
			assert.ErrorIs(t, err, store.ErrInvalidArgument)
			assert.NotErrorIs(t, err, lockguard.ErrStore)
			assert.Nil(t, lock)
		})
	}
	lock, err := l.Obtain(context.Background(), "k", time.Second)
	require.NoError(t, err)
	assert.ErrorIs(t, lock.Extend(context.Background(), 0), store.ErrInvalidArgument)
}

func TestObtainWaits(t *testing.T) {
	ms := time.Millisecond
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		ctx := context.Background()
		holder := newLocker(t, inst.Store)

		t.Run("until-released", func(t *testing.T) {
			h, err := holder.Obtain(ctx, "released", 10*time.Second)
			require.NoError(t, err)
			time.AfterFunc(150*ms, func() { _ = h.Release(ctx) })
			lock, err := newLocker(t, inst.Store).Obtain(ctx, "released", time.Second,
				lockguard.Retry(lockguard.LinearBackoff(10*ms, 10*ms)), lockguard.WaitFor(5*time.Second))
			require.NoError(t, err)
			assert.Greater(t, lock.Fence(), h.Fence())
			require.NoError(t, lock.Release(ctx))
		})

		t.Run("until-expired-with-default-backoff", func(t *testing.T) {
			h, err := holder.Obtain(ctx, "expires", 200*ms)
			require.NoError(t, err)
			lock, err := newLocker(t, inst.Store).Obtain(ctx, "expires", time.Second, lockguard.WaitFor(5*time.Second))
			require.NoError(t, err)
			assert.Greater(t, lock.Fence(), h.Fence())
		})

		t.Run("locker-strategy-until-ctx-deadline", func(t *testing.T) {
			_, err := holder.Obtain(ctx, "ctx-deadline", time.Minute)
			require.NoError(t, err)
			l := newLocker(t, inst.Store, lockguard.WithRetryStrategy(lockguard.LinearBackoff(20*ms, 20*ms)))
			cctx, cancel := context.WithTimeout(ctx, 300*ms)
			defer cancel()
			start := time.Now()
			_, err = l.Obtain(cctx, "ctx-deadline", time.Second)
			var held *lockguard.HeldError
			require.ErrorAs(t, err, &held, "giving up at the context's deadline is a held error")
			assert.NotErrorIs(t, err, lockguard.ErrStore)
			assert.Greater(t, held.Attempts, 2)
			assert.Greater(t, held.TTL, 50*time.Second)
			assert.GreaterOrEqual(t, time.Since(start), 200*ms, "it waited")
		})

		t.Run("gives-up-at-wait-for", func(t *testing.T) {
			_, err := holder.Obtain(ctx, "wait-for", time.Minute)
			require.NoError(t, err)
			start := time.Now()
			_, err = newLocker(t, inst.Store).Obtain(ctx, "wait-for", time.Second, lockguard.WaitFor(300*ms))
			var held *lockguard.HeldError
			require.ErrorAs(t, err, &held)
			assert.Greater(t, held.Attempts, 2)
			assert.GreaterOrEqual(t, time.Since(start), 300*ms, "the last attempt is at the deadline")
		})

		t.Run("limit-tries", func(t *testing.T) {
			_, err := holder.Obtain(ctx, "tries", time.Minute)
			require.NoError(t, err)
			_, err = newLocker(t, inst.Store).Obtain(ctx, "tries", time.Second,
				lockguard.Retry(lockguard.LimitTries(lockguard.LinearBackoff(ms, ms), 3)))
			var held *lockguard.HeldError
			require.ErrorAs(t, err, &held)
			assert.Equal(t, 3, held.Attempts)
		})

		t.Run("wait-for-zero-tries-once", func(t *testing.T) {
			_, err := holder.Obtain(ctx, "once", time.Minute)
			require.NoError(t, err)
			l := newLocker(t, inst.Store, lockguard.WithRetryStrategy(lockguard.LinearBackoff(ms, ms)))
			_, err = l.Obtain(ctx, "once", time.Second, lockguard.WaitFor(0))
			var held *lockguard.HeldError
			require.ErrorAs(t, err, &held)
			assert.Equal(t, 1, held.Attempts)
		})

		t.Run("ctx-cancelled-while-waiting", func(t *testing.T) {
			_, err := holder.Obtain(ctx, "cancel", time.Minute)
			require.NoError(t, err)
			cctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(100*ms, cancel)
			_, err = newLocker(t, inst.Store).Obtain(cctx, "cancel", time.Second, lockguard.WaitFor(10*time.Second))
			assert.ErrorIs(t, err, context.Canceled)
			assert.NotErrorIs(t, err, lockguard.ErrHeld)
			assert.NotErrorIs(t, err, lockguard.ErrStore)
		})
	})
}

func TestFenceIncreases(t *testing.T) {
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		ctx := context.Background()
		l := newLocker(t, inst.Store)
		var last int64
		for i := range 10 {
			lock, err := l.Obtain(ctx, "fenced", time.Second)
			require.NoError(t, err)
			require.Greater(t, lock.Fence(), last, "acquisition %d", i)
			last = lock.Fence()
			require.NoError(t, lock.Release(ctx))
		}
		// Also when the previous owner's lock expired instead of being
		// released.
		lock, err := l.Obtain(ctx, "fenced", 30*time.Millisecond)
		require.NoError(t, err)
		require.Greater(t, lock.Fence(), last)
		last = lock.Fence()
		lock, err = l.Obtain(ctx, "fenced", time.Second, lockguard.WaitFor(5*time.Second))
		require.NoError(t, err)
		require.Greater(t, lock.Fence(), last)
	})
}

func TestReleaseWithCancelledContext(t *testing.T) {
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		l := newLocker(t, inst.Store)
		ctx, cancel := context.WithCancel(context.Background())
		lock, err := l.Obtain(ctx, "cancelled", time.Minute)
		require.NoError(t, err)
		cancel()
		require.NoError(t, lock.Release(ctx), "release runs on a detached context")
		again, err := l.Obtain(context.Background(), "cancelled", time.Second)
		require.NoError(t, err, "the resource is free")
		require.NoError(t, again.Release(context.Background()))
	})
}

// TestErrorKinds checks that the four kinds of failure stay apart.
func TestErrorKinds(t *testing.T) {
	ctx := context.Background()
	all := []error{lockguard.ErrHeld, lockguard.ErrNotHeld, lockguard.ErrStore, context.Canceled, store.ErrInvalidArgument}
	check := func(t *testing.T, err error, want error) {
		t.Helper()
		require.Error(t, err)
		for _, e := range all {
			if e == want {
				assert.ErrorIs(t, err, e)
			} else {
				assert.NotErrorIs(t, err, e)
			}
		}
	}

	t.Run("closed-memstore", func(t *testing.T) {
		st, err := memstore.New()
		require.NoError(t, err)
		l := newLocker(t, st)
		lock, err := l.Obtain(ctx, "k", time.Minute)
		require.NoError(t, err)
		require.NoError(t, st.Close())
		_, err = l.Obtain(ctx, "j", time.Second)
		check(t, err, lockguard.ErrStore)
		assert.ErrorIs(t, err, store.ErrClosed, "the store's error is wrapped")
		check(t, lock.Release(ctx), lockguard.ErrStore)
		check(t, lock.Extend(ctx, time.Second), lockguard.ErrStore)
		_, err = lock.TTL(ctx)
		check(t, err, lockguard.ErrStore)
	})

	t.Run("redis-error", func(t *testing.T) {
		var m *miniredis.Miniredis
		inst := miniredisBackend(&m).New(t)
		l := newLocker(t, inst.Store)
		lock, err := l.Obtain(ctx, "k", time.Minute)
		require.NoError(t, err)
		m.SetError("ERR injected failure")
		_, err = l.Obtain(ctx, "j", time.Second)
		check(t, err, lockguard.ErrStore)
		check(t, lock.Extend(ctx, time.Second), lockguard.ErrStore)
		m.SetError("")
		m.Close()
		_, err = l.Obtain(ctx, "j", time.Second)
		check(t, err, lockguard.ErrStore)
	})

	t.Run("held-not-held-cancelled-invalid", func(t *testing.T) {
		st, err := memstore.New()
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		l := newLocker(t, st)
		lock, err := l.Obtain(ctx, "k", time.Minute)
		require.NoError(t, err)
		_, err = l.Obtain(ctx, "k", time.Second)
		check(t, err, lockguard.ErrHeld)

		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err = l.Obtain(cctx, "j", time.Second)
		check(t, err, context.Canceled)
		check(t, lock.Extend(cctx, time.Second), context.Canceled)

		_, err = l.Obtain(ctx, "", time.Second)
		check(t, err, store.ErrInvalidArgument)

		require.NoError(t, lock.Release(ctx))
		check(t, lock.Extend(ctx, time.Second), lockguard.ErrNotHeld)
	})
}

func TestHeldErrorMessage(t *testing.T) {
	err := &lockguard.HeldError{Key: "order:1", TTL: 1500 * time.Millisecond, Attempts: 2}
	assert.Equal(t, `lockguard: lock "order:1" held by another owner (remaining ttl 1.5s, 2 attempts)`, err.Error())
	assert.True(t, errors.Is(err, lockguard.ErrHeld))
}

var errLostReply = errors.New("lost reply")

// lostReplyStore runs Acquire on the store it wraps and then fails the call
// with what fail returns, as a call whose reply was lost does: a timeout, a
// dropped connection or a cancelled request after the store took the lock.
type lostReplyStore struct {
	store.LockStore
	fail func() error
}

func (s lostReplyStore) Acquire(ctx context.Context, key, token string, ttl time.Duration) (store.LockResult, error) {
	if _, err := s.LockStore.Acquire(ctx, key, token, ttl); err != nil {
		return store.LockResult{}, err
	}
	return store.LockResult{}, s.fail()
}

// TestObtainUncertainFailureReleases checks that an acquire whose outcome is
// unknown does not leave the resource locked for the whole TTL with nobody
// holding it.
func TestObtainUncertainFailureReleases(t *testing.T) {
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		cases := []struct {
			name string
			want error
			opts []lockguard.ObtainOption
			// fail returns the error of the acquire, given the caller's
			// cancel function.
			fail func(cancel context.CancelFunc) error
		}{
			{"store-error", lockguard.ErrStore, nil,
				func(context.CancelFunc) error { return errLostReply }},
			{"store-timeout", lockguard.ErrStore, nil,
				func(context.CancelFunc) error { return context.DeadlineExceeded }},
			{"store-error-while-waiting", lockguard.ErrStore, []lockguard.ObtainOption{lockguard.WaitFor(time.Second)},
				func(context.CancelFunc) error { return errLostReply }},
			{"caller-cancelled", context.Canceled, nil,
				func(cancel context.CancelFunc) error { cancel(); return context.Canceled }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				flaky := newLocker(t, lostReplyStore{inst.Store, func() error { return tc.fail(cancel) }})
				key := "order:" + tc.name
				lock, err := flaky.Obtain(ctx, key, time.Minute, tc.opts...)
				require.ErrorIs(t, err, tc.want)
				assert.NotErrorIs(t, err, lockguard.ErrHeld)
				assert.Nil(t, lock)

				lock, err = newLocker(t, inst.Store).Obtain(context.Background(), key, time.Second)
				require.NoError(t, err, "the failed attempt's token does not hold the resource")
				require.NoError(t, lock.Release(context.Background()))
			})
		}
	})
}

// TestStoreTimeout hangs Redis behind a proxy that drops every byte: with a
// default go-redis client (3 s ReadTimeout, no ContextTimeoutEnabled) and no
// timeout in the store, the Locker's store timeout ends each call, and the
// caller gets a store failure, not a context error of its own.
func TestStoreTimeout(t *testing.T) {
	m := miniredis.RunT(t)
	proxy := newBlackhole(t, m.Addr())
	client := redis.NewClient(&redis.Options{Addr: proxy.addr, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	st, err := redisstore.New(client)
	require.NoError(t, err)
	l := newLocker(t, st, lockguard.WithStoreTimeout(200*time.Millisecond))

	ctx := context.Background()
	lock, err := l.Obtain(ctx, "held", time.Minute)
	require.NoError(t, err)
	proxy.Drop(true)

	cases := []struct {
		name string
		call func() error
	}{
		{"obtain", func() error { _, err := l.Obtain(ctx, "other", time.Minute); return err }},
		{"obtain-waiting", func() error {
			_, err := l.Obtain(ctx, "other", time.Minute, lockguard.WaitFor(10*time.Second))
			return err
		}},
		{"extend", func() error { return lock.Extend(ctx, time.Minute) }},
		{"ttl", func() error { _, err := lock.TTL(ctx); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.call()
			// A sanity bound far below the ReadTimeout, not a speed test.
			assert.Less(t, time.Since(start), 2*time.Second, "the store timeout ended the call")
			assert.ErrorIs(t, err, lockguard.ErrStore)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		})
	}

	proxy.Drop(false)
	require.NoError(t, lock.Release(ctx), "the store answers again")
}

// A store that answers from memory gets no per-call deadline, however short
// the store timeout: memstore fails a call whose context has ended.
func TestStoreTimeoutInProcess(t *testing.T) {
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	l := newLocker(t, st, lockguard.WithStoreTimeout(time.Nanosecond))
	ctx := context.Background()
	lock, err := l.Obtain(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.NoError(t, lock.Extend(ctx, time.Minute))
	_, err = lock.TTL(ctx)
	require.NoError(t, err)
	require.NoError(t, lock.Release(ctx))
}
