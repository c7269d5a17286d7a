package limiter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/store"
)

// Sentinel errors. Functions wrap them with details, so test with errors.Is.
var (
	// ErrInvalidConfig reports a limiter or policy that cannot be built: a bad
	// name, a limit or window that is not positive, a nil store or function,
	// an option out of range.
	ErrInvalidConfig = errors.New("limiter: invalid configuration")

	// ErrNameInUse reports a second open Limiter (one not yet closed) with
	// the same name over the same store: their counters would mix.
	ErrNameInUse = errors.New("limiter: name already in use on this store")

	// ErrClosed reports a call on a Limiter after Close.
	ErrClosed = errors.New("limiter: closed")

	// ErrNoKey reports that a KeyFunc found nothing to identify the client
	// by (no usable address, a missing header or context value).
	ErrNoKey = errors.New("limiter: no key for request")

	// ErrInvalidCost reports a request cost outside 1..limit.
	ErrInvalidCost = errors.New("limiter: invalid request cost")

	// ErrInvalidLimit reports a request limit (see WithLimitFunc) that could
	// not be determined or is out of the algorithm's range.
	ErrInvalidLimit = errors.New("limiter: invalid request limit")
)

// MaxNameLen is the longest name a Limiter may have.
const MaxNameLen = 64

// Limiter is a named rate rule (at most Limit hits per key in any Window,
// counted by the rule's algorithm) over a store.WindowStore. Create it with
// New; the zero value is not usable. A Limiter is safe for concurrent use.
//
// The name identifies the limiter's counters in the store (it is the
// store.Rule's Name, the namespace of the client keys) and appears in
// response headers, so two open limiters over one store cannot share a name.
// The name is released by Close and by nothing else: a Limiter that is
// dropped without Close keeps its name taken for the life of the process.
type Limiter struct {
	name  string
	rule  store.Rule // Name is the limiter's name
	st    store.WindowStore
	local bool       // st answers in-process: no deadline, no deny cache
	deny  *denyCache // nil: every decision asks the store
	obs   Observer   // nil: no events

	closed    atomic.Bool
	closeOnce sync.Once
}

// Decision is the outcome of Allow or AllowN for one key.
//
// The zero Decision describes nothing and Undo ignores it.
type Decision struct {
	// Policy is the name of the Limiter that decided.
	Policy string
	// Limit is the number of hits allowed in one window: the limiter's, or
	// the one chosen for the request (see WithLimitFunc).
	Limit int
	// Window is the length of the window.
	Window time.Duration
	// Cost is the number of hits the call asked for.
	Cost int
	// Allowed reports whether the hits were recorded.
	Allowed bool
	// Remaining is how many more hits the key takes right now, after this
	// call. It is never negative.
	Remaining int
	// RetryAfter is, when denied, how long until the request's Cost would
	// fit. It is 0 when allowed, and 0 for a policy of a stack (see Stack)
	// that would have admitted the request when another policy denied it.
	RetryAfter time.Duration
	// ResetAfter is how long until Remaining next grows (for GCRA: until
	// the bucket is full again); 0 when nothing is counted.
	ResetAfter time.Duration

	lim *Limiter
	key string // the client's key
	// What Undo needs of the store's receipt: its rule is the limiter's
	// with Limit in place of its own.
	receiptID   uint64
	receiptCost int
}

// New returns a Limiter named name that allows limit hits per key in any
// window of length window, counted in s by the sliding log unless
// WithAlgorithm chooses another algorithm.
//
// The name must be 1 to MaxNameLen bytes of printable ASCII, such as "api",
// "login:v2" or "GET /items/{id}" (it is quoted, and escaped, in response
// headers and bodies, and the store hashes it with each client's key), limit
// must be positive and at most store.MaxLimit for the sliding log
// (store.MaxCounterLimit for the other algorithms), window between one
// millisecond and store.MaxWindow, and s neither nil nor a nil pointer (such
// as a (*memstore.Store)(nil)); otherwise the error wraps ErrInvalidConfig.
// Of the options, New takes those that shape the count (WithAlgorithm,
// WithBurst, WithDenyCache, WithObserver, WithClock); an option that only a Policy
// uses, such as WithKey, is an error wrapping ErrInvalidConfig.
//
// A second open Limiter with the same name over the same store is an error
// wrapping ErrNameInUse: Close the first one to reuse its name. Two stores
// that share a backend (two redisstore.Store values with the same Redis and
// prefix) are different stores to this check.
func New(name string, limit int, window time.Duration, s store.WindowStore, opts ...Option) (*Limiter, error) {
	p, err := configure(opts)
	if err != nil {
		return nil, fmt.Errorf("limiter %q: %w", name, err)
	}
	if p.httpOnly != "" {
		return nil, fmt.Errorf("%w: limiter %q: %s applies to a Policy (NewPolicy), not to a Limiter", ErrInvalidConfig, name, p.httpOnly)
	}
	return newLimiter(name, limit, window, s, p)
}

