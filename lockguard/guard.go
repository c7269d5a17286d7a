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
)

// Messages of the JSON error bodies a Guard sends. They never carry an
// error's text.
const (
	msgLocked      = "resource is locked"
	msgBadKey      = "invalid resource key"
	msgUnavailable = "lock service unavailable"
	msgCancelled   = "request cancelled"
)

// KeyFunc picks the resource a request works on: the lock key. An error, or
// an empty key, makes the Guard answer 400 Bad Request. The key may carry
// user-controlled data: stores hash keys, so their length does not matter.
type KeyFunc func(r *http.Request) (string, error)

// PathValue returns a KeyFunc that reads the route parameter name with
// r.PathValue (net/http 1.22 patterns such as "POST /orders/{id}/pay") and
// prefixes it with prefix, so that PathValue("id", "order:") locks
// "order:42". An empty value is an error wrapping ErrNoKey.
//
// The echo and gin adapters copy their routers' parameters into the request's
// path values, so PathValue works with them too. With net/http, wrap the
// handler of the route (not the ServeMux itself): path values are set when
// the mux has matched the pattern.
func PathValue(name, prefix string) KeyFunc {
	return func(r *http.Request) (string, error) {
		v := r.PathValue(name)
		if v == "" {
			return "", fmt.Errorf("%w: empty path value %q", ErrNoKey, name)
		}
		return prefix + v, nil
	}
}

// Guard is the HTTP policy that lets one request at a time work on a
// resource. Create one with NewGuard and mount it with an adapter
// (httpmw.Guard, echomw.Guard, ginmw.Guard); the zero Guard is not usable. A
// Guard is safe for concurrent use.
//
// For each request the Guard picks the resource with its KeyFunc and obtains
// its lock. If another request holds it, the answer is 409 Conflict with
// Retry-After (the holder's remaining TTL in whole seconds, rounded up, at
// least 1), Content-Type application/json and the body
// {"error":"resource is locked","retry_after":N}. Otherwise the handler runs
// with the lock in its request context (FromContext), kept alive (see
// Lock.KeepAlive; the handler's context is cancelled with cause ErrLockLost if
// the lock is lost), and the lock is released when the handler returns, also
// when it panics (the panic goes on) and when the client has hung up. A key
// error answers 400, a store failure 503 unless WithFailOpen is set; no
// response carries an error's text. Every store call is bounded by the
// Locker's store timeout (WithStoreTimeout, DefaultStoreTimeout by default),
// so a hung Redis holds a request for about that long (each attempt, when
// WithWait lets it wait), not until the Redis client gives up.
type Guard struct {
	locker   *Locker
	key      KeyFunc
	ttl      time.Duration
	wait     time.Duration
	failOpen bool
	logger   *slog.Logger
	deny     func(w http.ResponseWriter, r *http.Request, rj *Rejection)
	err      error // the first option out of range

	storeLog logthrottle.Throttle // store failures
	keyLog   logthrottle.Throttle // requests without a key
}

// log writes one record to the Guard's logger, through t when it is not nil:
// store failures and requests without a key are each throttled to one line
// per second per Guard (the line says how many were suppressed), as a Policy
// throttles its own.
func (g *Guard) log(ctx context.Context, t *logthrottle.Throttle, level slog.Level, msg string, attrs ...slog.Attr) {
	if t != nil {
		ok, suppressed := t.Allow()
		if !ok {
			return
		}
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	g.logger.LogAttrs(ctx, level, msg, attrs...)
}

// GuardOption configures a Guard in NewGuard.
type GuardOption func(*Guard)

// WithWait makes a request for a busy resource wait up to d for the lock,
// retrying with the Locker's RetryStrategy (DefaultBackoff if it has none),
// before the Guard answers 409. The default, 0, answers 409 at once.
func WithWait(d time.Duration) GuardOption {
	return func(g *Guard) { g.wait = d }
}

// WithFailOpen chooses what happens when the store fails (an unreachable or
// slow Redis): with open true the handler runs without a lock (FromContext
// reports none) and the failure is logged; with open false, the default, the
// Guard answers 503 Service Unavailable with a JSON error (fail-closed).
func WithFailOpen(open bool) GuardOption {
	return func(g *Guard) { g.failOpen = open }
}

// WithDenyHandler replaces the default response to a rejected request (a
// JSON error, see Rejection.Write) with h. h runs when the adapter writes the
// rejection, with the request as the Guard saw it.
func WithDenyHandler(h func(w http.ResponseWriter, r *http.Request, rj *Rejection)) GuardOption {
	return func(g *Guard) {
		if h == nil {
			g.err = fmt.Errorf("%w: nil deny handler", ErrInvalidConfig)
			return
		}
		g.deny = h
	}
}

// WithLogger sets where the Guard logs store failures, requests without a
// key, lost locks and failed releases; store failures and requests without a
// key are throttled to one line per second. The default is slog.Default(); a
// nil logger discards the records.
func WithLogger(l *slog.Logger) GuardOption {
	return func(g *Guard) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		g.logger = l
	}
}

