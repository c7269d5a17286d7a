package lockguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/logthrottle"
	"github.com/sluicehq/sluice/limiter"
)

// Messages of the JSON error bodies a Guard sends. They never carry an
// error's text.
const (
	msgLocked      = "resource is locked"
	msgBadKey      = "invalid resource key"
	msgUnavailable = "lock service unavailable"
	msgCancelled   = "request cancelled"
)

// Guard is the HTTP policy that lets one request at a time work on a
// resource. Create one with NewGuard and mount it with an adapter
// (httpmw.Guard, echomw.Guard, ginmw.Guard); the zero Guard is not usable. A
// Guard is safe for concurrent use.
//
// For each request the Guard picks the resource with its limiter.KeyFunc and
// obtains the lock named by the Guard's name, a colon and that key: a Guard
// named "order" keyed by limiter.PathValueKey("id") locks
// "order:param:id:42" for /orders/42/pay. If another request holds it, the
// answer is 409 Conflict with Retry-After (the holder's remaining TTL in
// whole seconds, rounded up, at least 1), Content-Type application/json and
// the body {"error":"resource is locked","retry_after":N}. Otherwise the
// handler runs with the lock in its request context (FromContext), kept alive
// (see Lock.KeepAlive; the handler's context is cancelled with cause
// ErrLockLost if the lock is lost), and the lock is released when the handler
// returns, also when it panics (the panic goes on) and when the client has
// hung up. A key error answers 400, a store failure 503 under
// limiter.FailClosed (the default; see WithFailMode); no response carries an
// error's text. Every store call is bounded by the Locker's store timeout
// (WithStoreTimeout, DefaultStoreTimeout by default), so a hung Redis holds a
// request for about that long (each attempt, when WithWait lets it wait), not
// until the Redis client gives up.
type Guard struct {
	name   string
	locker *Locker
	key    limiter.KeyFunc
	ttl    time.Duration
	wait   time.Duration
	fail   limiter.FailMode
	logger *slog.Logger
	deny   func(w http.ResponseWriter, r *http.Request, rj *Rejection)
	obs    limiter.Observer // nil: no events
	err    error            // the first option out of range

	storeLog logthrottle.Throttle // store failures, failed releases
	keyLog   logthrottle.Throttle // requests without a key
	lostLog  logthrottle.Throttle // handlers whose lock was lost or held too long
}

// log writes one record to the Guard's logger through t: at most one line
// per second per kind and Guard (the line says how many were suppressed), as
// a limiter.Policy logs its own. Records carry the Guard's name.
func (g *Guard) log(ctx context.Context, t *logthrottle.Throttle, level slog.Level, msg string, attrs ...slog.Attr) {
	ok, suppressed := t.Allow()
	if !ok {
		return
	}
	attrs = append(attrs, slog.String("guard", g.name), slog.Int64("suppressed", suppressed))
	g.logger.LogAttrs(ctx, level, msg, attrs...)
}

// GuardOption configures a Guard in NewGuard. An option out of range makes
// NewGuard fail with an error wrapping ErrInvalidConfig.
type GuardOption func(*Guard)

// WithWait makes a request for a busy resource wait up to d for the lock,
// retrying with the Locker's RetryStrategy (DefaultBackoff if it has none),
// before the Guard answers 409. The default, 0, answers 409 at once.
func WithWait(d time.Duration) GuardOption {
	return func(g *Guard) {
		if d < 0 {
			g.setErr(fmt.Errorf("%w: guard wait %v must not be negative", ErrInvalidConfig, d))
			return
		}
		g.wait = d
	}
}

// WithFailMode chooses what happens when the store fails (an unreachable or
// slow Redis): under limiter.FailClosed, the default, the Guard answers 503
// Service Unavailable with a JSON error; under limiter.FailOpen the handler
// runs without a lock (FromContext reports none). The failure is logged
// either way (see WithLogger). A request whose own context ended while it
// waited for the lock is answered 503 under both.
func WithFailMode(m limiter.FailMode) GuardOption {
	return func(g *Guard) {
		if m != limiter.FailOpen && m != limiter.FailClosed {
			g.setErr(fmt.Errorf("%w: unknown fail mode %d", ErrInvalidConfig, int(m)))
			return
		}
		g.fail = m
	}
}