// newLimiter builds the Limiter of the configuration p.
func newLimiter(name string, limit int, window time.Duration, s store.WindowStore, p *Policy) (*Limiter, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	rule := store.Rule{Name: name, Limit: limit, Window: window, Algorithm: p.algorithm, Burst: p.burst}
	if err := rule.Validate(); err != nil {
		return nil, fmt.Errorf("%w: limiter %q: %w", ErrInvalidConfig, name, err)
	}
	if isNil(s) {
		return nil, fmt.Errorf("%w: limiter %q: nil store", ErrInvalidConfig, name)
	}
	l := &Limiter{
		name:  name,
		rule:  rule,
		st:    s,
		local: inProcess(s),
		obs:   p.observer,
	}
	if size := p.denyCacheSize; size > 0 && !l.local {
		l.deny = newDenyCache(size, p.now)
	}
	if err := register(l); err != nil {
		return nil, err
	}
	return l, nil
}

// isNil reports whether s is nil or holds a nil pointer, map, function or
// channel (a (*memstore.Store)(nil) passed as a store.WindowStore), which
// would panic or block on the first call. It runs once, at construction.
func isNil(s store.WindowStore) bool {
	if s == nil {
		return true
	}
	switch v := reflect.ValueOf(s); v.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

func validName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty limiter name", ErrInvalidConfig)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: limiter name longer than %d bytes", ErrInvalidConfig, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < ' ' || c > '~' {
			return fmt.Errorf("%w: limiter name %q: only printable ASCII allowed", ErrInvalidConfig, name)
		}
	}
	return nil
}

