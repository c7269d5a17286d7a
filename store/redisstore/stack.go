package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/store"
)

// stackReplyLen is how many integers stack.lua replies per part.
const stackReplyLen = partReplyLen + 2

// HitAll decides a stack of rules together: every part is recorded if each
// fits under its rule, and none otherwise. See store.WindowStore.
//
// The parts are decided by one script call (one EVALSHA) when the client is
// not a Redis Cluster or Ring (a *redis.Client, also Sentinel's failover
// client, runs a script on any keys), or when all parts are for one key: a
// key's states under every rule and algorithm share a hash tag, so that a
// burst and a daily limit on one client land in one Cluster slot. Otherwise
// the parts of each key are decided by one script call per key, in the
// order of the keys' first parts, until one key is denied; then one further
// round of concurrent calls undoes the keys recorded before it (so that the
// denied stack is counted nowhere once HitAll returns) and reads how the
// keys after it stand. Meanwhile, the recorded parts count for other
// callers. The undo runs even when ctx has ended by then, on a context
// detached from ctx and bounded by the Store's timeout (WithTimeout), or by a
// second without one. If the undo fails, HitAll returns an error, and the
// recorded parts stay counted until they leave their windows.
//
// More than 16 parts, an empty stack, two parts with the same Key,
// Rule.Name and Rule.Algorithm, len(out) != len(hits), or a part that Hit
// would reject is an error wrapping store.ErrInvalidArgument, and sends
// nothing. A single part is decided exactly as Hit decides it.
func (s *Store) HitAll(ctx context.Context, hits []store.Hit, out []store.Result) error {
	if err := store.ValidateStack(hits, out); err != nil {
		return err
	}
	clear(out)
	if len(hits) == 1 {
		res, err := s.Hit(ctx, hits[0].Key, hits[0].Rule, hits[0].Cost)
		if err != nil {
			return err
		}
		out[0] = res
		return nil
	}
	parts := make([]part, len(hits))
	for i, h := range hits {
		s.preparePart(&parts[i], h.Key, h.Rule, h.Cost)
	}
	groups := groupByKey(hits)
	if len(groups) == 1 || !sharded(s.client) {
		all := make([]int, len(parts))
		for i := range all {
			all[i] = i
		}
		g := s.decide(ctx, parts, all, modeDecide)
		if g.err != nil {
			return opError("hitall", g.err)
		}
		for i, idx := range all {
			out[idx] = g.results[i]
		}
		return nil
	}
	return s.hitGroups(ctx, parts, groups, out)
}

// groupByKey returns the indices of hits grouped by key, in order of first
// appearance: the parts whose Redis keys share a hash tag.
func groupByKey(hits []store.Hit) [][]int {
	var groups [][]int
next:
	for i, h := range hits {
		for g, idx := range groups {
			if hits[idx[0]].Key == h.Key {
				groups[g] = append(idx, i)
				continue next
			}
		}
		groups = append(groups, []int{i})
	}
	return groups
}

// sharded reports whether client spreads keys over several servers by hash
// tag (a *redis.ClusterClient or *redis.Ring), so that one script call may
// only take keys of one tag.
func sharded(client redis.Scripter) bool {
	switch client.(type) {
	case interface {
		ForEachMaster(context.Context, func(context.Context, *redis.Client) error) error
	}, interface {
		ForEachShard(context.Context, func(context.Context, *redis.Client) error) error
	}:
		return true
	}
	return false
}

// The modes of stack.lua (its ARGV[2]).
const (
	modeDecide     = "0" // record every part if each fits
	modeDecideUndo = "1" // the same, also replying how recorded parts stood
	modeCheckOnly  = "2" // record nothing; reply how the parts stand
)

// decision is the outcome of one stack.lua call on the parts idx.
type decision struct {
	idx     []int
	allowed bool
	results []store.Result // per part of idx, as HitAll reports them
	before  []store.Result // modeDecideUndo: how each part stood before (Remaining, ResetAfter)
	err     error
}

