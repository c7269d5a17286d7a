package memstore

import (
	"sync"
	"unsafe"

	"github.com/sluicehq/sluice/store"
)

// evictSample is how many windows a full shard samples to pick a victim.
const evictSample = 8

// window is one key's state under one rule name and algorithm: 64 bytes, one
// cache line. The sliding log keeps its hits in hits. The O(1) algorithms keep
// their few numbers in the scalar fields of hits (see counter.go and gcra.go),
// with its buffer nil and its length 0, so that their state reads as an empty
// log if ever taken for one.
//
// hits.limit holds the limit of the rule last applied in its low algShift
// bits (the capacity, for GCRA) and the algorithm in the two bits above: the
// log writes its limit alone there, so a window the log last wrote is a
// SlidingLog window, and an O(1) algorithm takes a window for its own only
// when it finds its algorithm there.
type window struct {
	digest  uint64 // the key's digest (never 0: see slotDigest)
	expires int64  // microseconds: when the state is empty (see each algorithm)
	hits    ring
}

// algShift is the position of the algorithm in window.hits.limit.
const algShift = 30

// Every limit and capacity fits below algShift, and every algorithm in the
// two bits above.
const (
	_ = uint(1<<algShift - 1 - store.MaxCounterLimit)
	_ = uint(1<<algShift - 1 - store.MaxLimit)
	_ = uint(3 - store.GCRA)
)

// algorithm returns the algorithm that last wrote w.
func (w *window) algorithm() store.Algorithm {
	return store.Algorithm(w.hits.limit >> algShift)
}

// limit returns the limit (GCRA: the capacity) of the rule last applied to w.
func (w *window) limit() int64 {
	return int64(w.hits.limit & (1<<algShift - 1))
}

// holds reports whether w holds state of alg, an O(1) algorithm.
func (w *window) holds(alg store.Algorithm) bool {
	return w.algorithm() == alg && w.hits.buf == nil
}

// used returns the share of its limit that w has used at now (microseconds):
// hits in the log (counting those not pruned yet), the weighted count of the
// sliding-window counter, the tokens taken from GCRA's bucket.
func (w *window) used(now int64) float64 {
	limit := float64(w.limit())
	if limit == 0 {
		return 0
	}
	switch w.algorithm() {
	case store.SlidingCounter:
		return counterUsed(w, now) / limit
	case store.GCRA:
		tat, interval := w.gcra()
		return max(tat-gcraTime(now), 0) / interval / limit
	default:
		return float64(w.hits.n) / limit
	}
}

// lock is one key's lock and fence counter.
type lock struct {
	holder       [2]uint64 // digest of the holder's token
	expires      int64     // nanoseconds: the lock is held while now < expires
	fence        int64     // last fence issued
	fenceExpires int64     // nanoseconds: when the fence counter is dropped
}

// held reports whether the lock is held at now (nanoseconds).
func (l lock) held(now int64) bool { return now < l.expires }

// behind reports whether the lock is free at now (nanoseconds) and its last
// fence is below the clock in microseconds, so that the entry may be dropped:
// every fence issued later is at least the clock, and so above the last one.
// A burst of acquires faster than one per microsecond runs the fence ahead of
// the clock, by at most the burst's length in microseconds; such an entry
// must be kept, even past its fence TTL, until the clock has caught up.
func (l lock) behind(now int64) bool {
	return !l.held(now) && l.fence < now/1e3
}

// droppable reports whether the entry may be dropped at now (nanoseconds)
// without pressure: its fence counter's TTL has passed and it is behind.
func (l lock) droppable(now int64) bool {
	return l.fenceExpires <= now && l.behind(now)
}

// shardState is the part of a shard behind its mutex.
type shardState struct {
	mu      sync.Mutex
	windows table
	locks   map[uint64]lock // key digest -> lock
	seq     uint64          // receipts issued by this shard
	id      uint64          // this shard's number, the low bits of its receipt ids
	// fenceFloor is the highest fence of every lock entry this shard has
	// dropped: a counter created later starts above it, so fences never go
	// down, whatever the clock does.
	fenceFloor   int64
	windowsAdded int // windows added since the last sweep under pressure
	locksAdded   int // locks added since the last sweep under pressure
	peak         int // most keys held since the last compaction
}

// shard is a shardState padded to a multiple of 128 bytes, so that the mutexes
// of neighbouring shards never share a cache line.
type shard struct {
	shardState
	_ [128 - unsafe.Sizeof(shardState{})%128]byte
}

func (sh *shardState) init(id uint64) {
	sh.id = id
	sh.locks = make(map[uint64]lock)
}

// clear drops every key.
func (sh *shardState) clear() {
	sh.windows = table{}
	sh.locks = make(map[uint64]lock)
	sh.windowsAdded, sh.locksAdded, sh.peak = 0, 0, 0
}

// len returns the number of keys held.
func (sh *shardState) len() int {
	return sh.windows.n + len(sh.locks)
}

