package lockguard

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/store"
)

// DefaultReleaseTimeout is how long Release waits for the store unless
// WithReleaseTimeout says otherwise.
const DefaultReleaseTimeout = 2 * time.Second

// DefaultStoreTimeout bounds every other store call of a Locker unless
// WithStoreTimeout says otherwise.
const DefaultStoreTimeout = time.Second

// releaseRetries is how many more times a release that failed with a store
// error is tried in the background (see Lock.Release), waiting
// releaseBackoff before each attempt.
const releaseRetries = 6

// maxReleaseRetries bounds the release retry goroutines of one Locker in
// flight at once.
const maxReleaseRetries = 256

// releaseBackoff spaces the background release retries: 100ms doubling to
// 2s, jittered, so that the locks whose releases failed in one stall are not
// all retried at the same moment.
var releaseBackoff = ExponentialBackoff(100*time.Millisecond, 2*time.Second)

// Locker obtains locks from a store.LockStore. Create one with New; the zero
// Locker is not usable. A Locker is safe for concurrent use, and any number of
// Lockers, in one process or many, may share a store: locks are exclusive per
// key across all of them.
type Locker struct {
	store          store.LockStore
	retry          RetryStrategy // nil: try once, or DefaultBackoff under WaitFor
	releaseTimeout time.Duration
	storeTimeout   time.Duration // 0: none
	maxHold        time.Duration
	retryDone      func()       // tests: called when a release retry goroutine ends
	retrying       atomic.Int64 // release retry goroutines in flight
}

// Option configures a Locker in New.
type Option func(*Locker)

// WithRetryStrategy sets the strategy Obtain follows when the lock is held by
// another owner, unless a call passes Retry. By default Obtain tries once
// (under WaitFor it retries with DefaultBackoff). A nil s restores the default.
func WithRetryStrategy(s RetryStrategy) Option {
	return func(l *Locker) { l.retry = s }
}

// WithReleaseTimeout sets how long Lock.Release waits for the store. Release
// runs on a context detached from the caller's (so that a cancelled request
// still frees its lock), and this timeout bounds it and each of its
// background retries. It also bounds, with the store timeout, the release
// Obtain sends after a failed acquire attempt, and its retries. The default
// is DefaultReleaseTimeout (2s); d must be positive.
func WithReleaseTimeout(d time.Duration) Option {
	return func(l *Locker) { l.releaseTimeout = d }
}

// WithStoreTimeout bounds each call the Locker and its Locks make to the
// store, except Release, which the release timeout bounds: every acquire
// attempt of Obtain (each attempt, not the whole wait under WaitFor), Extend
// and the keep-alive's extends, and TTL. A call that runs out of time fails
// with an error wrapping ErrStore and context.DeadlineExceeded (a Guard
// answers 503, or serves without a lock if it fails open), so a hung Redis
// holds a caller for about d rather than until the go-redis client's
// ReadTimeout. The caller's own deadline still applies when it comes first.
//
// The default is DefaultStoreTimeout (1s); 0 sets no timeout, leaving calls
// to the caller's context and the store's own deadline (redisstore.WithTimeout,
// the client's timeouts); d must not be negative. A store that answers from
// memory (store.InProcess, such as memstore) gets no deadline: it would cost
// a timer and protect against nothing. Keep d above the slowest answer you
// expect from a healthy Redis: an acquire that times out may still have taken
// the lock, and Obtain then spends up to d more releasing it (see Obtain).
func WithStoreTimeout(d time.Duration) Option {
	return func(l *Locker) { l.storeTimeout = d }
}

// WithMaxHold bounds how long a lock may be kept alive: once d has passed
// since the lock was obtained, a keep-alive (Lock.KeepAlive, Locker.Do, Guard)
// stops extending it and cancels the work's context with cause
// ErrMaxHoldExceeded. The default, 0, sets no bound; d must not be negative.
func WithMaxHold(d time.Duration) Option {
	return func(l *Locker) { l.maxHold = d }
}

// New returns a Locker over s. It returns an error if s is nil or an option is
// out of range.
func New(s store.LockStore, opts ...Option) (*Locker, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	l := &Locker{store: s, releaseTimeout: DefaultReleaseTimeout, storeTimeout: DefaultStoreTimeout}
	for _, o := range opts {
		if o != nil {
			o(l)
		}
	}
	if l.releaseTimeout <= 0 {
		return nil, fmt.Errorf("%w: release timeout %v must be positive", ErrInvalidConfig, l.releaseTimeout)
	}
	if l.storeTimeout < 0 {
		return nil, fmt.Errorf("%w: store timeout %v must not be negative", ErrInvalidConfig, l.storeTimeout)
	}
	if l.maxHold < 0 {
		return nil, fmt.Errorf("%w: max hold %v must not be negative", ErrInvalidConfig, l.maxHold)
	}
	if ip, ok := s.(store.InProcess); ok && ip.InProcess() {
		l.storeTimeout = 0
	}
	return l, nil
}

// storeContext returns ctx bounded by the store timeout, and its cancel
// function.
func (l *Locker) storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.storeTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.storeTimeout)
}

