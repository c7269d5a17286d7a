package limiter

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
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

// Outcome is what Check decided about one request, for the adapter that
// called it.
type Outcome struct {
	// Request is the request to hand to the next handler: the checked
	// request with the decision in its context (see FromContext), or the
	// checked request itself when nothing was decided.
	Request *http.Request
	// Proceed reports that the request may go on to the next handler. When it
	// is false the next handler must not run: Check has written the whole
	// response (429, 400 or 503; a 503 {"error":"request cancelled"} also
	// when the store call failed because the client went away).
	Proceed bool

	dec  Decision // what Finish may undo
	undo bool
}

// Skips reports whether the policy's skip predicate (WithSkip) exempts r.
// Check calls it itself; an adapter that resolves keys outside
// *http.Request calls it before resolving the key for CheckKey.
func (p *Policy) Skips(r *http.Request) bool {
	return p.skip != nil && p.skip(r)
}

// Key returns r's key under the policy's KeyFunc.
func (p *Policy) Key(r *http.Request) (string, error) { return p.key(r) }

// NeedsStatus reports whether Finish needs the final status of the response
// (WithSkipSuccessful or WithSkipFailed is set). When it is false an adapter
// may skip Finish and need not capture the status.
func (p *Policy) NeedsStatus() bool { return p.skipOK || p.skipFailed }

// Check decides r: it evaluates the skip predicate, the key and the cost,
// asks the limiter, and sets the quota headers on w. If the request is
// denied, cannot be attributed, or the store failed under FailClosed, Check
// writes the response and Outcome.Proceed is false. If the store failed while
// r's context was cancelled (the client closed or half-closed its connection),
// Outcome.Proceed is false under either fail mode and Check answers 503
// {"error":"request cancelled"}, so that hanging up cannot buy an uncounted
// request. Otherwise the adapter
// calls the next handler with Outcome.Request and, if NeedsStatus, calls
// Finish with the final status afterwards.
func (p *Policy) Check(w http.ResponseWriter, r *http.Request) Outcome {
	if p.Skips(r) {
		return Outcome{Request: r, Proceed: true}
	}
	key, err := p.key(r)
	return p.CheckKey(w, r, key, err)
}

// CheckKey is Check with a key the caller resolved itself (keyErr non-nil if
// it could not), for frameworks whose route parameters are not on
// *http.Request. It does not evaluate the skip predicate: call Skips first.
func (p *Policy) CheckKey(w http.ResponseWriter, r *http.Request, key string, keyErr error) Outcome {
	if keyErr == nil && key == "" {
		keyErr = ErrNoKey
	}
	if keyErr != nil {
		if !errors.Is(keyErr, ErrNoKey) {
			keyErr = errors.Join(ErrNoKey, keyErr)
		}
		p.report(r.Context(), keyErr)
		p.badRequest(w, r, keyErr)
		return Outcome{Request: r}
	}
	cost := p.cost
	if p.costFn != nil {
		c, err := p.costFn(r)
		if err != nil || c < 1 || c > p.lim.rule.Limit {
			if err == nil {
				err = errors.New("cost " + strconv.Itoa(c) + " outside 1.." + p.limitValue)
			}
			err = errors.Join(ErrInvalidCost, err)
			p.report(r.Context(), err)
			p.badRequest(w, r, err)
			return Outcome{Request: r}
		}
		cost = c
	}

	parent := r.Context()
	prev := stateOf(parent)
	if prev.decided(p.lim, key) {
		// The same limiter already counted this request under this key: a
		// policy mounted twice on one route (on a group and on one of its
		// routes) counts a request once.
		return Outcome{Request: r, Proceed: true}
	}
	st := prev
	if st == nil || st.req != r {
		st = newState(parent, prev)
	}
	ctx := parent
	var cancel context.CancelFunc
	if p.timeout > 0 && !p.lim.local {
		ctx, cancel = context.WithTimeout(parent, p.timeout)
	}
	d, err := p.lim.allow(ctx, key, cost)
	if cancel != nil {
		cancel()
	}
	if err != nil {
		if errors.Is(parent.Err(), context.Canceled) {
			// The request was cancelled: net/http cancels its context when
			// the client closes or half-closes its connection, and the store
			// refused the hit because of it. Serving the request uncounted
			// would let any client escape a fail-open limit by hanging up,
			// so it does not proceed, whatever the fail mode. It answers 503,
			// as lockguard does for a client that gave up, for a client that
			// half-closed but still reads; nothing is reported (the store is
			// fine).
			writeJSON(w, http.StatusServiceUnavailable, `{"error":"request cancelled"}`)
			return Outcome{Request: r}
		}
		p.report(parent, err)
		if p.fail == FailClosed {
			writeJSON(w, http.StatusServiceUnavailable, `{"error":"rate limiter unavailable"}`)
			return Outcome{Request: r}
		}
		return Outcome{Request: r, Proceed: true}
	}

	out := Outcome{Request: r}
	if st.req != r {
		out.Request = r.WithContext(st)
		st.req = out.Request
	}
	st.decs = append(st.decs, d)
	p.setHeaders(w.Header(), st, len(st.decs)-1)
	if !d.Allowed {
		w.Header()[hdrRetryAfter] = st.slot(st.itoa(d.RetryAfterSeconds()))
		p.deny(w, out.Request, d)
		return out
	}
	out.Proceed = true
	if p.skipOK || p.skipFailed {
		out.dec, out.undo = d, true
	}
	return out
}

