package memstore

import (
	"context"

	"github.com/sluicehq/sluice/store"
)

// HitAll decides a stack of rules together, atomically: it locks the shards
// of every part (in ascending order, so that stacks never deadlock), reads
// the clock once, checks every part against the state as it stands, and
// records every part or none. A one-part stack decides exactly as Hit. See
// store.WindowStore.
//
// Recording a part never evicts another part of the same stack; a store
// whose WithMaxKeys is smaller than a stack may hold that stack's windows
// beyond the bound until they are evicted or swept.
func (s *Store) HitAll(ctx context.Context, hits []store.Hit, out []store.Result) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := store.ValidateStack(hits, out); err != nil {
		return err
	}
	var (
		digests [store.MaxStack]uint64 // of each part
		keep    [store.MaxStack]uint64 // slot digests of the parts, kept from eviction
		locked  [store.MaxStack]int    // indexes of the distinct shards, ascending
		nlocked int
	)
	for i, h := range hits {
		d := s.digest(h.Rule.Name, h.Key, h.Rule.Algorithm)
		digests[i], keep[i] = d, slotDigest(d)
		// Insert the part's shard into locked, kept sorted and distinct.
		k := s.shardIndex(d)
		j := nlocked
		for j > 0 && locked[j-1] > k {
			j--
		}
		if j > 0 && locked[j-1] == k {
			continue
		}
		copy(locked[j+1:nlocked+1], locked[j:nlocked])
		locked[j] = k
		nlocked++
	}
	for _, k := range locked[:nlocked] {
		s.shards[k].mu.Lock()
	}
	defer func() {
		for _, k := range locked[:nlocked] {
			s.shards[k].mu.Unlock()
		}
	}()
	if s.closed.Load() { // Close may have cleared a shard since check
		return store.ErrClosed
	}
	nowNanos := s.nowNanos() // once, under every lock, for every part
	now := nowNanos / 1e3

	// Check every part against the state as it stands. A part without a
	// window is checked against an empty one, so that a denied stack
	// adds no window.
	all := true
	for i, h := range hits {
		if !s.decidePart(digests[i], h, now, fitsOnly, nil) {
			all = false
			break
		}
	}
	if !all {
		for i, h := range hits {
			s.decidePart(digests[i], h, now, describe, &out[i])
		}
		return nil
	}
	// Record every part. Nothing else runs on these shards meanwhile, so
	// each part finds the state it was checked against (an emptied window
	// that a sweep dropped is as good as none), and adding a window never
	// evicts another part's.
	for i, h := range hits {
		sh := s.shard(digests[i])
		w := sh.windows.find(digests[i])
		if w == nil {
			w = sh.addWindow(digests[i], nowNanos, s.shardKeys, h.Rule.Algorithm, keep[:len(hits)])
		}
		s.decide(sh, w, now, &h.Rule, h.Cost, record, &out[i])
	}
	return nil
}

// decidePart decides the part h of a stack, of digest d, without recording
// it: decide in mode m (fitsOnly or describe) on its window, or on an empty one
// if it has none.
func (s *Store) decidePart(d uint64, h store.Hit, now int64, m mode, res *store.Result) bool {
	sh := s.shard(d)
	w := sh.windows.find(d)
	var empty window
	if w == nil {
		w = &empty
	}
	return s.decide(sh, w, now, &h.Rule, h.Cost, m, res)
}

// shardIndex returns the index of the shard holding a key digest.
func (s *Store) shardIndex(d uint64) int {
	return int(d >> s.shardShift & uint64(len(s.shards)-1))
}