// quoted returns name as the body of a quoted string of both JSON and HTTP
// structured fields (RFC 8941): a backslash before each '"' and ”. Names
// are printable ASCII, which both allow as they are otherwise.
func quoted(name string) string {
	if !strings.ContainsAny(name, `"\`) {
		return name
	}
	b := make([]byte, 0, len(name)+4)
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, name[i])
	}
	return string(b)
}

// Name returns the limiter's name.
func (l *Limiter) Name() string { return l.name }

// Limit returns the number of hits allowed in one window.
func (l *Limiter) Limit() int { return l.rule.Limit }

// Window returns the length of the window.
func (l *Limiter) Window() time.Duration { return l.rule.Window }

// Algorithm returns the algorithm that counts the limiter's hits.
func (l *Limiter) Algorithm() store.Algorithm { return l.rule.Algorithm }

// Allow records one hit for key if it fits. It is AllowN with n = 1.
func (l *Limiter) Allow(ctx context.Context, key string) (Decision, error) {
	return l.AllowN(ctx, key, 1)
}

// AllowN records n hits for key if they fit, and reports the outcome; a
// denial is not an error. An empty key or n outside 1..Limit (1..Burst for
// GCRA with a burst) is an error wrapping store.ErrInvalidArgument, a call
// after Close is ErrClosed, and a store failure is returned as the store
// reported it (the Decision is then zero). The key is hashed by the store,
// so its length does not matter.
func (l *Limiter) AllowN(ctx context.Context, key string, n int) (d Decision, err error) {
	// The decision is written in place (rather than returned through each
	// call) and the rule passed by reference: on an in-process store these
	// copies were a third of a decision's cost. A limiter with neither a
	// deny cache nor an Observer, given valid arguments, asks the store
	// here, without decide's frame and its copy of the Decision (about a
	// tenth of a memstore decision).
	if l.deny != nil || l.obs != nil || key == "" || n <= 0 || n > l.rule.Capacity() || l.closed.Load() {
		err = l.decide(ctx, key, n, &l.rule, &d)
		return d, err
	}
	res, err := l.st.Hit(ctx, key, l.rule, n)
	if err != nil {
		return Decision{}, err
	}
	l.fill(&d, key, n, &l.rule, &res)
	return d, nil
}

// decide asks the deny cache, then the store, for n hits of key under rule
// (the limiter's, or one with a per-request limit), and writes the outcome
// to d, which must be zero; d stays zero on error.
func (l *Limiter) decide(ctx context.Context, key string, n int, rule *store.Rule, d *Decision) error {
	if key == "" || l.closed.Load() || n <= 0 || n > rule.Capacity() {
		return l.refuse(key, n, rule)
	}
	var h uint64 // key's digest in the deny cache
	if l.deny != nil {
		h = digest(key)
		if wait, ok := l.deny.lookup(h, n, rule.Limit); ok {
			if l.obs != nil {
				l.obs.ObserveDecision(DecisionEvent{Policy: l.name, Outcome: Denied, Cost: n, Cached: true})
			}
			*d = Decision{Policy: l.name, Limit: rule.Limit, Window: rule.Window, Cost: n,
				RetryAfter: wait, ResetAfter: wait, lim: l, key: key}
			return nil
		}
	}
	var res store.Result
	var err error
	if l.obs != nil {
		res, err = l.hitObserved(ctx, key, n, rule)
	} else {
		res, err = l.st.Hit(ctx, key, *rule, n)
	}
	if err != nil {
		return err
	}
	l.fill(d, key, n, rule, &res)
	if !d.Allowed && l.deny != nil {
		l.deny.add(h, *d)
	}
	return nil
}

// refuse returns the error of a call that decide turns away before the
// store: an empty key, a closed limiter or a cost out of range. (It keeps
// the errors' formatting out of decide.)
func (l *Limiter) refuse(key string, n int, rule *store.Rule) error {
	if key == "" {
		return fmt.Errorf("limiter %q: %w: empty key", l.name, store.ErrInvalidArgument)
	}
	if l.closed.Load() {
		return ErrClosed
	}
	return fmt.Errorf("limiter %q: %w: cost %d outside 1..%d", l.name, store.ErrInvalidArgument, n, rule.Capacity())
}

// hitObserved is decide's store call for a limiter with an Observer: it
// tells the Observer the outcome and the time the store took.
func (l *Limiter) hitObserved(ctx context.Context, key string, n int, rule *store.Rule) (store.Result, error) {
	start := time.Now()
	res, err := l.st.Hit(ctx, key, *rule, n)
	ev := DecisionEvent{Policy: l.name, Outcome: StoreError, Cost: n, Latency: time.Since(start)}
	if err == nil {
		ev.Outcome = Allowed
		if !res.Allowed {
			ev.Outcome = Denied
		}
	}
	l.obs.ObserveDecision(ev)
	return res, err
}

// fill sets d, which must be zero, to the Decision of a store result.
func (l *Limiter) fill(d *Decision, key string, n int, rule *store.Rule, res *store.Result) {
	d.Policy = l.name
	d.Limit = rule.Limit
	d.Window = rule.Window
	d.Cost = n
	d.Allowed = res.Allowed
	d.Remaining = max(res.Remaining, 0)
	d.ResetAfter = max(res.ResetAfter, 0)
	d.lim = l
	d.key = key
	if res.Allowed {
		d.receiptID, d.receiptCost = res.Receipt.ID, res.Receipt.Cost
	} else {
		d.RetryAfter = max(res.RetryAfter, 0)
	}
}

// MarshalJSON encodes d with snake_case field names and its durations as
// strings in time.Duration's form ("10s", "1.5s", "0s"):
//
//	{"policy":"api","limit":5,"window":"10s","cost":1,"allowed":false,
//	 "remaining":0,"retry_after":"4.2s","reset_after":"4.2s"}
func (d Decision) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Policy     string `json:"policy"`
		Limit      int    `json:"limit"`
		Window     string `json:"window"`
		Cost       int    `json:"cost"`
		Allowed    bool   `json:"allowed"`
		Remaining  int    `json:"remaining"`
		RetryAfter string `json:"retry_after"`
		ResetAfter string `json:"reset_after"`
	}{d.Policy, d.Limit, d.Window.String(), d.Cost, d.Allowed, d.Remaining, d.RetryAfter.String(), d.ResetAfter.String()})
}

// Undo removes the hits that d recorded, giving the capacity back: the
// building block of "count only failed requests". A zero Decision, a denied
// one, or hits that already left the window are not an error; a Decision made
// by another Limiter is an error wrapping store.ErrInvalidArgument. Undo works
// after Close too, so that requests in flight can finish.
func (l *Limiter) Undo(ctx context.Context, d Decision) error {
	if d.lim == nil || (d.receiptID == 0 && d.receiptCost == 0) {
		return nil
	}
	if d.lim != l {
		return fmt.Errorf("limiter %q: %w: decision of limiter %q", l.name, store.ErrInvalidArgument, d.Policy)
	}
	if l.deny != nil {
		l.deny.remove(digest(d.key)) // the key has room again: ask the store next time
	}
	rule := l.rule
	rule.Limit = d.Limit
	return l.st.Undo(ctx, d.key, store.Receipt{ID: d.receiptID, Cost: d.receiptCost, Rule: rule})
}

// Close releases the limiter's name so that a new Limiter may use it on the
// same store, and makes further Allow calls fail with ErrClosed (a Policy
// over a closed Limiter treats that as a store failure and applies its fail
// mode). It does not close the store. Close is safe to call more than once and always returns
// nil.
func (l *Limiter) Close() error {
	l.closed.Store(true)
	l.closeOnce.Do(func() { unregister(l) })
	return nil
}