// ObtainOption configures one Obtain or Do call.
type ObtainOption func(*obtainConfig)

type obtainConfig struct {
	retry  RetryStrategy
	wait   time.Duration
	noWait bool
}

// Retry makes this call follow s instead of the Locker's strategy. A nil s
// means the Locker's strategy.
func Retry(s RetryStrategy) ObtainOption {
	return func(c *obtainConfig) {
		if s != nil {
			c.retry = s
		}
	}
}

// WaitFor bounds how long this call waits for a held lock: the last attempt
// starts no later than d after the call (or the context's deadline, if that
// comes first). If neither Retry nor WithRetryStrategy set a strategy, the
// call retries with DefaultBackoff. A d of zero or less means do not wait:
// try once.
func WaitFor(d time.Duration) ObtainOption {
	return func(c *obtainConfig) {
		c.wait = d
		c.noWait = d <= 0
	}
}

// Obtain takes the lock on key for ttl. By default it tries once; with a retry
// strategy (Retry, WithRetryStrategy) or WaitFor it waits while another owner
// holds the lock, until it gets the lock, the strategy gives up, or the next
// attempt would start after the deadline (WaitFor's or ctx's, whichever comes
// first).
//
// The error is a *HeldError (errors.Is(err, ErrHeld)) when another owner holds
// the lock; it wraps ctx.Err() when ctx ended (and also holds the *HeldError
// when ctx's deadline passed while Obtain waited for a held lock); it wraps
// ErrStore and the store's error when the store failed; and it wraps
// store.ErrInvalidArgument for an empty key or a ttl below one millisecond.
//
// An attempt that fails may still have taken the lock (the store ran the
// acquire but the reply was lost to a timeout, a dropped connection or a
// cancelled ctx). Before returning such a failure, Obtain releases the
// attempt's token on a context detached from ctx, bounded by the release
// timeout and the store timeout, whichever is shorter, so that the resource
// does not stay locked for the whole TTL with nobody holding it; if that
// release fails too, it is retried in the background as Lock.Release's is.
//
// Each acquire attempt is bounded by the store timeout (WithStoreTimeout).
func (l *Locker) Obtain(ctx context.Context, key string, ttl time.Duration, opts ...ObtainOption) (*Lock, error) {
	token := rand.Text()
	if err := store.ValidateLock(key, token, ttl, true); err != nil {
		return nil, fmt.Errorf("lockguard: obtain: %w", err)
	}
	cfg := obtainConfig{retry: l.retry}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	strategy := cfg.retry
	var deadline time.Time
	switch {
	case cfg.noWait:
		strategy = NoRetry()
	case cfg.wait > 0:
		deadline = time.Now().Add(cfg.wait)
		if strategy == nil {
			strategy = DefaultBackoff()
		}
	case strategy == nil:
		strategy = NoRetry()
	}
	ctxDeadline, hasCtxDeadline := ctx.Deadline()
	if hasCtxDeadline && (deadline.IsZero() || ctxDeadline.Before(deadline)) {
		deadline = ctxDeadline
	} else {
		hasCtxDeadline = false // the option's deadline comes first
	}

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lockguard: obtain %q: %w", key, err)
	}
	var held *HeldError
	for failed := 0; ; {
		start := time.Now()
		actx, cancel := l.storeContext(ctx)
		res, err := l.store.Acquire(actx, key, token, ttl)
		cancel()
		if err != nil {
			l.abandon(ctx, key, token, start.Add(ttl), err)
			return nil, waitEnded(held, wrapErr(ctx.Err(), "obtain", key, err))
		}
		if res.Acquired {
			return &Lock{
				locker:     l,
				key:        key,
				token:      token,
				fence:      res.Fence,
				obtained:   start,
				ttl:        ttl,
				validUntil: start.Add(ttl),
			}, nil
		}
		failed++
		held = &HeldError{Key: key, TTL: res.HolderTTL, Attempts: failed}
		wait, retry := strategy.Backoff(failed)
		if !retry {
			return nil, held
		}
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 || (wait >= left && hasCtxDeadline) {
				// No time left, or the wait would run into the
				// context's deadline, where no store call can be made.
				return nil, held
			}
			if wait >= left {
				wait = left // one last attempt at WaitFor's deadline
			}
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, waitEnded(held, fmt.Errorf("lockguard: obtain %q: %w", key, err))
		}
	}
}

