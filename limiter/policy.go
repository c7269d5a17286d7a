package limiter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/logthrottle"
	"github.com/sluicehq/sluice/store"
)

// DefaultTimeout is how long a Policy waits for its store on one decision
// unless WithTimeout sets another.
const DefaultTimeout = 500 * time.Millisecond

// Headers selects the families of rate-limit response headers a Policy sends.
type Headers uint8

const (
	// LegacyHeaders are X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset (Unix time in seconds, rounded up), as GitHub and
	// express-rate-limit send them.
	LegacyHeaders Headers = 1 << iota
	// IETFHeaders are RateLimit-Policy and RateLimit of
	// draft-ietf-httpapi-ratelimit-headers (-08 to -10).
	IETFHeaders

	// NoHeaders sends no quota headers (Retry-After is still sent on a
	// denial).
	NoHeaders Headers = 0
	// AllHeaders is the default: both families.
	AllHeaders = LegacyHeaders | IETFHeaders
)

// FailMode says what a Policy does when its store fails (an error, a closed
// limiter, or no answer within the timeout).
type FailMode int

const (
	// FailOpen serves the request as if it were allowed, without quota
	// headers, and reports the error. It is the default: an outage of the
	// store does not take the application down with it. A request whose own
	// context was done when the store failed (its client went away) is not
	// served under either mode.
	FailOpen FailMode = iota
	// FailClosed answers 503 Service Unavailable with the JSON body
	// {"error":"rate limiter unavailable"}, and reports the error. Use it
	// where the limit protects something (a login form against password
	// guessing).
	FailClosed
)

// DenyHandler writes the response to a request that a limiter denied. When
// it runs, the quota headers and Retry-After are already set on w. DenyJSON
// is the default.
type DenyHandler func(w http.ResponseWriter, r *http.Request, d Decision)

// ErrorHandler is told about a store failure (or a failed Undo) of the named
// policy, and about a request it answered 400 because the request's key or
// cost could not be determined (the error then wraps ErrNoKey or
// ErrInvalidCost). It runs on the request's goroutine and should return
// quickly.
type ErrorHandler func(ctx context.Context, policy string, err error)

// RequestErrorHandler writes the response to a request whose key or cost
// could not be determined; err wraps ErrNoKey or ErrInvalidCost. It must not
// send err's text to the client. The default answers 400 with a JSON error
// (see WithRequestErrorHandler).
type RequestErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

// Option configures a Policy in NewPolicy. An option out of range makes
// NewPolicy fail with an error wrapping ErrInvalidConfig.
type Option func(p *Policy)

// Policy is the HTTP side of a Limiter: which requests it counts, under which
// key and cost, the headers it sends, how it denies and what it does when the
// store fails. It works on net/http types only; the adapters in
// adapters/httpmw, adapters/echomw and adapters/ginmw turn it into
// middleware. Create it with NewPolicy; the zero value is not usable. A
// Policy is safe for concurrent use.
type Policy struct {
	lim        *Limiter
	key        KeyFunc
	cost       int
	costFn     func(*http.Request) (int, error)
	skip       func(*http.Request) bool
	skipOK     bool
	skipFailed bool
	success    func(status int) bool
	headers    Headers
	fail       FailMode
	timeout    time.Duration
	deny       DenyHandler
	badRequest RequestErrorHandler
	onError    ErrorHandler
	logger     *slog.Logger
	now        func() time.Time
	limitFn    func(*http.Request) (int, error)

	// What shapes the Limiter's count (see New).
	algorithm     store.Algorithm
	burst         int
	denyCacheSize int
	observer      Observer

	httpOnly  string     // the first option given that only a Policy uses
	stack     []*Policy  // the policies of a Stack; nil for a single policy
	stackDeny *denyCache // a Stack's deny cache; nil when off

	// Precomputed header values.
	limitValue  string // "5"
	policyValue string // "name";q=5;w=10
	rlPrefix    string // "name";r=

	err      error                // the first option out of range
	storeLog logthrottle.Throttle // default log lines of store failures
	keyLog   logthrottle.Throttle // default log lines of requests without a key or cost
}

