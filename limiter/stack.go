package limiter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/sluicehq/sluice/store"
)

// MaxStack is the most policies one Stack decides together.
const MaxStack = 16

// Stack returns a Policy that decides policies together, for a route with
// several limits (a burst limit and a daily limit): a request is admitted
// only if every policy admits it, and a request that any policy denies is
// counted by none of them, in one store call (store.WindowStore.HitAll).
// Mount the returned Policy where one policy would go; every adapter
// takes it.
//
// Each policy keeps its own key, cost, limit, skip predicate and
// skip-successful/failed setting, and adds its own headers (a RateLimit
// and a RateLimit-Policy list member each; X-RateLimit-* show the most
// restrictive). A denied request is answered by the deny handler of the
// policy with the longest wait, and Retry-After is that wait. A store
// failure serves the request unlimited unless one of the policies fails
// closed.
//
// The policies must share one store and have different names; at most
// MaxStack of them, none a Stack itself. The Stack owns them: its Close
// closes each. Policies mounted one after another as separate middleware
// instead decide independently: a request one of them denies stays
// counted by those before it.
func Stack(policies ...*Policy) (*Policy, error) {
	if len(policies) == 0 || len(policies) > MaxStack {
		return nil, fmt.Errorf("%w: a stack takes 1 to %d policies, not %d", ErrInvalidConfig, MaxStack, len(policies))
	}
	names := make(map[string]bool, len(policies))
	for i, p := range policies {
		switch {
		case p == nil || p.lim == nil:
			return nil, fmt.Errorf("%w: stack: policy %d is nil or not made by NewPolicy", ErrInvalidConfig, i)
		case p.stack != nil:
			return nil, fmt.Errorf("%w: stack: policy %d is a stack", ErrInvalidConfig, i)
		case names[p.lim.name]:
			return nil, fmt.Errorf("%w: stack: policy %q given twice", ErrInvalidConfig, p.lim.name)
		case !sameStore(p.lim.st, policies[0].lim.st):
			return nil, fmt.Errorf("%w: stack: policy %q is on another store than %q", ErrInvalidConfig, p.lim.name, policies[0].lim.name)
		}
		names[p.lim.name] = true
	}
	return &Policy{stack: append([]*Policy(nil), policies...)}, nil
}

// sameStore reports whether a and b are one store.
func sameStore(a, b store.WindowStore) bool {
	if !reflect.ValueOf(a).Comparable() || !reflect.ValueOf(b).Comparable() {
		return false
	}
	return a == b
}

// stackPart is one policy's part of a stacked request.
type stackPart struct {
	p    *Policy
	key  string
	cost int
	rule store.Rule
}

// admitStack is Admit for a Stack.
func (s *Policy) admitStack(w http.ResponseWriter, r *http.Request, key KeyFunc) (*http.Request, func(int), *Rejection) {
	parent := r.Context()
	prev := stateOf(parent)
	var partsBuf [4]stackPart
	parts := partsBuf[:0]
	for _, p := range s.stack {
		if p.skip != nil && p.skip(r) {
			p.observe(Skipped, 0)
			continue
		}
		k, cost, rule, rj := p.request(r, key)
		if rj == errServe {
			continue
		}
		if rj != nil {
			return r, nil, rj
		}
		if prev.decided(p.lim, k) {
			continue // this policy already counted the request
		}
		parts = append(parts, stackPart{p: p, key: k, cost: cost, rule: rule})
	}
	if len(parts) == 0 {
		return r, nil, nil
	}

	parts, decs, err := s.decideStack(parent, parts)
	if err != nil {
		if errors.Is(parent.Err(), context.Canceled) {
			return r, nil, &Rejection{Status: http.StatusServiceUnavailable, Err: err, p: parts[0].p, r: r, cancelled: true}
		}
		var closed *Policy
		for _, part := range parts {
			part.p.report(parent, err)
			if part.p.fail == FailClosed && closed == nil {
				closed = part.p
			}
		}
		if closed != nil {
			return r, nil, &Rejection{Status: http.StatusServiceUnavailable, Err: err, p: closed, r: r}
		}
		return r, nil, nil
	}

	st := prev
	if st == nil || st.req != r {
		st = newState(parent, prev)
	}
	next := r
	if st.req != r {
		next = r.WithContext(st)
		st.req = next
	}
	h := w.Header()
	deny := -1
	for i, part := range parts {
		st.decs = append(st.decs, decs[i])
		part.p.setHeaders(h, st, len(st.decs)-1)
		if d := &decs[i]; d.denying() && (deny < 0 || d.RetryAfter > decs[deny].RetryAfter) {
			deny = i
		}
	}
	if deny >= 0 {
		d := decs[deny]
		h[hdrRetryAfter] = st.slot(st.itoa(d.retryAfterSeconds()))
		return next, nil, &Rejection{Status: http.StatusTooManyRequests, Decision: d, p: parts[deny].p, r: next}
	}
	var undo []stackUndo
	for i, part := range parts {
		if part.p.skipOK || part.p.skipFailed {
			undo = append(undo, stackUndo{part.p, decs[i]})
		}
	}
	if undo == nil {
		return next, nil, nil
	}
	return next, func(status int) {
		for _, u := range undo {
			u.p.finish(next, u.d, status)
		}
	}, nil
}

