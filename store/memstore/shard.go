package memstore

import (
	"sync"
	"unsafe"
)

// evictSample is how many windows a full shard samples to pick a victim.
const evictSample = 8

// window is one key's sliding-window log: 64 bytes, one cache line.
type window struct {
	digest  uint64 // the key's digest (never 0: see slotDigest)
	expires int64  // microseconds: when the newest hit leaves the window
	hits    ring
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
	added   int             // keys added since the last sweep under pressure
	peak    int             // most keys held since the last compaction
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
	sh.added, sh.peak = 0, 0
}

// len returns the number of keys held.
func (sh *shardState) len() int {
	return sh.windows.n + len(sh.locks)
}

// addWindow adds an empty window for key digest d, which must be new, making
// room under bound first. The pointer is valid while the shard stays locked
// and unchanged.
func (sh *shardState) addWindow(d uint64, nowNanos int64, bound int) (*window, error) {
	if err := sh.makeRoom(nowNanos, bound); err != nil {
		return nil, err
	}
	w := sh.windows.insert(d)
	sh.added++
	sh.peak = max(sh.peak, sh.len())
	return w, nil
}

// addLock stores l for key digest d, which must be new; the caller made room.
func (sh *shardState) addLock(d uint64, l lock) {
	sh.locks[d] = l
	sh.added++
	sh.peak = max(sh.peak, sh.len())
}

// makeRoom ensures the shard can take one more key under bound: it drops
// expired keys (at most once per bound/4 keys added, so the cost per key
// stays constant), then evicts the sampled window that empties soonest, then
// a lock that is free and whose fence is below the clock. Held locks, and
// fence counters still ahead of the clock, are never evicted: a shard full of
// them reports ErrFull.
func (sh *shardState) makeRoom(nowNanos int64, bound int) error {
	if sh.len() < bound {
		return nil
	}
	if sh.added >= bound/4 {
		sh.added = 0
		sh.sweep(nowNanos, true)
		if sh.len() < bound {
			return nil
		}
	}
	if t := &sh.windows; t.n > 0 {
		victim := t.sample()
		for range evictSample - 1 {
			if i := t.sample(); t.slots[i].expires < t.slots[victim].expires {
				victim = i
			}
		}
		t.removeAt(victim)
		return nil
	}
	for d, l := range sh.locks {
		if l.behind(nowNanos) {
			delete(sh.locks, d)
			return nil
		}
	}
	return ErrFull
}

// sweep drops the windows whose hits have all left and the locks that are
// free, whose fence counter expired and whose last fence is below the clock
// in microseconds (see lock.behind). Under pressure it drops every free lock
// whose fence is below the clock, expired counter or not: a fence issued
// later is at least the clock, so dropping a counter never makes fences go
// down.
func (sh *shardState) sweep(nowNanos int64, pressure bool) {
	sh.windows.sweep(nowNanos / 1e3)
	for d, l := range sh.locks {
		if l.droppable(nowNanos) || (pressure && l.behind(nowNanos)) {
			delete(sh.locks, d)
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