// WithDenyHandler replaces the default response to a rejected request (a
// JSON error, see Rejection.Write) with h. h runs when the adapter writes the
// rejection, with the request as the Guard saw it.
func WithDenyHandler(h func(w http.ResponseWriter, r *http.Request, rj *Rejection)) GuardOption {
	return func(g *Guard) {
		if h == nil {
			g.setErr(fmt.Errorf("%w: nil deny handler", ErrInvalidConfig))
			return
		}
		g.deny = h
	}
}

// WithLogger sets where the Guard reports store failures (a failed acquire
// or release; error level), requests without a key (warn level, answered
// 400), and handlers whose lock was lost or held past the Locker's maximum
// hold time (warn level): at most one line of each kind per second per Guard,
// with the Guard's name and the number of lines suppressed before it, as a
// limiter.Policy reports its own. Lines about a held lock carry its key; no
// line carries other request data. The default is slog.Default(); a nil
// logger discards the records.
func WithLogger(l *slog.Logger) GuardOption {
	return func(g *Guard) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		g.logger = l
	}
}

// WithObserver sets an Observer told about every lock event of the Guard,
// under the Guard's name: acquired, conflict (a 409), released (with the
// hold time), lost (the lock expired or was taken while the handler ran),
// and store errors (a failed acquire or release; a failed release is also
// reported as released, since the handler has let go of the lock and the
// store frees it by its TTL, or as lost if the lock expired first because the
// store could not extend it). The default, nil, observes nothing.
func WithObserver(o limiter.Observer) GuardOption {
	return func(g *Guard) { g.obs = o }
}

// observe tells the Guard's Observer about an event.
func (g *Guard) observe(o limiter.LockOutcome, latency, held time.Duration) {
	if g.obs != nil {
		g.obs.ObserveLock(limiter.LockEvent{Name: g.name, Outcome: o, Latency: latency, Held: held})
	}
}

// setErr records the first error of an option.
func (g *Guard) setErr(err error) {
	if g.err == nil {
		g.err = err
	}
}

// NewGuard returns the Guard named name that locks, with locker and for ttl,
// the resource key picks from each request (for instance
// limiter.PathValueKey("id")). The lock's key is name, a colon and the
// resource's key, so that Guards of different names never share a lock,
// while one Guard mounted on several routes (pay and cancel of an order)
// lets one request at a time work on the resource across all of them. It
// returns an error wrapping ErrInvalidConfig if name is empty, locker or key
// is nil, ttl is below one millisecond, or an option is out of range.
func NewGuard(name string, locker *Locker, key limiter.KeyFunc, ttl time.Duration, opts ...GuardOption) (*Guard, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty guard name", ErrInvalidConfig)
	}
	if locker == nil {
		return nil, fmt.Errorf("%w: guard %q: nil locker", ErrInvalidConfig, name)
	}
	if key == nil {
		return nil, fmt.Errorf("%w: guard %q: nil key function", ErrInvalidConfig, name)
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("%w: guard %q: ttl %v must be at least 1ms", ErrInvalidConfig, name, ttl)
	}
	g := &Guard{name: name, locker: locker, key: key, ttl: ttl, fail: limiter.FailClosed, logger: slog.Default()}
	for _, o := range opts {
		if o != nil {
			o(g)
		}
	}
	if g.err != nil {
		return nil, fmt.Errorf("guard %q: %w", name, g.err)
	}
	return g, nil
}

// Name returns the Guard's name.
func (g *Guard) Name() string { return g.name }

