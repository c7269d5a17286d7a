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
}

// GuardOption configures a Guard in NewGuard.
type GuardOption struct{ apply func(*Guard) }

// WithWait makes a request for a busy resource wait up to d for the lock,
// retrying with the Locker's RetryStrategy (DefaultBackoff if it has none),
// before the Guard answers 409. The default, 0, answers 409 at once.
func WithWait(d time.Duration) GuardOption {
	return GuardOption{func(g *Guard) { g.wait = d }}
}

// WithFailOpen chooses what happens when the store fails (an unreachable or
// slow Redis): with open true the handler runs without a lock (FromContext
// reports none) and the failure is logged; with open false, the default, the
// Guard answers 503 Service Unavailable with a JSON error (fail-closed).
func WithFailOpen(open bool) GuardOption {
	return GuardOption{func(g *Guard) { g.failOpen = open }}
}

// WithLogger sets where the Guard logs store failures, lost locks and failed
// releases. The default is slog.Default(); a nil logger discards the records.
func WithLogger(l *slog.Logger) GuardOption {
	return GuardOption{func(g *Guard) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		g.logger = l
	}}
}

// NewGuard returns a Guard that locks the resource key picks for ttl with
// locker. It returns an error if locker or key is nil, ttl is below one
// millisecond, or the wait is negative.
func NewGuard(locker *Locker, key KeyFunc, ttl time.Duration, opts ...GuardOption) (*Guard, error) {
	if locker == nil {
		return nil, errors.New("lockguard: nil locker")
	}
	if key == nil {
		return nil, errors.New("lockguard: nil key function")
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("lockguard: guard ttl %v must be at least 1ms", ttl)
	}
	g := &Guard{locker: locker, key: key, ttl: ttl, logger: slog.Default()}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(g)
		}
	}
	if g.wait < 0 {
		return nil, fmt.Errorf("lockguard: guard wait %v must not be negative", g.wait)
	}
	return g, nil
}

// Rejection is the response a Guard sends instead of running the handler.
// Adapters write it with Write, or render Body with their framework's JSON
// helper after setting Retry-After.
type Rejection struct {
	// Status is the HTTP status: 400 for a key error, 409 for a busy
	// resource, 503 for a store failure or a request cancelled while waiting.
	Status int
	// RetryAfter is the Retry-After value in whole seconds (at least 1) for a
	// 409, and 0 (no header) otherwise.
	RetryAfter int
	// Message is the text of the body's "error" member.
	Message string
	// Err is the reason, for logs; it is never sent to the client.
	Err error
}

// ErrorBody is the JSON body of a Rejection.
type ErrorBody struct {
	// Error says what went wrong, without internal details.
	Error string `json:"error"`
	// RetryAfter repeats the Retry-After header in seconds; omitted when 0.
	RetryAfter int `json:"retry_after,omitempty"`
}

// Body returns the JSON body of the rejection.
func (rj *Rejection) Body() ErrorBody {
	return ErrorBody{Error: rj.Message, RetryAfter: rj.RetryAfter}
}

// Write sends the rejection: Content-Type application/json, Retry-After when
// set, the status and the JSON body.
func (rj *Rejection) Write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if rj.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(rj.RetryAfter))
	}
	body, err := json.Marshal(rj.Body())
	if err != nil { // cannot happen for a struct of a string and an int
		body = []byte(`{"error":"internal error"}`)
	}
	w.WriteHeader(rj.Status)
	_, _ = w.Write(append(body, '\n'))
}

// RetryAfterSeconds converts a remaining TTL to a Retry-After value: whole
// seconds, rounded up, at least 1.
func RetryAfterSeconds(ttl time.Duration) int {
	s := (ttl + time.Second - 1) / time.Second
	return int(max(s, 1))
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

// Enter runs the guard's policy for r, for adapters. It picks the resource
// with key (nil: the Guard's KeyFunc) and obtains its lock. On success it
// returns the request to pass to the handler, whose context carries the lock
// (FromContext) and is cancelled with cause ErrLockLost if the lock is lost,
// and a release function that the adapter must call, deferred, when the
// handler has returned or panicked: it stops the keep-alive and releases the
// lock on a detached context; it is safe to call more than once. When the
// request may not proceed, Enter returns a non-nil Rejection for the adapter
// to send instead of running the handler, and a release function that does
// nothing. With WithFailOpen and a failed store, Enter returns r itself and no
// Rejection.
func (g *Guard) Enter(r *http.Request, key KeyFunc) (*http.Request, func(), *Rejection) {
	if key == nil {
		key = g.key
	}
	ctx := r.Context()
	k, err := key(r)
	if err == nil && k == "" {
		err = ErrNoKey
	}
	if err != nil {
		return r, noop, &Rejection{Status: http.StatusBadRequest, Message: msgBadKey, Err: err}
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
			return r, noop, &Rejection{
				Status:     http.StatusConflict,
				RetryAfter: RetryAfterSeconds(held.TTL),
				Message:    msgLocked,
				Err:        err,
			}
		case ctx.Err() != nil && !errors.Is(err, ErrStore):
			return r, noop, &Rejection{Status: http.StatusServiceUnavailable, Message: msgCancelled, Err: err}
		case g.failOpen:
			g.logger.LogAttrs(ctx, slog.LevelError, "lockguard: store failed, serving without a lock (fail-open)",
				slog.String("key", k), slog.Any("error", err))
			return r, noop, nil
		default:
			g.logger.LogAttrs(ctx, slog.LevelError, "lockguard: store failed, rejecting the request (fail-closed)",
				slog.String("key", k), slog.Any("error", err))
			return r, noop, &Rejection{Status: http.StatusServiceUnavailable, Message: msgUnavailable, Err: err}
		}
	}

	work, stop := lock.KeepAlive(context.WithValue(ctx, ctxKey{}, lock))
	var once sync.Once
	release := func() {
		once.Do(func() {
			stop()
			cause := context.Cause(work)
			lost := errors.Is(cause, ErrLockLost)
			if lost || errors.Is(cause, ErrMaxHoldExceeded) {
				g.logger.LogAttrs(ctx, slog.LevelWarn, "lockguard: handler's context cancelled",
					slog.String("key", k), slog.Any("cause", cause))
			}
			if err := lock.Release(ctx); err != nil && !(lost && errors.Is(err, ErrNotHeld)) {
				g.logger.LogAttrs(ctx, slog.LevelWarn, "lockguard: release failed",
					slog.String("key", k), slog.Any("error", err))
			}
		})
	}
	return r.WithContext(work), release, nil
}

func noop() {}