// NewPolicy returns the Policy of a route or route group in one call: a
// Limiter named name that allows limit hits per client in any sliding window
// of length window, counted in st (see New for the rules on each), and the
// HTTP policy around it, configured by opts. Without options it counts every
// request once per client IP (ClientIP), sends both header families, denies
// with DenyJSON, fails open, and gives the store DefaultTimeout per decision.
// An option out of range or a nil function is an error wrapping
// ErrInvalidConfig.
//
// The Policy holds its Limiter's name on st until Close. To share one quota
// between two routes, mount the same Policy on both.
func NewPolicy(name string, limit int, window time.Duration, st store.WindowStore, opts ...Option) (*Policy, error) {
	p, err := configure(opts)
	if err != nil {
		return nil, fmt.Errorf("policy %q: %w", name, err)
	}
	l, err := newLimiter(name, limit, window, st, p)
	if err != nil {
		return nil, err
	}
	p.lim = l
	if err := p.validate(); err != nil {
		_ = l.Close()
		return nil, err
	}
	return p, nil
}

// newPolicy returns a Policy over an existing Limiter; the options that
// shape the count do not apply (the Limiter is built).
func newPolicy(l *Limiter, opts []Option) (*Policy, error) {
	p, err := configure(opts)
	if err != nil {
		return nil, fmt.Errorf("policy %q: %w", l.name, err)
	}
	p.lim = l
	if err := p.validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// configure applies opts over the defaults.
func configure(opts []Option) (*Policy, error) {
	p := &Policy{
		key:           ClientIP,
		cost:          1,
		success:       defaultSuccess,
		headers:       AllHeaders,
		fail:          FailOpen,
		timeout:       DefaultTimeout,
		deny:          DenyJSON,
		badRequest:    badRequestJSON,
		logger:        slog.Default(),
		denyCacheSize: DefaultDenyCacheSize,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(p)
		}
	}
	if p.now == nil { // no WithClock
		p.now = new(wallClock).now
	}
	return p, p.err
}

// validate checks the options against the Limiter and precomputes the
// policy's header values.
func (p *Policy) validate() error {
	l := p.lim
	if p.skipOK && p.skipFailed {
		return fmt.Errorf("%w: policy %q: WithSkipSuccessful and WithSkipFailed together would count no request", ErrInvalidConfig, l.name)
	}
	if p.cost > p.maxCost() {
		return fmt.Errorf("%w: policy %q: cost %d exceeds %d (the capacity, and at most store.MaxCost for the sliding log)", ErrInvalidConfig, l.name, p.cost, p.maxCost())
	}
	p.limitValue = strconv.Itoa(l.rule.Limit)
	p.policyValue = p.policyMember(l.rule.Limit)
	p.rlPrefix = `"` + quoted(l.name) + `";r=`
	return nil
}

// policyMember returns the policy's RateLimit-Policy list member under
// limit: "name";q=<limit>;w=<window in seconds>.
func (p *Policy) policyMember(limit int) string {
	return `"` + quoted(p.lim.name) + `";q=` + strconv.Itoa(limit) + ";w=" + strconv.FormatInt(ceilSeconds(p.lim.rule.Window), 10)
}

// Close releases the policy's name on its store (see Limiter.Close); a
// request that reaches the Policy afterwards meets a store failure and its
// fail mode. Closing a Stack closes each of its policies. Close is safe to
// call more than once and always returns nil.
func (p *Policy) Close() error {
	for _, m := range p.stack {
		_ = m.Close()
	}
	if p.lim != nil {
		_ = p.lim.Close()
	}
	return nil
}

func defaultSuccess(status int) bool { return status < 400 }

// maxCost returns the largest cost a request may have under the policy's
// own limit: the capacity, and at most store.MaxCost for the sliding log.
func (p *Policy) maxCost() int { return maxCost(p.lim.rule) }

