package lockguard_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/guardtest"
	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// TestReleaseAfterStall pauses a real redis-server (CLIENT PAUSE ... WRITE)
// while a guarded handler returns: the release times out, and once Redis
// answers again the lock is gone, long before its TTL.
//
// It runs when REDIS_ADDR is set, as the other real-Redis tests do, but
// pauses a redis-server of its own: a pause of the shared server would stall
// the tests of other packages running against it at the same time.
func TestReleaseAfterStall(t *testing.T) {
	redistest.Addr(t) // skips when REDIS_ADDR is unset
	const (
		ttl   = 30 * time.Second
		pause = 1500 * time.Millisecond
	)
	for _, ctxTimeouts := range []bool{true, false} {
		t.Run("ContextTimeoutEnabled="+strconv.FormatBool(ctxTimeouts), func(t *testing.T) {
			addr, _ := redistest.StartServer(t)
			client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: ctxTimeouts})
			t.Cleanup(func() { _ = client.Close() })
			ctl := redis.NewClient(&redis.Options{Addr: addr})
			t.Cleanup(func() { _ = ctl.Close() })
			prefix := redistest.UniquePrefix("sluice-stall")
			st, err := redisstore.New(client, redisstore.WithPrefix(prefix))
			require.NoError(t, err)
			locker := newLocker(t, st, lockguard.WithReleaseTimeout(200*time.Millisecond))
			done := retryDone(locker)
			var logs bytes.Buffer
			guard, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), ttl,
				lockguard.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			require.NoError(t, err)
			ctx := context.Background()
			before := runtime.NumGoroutine()

			r := httptest.NewRequest("POST", "/orders/1/pay", nil)
			r.SetPathValue("id", "1")
			r, finish, rej := guard.Admit(nil, r, nil)
			require.Nil(t, rej)
			lock, ok := lockguard.FromContext(r.Context())
			require.True(t, ok)
			key := guardtest.LockKey(prefix, lock.Key())

			// Writes wait (the release script among them); reads go on.
			require.NoError(t, ctl.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "WRITE").Err())
			paused := time.Now()
			finish(0) // the handler returns
			assert.Less(t, time.Since(paused), pause, "the release does not wait for Redis")
			require.Contains(t, logs.String(), "release failed", "the release ran into the pause")
			left, err := ctl.PTTL(ctx, key).Result()
			require.NoError(t, err)
			require.Greater(t, left, ttl-5*time.Second, "the lock is still there")

			// After the pause the lock goes, within a few seconds rather than
			// the 30 s of its TTL.
			deadline := paused.Add(pause + 5*time.Second)
			for {
				n, err := ctl.Exists(ctx, key).Result()
				require.NoError(t, err)
				if n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the lock is still held %v after Redis woke up", time.Since(paused)-pause)
				}
				time.Sleep(20 * time.Millisecond)
			}
			other, err := newLocker(t, st).Obtain(ctx, lock.Key(), time.Second)
			require.NoError(t, err, "another owner gets the lock")
			require.NoError(t, other.Release(ctx))
			waitDone(t, done)
			settleGoroutines(t, before)
		})
	}
}

// retryDone returns a channel that receives when a goroutine of l retrying a
// failed release ends.
func retryDone(l *lockguard.Locker) <-chan struct{} {
	done := make(chan struct{}, 10)
	lockguard.OnReleaseRetryDone(l, func() { done <- struct{}{} })
	return done
}

// waitDone waits for done, failing t after 10 s.
func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the release retries did not end")
	}
}

// flakyReleaseStore fails the first failures calls to Release with err,
// then releases in the store it wraps; it counts the calls.
type flakyReleaseStore struct {
	store.LockStore
	err      error
	failures int64
	calls    atomic.Int64
	last     atomic.Int64 // time of the last call, in Unix nanoseconds
}

func (s *flakyReleaseStore) Release(ctx context.Context, key, token string) error {
	s.last.Store(time.Now().UnixNano())
	if s.calls.Add(1) <= s.failures {
		return s.err
	}
	return s.LockStore.Release(ctx, key, token)
}

