package limiter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/store"
)

// Canonical forms of the header names (http.CanonicalHeaderKey), used as
// map keys directly.
const (
	hdrLimit      = "X-Ratelimit-Limit"
	hdrRemaining  = "X-Ratelimit-Remaining"
	hdrReset      = "X-Ratelimit-Reset"
	hdrPolicy     = "Ratelimit-Policy"
	hdrRateLimit  = "Ratelimit"
	hdrRetryAfter = "Retry-After"
)

// Rejection is the response a Policy chose instead of the handler: a
// denial (429 Too Many Requests), a request whose key or cost could not be
// determined (400 Bad Request), or a store failure under FailClosed or a
// request whose client went away (503 Service Unavailable). The quota
// headers and Retry-After of a denial are already set on the response
// writer that Admit was given. A Rejection is an error, so that an adapter
// can hand it to its framework's error handling.
type Rejection struct {
	// Status is the HTTP status: 429, 400 or 503.
	Status int
	// Decision is the denying decision, for a 429; zero otherwise.
	Decision Decision
	// Err is the reason of a 400 or 503, for logs; it is never sent to the
	// client. It wraps ErrNoKey or ErrInvalidCost for a 400.
	Err error

	p         *Policy
	r         *http.Request
	cancelled bool // a 503 for a client that went away
}

// Error describes the rejection without client data.
func (rj *Rejection) Error() string {
	switch {
	case rj.Status == http.StatusTooManyRequests:
		return "limiter: policy " + strconv.Quote(rj.Decision.Policy) + ": too many requests"
	case rj.Err != nil:
		return "limiter: " + http.StatusText(rj.Status) + ": " + rj.Err.Error()
	default:
		return "limiter: " + http.StatusText(rj.Status)
	}
}

// Unwrap returns Err.
func (rj *Rejection) Unwrap() error { return rj.Err }

// Write writes the rejection with its policy's handlers: the DenyHandler
// for a 429, the RequestErrorHandler for a 400, and for a 503 the JSON body
// {"error":"rate limiter unavailable"} (or {"error":"request cancelled"}
// when the client went away).
func (rj *Rejection) Write(w http.ResponseWriter) {
	deny, badRequest := DenyHandler(DenyJSON), RequestErrorHandler(badRequestJSON)
	if rj.p != nil { // a Rejection made by hand has no policy: the defaults
		deny, badRequest = rj.p.deny, rj.p.badRequest
	}
	switch {
	case rj.Status == http.StatusTooManyRequests:
		deny(w, rj.r, rj.Decision)
	case rj.Status == http.StatusBadRequest:
		badRequest(w, rj.r, rj.Err)
	case rj.cancelled:
		writeJSON(w, http.StatusServiceUnavailable, `{"error":"request cancelled"}`)
	default:
		writeJSON(w, http.StatusServiceUnavailable, `{"error":"rate limiter unavailable"}`)
	}
}

// Admit decides r for an adapter, as lockguard.Guard.Admit does for a
// guard. It evaluates the skip predicate, picks r's key with key (nil: the
// policy's KeyFunc, see WithKey) and its cost, asks the limiter, and sets
// the quota headers on w.
//
// When the request may reach the handler, Admit returns the request to
// hand to it (its context carries the decision, see FromContext) and a nil
// Rejection. done is then nil, or a function the adapter must call once the
// handler has returned, with the response's final status (0 counts as 200;
// pass 500 if the handler panicked): under WithSkipSuccessful or
// WithSkipFailed it undoes the request's hits when the status says so, on
// a context detached from the request's cancellation. A skipped request,
// and one served while the store fails under FailOpen, comes back
// unchanged with neither a decision nor done.
//
// Otherwise Admit returns a Rejection: the handler must not run, and the
// adapter writes the rejection (Write) or hands it to its framework. A
// request whose store call failed because its own context was cancelled
// (the client closed or half-closed its connection) is rejected under
// either fail mode, so that hanging up cannot buy an uncounted request.
func (p *Policy) Admit(w http.ResponseWriter, r *http.Request, key KeyFunc) (next *http.Request, done func(status int), rj *Rejection) {
	if p.stack != nil {
		return p.admitStack(w, r, key)
	}
	if p.skip != nil && p.skip(r) {
		p.observe(Skipped, 0)
		return r, nil, nil
	}
	k, cost, rule, rj := p.request(r, key)
	if rj != nil {
		return r, nil, rj
	}
	parent := r.Context()
	prev := stateOf(parent)
	if prev.decided(p.lim, k) {
		// The same limiter already counted this request under this key: a
		// policy mounted twice on one route (on a group and on one of its
		// routes) counts a request once.
		return r, nil, nil
	}
	ctx := parent
	var cancel context.CancelFunc
	if p.timeout > 0 && !p.lim.local {
		ctx, cancel = context.WithTimeout(parent, p.timeout)
	}
	now := p.clockForReset()
	var d Decision
	err := p.lim.decide(ctx, k, cost, &rule, &d)
	if cancel != nil {
		cancel()
	}
	if err != nil {
		if errors.Is(parent.Err(), context.Canceled) {
			// The request was cancelled: net/http cancels its context when
			// the client closes or half-closes its connection, and the store
			// refused the hit because of it. Nothing is reported (the store
			// is fine).
			return r, nil, &Rejection{Status: http.StatusServiceUnavailable, Err: err, p: p, r: r, cancelled: true}
		}
		p.report(parent, err)
		if p.fail == FailClosed {
			return r, nil, &Rejection{Status: http.StatusServiceUnavailable, Err: err, p: p, r: r}
		}
		return r, nil, nil
	}

	st, next := attach(r, parent, prev)
	st.decs = append(st.decs, d)
	p.setHeaders(w.Header(), st, len(st.decs)-1, now)
	if !d.Allowed {
		w.Header()[hdrRetryAfter] = st.slot(st.itoa(d.retryAfterSeconds()))
		return next, nil, &Rejection{Status: http.StatusTooManyRequests, Decision: d, p: p, r: next}
	}
	if p.skipOK || p.skipFailed {
		done = p.undoer(next, d)
	}
	return next, done, nil
}