// addWindow adds an empty window for key digest d, which must be new, for
// algorithm alg, making room under bound first without evicting the windows
// whose slot digests are in keep: a new window always finds room, unless
// every window of the shard is in keep. The pointer is valid while the shard
// stays locked and unchanged.
func (sh *shardState) addWindow(d uint64, nowNanos int64, bound int, alg store.Algorithm, keep []uint64) *window {
	sh.makeWindowRoom(nowNanos, bound, keep)
	w := sh.windows.insert(d, alg == store.SlidingLog)
	sh.windowsAdded++
	sh.peak = max(sh.peak, sh.len())
	return w
}

// addLock stores l for key digest d, which must be new; the caller made room
// with makeLockRoom.
func (sh *shardState) addLock(d uint64, l lock) {
	sh.locks[d] = l
	sh.locksAdded++
	sh.peak = max(sh.peak, sh.len())
}

// dropLock deletes the lock entry of digest d, raising the shard's fence
// floor to its last fence.
func (sh *shardState) dropLock(d uint64, l lock) {
	sh.fenceFloor = max(sh.fenceFloor, l.fence)
	delete(sh.locks, d)
}

// makeWindowRoom ensures the shard can take one more window under bound. It
// drops the windows whose state has emptied (at most once per bound/4
// windows added, so the cost per window stays constant), then evicts one
// window from a random sample: one that has emptied if the sample holds one,
// else the one that has used the smallest share of its limit (see
// window.used), and among those the one that empties soonest. A window at
// its limit is therefore evicted only when every sampled window is at its
// limit too: a flood of new one-hit keys cannot give a client that used up
// its quota its quota back.
//
// Windows whose slot digests are in keep (the parts of a stack being
// recorded) are never evicted; if the shard holds nothing else, it goes over
// bound by the new window.
func (sh *shardState) makeWindowRoom(nowNanos int64, bound int, keep []uint64) {
	t := &sh.windows
	if t.n < bound {
		return
	}
	now := nowNanos / 1e3
	if sh.windowsAdded >= bound/4 {
		sh.windowsAdded = 0
		t.sweep(now)
		if t.n < bound {
			return
		}
	}
	victim := -1
	for range evictSample {
		i := t.sample()
		if kept(keep, t.slots[i].digest) {
			continue
		}
		if victim < 0 || evictBefore(&t.slots[i], &t.slots[victim], now) {
			victim = i
		}
	}
	if victim < 0 {
		victim = t.other(keep)
	}
	if victim >= 0 {
		t.removeAt(victim)
	}
}

// kept reports whether slot digest d is in keep.
func kept(keep []uint64, d uint64) bool {
	for _, k := range keep {
		if k == d {
			return true
		}
	}
	return false
}

// evictBefore reports whether window a is a better eviction victim than b at
// now (microseconds): an emptied one, else the one that has used the
// smaller share of its limit, else the one that empties sooner. Hits of a log
// that left the window but were not pruned yet count as hits, which only
// makes a window look closer to its limit than it is.
func evictBefore(a, b *window, now int64) bool {
	aGone, bGone := a.expires <= now, b.expires <= now
	if aGone != bGone {
		return aGone
	}
	if aGone {
		return false
	}
	if aUsed, bUsed := a.used(now), b.used(now); aUsed != bUsed {
		return aUsed < bUsed
	}
	return a.expires < b.expires
}

// makeLockRoom ensures the shard can take one more lock under bound: it drops
// the locks that are free and whose fence is below the clock (at most once
// per bound/4 locks added), then drops one such lock. Held locks, and fence
// counters still ahead of the clock, are never dropped: a shard full of them
// reports ErrFull. Locks and windows are bounded separately, so locks can
// never crowd out the rate limiter's windows.
func (sh *shardState) makeLockRoom(nowNanos int64, bound int) error {
	if len(sh.locks) < bound {
		return nil
	}
	if sh.locksAdded >= bound/4 {
		sh.locksAdded = 0
		sh.sweepLocks(nowNanos, true)
		if len(sh.locks) < bound {
			return nil
		}
	}
	for d, l := range sh.locks {
		if l.behind(nowNanos) {
			sh.dropLock(d, l)
			return nil
		}
	}
	return ErrFull
}

// sweep drops the windows whose hits have all left and the locks that are
// free, whose fence counter expired and whose last fence is below the clock
// in microseconds (see lock.behind).
func (sh *shardState) sweep(nowNanos int64) {
	sh.windows.sweep(nowNanos / 1e3)
	sh.sweepLocks(nowNanos, false)
}

// sweepLocks drops the locks as sweep does. Under pressure it drops every
// free lock whose fence is below the clock, expired counter or not. Either
// way the shard's fence floor keeps the dropped fences, so a counter created
// later starts above them.
func (sh *shardState) sweepLocks(nowNanos int64, pressure bool) {
	for d, l := range sh.locks {
		if l.droppable(nowNanos) || (pressure && l.behind(nowNanos)) {
			sh.dropLock(d, l)
		}
	}
}

// compact gives memory back after keys were dropped.
func (sh *shardState) compact() {
	sh.windows.compact()
	if n := len(sh.locks); sh.peak > 1024 && n < sh.peak/4 {
		// Go maps do not shrink: copy into a right-sized one.
		locks := make(map[uint64]lock, n)
		for d, l := range sh.locks {
			locks[d] = l
		}
		sh.locks = locks
	}
	sh.peak = sh.len()
}