// NewGuard returns a Guard that locks the resource key picks for ttl with
// locker. It returns an error if locker or key is nil, ttl is below one
// millisecond, or the wait is negative.
func NewGuard(locker *Locker, key KeyFunc, ttl time.Duration, opts ...GuardOption) (*Guard, error) {
	if locker == nil {
		return nil, fmt.Errorf("%w: nil locker", ErrInvalidConfig)
	}
	if key == nil {
		return nil, fmt.Errorf("%w: nil key function", ErrInvalidConfig)
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("%w: guard ttl %v must be at least 1ms", ErrInvalidConfig, ttl)
	}
	g := &Guard{locker: locker, key: key, ttl: ttl, logger: slog.Default()}
	for _, o := range opts {
		if o != nil {
			o(g)
		}
	}
	if g.err != nil {
		return nil, g.err
	}
	if g.wait < 0 {
		return nil, fmt.Errorf("%w: guard wait %v must not be negative", ErrInvalidConfig, g.wait)
	}
	return g, nil
}

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
// (nil: the Guard's KeyFunc) and obtains its lock. On success it returns the
// request to pass to the handler, whose context carries the lock
// (FromContext) and is cancelled with cause ErrLockLost if the lock is lost,
// and done, which the adapter must call, deferred, when the handler has
// returned or panicked (the status is not used): it stops the keep-alive and
// releases the lock on a detached context; it is safe to call more than
// once. When the request may not proceed, Admit returns a Rejection for the
// adapter to write (Write) or hand to its framework instead of running the
// handler, and a nil done. With WithFailOpen and a failed store, Admit
// returns r itself, a nil done and no Rejection. The only write to w is the
// Retry-After header of a 409, set before the Rejection is written (w may be
// nil to skip it).
func (g *Guard) Admit(w http.ResponseWriter, r *http.Request, key KeyFunc) (next *http.Request, done func(status int), rj *Rejection) {
	if key == nil {
		key = g.key
	}
	ctx := r.Context()
	k, err := key(r)
	if err == nil && k == "" {
		err = ErrNoKey
	}
	if err != nil {
		g.log(ctx, &g.keyLog, slog.LevelWarn, "lockguard: request has no resource key", slog.Any("error", err))
		return r, nil, &Rejection{Status: http.StatusBadRequest, Message: msgBadKey, Err: err, g: g, r: r}
	}

	var opts []ObtainOption
	if g.wait > 0 {
		opts = []ObtainOption{WaitFor(g.wait)}
	}
	lock, err := g.locker.Obtain(ctx, k, g.ttl, opts...)
	if err != nil {
		var held *HeldError
		switch {
		case errors.As(err, &held):
			if w != nil { // for every writer of the rejection, as a rate limit's headers are
				w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(held.TTL), 10))
			}
			return r, nil, &Rejection{Status: http.StatusConflict, RetryAfter: held.TTL, Message: msgLocked, Err: err, g: g, r: r}
		case ctx.Err() != nil && !errors.Is(err, ErrStore):
			return r, nil, &Rejection{Status: http.StatusServiceUnavailable, Message: msgCancelled, Err: err, g: g, r: r}
		case g.failOpen:
			g.log(ctx, &g.storeLog, slog.LevelError, "lockguard: store failed, serving without a lock (fail-open)",
				slog.String("key", k), slog.Any("error", err))
			return r, nil, nil
		default:
			g.log(ctx, &g.storeLog, slog.LevelError, "lockguard: store failed, rejecting the request (fail-closed)",
				slog.String("key", k), slog.Any("error", err))
			return r, nil, &Rejection{Status: http.StatusServiceUnavailable, Message: msgUnavailable, Err: err, g: g, r: r}
		}
	}

	work, stop := lock.KeepAlive(context.WithValue(ctx, ctxKey{}, lock))
	var once sync.Once
	release := func(int) {
		once.Do(func() {
			stop()
			cause := context.Cause(work)
			lost := errors.Is(cause, ErrLockLost)
			if lost || errors.Is(cause, ErrMaxHoldExceeded) {
				g.log(ctx, nil, slog.LevelWarn, "lockguard: handler's context cancelled",
					slog.String("key", k), slog.Any("cause", cause))
			}
			if err := lock.Release(ctx); err != nil && !(lost && errors.Is(err, ErrNotHeld)) {
				g.log(ctx, nil, slog.LevelWarn, "lockguard: release failed",
					slog.String("key", k), slog.Any("error", err))
			}
		})
	}
	return r.WithContext(work), release, nil
}
