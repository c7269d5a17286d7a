package limiter

import (
	"context"
	"net/http"
	"strconv"
	"time"
	"unsafe"
)

// stateKey is the context key under which a request's limiter state lives.
type stateKey struct{}

// reqState is the per-request state of the policies on a route. It is the
// request's context itself (it embeds the parent and answers Value for
// stateKey), it holds the request that carries it (a copy of the one the
// first policy saw, with this context), and it holds the decisions, the
// header value slices and the bytes of the strings a decision needs, so
// that the allowed path costs one allocation for all of them.
//
// A reqState belongs to one request and is used by one goroutine at a time:
// the middleware chain in front of the handler. Stacked policies that see the
// very request it carries append to it; a policy that sees another request
// (one a middleware in between derived) starts a new state seeded with the
// decisions so far.
type reqState struct {
	context.Context
	req    http.Request // the request whose context this is
	decs   []Decision
	legacy int32 // index in decs of the decision shown in X-RateLimit-*; -1 none
	nvals  uint8 // vals in use
	used   uint8 // bytes of buf in use

	// Room for one policy's decision, header values and strings (the
	// common case: the five quota headers of a policy whose name is up to
	// about 30 bytes long); a Retry-After, stacked policies and longer
	// names spill to the heap. The sizes keep a reqState within 640 bytes
	// (a size class of the allocator), the request copy taking 304.
	inline [1]Decision
	vals   [5]string // backing arrays of header values
	buf    [80]byte  // bytes of strings handed out by keep; never rewritten
}

// Value answers stateKey with s and passes every other key to the parent.
func (s *reqState) Value(key any) any {
	if key == (stateKey{}) {
		return s
	}
	return s.Context.Value(key)
}

// attach returns the state on which to record r's decisions, and the
// request that carries it: prev itself if it carries r (a policy stacked on
// a request that another one decided), else a new state seeded with prev's
// decisions (prev may be nil) and carrying a copy of r. parent is r's
// context.
func attach(r *http.Request, parent context.Context, prev *reqState) (*reqState, *http.Request) {
	if prev != nil && r == &prev.req {
		return prev, r
	}
	s := &reqState{Context: parent, legacy: -1}
	s.decs = s.inline[:0]
	if prev != nil {
		s.decs = append(s.decs, prev.decs...)
		s.legacy = prev.legacy
	}
	// WithContext's copy does not outlive this statement, so it stays on
	// the stack: the request lives in s, and one allocation serves both.
	s.req = *r.WithContext(s)
	return s, &s.req
}

// decided reports whether s holds a decision of limiter l for key; s may be
// nil.
func (s *reqState) decided(l *Limiter, key string) bool {
	if s == nil {
		return false
	}
	for i := range s.decs {
		if d := &s.decs[i]; d.lim == l && d.key == key {
			return true
		}
	}
	return false
}

// stateOf returns the limiter state in ctx, if any.
func stateOf(ctx context.Context) *reqState {
	s, _ := ctx.Value(stateKey{}).(*reqState)
	return s
}

// free returns the unused room of s.buf, empty, for a string's bytes to be
// appended to and then handed to keep.
func (s *reqState) free() []byte {
	return s.buf[s.used:s.used:len(s.buf)]
}

// keep returns the bytes b, appended to what free returned, as a string.
// While they fit, they stay in s.buf: the region is handed out once and
// never written again, so the string is immutable as Go requires, and it
// keeps s alive while in use. Bytes that did not fit were moved to the heap
// by append, and the string uses them there.
func (s *reqState) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) <= len(s.buf)-int(s.used) { // append did not move them
		s.used += uint8(len(b))
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// itoa returns the decimal form of v, stored as keep stores strings.
func (s *reqState) itoa(v int64) string {
	return s.keep(strconv.AppendInt(s.free(), v, 10))
}

// slot returns a one-element slice holding v, for a header map entry,
// backed by s.vals while it has room.
func (s *reqState) slot(v string) []string {
	if int(s.nvals) == len(s.vals) {
		return []string{v}
	}
	i := s.nvals
	s.nvals++
	s.vals[i] = v
	return s.vals[i : i+1 : i+1]
}

// FromContext returns the decisions of every limiter that has decided on the
// request whose context is ctx, in the order they ran (outermost first); nil
// if none did. Requests that a policy skipped, or served while its store was
// failing (fail-open), carry no decision of that policy. The slice is a copy.
func FromContext(ctx context.Context) []Decision {
	s := stateOf(ctx)
	if s == nil || len(s.decs) == 0 {
		return nil
	}
	return append([]Decision(nil), s.decs...)
}

// DecisionFor returns the decision of the limiter named name on the request
// whose context is ctx, and whether there is one.
func DecisionFor(ctx context.Context, name string) (Decision, bool) {
	s := stateOf(ctx)
	if s == nil {
		return Decision{}, false
	}
	for i := len(s.decs) - 1; i >= 0; i-- {
		if s.decs[i].Policy == name {
			return s.decs[i], true
		}
	}
	return Decision{}, false
}

// denying reports whether d turned its request away: a denial with a wait.
// A policy of a Stack that would have admitted a request another policy
// denied has Allowed false and no wait.
func (d *Decision) denying() bool { return !d.Allowed && d.RetryAfter > 0 }

// retryAfterSeconds returns RetryAfter in whole seconds, rounded up, and at
// least 1 for a denial: the value of the Retry-After header. It is 0 for a
// decision that did not deny.
func (d Decision) retryAfterSeconds() int64 {
	if !d.denying() {
		return 0
	}
	return max(ceilSeconds(d.RetryAfter), 1)
}

// resetSeconds returns the seconds, rounded up, until the quota shown in the
// headers resets: retryAfterSeconds for a denial, ResetAfter otherwise.
func (d Decision) resetSeconds() int64 {
	if d.denying() {
		return d.retryAfterSeconds()
	}
	return ceilSeconds(d.ResetAfter)
}

// resetAt returns, as Unix seconds rounded up, when the quota resets: when
// the window next frees capacity, or for a denial when the request would
// fit (now + RetryAfter).
func (d Decision) resetAt(now time.Time) int64 {
	reset := d.ResetAfter
	if d.denying() {
		reset = d.RetryAfter
	}
	t := now.Add(reset)
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}