// Rejection is the response a Guard chose instead of running the handler:
// 409 Conflict for a busy resource, 400 Bad Request for a key error, 503
// Service Unavailable for a store failure or a request cancelled while it
// waited. A Rejection is an error, so that an adapter can hand it to its
// framework's error handling.
type Rejection struct {
	// Status is the HTTP status: 400, 409 or 503.
	Status int
	// RetryAfter is, for a 409, the holder's remaining TTL: the
	// Retry-After header carries it in whole seconds, rounded up, at
	// least 1. It is 0 otherwise.
	RetryAfter time.Duration
	// Message is the text of the body's "error" member.
	Message string
	// Err is the reason, for logs; it is never sent to the client.
	Err error

	g *Guard
	r *http.Request
}

// Error describes the rejection without client data.
func (rj *Rejection) Error() string {
	if rj.Err != nil {
		return "lockguard: " + rj.Message + ": " + rj.Err.Error()
	}
	return "lockguard: " + rj.Message
}

// Unwrap returns Err.
func (rj *Rejection) Unwrap() error { return rj.Err }

// Write sends the rejection with the Guard's deny handler (see
// WithDenyHandler); by default: Content-Type application/json, Retry-After
// for a 409, the status and the body {"error":"<message>"} (with
// "retry_after":<seconds> for a 409).
func (rj *Rejection) Write(w http.ResponseWriter) {
	if rj.g != nil && rj.g.deny != nil {
		rj.g.deny(w, rj.r, rj)
		return
	}
	writeRejection(w, rj)
}

// writeRejection is the default deny handler.
func writeRejection(w http.ResponseWriter, rj *Rejection) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	body := struct {
		Error      string `json:"error"`
		RetryAfter int64  `json:"retry_after,omitempty"`
	}{Error: rj.Message}
	if rj.Status == http.StatusConflict {
		body.RetryAfter = retryAfterSeconds(rj.RetryAfter)
		h.Set("Retry-After", strconv.FormatInt(body.RetryAfter, 10))
	}
	b, err := json.Marshal(body)
	if err != nil { // cannot happen for a struct of a string and an int
		b = []byte(`{"error":"internal error"}`)
	}
	w.WriteHeader(rj.Status)
	_, _ = w.Write(append(b, '\n'))
}

// retryAfterSeconds converts a remaining TTL to a Retry-After value: whole
// seconds, rounded up, at least 1.
func retryAfterSeconds(ttl time.Duration) int64 {
	s := (ttl + time.Second - 1) / time.Second
	return int64(max(s, 1))
}

type ctxKey struct{}

// FromContext returns the lock held for the work whose context is ctx: the
// request context of a handler behind a Guard, or the context Locker.Do passes
// to its function. It reports false elsewhere, and when a fail-open Guard let
// the request through without a lock.
func FromContext(ctx context.Context) (*Lock, bool) {
	l, ok := ctx.Value(ctxKey{}).(*Lock)
	return l, ok && l != nil
}

