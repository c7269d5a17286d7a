package lockguard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluicehq/sluice/store"
)

// Lock is a lock obtained with Locker.Obtain. It is safe for concurrent use.
// A Lock is only ever made by a Locker; the zero value is not usable.
type Lock struct {
	locker   *Locker
	key      string
	token    string
	fence    int64
	obtained time.Time

	mu         sync.Mutex
	ttl        time.Duration // the TTL of the last successful acquire or extend
	validUntil time.Time     // local time by which the lock has surely expired
}

// Key returns the lock's key.
func (l *Lock) Key() string { return l.key }

// Token returns the lock's owner token: 128 random bits from crypto/rand, as
// 26 base32 characters.
func (l *Lock) Token() string { return l.token }

// Fence returns the lock's fencing token. It is greater than the fence of
// every earlier acquisition of the same key, so a downstream system that
// remembers the highest fence it has accepted can reject writes from an owner
// whose lock has since expired and been taken by someone else.
func (l *Lock) Fence() int64 { return l.fence }

// Release frees the lock. It runs on a context detached from ctx's
// cancellation (its values are kept) and bounded by the Locker's release
// timeout, so that it still frees the lock when ctx has been cancelled, as it
// is once an HTTP client hangs up. It returns an error wrapping ErrNotHeld if
// the lock had expired or was released before, and one wrapping ErrStore if
// the store failed or did not answer within the timeout.
//
// After a store failure (a stalled or unreachable Redis), Release returns the
// error at once and goes on trying in a goroutine of its own, so that a lock
// whose release ran into a short stall is freed once the store answers again
// rather than when its TTL runs out: up to 6 more attempts, after waits of
// about 100ms doubling up to 2s (jittered), each on the detached context and
// bounded by the release timeout; it stops at the first answer of the store
// and makes no attempt after the lock's TTL would have lapsed. A retry
// deletes the lock only while this Lock's token holds it, so it never frees a
// lock that another owner has taken since. Nothing needs to wait for it or
// stop it: it ends by itself, within the lock's remaining TTL.
func (l *Lock) Release(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.locker.releaseTimeout)
	defer cancel()
	if err := l.locker.store.Release(rctx, l.key, l.token); err != nil {
		_, validUntil := l.state()
		l.locker.releaseLater(ctx, l.key, l.token, validUntil, l.locker.releaseTimeout, err)
		return wrapErr(nil, "release", l.key, err)
	}
	return nil
}

// Extend sets the lock's remaining time to live to ttl, if the lock is still
// held. It returns an error wrapping ErrNotHeld if it is not (a lost lock is
// never re-created), one wrapping ctx.Err() if ctx ended, one wrapping
// ErrStore if the store failed or did not answer within the Locker's store
// timeout, and one wrapping store.ErrInvalidArgument for a ttl below one
// millisecond. A running keep-alive extends by ttl from then on.
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) error {
	if err := store.ValidateLock(l.key, l.token, ttl, true); err != nil {
		return fmt.Errorf("lockguard: extend: %w", err)
	}
	if err := l.extend(ctx, ttl); err != nil {
		return wrapErr(ctx.Err(), "extend", l.key, err)
	}
	return nil
}

func (l *Lock) extend(ctx context.Context, ttl time.Duration) error {
	start := time.Now()
	ctx, cancel := l.locker.storeContext(ctx)
	defer cancel()
	if err := l.locker.store.Extend(ctx, l.key, l.token, ttl); err != nil {
		return err
	}
	l.mu.Lock()
	l.ttl = ttl
	l.validUntil = start.Add(ttl)
	l.mu.Unlock()
	return nil
}

func (l *Lock) state() (ttl time.Duration, validUntil time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ttl, l.validUntil
}

// TTL returns the lock's remaining time to live as the store sees it. It
// returns an error wrapping ErrNotHeld if the lock is no longer held, and
// errors like Extend's otherwise.
func (l *Lock) TTL(ctx context.Context) (time.Duration, error) {
	sctx, cancel := l.locker.storeContext(ctx)
	defer cancel()
	d, err := l.locker.store.TTL(sctx, l.key, l.token)
	if err != nil {
		return 0, wrapErr(ctx.Err(), "ttl", l.key, err)
	}
	return d, nil
}

// KeepAlive keeps the lock alive while work runs. It returns a context for the
// work, derived from ctx, and a stop function, and extends the lock by its TTL
// about every third of the TTL in a goroutine until stop is called.
//
// The work's context is cancelled with cause ErrLockLost (see context.Cause)
// when the store reports the lock gone, or when store failures persist until
// the lock's TTL would lapse (failed extends are retried until then, each
// bounded by the Locker's store timeout, so that one hung call does not use up
// the TTL; the cause then also wraps ErrStore and the last store error). It
// is cancelled with cause ErrMaxHoldExceeded once the Locker's maximum hold
// time (WithMaxHold) has passed since the lock was obtained; extending stops
// then. Either way the lock is not released: that is the caller's job.
//
// Cancelling ctx cancels the work's context but does not stop the extending,
// so that a lock outlives its TTL for as long as the work really runs. Always
// call stop when the work is done: it ends the goroutine, waits for it to exit
// and cancels the work's context; it is safe to call more than once. Call
// KeepAlive at most once per Lock.
func (l *Lock) KeepAlive(ctx context.Context) (context.Context, func()) {
	work, cancelWork := context.WithCancelCause(ctx)
	alive, cancelAlive := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go l.keepAlive(alive, cancelWork, done)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancelAlive()
			<-done
			cancelWork(nil)
		})
	}
	return work, stop
}

// keepAlive extends the lock until ctx is cancelled, reporting a lost lock or
// an exceeded hold time through lost. It closes done when it returns.
func (l *Lock) keepAlive(ctx context.Context, lost context.CancelCauseFunc, done chan<- struct{}) {
	defer close(done)

	var maxHold <-chan time.Time
	if d := l.locker.maxHold; d > 0 {
		t := time.NewTimer(time.Until(l.obtained.Add(d)))
		defer t.Stop()
		maxHold = t.C
	}
	tick := time.NewTimer(l.nextExtend())
	defer tick.Stop()

	for {
		select {
		case <-ctx.Done():
			return
		case <-maxHold:
			lost(fmt.Errorf("%w: %q held for %v", ErrMaxHoldExceeded, l.key, l.locker.maxHold))
			return
		case <-tick.C:
		}

		ttl, validUntil := l.state()
		ectx, cancel := context.WithDeadline(ctx, validUntil)
		err := l.extend(ectx, ttl)
		cancel()
		switch {
		case err == nil:
			tick.Reset(l.nextExtend())
		case ctx.Err() != nil:
			return // stopped
		case errors.Is(err, store.ErrNotHeld):
			lost(fmt.Errorf("%w: %w: %q", ErrLockLost, ErrNotHeld, l.key))
			return
		default:
			// A store failure: retry while the lock may still be held.
			wait := min(max(ttl/10, time.Millisecond), time.Until(validUntil)/2)
			if wait < time.Millisecond {
				lost(fmt.Errorf("%w: not extended before its ttl lapsed: %w", ErrLockLost, wrapErr(nil, "extend", l.key, err)))
				return
			}
			tick.Reset(wait)
		}
	}
}

// nextExtend is how long a keep-alive waits before extending the lock: a
// third of its TTL, or less if the lock has less than two thirds of its TTL
// left (KeepAlive called a while after Obtain).
func (l *Lock) nextExtend() time.Duration {
	ttl, validUntil := l.state()
	return max(min(ttl/3, time.Until(validUntil)/2), time.Millisecond)
}