// stackUndo is a policy of an admitted stacked request that may undo its
// hits once the status is known.
type stackUndo struct {
	p *Policy
	d Decision
}

// decideStack asks the deny caches, then the store, about parts together,
// and returns the parts decided with their decisions. A denial served from
// deny caches returns only the policies whose cache answered: the others
// were not asked, so their headers are left out.
func (s *Policy) decideStack(parent context.Context, parts []stackPart) ([]stackPart, []Decision, error) {
	decs := make([]Decision, len(parts))
	cached := false
	for i, part := range parts {
		l := part.p.lim
		if l.closed.Load() {
			return nil, nil, ErrClosed
		}
		if l.deny == nil {
			continue
		}
		if d, ok := l.deny.lookup(l, part.key, part.cost, part.rule.Limit); ok {
			decs[i] = d
			cached = true
			if l.obs != nil {
				l.obs.ObserveDecision(DecisionEvent{Policy: l.name, Outcome: Denied, Cost: part.cost, Cached: true})
			}
		}
	}
	if cached {
		j := 0
		for i, part := range parts {
			if decs[i].lim != nil {
				parts[j], decs[j] = part, decs[i]
				j++
			}
		}
		return parts[:j], decs[:j], nil
	}

	first := parts[0].p
	ctx := parent
	if first.timeout > 0 && !first.lim.local {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(parent, first.timeout)
		defer cancel()
	}
	hits := make([]store.Hit, len(parts))
	for i, part := range parts {
		hits[i] = store.Hit{Key: part.key, Rule: part.rule, Cost: part.cost}
	}
	res := make([]store.Result, len(parts))
	var start time.Time
	observed := false
	for _, part := range parts {
		if part.p.lim.obs != nil {
			observed = true
		}
	}
	if observed {
		start = time.Now()
	}
	err := first.lim.st.HitAll(ctx, hits, res)
	var latency time.Duration
	if observed {
		latency = time.Since(start)
	}
	for i, part := range parts {
		l := part.p.lim
		if err == nil {
			decs[i] = l.decision(part.key, part.cost, part.rule, res[i])
		}
		if l.obs == nil {
			continue
		}
		ev := DecisionEvent{Policy: l.name, Outcome: StoreError, Cost: part.cost, Latency: latency}
		if err == nil {
			switch {
			case res[i].Allowed:
				ev.Outcome = Allowed
			case res[i].RetryAfter > 0:
				ev.Outcome = Denied
			default:
				continue // it would have admitted: another policy denied
			}
		}
		l.obs.ObserveDecision(ev)
	}
	if err != nil {
		return nil, nil, err
	}
	for i, part := range parts {
		if d := decs[i]; d.denying() && part.p.lim.deny != nil {
			part.p.lim.deny.add(part.key, d)
		}
	}
	return parts, decs, nil
}

// stackName is the name a Stack reports: its policies' names joined by
// "+".
func (s *Policy) stackName() string {
	names := make([]string, len(s.stack))
	for i, p := range s.stack {
		names[i] = p.lim.name
	}
	return strings.Join(names, "+")
}