// Admit runs the guard's policy for r, for an adapter, as
// limiter.Policy.Admit does for a rate limit. It picks the resource with key
// (nil: the Guard's KeyFunc) and obtains the lock of the Guard's name and
// that key. On success it returns the request to pass to the handler, whose
// context carries the lock (FromContext) and is cancelled with cause
// ErrLockLost if the lock is lost, and done, which the adapter must call,
// deferred, when the handler has returned or panicked (the status is not
// used): it stops the keep-alive and releases the lock on a detached context;
// it is safe to call more than once. When the request may not proceed, Admit
// returns a Rejection for the adapter to write (Write) or hand to its
// framework instead of running the handler, and a nil done. Under
// limiter.FailOpen with a failed store, Admit returns r itself, a nil done
// and no Rejection. The only write to w is the Retry-After header of a 409,
// set before the Rejection is written (w may be nil to skip it).
func (g *Guard) Admit(w http.ResponseWriter, r *http.Request, key limiter.KeyFunc) (next *http.Request, done func(status int), rj *Rejection) {
	if key == nil {
		key = g.key
	}
	ctx := r.Context()
	k, err := key(r)
	if err == nil && k == "" {
		err = limiter.ErrNoKey
	}
	if err != nil {
		if !errors.Is(err, limiter.ErrNoKey) {
			err = errors.Join(limiter.ErrNoKey, err)
		}
		g.log(ctx, &g.keyLog, slog.LevelWarn, "sluice: request refused: no lock key", slog.Any("error", err))
		return r, nil, &Rejection{Status: http.StatusBadRequest, Message: msgBadKey, Err: err, g: g, r: r}
	}
	k = g.name + ":" + k

	var opts []ObtainOption
	if g.wait > 0 {
		opts = []ObtainOption{WaitFor(g.wait)}
	}
	var start time.Time
	if g.obs != nil {
		start = time.Now()
	}
	lock, err := g.locker.Obtain(ctx, k, g.ttl, opts...)
	var latency time.Duration
	if g.obs != nil {
		latency = time.Since(start)
	}
	if err != nil {
		var held *HeldError
		switch {
		case errors.As(err, &held):
			g.observe(limiter.LockConflict, latency, 0)
			if w != nil { // for every writer of the rejection, as a rate limit's headers are
				w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(held.TTL), 10))
			}
			return r, nil, &Rejection{Status: http.StatusConflict, RetryAfter: held.TTL, Message: msgLocked, Err: err, g: g, r: r}
		case ctx.Err() != nil && !errors.Is(err, ErrStore):
			return r, nil, &Rejection{Status: http.StatusServiceUnavailable, Message: msgCancelled, Err: err, g: g, r: r}
		}
		g.observe(limiter.LockStoreError, latency, 0)
		switch {
		case g.fail == limiter.FailOpen:
			g.log(ctx, &g.storeLog, slog.LevelError, "sluice: lock store failed, serving without a lock (fail-open)", slog.Any("error", err))
			return r, nil, nil
		default:
			g.log(ctx, &g.storeLog, slog.LevelError, "sluice: lock store failed, request refused (fail-closed)", slog.Any("error", err))
			return r, nil, &Rejection{Status: http.StatusServiceUnavailable, Message: msgUnavailable, Err: err, g: g, r: r}
		}
	}

	g.observe(limiter.LockAcquired, latency, 0)

	work, stop := lock.KeepAlive(context.WithValue(ctx, ctxKey{}, lock))
	var once sync.Once
	release := func(int) {
		once.Do(func() {
			stop()
			cause := context.Cause(work)
			lost := errors.Is(cause, ErrLockLost)
			var held time.Duration // for the Observer only
			var start time.Time
			if g.obs != nil {
				held, start = time.Since(lock.obtained), time.Now()
			}
			if lost || errors.Is(cause, ErrMaxHoldExceeded) {
				g.log(ctx, &g.lostLog, slog.LevelWarn, "sluice: guarded handler's context cancelled",
					slog.String("key", k), slog.Any("cause", cause))
			}
			err := lock.Release(ctx)
			var latency time.Duration
			if g.obs != nil {
				latency = time.Since(start)
			}
			switch {
			case err == nil:
				g.observe(limiter.LockReleased, latency, held)
			case lost && errors.Is(err, ErrNotHeld):
				g.observe(limiter.LockLost, 0, held)
			case errors.Is(err, ErrNotHeld): // expired before the keep-alive noticed
				g.observe(limiter.LockLost, 0, held)
				g.log(ctx, &g.lostLog, slog.LevelWarn, "sluice: lock no longer held at release",
					slog.String("key", k), slog.Any("error", err))
			default: // retried in the background (see Lock.Release)
				g.observe(limiter.LockStoreError, latency, 0)
				if lost { // the keep-alive could not extend it: it expired
					g.observe(limiter.LockLost, 0, held)
				} else {
					g.observe(limiter.LockReleased, 0, held) // one store call: timed once
				}
				g.log(ctx, &g.storeLog, slog.LevelError, "sluice: lock release failed",
					slog.String("key", k), slog.Any("error", err))
			}
		})
	}
	return r.WithContext(work), release, nil
}