// decide runs stack.lua in mode on the parts idx of parts.
func (s *Store) decide(ctx context.Context, parts []part, idx []int, mode string) decision {
	d := decision{idx: idx}
	keys := make([]string, len(idx))
	args := make([]any, 0, 2+5*len(idx))
	args = append(args, s.now(), mode)
	for i, n := range idx {
		p := &parts[n]
		keys[i] = p.key
		args = append(args, algorithmCodes[p.rule.Algorithm], p.rule.Limit,
			p.rule.Window.Microseconds(), p.cost, p.extra)
	}
	reply, err := s.run(ctx, stack, keys, args...)
	if err != nil {
		d.err = err
		return d
	}
	v := make([]int64, stackReplyLen*len(idx))
	if !int64s(reply, v) {
		d.err = unexpected("hitall", reply)
		return d
	}
	d.results = make([]store.Result, len(idx))
	if mode == modeDecideUndo {
		d.before = make([]store.Result, len(idx))
	}
	for i, n := range idx {
		r := v[i*stackReplyLen : (i+1)*stackReplyLen]
		res, ok := parts[n].result(r[:partReplyLen])
		if !ok || (i > 0 && res.Allowed != d.allowed) || (res.Allowed && mode == modeCheckOnly) || r[5] < 0 || r[6] < 0 {
			d.err = unexpected("hitall", reply)
			return d
		}
		d.allowed = res.Allowed
		d.results[i] = res
		if d.before != nil {
			d.before[i] = store.Result{
				Limit:      res.Limit,
				Remaining:  int(r[5]),
				ResetAfter: time.Duration(r[6]) * time.Microsecond,
			}
		}
	}
	return d
}

// hitGroups decides a stack whose keys span several hash tags on a Cluster
// or Ring: one stack.lua call per key, one after another, until one is
// denied; then, in one further round of concurrent calls, it undoes the
// keys recorded before and reads how the keys not yet decided stand.
func (s *Store) hitGroups(ctx context.Context, parts []part, groups [][]int, out []store.Result) error {
	ds := make([]decision, len(groups))
	denied := -1
	for g, idx := range groups {
		// The last key is never undone: either every key is recorded, or
		// it is the one denied.
		mode := modeDecideUndo
		if g == len(groups)-1 {
			mode = modeDecide
		}
		ds[g] = s.decide(ctx, parts, idx, mode)
		if ds[g].err != nil || !ds[g].allowed {
			denied = g
			break
		}
	}
	if denied < 0 {
		for _, d := range ds {
			for i, n := range d.idx {
				out[n] = d.results[i]
			}
		}
		return nil
	}

	// Give back what the keys before the denied one took; unless the
	// denied call failed, read how the keys after it stand.
	failed := ds[denied].err
	later := 0
	if failed == nil {
		later = len(groups) - 1 - denied
	}
	// The undo runs whether or not ctx has ended: the parts it gives back
	// would otherwise count for a stack that was denied.
	uctx, cancel := s.undoContext(ctx)
	defer cancel()
	errs := make([]error, denied+later)
	each(denied+later, func(i int) {
		if i < denied {
			errs[i] = s.undoDecision(uctx, parts, ds[i])
			return
		}
		g := denied + 1 + (i - denied)
		ds[g] = s.decide(ctx, parts, groups[g], modeCheckOnly)
		errs[i] = ds[g].err
	})
	undoErr := errors.Join(errs[:denied]...)
	switch {
	case failed != nil && undoErr != nil:
		return opError("hitall", errors.Join(failed, undoErr))
	case failed != nil:
		return opError("hitall", failed)
	case undoErr != nil:
		return opError("hitall", fmt.Errorf("undo of the parts recorded before another part was denied: %w", undoErr))
	}
	if err := errors.Join(errs[denied:]...); err != nil {
		return opError("hitall", err)
	}
	for g, d := range ds {
		for i, n := range d.idx {
			if g < denied {
				out[n] = d.before[i] // recorded and undone: as it stood
			} else {
				out[n] = d.results[i]
			}
		}
	}
	return nil
}

// undoTimeout bounds the undo of a denied stack's recorded parts when the
// Store has no timeout of its own (WithTimeout).
const undoTimeout = time.Second

// undoContext returns the context of an undo of recorded parts: ctx's values
// without its cancellation or deadline (a caller that hung up must not leave
// a denied stack counted), bounded by the Store's timeout, or undoTimeout
// without one.
func (s *Store) undoContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.timeout
	if d <= 0 {
		d = undoTimeout
	}
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// undoDecision removes the hits that the recorded decision d took.
func (s *Store) undoDecision(ctx context.Context, parts []part, d decision) error {
	keys := make([]string, len(d.idx))
	args := make([]any, 0, 1+undoArgsPerPart*len(d.idx))
	args = append(args, s.now())
	for i, n := range d.idx {
		keys[i] = parts[n].key
		args = s.appendUndoArgs(args, d.results[i].Receipt)
	}
	reply, err := s.run(ctx, windowUndo, keys, args...)
	if err != nil {
		return err
	}
	if n, ok := reply.(int64); !ok || n < 0 {
		return unexpected("undo", reply)
	}
	return nil
}

// each calls fn(0) .. fn(n-1) concurrently and waits for them: the last in
// the calling goroutine.
func each(n int, fn func(i int)) {
	if n == 0 {
		return
	}
	var wg sync.WaitGroup
	wg.Add(n - 1)
	for i := range n - 1 {
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	fn(n - 1)
	wg.Wait()
}