// Finish completes a request that Check let through, given the final status
// of its response (0 counts as 200; pass 500 if the handler panicked): under
// WithSkipSuccessful or WithSkipFailed it undoes the request's hits when the
// status says so. The undo runs on a context detached from the request's
// cancellation, bounded by the policy's timeout; a failure is reported to the
// error handler. Finish does nothing when NeedsStatus is false or the request
// was not counted.
func (p *Policy) Finish(out Outcome, status int) {
	if !out.undo {
		return
	}
	if status == 0 {
		status = http.StatusOK
	}
	ok := p.success(status)
	if (ok && !p.skipOK) || (!ok && !p.skipFailed) {
		return
	}
	ctx := context.WithoutCancel(out.Request.Context())
	if p.timeout > 0 && !p.lim.local {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	if err := p.lim.Undo(ctx, out.dec); err != nil {
		p.report(ctx, err)
	}
}

// setHeaders writes the quota headers of st.decs[i] to h: the IETF fields
// gain a list member per policy; the legacy fields show the most restrictive
// decision (a denial, else the lowest remaining, else the latest reset).
func (p *Policy) setHeaders(h http.Header, st *reqState, i int) {
	d := &st.decs[i]
	if p.headers&LegacyHeaders != 0 && (st.legacy < 0 || stricter(d, &st.decs[st.legacy])) {
		st.legacy = i
		h[hdrLimit] = st.slot(p.limitValue)
		h[hdrRemaining] = st.slot(st.itoa(int64(d.Remaining)))
		h[hdrReset] = st.slot(st.itoa(d.resetAt(p.now())))
	}
	if p.headers&IETFHeaders != 0 {
		var tmp [64]byte
		b := append(tmp[:0], p.rlPrefix...)
		b = strconv.AppendInt(b, int64(d.Remaining), 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, d.ResetSeconds(), 10)
		rl := st.bytes(b)
		h[hdrPolicy] = st.slot(appendMember(h[hdrPolicy], p.policyValue))
		h[hdrRateLimit] = st.slot(appendMember(h[hdrRateLimit], rl))
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
	if d.Allowed != cur.Allowed {
		return !d.Allowed
	}
	if d.Remaining != cur.Remaining {
		return d.Remaining < cur.Remaining
	}
	return d.ResetSeconds() > cur.ResetSeconds()
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
	b = strconv.AppendInt(b, d.RetryAfterSeconds(), 10)
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