// request picks r's key (with key, or the policy's KeyFunc when nil), cost
// and rule. A key, cost or limit that cannot be determined is a 400
// Rejection.
func (p *Policy) request(r *http.Request, key KeyFunc) (k string, cost int, rule store.Rule, rj *Rejection) {
	if key == nil {
		key = p.key
	}
	k, keyErr := key(r)
	if keyErr == nil && k == "" {
		keyErr = ErrNoKey
	}
	if keyErr != nil {
		if !errors.Is(keyErr, ErrNoKey) {
			keyErr = errors.Join(ErrNoKey, keyErr)
		}
		return "", 0, rule, p.badRequestRejection(r, keyErr)
	}
	rule = p.lim.rule
	if p.limitFn != nil {
		n, err := p.limitFn(r)
		if err == nil {
			rule.Limit = n
			err = rule.Validate()
		}
		if err != nil {
			return "", 0, rule, p.badRequestRejection(r, errors.Join(ErrInvalidLimit, err))
		}
	}
	cost = p.cost
	if p.costFn != nil {
		c, err := p.costFn(r)
		if err != nil || c < 1 || c > maxCost(rule) {
			if err == nil {
				err = errors.New("cost " + strconv.Itoa(c) + " outside 1.." + strconv.Itoa(maxCost(rule)))
			}
			return "", 0, rule, p.badRequestRejection(r, errors.Join(ErrInvalidCost, err))
		}
		cost = c
	} else if cost > maxCost(rule) {
		// The limit chosen for the request is below the policy's cost.
		return "", 0, rule, p.badRequestRejection(r, fmt.Errorf("%w: cost %d exceeds %d under the request's limit", ErrInvalidLimit, cost, maxCost(rule)))
	}
	return k, cost, rule, nil
}

// badRequestRejection reports a request whose key or cost could not be
// determined and returns its 400 Rejection.
func (p *Policy) badRequestRejection(r *http.Request, err error) *Rejection {
	p.observe(BadRequest, 0)
	p.report(r.Context(), err)
	return &Rejection{Status: http.StatusBadRequest, Err: err, p: p, r: r}
}

// observe tells the policy's Observer about an outcome that did not reach
// the store.
func (p *Policy) observe(o Outcome, cost int) {
	if obs := p.lim.obs; obs != nil {
		obs.ObserveDecision(DecisionEvent{Policy: p.lim.name, Outcome: o, Cost: cost})
	}
}

// undoer returns the done function of an admitted request under
// WithSkipSuccessful or WithSkipFailed. (A closure made in Admit itself
// would move Admit's decision to the heap on every request.)
func (p *Policy) undoer(r *http.Request, d Decision) func(status int) {
	return func(status int) { p.finish(r, d, status) }
}

