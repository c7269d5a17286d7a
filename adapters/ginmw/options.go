package ginmw

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/sluicehq/sluice/limiter"
)

// Option configures RateLimit and Guard with hooks that take the
// *gin.Context.
type Option func(*options)

type options struct {
	key  func(c *gin.Context) (string, error)
	skip func(c *gin.Context) bool
	deny func(c *gin.Context, err error)
}

func newOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithKey picks the key (the client for RateLimit, the resource for Guard)
// with fn instead of the policy's or guard's KeyFunc, for keys that need the
// gin.Context. A route parameter (ParamKey, or limiter.PathValueKey as the
// KeyFunc) and a value an earlier handler stored with c.Set under a string
// key (limiter.ContextKey as the KeyFunc) need no WithKey. An error or an
// empty key is answered 400. The default, nil, uses the KeyFunc.
func WithKey(fn func(c *gin.Context) (string, error)) Option {
	return func(o *options) { o.key = fn }
}

// WithSkip exempts the requests for which fn returns true: they go on
// uncounted (RateLimit) or unlocked (Guard), without quota headers. The
// policy's own skip predicate (limiter.WithSkip) still applies to the
// others. The default skips nothing.
func WithSkip(fn func(c *gin.Context) bool) Option {
	return func(o *options) { o.skip = fn }
}

// WithDeny writes the response to a rejected request instead of the
// rejection's own Write: err is the *limiter.Rejection or
// *lockguard.Rejection (its Status says why; the quota headers and
// Retry-After are already set on c.Writer). The chain is aborted after fn
// returns. The default writes the rejection as JSON (429, 409, 400 or 503).
func WithDeny(fn func(c *gin.Context, err error)) Option {
	return func(o *options) { o.deny = fn }
}

// rejection is what both cores' rejections offer.
type rejection interface {
	error
	Write(w http.ResponseWriter)
}

// reject answers a rejected request and aborts the chain.
func (o *options) reject(c *gin.Context, rj rejection) {
	if o.deny != nil {
		o.deny(c, rj)
	} else {
		rj.Write(c.Writer)
	}
	c.Abort()
}

// request returns the request for the core: c.Request carrying gin's route
// parameters as path values and, when values were stored with c.Set, a
// context that answers their keys, for the policy's or guard's own functions
// (skip predicate, cost, KeyFunc) and the rest of the chain. A route with
// neither costs nothing. When this call made the keys context, it returns
// it too, and the middleware must detach it once the rest of the chain has
// run.
func (o *options) request(c *gin.Context) (*http.Request, detacher) {
	return withKeys(withRouteParams(c.Request, c.Params), c, c.Keys)
}

// detacher is a keys context that the middleware which made it detaches
// from its *gin.Context when the request is over.
type detacher interface{ detach() }

// keysContextKey is the context key under which a keys context answers
// itself.
type keysContextKey struct{}

// withKeys returns r with a context that also answers the string keys of
// keys (c.Keys), and that context; or r itself and nil when keys is empty or
// r's context already answers c's keys (a middleware of this package in
// front of this one made it: one context serves them all, and stacked
// policies see the very request the one before passed on). Values stored
// with c.Set, before the middleware ran or after, are thereby found by the
// core's context readers (limiter.ContextKey("user", ...)) as
// *gin.Context.Value finds them. The map's key type is a type parameter so
// that the adapter builds against gin releases whose c.Keys is
// map[string]any and those whose c.Keys is map[any]any.
func withKeys[K comparable](r *http.Request, c *gin.Context, keys map[K]any) (*http.Request, detacher) {
	if len(keys) == 0 {
		return r, nil
	}
	if kc, ok := r.Context().Value(keysContextKey{}).(*keysContext[K]); ok && kc.of(c) {
		return r, nil
	}
	kc := &keysContext[K]{Context: r.Context(), c: c}
	// WithContext's copy does not outlive this statement, so it stays on
	// the stack: the request lives in kc, and one allocation serves both.
	kc.req = *r.WithContext(kc)
	return &kc.req, kc
}

// keysContext is a context whose Value answers a string key from c.Keys
// first, then from the context it wraps, in the order *gin.Context.Value
// uses. While the request is in flight it reads c.Keys live, so a value
// stored with c.Set after the middleware ran is found too. Once the request
// is over, gin reuses its Context for another one, while this context may
// still be held (by a goroutine the handler started): detach then copies
// the values and lets go of c.
type keysContext[K comparable] struct {
	context.Context
	req http.Request // the request whose context this is

	mu     sync.RWMutex
	c      *gin.Context   // nil once detached
	frozen []keyValue[K]  // c.Keys when detached
	inline [4]keyValue[K] // room for frozen, the handful of values a request carries
}

type keyValue[K comparable] struct {
	k K
	v any
}

// of reports whether kc answers the keys of c, the request still in flight.
func (kc *keysContext[K]) of(c *gin.Context) bool {
	kc.mu.RLock()
	defer kc.mu.RUnlock()
	return kc.c == c
}

// detach copies c.Keys for Value to answer from, and lets go of c.
func (kc *keysContext[K]) detach() {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	keys, _ := any(kc.c.Keys).(map[K]any)
	kc.frozen = kc.inline[:0]
	for k, v := range keys {
		kc.frozen = append(kc.frozen, keyValue[K]{k, v})
	}
	kc.c = nil
}

// Value answers keysContextKey with kc itself, a string key stored with
// c.Set with its value, and every other key from the context kc wraps.
func (kc *keysContext[K]) Value(key any) any {
	switch key := key.(type) {
	case keysContextKey:
		return kc
	case string:
		if v, ok := kc.lookup(key); ok {
			return v
		}
	}
	return kc.Context.Value(key)
}

// lookup returns the value stored under key with c.Set.
func (kc *keysContext[K]) lookup(key string) (any, bool) {
	kc.mu.RLock()
	defer kc.mu.RUnlock()
	if kc.c != nil {
		return kc.c.Get(key)
	}
	k := any(key).(K)
	for _, kv := range kc.frozen {
		if kv.k == k {
			return kv.v, true
		}
	}
	return nil, false
}

// keyFunc returns the WithKey hook as a KeyFunc of c, or nil.
func (o *options) keyFunc(c *gin.Context) func(*http.Request) (string, error) {
	if o.key == nil {
		return nil
	}
	return func(*http.Request) (string, error) { return o.key(c) }
}

// withRouteParams returns a clone of r carrying gin's route parameters as
// path values, or r itself when there are none. It clones rather than
// shallow-copies: a copy made by r.WithContext shares r's path-value storage,
// and SetPathValue on it would write into r.
func withRouteParams(r *http.Request, params gin.Params) *http.Request {
	if len(params) == 0 {
		return r
	}
	r = r.Clone(r.Context())
	for _, p := range params {
		r.SetPathValue(p.Key, p.Value)
	}
	return r
}

// ParamKey returns a key function for WithKey that reads the route parameter
// name (":id" in the route "/users/:id"). The key is namespaced by the
// parameter's name, "param:id:<value>", so that a parameter value never
// shares a counter with a client address or a header key under the same
// policy: a client posting to /users/203.0.113.7/report does not use up the
// quota of the client at 203.0.113.7. A missing or empty parameter is an
// error wrapping limiter.ErrNoKey.
func ParamKey(name string) func(c *gin.Context) (string, error) {
	prefix := "param:" + name + ":"
	return func(c *gin.Context) (string, error) {
		if v := c.Param(name); v != "" {
			return prefix + v, nil
		}
		return "", fmt.Errorf("%w: route parameter %q is empty", limiter.ErrNoKey, name)
	}
}
