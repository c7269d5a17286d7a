package lockguard_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
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

// Inspect shows a held lock's TTL and fence and a free one's last fence;
// ForceRelease frees a held lock: its owner finds it gone and a new owner's
// fence is above the old one's.
func TestInspectAndForceRelease(t *testing.T) {
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		l := newLocker(t, inst.Store)
		ctx := t.Context()

		info, err := l.Inspect(ctx, "job")
		require.NoError(t, err)
		assert.Equal(t, store.LockInfo{}, info, "a key never locked")

		lock, err := l.Obtain(ctx, "job", 2*time.Second)
		require.NoError(t, err)
		info, err = l.Inspect(ctx, "job")
		require.NoError(t, err)
		assert.True(t, info.Held)
		assert.Equal(t, lock.Fence(), info.Fence)
		assert.Greater(t, info.TTL, time.Second)
		assert.LessOrEqual(t, info.TTL, 2*time.Second)

		require.NoError(t, l.ForceRelease(ctx, "job"))
		info, err = l.Inspect(ctx, "job")
		require.NoError(t, err)
		assert.Equal(t, store.LockInfo{Fence: lock.Fence()}, info, "free, with its last fence")

		_, err = lock.TTL(ctx)
		assert.ErrorIs(t, err, lockguard.ErrNotHeld, "the forced owner's TTL")
		next, err := l.Obtain(ctx, "job", 2*time.Second)
		require.NoError(t, err, "another owner takes the key at once")
		assert.Greater(t, next.Fence(), lock.Fence(), "fencing keeps the old owner's writes out")
		assert.ErrorIs(t, lock.Extend(ctx, time.Second), lockguard.ErrNotHeld, "the forced owner's Extend")
		assert.ErrorIs(t, lock.Release(ctx), lockguard.ErrNotHeld, "the forced owner's Release")
		_, err = next.TTL(ctx)
		assert.NoError(t, err, "the new owner keeps the lock")
		require.NoError(t, next.Release(ctx))

		require.NoError(t, l.ForceRelease(ctx, "job"), "a free lock")
		require.NoError(t, l.ForceRelease(ctx, "never-locked"))
	})
}

// A keep-alive finds a force-released lock gone at its next extend and
// cancels the work's context with ErrLockLost; Do reports it.
func TestForceReleaseDuringDo(t *testing.T) {
	eachBackend(t, func(t *testing.T, inst guardtest.Instance) {
		l := newLocker(t, inst.Store)
		ctx := t.Context()
		const ttl = 300 * time.Millisecond
		var cause error
		err := l.Do(ctx, "job", ttl, func(work context.Context) error {
			require.NoError(t, l.ForceRelease(ctx, "job"))
			select {
			case <-work.Done():
				cause = context.Cause(work)
				return work.Err()
			case <-time.After(5 * ttl):
				return errors.New("the work's context was not cancelled")
			}
		})
		assert.ErrorIs(t, cause, lockguard.ErrLockLost)
		assert.ErrorIs(t, err, lockguard.ErrLockLost, "Do reports that the work may not have been exclusive")
	})
}

// A Guard's lock is the Guard's name, a colon and the request's key.
func TestInspectGuardLock(t *testing.T) {
	_, l := newGuardLocker(t)
	g, err := lockguard.NewGuard("orders", l, func(*http.Request) (string, error) { return "42", nil }, time.Minute)
	require.NoError(t, err)
	ctx := t.Context()
	_, done, rj := g.Admit(nil, httptest.NewRequest(http.MethodPost, "/orders/42/pay", nil), nil)
	require.Nil(t, rj)
	info, err := l.Inspect(ctx, "orders:42")
	require.NoError(t, err)
	assert.True(t, info.Held, "the Guard's lock on order 42")
	require.NoError(t, l.ForceRelease(ctx, "orders:42"))
	_, done2, rj := g.Admit(nil, httptest.NewRequest(http.MethodPost, "/orders/42/pay", nil), nil)
	assert.Nil(t, rj, "another request gets the forced lock")
	if done2 != nil {
		done2(http.StatusOK)
	}
	done(http.StatusOK)
}

// Inspect and ForceRelease refuse an empty key and an ended context, and are
// bounded by the store timeout.
func TestInspectAndForceReleaseErrors(t *testing.T) {
	m := miniredis.RunT(t)
	proxy := newBlackhole(t, m.Addr())
	client := redis.NewClient(&redis.Options{Addr: proxy.addr, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	st, err := redisstore.New(client)
	require.NoError(t, err)
	l := newLocker(t, st, lockguard.WithStoreTimeout(200*time.Millisecond))
	ctx := t.Context()
	lock, err := l.Obtain(ctx, "held", time.Minute)
	require.NoError(t, err)

	_, err = l.Inspect(ctx, "")
	assert.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.ErrorIs(t, l.ForceRelease(ctx, ""), store.ErrInvalidArgument)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = l.Inspect(cancelled, "held")
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, lockguard.ErrStore)
	assert.ErrorIs(t, l.ForceRelease(cancelled, "held"), context.Canceled)

	proxy.Drop(true)
	for name, call := range map[string]func() error{
		"inspect":       func() error { _, err := l.Inspect(ctx, "held"); return err },
		"force-release": func() error { return l.ForceRelease(ctx, "held") },
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := call()
			// A sanity bound far below the ReadTimeout, not a speed test.
			assert.Less(t, time.Since(start), 2*time.Second, "the store timeout ended the call")
			assert.ErrorIs(t, err, lockguard.ErrStore)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		})
	}
	proxy.Drop(false)
	_, err = lock.TTL(ctx)
	require.NoError(t, err, "the failed ForceRelease freed nothing")
}

// docs/locks.md, "Operations".
func ExampleLocker_ForceRelease() {
	st, _ := memstore.New()
	defer st.Close()
	locker, _ := lockguard.New(st)
	ctx := context.Background()
	stuck, _ := locker.Obtain(ctx, "orders:42", time.Minute) // a Guard "orders" on order 42
	_ = stuck

	// snippet:begin locks-ops
	info, err := locker.Inspect(ctx, "orders:42") // a Guard's lock: its name, ":", the request's key
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("held: %v, ttl: %v, last fence: %v\n", info.Held, info.TTL.Round(time.Second), info.Fence > 0)
	if info.Held {
		// Dangerous: the holder keeps running until its keep-alive finds
		// the lock gone; only fencing keeps its writes out from then on.
		if err := locker.ForceRelease(ctx, "orders:42"); err != nil {
			log.Fatal(err)
		}
	}
	// snippet:end

	info, _ = locker.Inspect(ctx, "orders:42")
	fmt.Println("held after ForceRelease:", info.Held)
	// Output:
	// held: true, ttl: 1m0s, last fence: true
	// held after ForceRelease: false
}