// finish undoes the hits of d, an allowed decision on r, when the final
// status says so under WithSkipSuccessful or WithSkipFailed.
func (p *Policy) finish(r *http.Request, d Decision, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	ok := p.success(status)
	if (ok && !p.skipOK) || (!ok && !p.skipFailed) {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if p.timeout > 0 && !p.lim.local {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	if err := p.lim.Undo(ctx, d); err != nil {
		p.report(ctx, err)
	}
}

// clockForReset returns the time from which X-RateLimit-Reset is counted:
// the policy's clock read before the store decides, in whole microseconds
// as the stores keep time, or the zero time when the policy sends no legacy
// headers (and needs no clock). The store counts its reset from the moment
// it decides, a little later: counted from a time read after it, or from
// the nanoseconds the store dropped, a reset that falls on a whole second
// (the end of an aligned window) would be rounded up to the next second.
func (p *Policy) clockForReset() time.Time {
	if p.headers&LegacyHeaders == 0 {
		return time.Time{}
	}
	return p.now().Truncate(time.Microsecond)
}

// setHeaders writes the quota headers of st.decs[i] to h: the IETF fields
// gain a list member per policy; the legacy fields show the most restrictive
// decision (a denial, else the lowest remaining, else the latest reset),
// its reset counted from now (see clockForReset).
func (p *Policy) setHeaders(h http.Header, st *reqState, i int, now time.Time) {
	d := &st.decs[i]
	limitValue, policyValue := p.limitValue, p.policyValue
	if d.Limit != p.lim.rule.Limit { // a limit chosen for the request
		limitValue, policyValue = st.itoa(int64(d.Limit)), p.policyMember(d.Limit)
	}
	var remaining string // d.Remaining in decimal, once formatted
	if p.headers&IETFHeaders != 0 {
		b := append(st.free(), p.rlPrefix...)
		b = strconv.AppendInt(b, int64(d.Remaining), 10)
		end := len(b)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, d.resetSeconds(), 10)
		rl := st.keep(b)
		remaining = rl[len(p.rlPrefix):end]
		h[hdrPolicy] = st.slot(appendMember(h[hdrPolicy], policyValue))
		h[hdrRateLimit] = st.slot(appendMember(h[hdrRateLimit], rl))
	}
	if p.headers&LegacyHeaders != 0 && (st.legacy < 0 || stricter(d, &st.decs[st.legacy])) {
		st.legacy = int32(i)
		if remaining == "" {
			remaining = st.itoa(int64(d.Remaining))
		}
		h[hdrLimit] = st.slot(limitValue)
		h[hdrRemaining] = st.slot(remaining)
		h[hdrReset] = st.slot(st.itoa(d.resetAt(now)))
	}
}

// appendMember adds member to the list field whose current values are old.
func appendMember(old []string, member string) string {
	if len(old) == 0 {
		return member
	}
	return strings.Join(old, ", ") + ", " + member
}

// stricter reports whether d should replace cur in the legacy headers.
func stricter(d, cur *Decision) bool {
	if d.denying() != cur.denying() {
		return d.denying()
	}
	if d.Remaining != cur.Remaining {
		return d.Remaining < cur.Remaining
	}
	return d.resetSeconds() > cur.resetSeconds()
}

// DenyJSON is the default DenyHandler: status 429 Too Many Requests with
// Content-Type application/json, X-Content-Type-Options nosniff and the body
//
//	{"error":"too many requests","policy":"<name>","retry_after":<seconds>}
//
// where seconds equals the Retry-After header.
func DenyJSON(w http.ResponseWriter, r *http.Request, d Decision) {
	b := make([]byte, 0, 80+len(d.Policy))
	b = append(b, `{"error":"too many requests","policy":"`...)
	b = append(b, quoted(d.Policy)...)
	b = append(b, `","retry_after":`...)
	b = strconv.AppendInt(b, d.retryAfterSeconds(), 10)
	b = append(b, '}', '\n')
	setJSON(w.Header())
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write(b)
}

func badRequestJSON(w http.ResponseWriter, _ *http.Request, err error) {
	if errors.Is(err, ErrInvalidCost) {
		writeJSON(w, http.StatusBadRequest, `{"error":"invalid request cost"}`)
		return
	}
	if errors.Is(err, ErrInvalidLimit) {
		writeJSON(w, http.StatusBadRequest, `{"error":"invalid request limit"}`)
		return
	}
	writeJSON(w, http.StatusBadRequest, `{"error":"cannot identify client"}`)
}

// writeJSON writes a fixed JSON body followed by a newline, as
// json.Encoder and lockguard's rejections end theirs.
func writeJSON(w http.ResponseWriter, status int, body string) {
	setJSON(w.Header())
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

// setJSON marks a JSON error response; nosniff keeps browsers from reading it
// as anything else.
func setJSON(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
}
