package memstore

import (
	"context"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/sluicehq/sluice/store"
)

// Peek reports the state of key under rule without recording a hit: the
// Result a Hit of cost 1 would give, with Remaining not reduced by it. See
// store.WindowStore.
func (s *Store) Peek(ctx context.Context, key string, rule store.Rule) (store.Result, error) {
	if err := s.check(ctx); err != nil {
		return store.Result{}, err
	}
	if err := store.ValidateHit(key, rule, 1); err != nil {
		return store.Result{}, err
	}
	d := s.digest(rule.Name, key, rule.Algorithm)
	sh := s.shard(d)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return store.Result{}, store.ErrClosed
	}
	now := s.nowNanos() / 1e3
	w := sh.windows.find(d)
	var empty window
	if w == nil {
		w = &empty // a key without state gets none
	}
	var res store.Result
	fits := s.decide(sh, w, now, &rule, 1, describe, &res)
	if fits && rule.Algorithm != store.SlidingLog {
		// Remaining is what the hit would leave, plus the hit: the float
		// arithmetic of the O(1) algorithms need not give exactly one less
		// than the count as it stands. Their state is a few scalars, so a
		// copy of the window records the hit and the state stays as it is.
		// (The log's count is an integer: its Remaining is exact.)
		shadow := *w
		var hit store.Result
		s.decide(sh, &shadow, now, &rule, 1, record, &hit)
		res.Remaining = hit.Remaining + 1
	}
	res.Allowed = fits
	return res, nil
}

// Reset forgets key's state under rule's name and algorithm. See
// store.WindowStore.
func (s *Store) Reset(ctx context.Context, key string, rule store.Rule) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := store.ValidateHit(key, rule, 1); err != nil {
		return err
	}
	d := s.digest(rule.Name, key, rule.Algorithm)
	sh := s.shard(d)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	sh.windows.remove(d)
	return nil
}

// Inspect reports whether key's lock is held, its remaining TTL and the
// last fence issued for key. The fence is 0 once the lock's entry has been
// dropped (see WithFenceTTL). See store.LockStore.
func (s *Store) Inspect(ctx context.Context, key string) (store.LockInfo, error) {
	if err := s.check(ctx); err != nil {
		return store.LockInfo{}, err
	}
	if key == "" {
		return store.LockInfo{}, fmt.Errorf("%w: empty lock key", store.ErrInvalidArgument)
	}
	d := maphash.String(s.keySeed, key)
	sh := s.shard(d)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return store.LockInfo{}, store.ErrClosed
	}
	now := s.nowNanos()
	st, ok := sh.locks[d]
	if !ok {
		return store.LockInfo{}, nil
	}
	info := store.LockInfo{Fence: st.fence}
	if st.held(now) {
		info.Held = true
		info.TTL = time.Duration(st.expires - now)
	}
	return info, nil
}

// ForceRelease frees key's lock whoever holds it, keeping its fence counter.
// See store.LockStore for why this is dangerous.
func (s *Store) ForceRelease(ctx context.Context, key string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty lock key", store.ErrInvalidArgument)
	}
	d := maphash.String(s.keySeed, key)
	sh := s.shard(d)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	now := s.nowNanos()
	st, ok := sh.locks[d]
	if !ok || !st.held(now) {
		return nil
	}
	// As Release does: the entry stays while its fence counter is kept.
	st.expires = 0
	if st.droppable(now) {
		sh.dropLock(d, st)
		return nil
	}
	sh.locks[d] = st
	return nil
}