// abandon releases key for token after an acquire attempt failed with err.
// A failed attempt may still have taken the lock: the store can run the
// acquire and lose the reply (a timeout, a dropped connection, a context
// cancelled while the call was in flight). Nobody would hold that lock, yet
// it would keep the resource locked for its whole TTL. The release runs on a
// context detached from ctx, bounded by the release timeout and by the store
// timeout (a store that did not answer the acquire in time gets no longer
// for the release, so that a failed Obtain returns within about twice the
// store timeout). A store failure is retried in the background until
// validUntil, the local time by which the attempt's lock has surely expired
// (see releaseLater); any other outcome is ignored: usually there is nothing
// to release. It is best effort: a release that overtakes a delayed acquire
// on the network finds nothing, and that lock then ends with its TTL.
func (l *Locker) abandon(ctx context.Context, key, token string, validUntil time.Time, err error) {
	if errors.Is(err, store.ErrInvalidArgument) {
		return // refused before it reached the store
	}
	timeout := l.releaseTimeout
	if l.storeTimeout > 0 {
		timeout = min(timeout, l.storeTimeout)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := l.store.Release(rctx, key, token); err != nil {
		l.releaseLater(ctx, key, token, validUntil, timeout, err)
	}
}

// releaseLater retries, in a goroutine of its own, a release of key for
// token that failed with err, if err is a store failure (a timeout, an
// unreachable Redis) rather than an answer. It makes at most releaseRetries
// attempts, waiting releaseBackoff before each, each on a context detached
// from ctx and bounded by timeout, and none that could not end by
// validUntil, the local time by which the lock has surely expired: a release
// after that could only find nothing. It stops at the first attempt that is
// not a store failure. The store deletes the lock only while token holds it,
// so a retry never frees a lock that another owner has taken since. Nothing
// waits for the goroutine: it ends by itself, by validUntil at the latest.
func (l *Locker) releaseLater(ctx context.Context, key, token string, validUntil time.Time, timeout time.Duration, err error) {
	if !storeFailure(err) || !time.Now().Before(validUntil) {
		return
	}
	// A long outage fails every release: past maxReleaseRetries goroutines
	// in flight the lock is left to its TTL rather than adding load to a
	// store that is recovering.
	if l.retrying.Add(1) > maxReleaseRetries {
		l.retrying.Add(-1)
		return
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer l.retrying.Add(-1)
		if l.retryDone != nil {
			defer l.retryDone()
		}
		for failed := 1; failed <= releaseRetries; failed++ {
			wait, _ := releaseBackoff.Backoff(failed)
			if time.Until(validUntil) <= wait {
				return
			}
			time.Sleep(wait)
			deadline := time.Now().Add(timeout)
			if deadline.After(validUntil) {
				deadline = validUntil
			}
			rctx, cancel := context.WithDeadline(ctx, deadline)
			err := l.store.Release(rctx, key, token)
			cancel()
			if !storeFailure(err) {
				return
			}
		}
	}()
}

// storeFailure reports whether err, from a store call, is a failure that a
// later call may not meet: not nil, and not an answer (a lock not held), a
// closed store or bad input.
func storeFailure(err error) bool {
	return err != nil && !errors.Is(err, store.ErrNotHeld) &&
		!errors.Is(err, store.ErrClosed) && !errors.Is(err, store.ErrInvalidArgument)
}

// waitEnded returns err, an ended context's error, joined with held when the
// context's deadline passed while Obtain was waiting for a held lock: the
// caller waited as long as it wanted, and another owner held the lock all
// along. A cancelled context is not a held lock.
func waitEnded(held *HeldError, err error) error {
	if held == nil || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrStore) {
		return err
	}
	return errors.Join(held, err)
}

// Do obtains the lock on key for ttl (as Obtain does, with opts), runs fn
// under a keep-alive (see Lock.KeepAlive) and releases the lock when fn
// returns or panics. fn finds the lock, and its fence, with FromContext. fn's
// context is cancelled with cause ErrLockLost if the lock is lost and with
// ErrMaxHoldExceeded when the maximum hold time passes.
//
// Do returns Obtain's error if the lock was not obtained, and otherwise fn's
// error, joined with ErrLockLost if the lock was lost while fn ran (the work
// may not have been exclusive), with ErrMaxHoldExceeded if that cancelled fn
// and fn failed, and with the release error if releasing failed.
func (l *Locker) Do(ctx context.Context, key string, ttl time.Duration, fn func(context.Context) error, opts ...ObtainOption) (err error) {
	lock, err := l.Obtain(ctx, key, ttl, opts...)
	if err != nil {
		return err
	}
	work, stop := lock.KeepAlive(context.WithValue(ctx, ctxKey{}, lock))
	defer func() {
		stop()
		cause := context.Cause(work)
		lost := errors.Is(cause, ErrLockLost)
		switch {
		case lost && !errors.Is(err, ErrLockLost):
			err = errors.Join(err, cause)
		case errors.Is(cause, ErrMaxHoldExceeded) && err != nil && !errors.Is(err, ErrMaxHoldExceeded):
			err = errors.Join(err, cause)
		}
		if rerr := lock.Release(ctx); rerr != nil && !(lost && errors.Is(rerr, ErrNotHeld)) {
			err = errors.Join(err, rerr)
		}
	}()
	return fn(work)
}

// wrapErr classifies a store error: a lock not held, an ended context
// (ctxErr non-nil), bad input, or a store failure.
func wrapErr(ctxErr error, op, key string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotHeld):
		return fmt.Errorf("%w: %s %q", ErrNotHeld, op, key)
	case ctxErr != nil:
		return fmt.Errorf("lockguard: %s %q: %w", op, key, ctxErr)
	case errors.Is(err, store.ErrInvalidArgument):
		return fmt.Errorf("lockguard: %s %q: %w", op, key, err)
	default:
		return fmt.Errorf("%w: %s %q: %w", ErrStore, op, key, err)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