// TestReleaseRetries checks the background retries of a release that failed:
// a store failure is retried until the store answers, never after the lock's
// TTL has run out, and an answer (a lock not held, a closed store) is not
// retried. The retrying goroutine ends by itself.
func TestReleaseRetries(t *testing.T) {
	timeout := errors.Join(errLostReply, context.DeadlineExceeded)
	cases := []struct {
		name     string
		err      error
		failures int64
		ttl      time.Duration
		calls    int64 // Release calls in all once the retries are over; 0: 2 to 7
		released bool
	}{
		{"store-failure", errLostReply, 2, time.Minute, 3, true},
		{"timeout", timeout, 1, time.Minute, 2, true},
		{"not-held", store.ErrNotHeld, 1, time.Minute, 1, false},
		{"closed", store.ErrClosed, 1, time.Minute, 1, false},
		// The waits before the retries are 50-100ms, 100-200ms, 200-400ms
		// ...: the TTL ends the retries after the second or third.
		{"past-ttl", errLostReply, 1 << 20, 400 * time.Millisecond, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem, err := memstore.New()
			require.NoError(t, err)
			t.Cleanup(func() { _ = mem.Close() })
			st := &flakyReleaseStore{LockStore: mem, err: tc.err, failures: tc.failures}
			before := runtime.NumGoroutine()
			l := newLocker(t, st)
			done := retryDone(l)
			ctx := context.Background()
			lock, err := l.Obtain(ctx, "job", tc.ttl)
			require.NoError(t, err)
			obtained := time.Now() // after the lock's local expiry time was set

			err = lock.Release(ctx)
			require.Error(t, err, "the first release fails")
			if tc.calls != 1 {
				waitDone(t, done)
			}
			settleGoroutines(t, before)
			if tc.calls > 0 {
				assert.Equal(t, tc.calls, st.calls.Load())
			} else {
				assert.GreaterOrEqual(t, st.calls.Load(), int64(2), "retried")
				assert.LessOrEqual(t, st.calls.Load(), int64(7), "at most 6 retries")
				assert.Less(t, time.Unix(0, st.last.Load()), obtained.Add(tc.ttl), "no retry after the TTL")
			}
			_, err = mem.TTL(ctx, "job", lock.Token())
			if tc.released {
				assert.ErrorIs(t, err, store.ErrNotHeld, "released by a retry")
			} else if tc.err != store.ErrClosed {
				assert.NoError(t, err, "no retry released it")
			}
		})
	}
}

// TestReleaseRetryKeepsOthersLock deletes a lock behind its owner's back
// while the owner's failed release is retried, and lets another owner take
// it: the retry, once the store answers again, leaves the new owner's lock
// alone.
func TestReleaseRetryKeepsOthersLock(t *testing.T) {
	mem, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = mem.Close() })
	st := &flakyReleaseStore{LockStore: mem, err: errLostReply, failures: 3}
	ctx := context.Background()
	l := newLocker(t, st)
	done := retryDone(l)
	lock, err := l.Obtain(ctx, "job", time.Minute)
	require.NoError(t, err)
	require.ErrorIs(t, lock.Release(ctx), lockguard.ErrStore)

	require.NoError(t, mem.Release(ctx, "job", lock.Token())) // an operator's force-release
	other, err := newLocker(t, mem).Obtain(ctx, "job", time.Minute)
	require.NoError(t, err)
	waitDone(t, done)
	assert.EqualValues(t, 4, st.calls.Load(), "retried until the store answered")
	d, err := other.TTL(ctx)
	require.NoError(t, err, "the new owner still holds the lock")
	assert.Greater(t, d, 50*time.Second)
}

// TestReleaseRetriesAreBounded fails every release, as a long outage would:
// no more than MaxReleaseRetries retrying goroutines run at once, and the
// extra locks are left to their TTL.
func TestReleaseRetriesAreBounded(t *testing.T) {
	mem, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = mem.Close() })
	st := &flakyReleaseStore{LockStore: mem, err: errLostReply, failures: 1 << 30}
	l := newLocker(t, st)
	ctx := context.Background()
	for i := range lockguard.MaxReleaseRetries + 50 {
		lock, err := l.Obtain(ctx, "job-"+strconv.Itoa(i), 300*time.Millisecond)
		require.NoError(t, err)
		require.Error(t, lock.Release(ctx))
		require.LessOrEqual(t, lockguard.ReleaseRetrying(l), int64(lockguard.MaxReleaseRetries))
	}
	assert.Equal(t, int64(lockguard.MaxReleaseRetries), lockguard.ReleaseRetrying(l), "the bound is reached, not passed")
	require.Eventually(t, func() bool { return lockguard.ReleaseRetrying(l) == 0 },
		5*time.Second, 10*time.Millisecond, "the retries end with the locks' TTL")
}
