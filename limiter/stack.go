package limiter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/sluicehq/sluice/store"
)

// MaxStack is the most policies one Stack decides together.
const MaxStack = store.MaxStack

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
// closes each.
//
// Over a remote store a Stack answers a client it just denied from a deny
// cache, as a single policy does (see WithDenyCache), with every policy's
// headers, until the wait of each policy that denied has passed or that
// policy's Limiter forgot the client (Reset, Undo); it keeps none when one
// of its policies has WithDenyCache(0).
//
// Policies mounted one after another as separate middleware
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
	s := &Policy{stack: append([]*Policy(nil), policies...)}
	// A stacked denial is cached only while the caches of the policies that
	// denied hold it (see decideStack): a stack of a policy without one
	// keeps none.
	cached := true
	for _, p := range policies {
		cached = cached && p.lim.deny != nil
	}
	if cached {
		s.stackDeny = newDenyCache(policies[0].denyCacheSize, policies[0].now)
	}
	return s, nil
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
	h    uint64 // key's digest; 0 when the stack keeps no deny cache
	cost int
	rule store.Rule
	now  time.Time // the policy's clock before the store decides (clockForReset)
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
		if rj != nil {
			return r, nil, rj
		}
		if prev.decided(p.lim, k) {
			continue // this policy already counted the request
		}
		part := stackPart{p: p, key: k, cost: cost, rule: rule}
		if s.stackDeny != nil {
			part.h = digest(k)
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return r, nil, nil
	}

	var sh uint64 // the request's digest in the stack's deny cache
	if s.stackDeny != nil {
		sh = stackDigest(parts)
	}
	for i := range parts {
		parts[i].now = parts[i].p.clockForReset()
	}
	decs, err := s.decideStack(parent, parts, sh)
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

	st, next := attach(r, parent, prev)
	h := w.Header()
	deny := -1
	for i, part := range parts {
		st.decs = append(st.decs, decs[i])
		part.p.setHeaders(h, st, len(st.decs)-1, part.now)
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

// decideStack asks the stack's deny cache (under h, see stackDigest), then
// the store, about parts together, and returns their decisions.
func (s *Policy) decideStack(parent context.Context, parts []stackPart, h uint64) ([]Decision, error) {
	for _, part := range parts {
		if part.p.lim.closed.Load() {
			return nil, ErrClosed
		}
	}
	if s.stackDeny != nil {
		if decs, ok := s.stackDeny.lookupStack(h, parts); ok && s.stillDenied(parts, decs) {
			for i, part := range parts {
				if l := part.p.lim; l.obs != nil && decs[i].denying() {
					l.obs.ObserveDecision(DecisionEvent{Policy: l.name, Outcome: Denied, Cost: part.cost, Cached: true})
				}
			}
			return decs, nil
		}
	}
	decs := make([]Decision, len(parts))

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
			l.fill(&decs[i], part.key, part.cost, &part.rule, &res[i])
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
		return nil, err
	}
	if s.stackDeny != nil {
		for i, part := range parts {
			if decs[i].denying() {
				part.p.lim.deny.add(part.h, decs[i])
			}
		}
		s.stackDeny.addStack(h, decs)
	}
	return decs, nil
}

// stillDenied reports whether the cache of each policy that denies in decs,
// the cached decisions of parts, still holds its denial. Each policy's
// Limiter keeps the denials it made in a stack in its own cache, which its
// Reset and Undo clear; the stack's cache only keeps the response.
func (s *Policy) stillDenied(parts []stackPart, decs []Decision) bool {
	for i, part := range parts {
		if decs[i].denying() {
			if _, ok := part.p.lim.deny.lookup(part.h, part.cost, part.rule.Limit); !ok {
				return false
			}
		}
	}
	return true
}

// stackDigest returns the digest of a stacked request in the stack's deny
// cache: of each part's name, its length and its key's digest, in order.
func stackDigest(parts []stackPart) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var b [9]byte
	for i := range parts {
		name := parts[i].p.lim.name
		h.WriteString(name)
		b[0] = byte(len(name)) // at most MaxNameLen
		binary.LittleEndian.PutUint64(b[1:], parts[i].h)
		h.Write(b[:])
	}
	return h.Sum64()
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