// maxCost returns the largest cost one call may take under rule.
func maxCost(rule store.Rule) int {
	if rule.Algorithm == store.SlidingLog {
		return min(rule.Capacity(), store.MaxCost)
	}
	return rule.Capacity()
}

// markHTTP records that an option only a Policy uses was given, so that New
// can refuse it.
func (p *Policy) markHTTP(option string) {
	if p.httpOnly == "" {
		p.httpOnly = option
	}
}

// setErr records the first error of an option.
func (p *Policy) setErr(err error) {
	if p.err == nil {
		p.err = err
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// WithKey sets the function that picks the key a request is counted under.
// The default is ClientIP. See also ValidatedHeaderKey, ContextKey and
// TrustedProxyIP.
func WithKey(fn KeyFunc) Option {
	return func(p *Policy) {
		p.markHTTP("WithKey")
		if fn == nil {
			p.setErr(invalid("nil KeyFunc"))
			return
		}
		p.key = fn
	}
}

// WithCost sets how many hits each request counts as; it must be between 1
// and the limit (and at most store.MaxCost). The default is 1.
func WithCost(n int) Option {
	return func(p *Policy) {
		p.markHTTP("WithCost")
		if n < 1 {
			p.setErr(invalid("cost %d must be positive", n))
			return
		}
		p.cost, p.costFn = n, nil
	}
}

// WithCostFunc computes each request's cost (for instance from the size of a
// batch). A cost outside 1..limit (or above store.MaxCost), or an error,
// answers the request through the RequestErrorHandler (400 by default)
// without counting it. The default is the fixed cost of WithCost, 1.
func WithCostFunc(fn func(r *http.Request) (int, error)) Option {
	return func(p *Policy) {
		p.markHTTP("WithCostFunc")
		if fn == nil {
			p.setErr(invalid("nil cost function"))
			return
		}
		p.costFn = fn
	}
}

// WithSkip exempts requests for which fn returns true: they are not counted
// and get no rate-limit headers. The default exempts nothing.
func WithSkip(fn func(r *http.Request) bool) Option {
	return func(p *Policy) {
		p.markHTTP("WithSkip")
		if fn == nil {
			p.setErr(invalid("nil skip function"))
			return
		}
		p.skip = fn
	}
}

// WithSkipSuccessful counts only requests that fail: each request is counted
// on the way in (so concurrent requests cannot overrun the limit) and undone
// once the handler has answered with a successful status. This is the
// classic login guard: only wrong passwords use up the quota. Successful means
// status < 400 unless WithSuccess says otherwise. The default counts every
// request. It cannot be combined with WithSkipFailed.
func WithSkipSuccessful() Option {
	return func(p *Policy) {
		p.markHTTP("WithSkipSuccessful")
		p.skipOK = true
	}
}

// WithSkipFailed counts only requests that succeed, undoing the others once
// the handler has answered; see WithSkipSuccessful. The default counts every
// request. It cannot be combined with WithSkipSuccessful: NewPolicy reports
// the pair as an error wrapping ErrInvalidConfig.
func WithSkipFailed() Option {
	return func(p *Policy) {
		p.markHTTP("WithSkipFailed")
		p.skipFailed = true
	}
}

// WithSuccess replaces the test of a final status used by WithSkipSuccessful
// and WithSkipFailed. The default is status < 400.
func WithSuccess(fn func(status int) bool) Option {
	return func(p *Policy) {
		p.markHTTP("WithSuccess")
		if fn == nil {
			p.setErr(invalid("nil success function"))
			return
		}
		p.success = fn
	}
}

// WithHeaders selects the quota header families to send: LegacyHeaders,
// IETFHeaders, both (AllHeaders, the default) or NoHeaders.
func WithHeaders(h Headers) Option {
	return func(p *Policy) {
		p.markHTTP("WithHeaders")
		if h&^AllHeaders != 0 {
			p.setErr(invalid("unknown header families %#x", uint8(h)))
			return
		}
		p.headers = h
	}
}

// WithFailMode chooses what happens when the store fails: FailOpen (the
// default) or FailClosed.
func WithFailMode(m FailMode) Option {
	return func(p *Policy) {
		p.markHTTP("WithFailMode")
		if m != FailOpen && m != FailClosed {
			p.setErr(invalid("unknown fail mode %d", int(m)))
			return
		}
		p.fail = m
	}
}

// WithTimeout bounds each decision (and each Undo) of a store that does I/O,
// such as Redis: a store that has not answered by then counts as failed, so
// a hung store costs a request at most d. The default is DefaultTimeout
// (500ms); 0 sets no deadline of the Policy's own (the request's context
// still applies). Stores that answer from process memory (store/memstore)
// never block and get no deadline, which spares them a timer per request.
func WithTimeout(d time.Duration) Option {
	return func(p *Policy) {
		p.markHTTP("WithTimeout")
		if d < 0 {
			p.setErr(invalid("negative timeout %v", d))
			return
		}
		p.timeout = d
	}
}

// WithDenyHandler replaces DenyJSON, the default response to a denied
// request.
func WithDenyHandler(h DenyHandler) Option {
	return func(p *Policy) {
		p.markHTTP("WithDenyHandler")
		if h == nil {
			p.setErr(invalid("nil deny handler"))
			return
		}
		p.deny = h
	}
}

// WithRequestErrorHandler replaces the default response to a request whose
// key or cost could not be determined: 400 with the JSON body
// {"error":"cannot identify client"} or {"error":"invalid request cost"}.
func WithRequestErrorHandler(h RequestErrorHandler) Option {
	return func(p *Policy) {
		p.markHTTP("WithRequestErrorHandler")
		if h == nil {
			p.setErr(invalid("nil request error handler"))
			return
		}
		p.badRequest = h
	}
}

// WithErrorHandler sets the function told about store failures and requests
// without a key or cost. The default logs them with the policy's logger (see
// WithLogger), store failures at error level and requests without a key at warn
// level, with the policy's name and no client data, at most one line of each kind per
// second per policy (the line says how many were suppressed), so a Redis
// outage or a flood of bad requests does not flood the log.
func WithErrorHandler(h ErrorHandler) Option {
	return func(p *Policy) {
		p.markHTTP("WithErrorHandler")
		if h == nil {
			p.setErr(invalid("nil error handler"))
			return
		}
		p.onError = h
	}
}

// WithLogger sets where the default error handler logs store failures and
// requests without a key or cost (see WithErrorHandler), at most one line per
// second per policy, as a lockguard.Guard logs its own. The default is
// slog.Default(); a nil logger discards the records.
func WithLogger(l *slog.Logger) Option {
	return func(p *Policy) {
		p.markHTTP("WithLogger")
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		p.logger = l
	}
}

// WithClock sets the clock X-RateLimit-Reset is computed from (it is an
// absolute time; every other value is relative) and the deny cache counts
// retry-afters down on. The default is the system clock, time.Now; tests
// pass the same clock as the store's.
func WithClock(now func() time.Time) Option {
	return func(p *Policy) {
		if now == nil {
			p.setErr(invalid("nil clock"))
			return
		}
		p.now = now
	}
}

// WithAlgorithm chooses how hits are counted: store.SlidingLog (the
// default, exact, memory O(limit) per client and limit at most
// store.MaxLimit), store.SlidingCounter (O(1), approximate) or store.GCRA
// (O(1), a token bucket; see WithBurst). See store.Algorithm for what each
// admits and what its headers mean.
func WithAlgorithm(a store.Algorithm) Option {
	return func(p *Policy) {
		if a != store.SlidingLog && a != store.SlidingCounter && a != store.GCRA {
			p.setErr(invalid("unknown algorithm %v", a))
			return
		}
		p.algorithm = a
	}
}

// WithBurst sets the bucket capacity of a store.GCRA limiter: up to n hits
// at once, refilled at limit per window. The default, 0, is the limit. Other
// algorithms refuse a burst.
func WithBurst(n int) Option {
	return func(p *Policy) {
		if n < 0 {
			p.setErr(invalid("burst %d must not be negative", n))
			return
		}
		p.burst = n
	}
}

// WithDenyCache sets how many denied clients a Limiter over a remote store
// (one that does I/O, such as Redis) remembers, so that a client that keeps
// sending requests after a denial is answered in-process, with the same
// headers and body, until its retry-after has passed, instead of costing a
// store call each. The least recently denied client is forgotten first. The
// default is DefaultDenyCacheSize; 0 turns the cache off. Stores that
// answer in-process (store/memstore) never use one.
//
// The cache never admits a request. It may deny one that the store would
// now admit only when another instance gave hits back (WithSkipSuccessful
// or WithSkipFailed undoing a request there) before the cached retry-after
// has passed; an undo on this instance forgets the client at once.
func WithDenyCache(size int) Option {
	return func(p *Policy) {
		if size < 0 {
			p.setErr(invalid("deny cache size %d must not be negative", size))
			return
		}
		p.denyCacheSize = size
	}
}

// WithObserver sets an Observer told about every decision (and, for a
// Policy, every skipped request and request without a key or cost), for
// metrics. The default, nil, observes nothing and costs nothing.
func WithObserver(o Observer) Option {
	return func(p *Policy) { p.observer = o }
}

// WithLimitFunc chooses the limit of each request, for plans and tiers
// (free 100 per hour, pro 10,000 per hour, under one policy): fn returns the
// request's limit, for instance from the authenticated user's plan. The
// headers and the Decision then show that limit. An error, or a limit below
// 1 or above the algorithm's bound (store.MaxLimit for the sliding log,
// store.MaxCounterLimit otherwise), answers the request through the
// RequestErrorHandler (400 {"error":"invalid request limit"} by default)
// without counting it, and is reported (the error wraps ErrInvalidLimit):
// never a silent allow. When a client's limit changes, the hits it already
// has count against the new limit; under GCRA, whose bucket keeps the time it
// needs to refill and refills at the new limit's rate, the share of the quota
// used carries over instead (10 hits of 100 count as 400 of 4,000). The
// window stays the policy's. The default uses the policy's limit for
// every request.
func WithLimitFunc(fn func(r *http.Request) (int, error)) Option {
	return func(p *Policy) {
		p.markHTTP("WithLimitFunc")
		if fn == nil {
			p.setErr(invalid("nil limit function"))
			return
		}
		p.limitFn = fn
	}
}

// Name returns the policy's name, which is its Limiter's; for a Stack its
// policies' names joined by "+"; "" for a Policy not made by NewPolicy.
func (p *Policy) Name() string {
	switch {
	case p == nil:
		return ""
	case p.stack != nil:
		return p.stackName()
	case p.lim == nil:
		return ""
	}
	return p.lim.name
}

// Limiter returns the policy's Limiter; nil for a Stack.
func (p *Policy) Limiter() *Limiter { return p.lim }

// report passes a store failure to the error handler.
func (p *Policy) report(ctx context.Context, err error) {
	if p.onError != nil {
		p.onError(ctx, p.lim.name, err)
		return
	}
	t, level, msg := &p.storeLog, slog.LevelError, "sluice: rate limiter store failed"
	if errors.Is(err, ErrNoKey) || errors.Is(err, ErrInvalidCost) || errors.Is(err, ErrInvalidLimit) {
		t, level, msg = &p.keyLog, slog.LevelWarn, "sluice: request refused: no key or cost"
	}
	ok, suppressed := t.Allow()
	if !ok {
		return
	}
	p.logger.LogAttrs(ctx, level, msg,
		slog.String("policy", p.lim.name),
		slog.Any("error", err),
		slog.Int64("suppressed", suppressed))
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
