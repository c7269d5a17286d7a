package memstore

import (
	"math/rand/v2"
	"sync"
	"unsafe"
)

// evictSample is how many windows a full shard samples to pick a victim.
const evictSample = 8

// window is one key's sliding-window log.
type window struct {
	digest  uint64 // the key's digest, to find its index entry on removal
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

// shardState is the part of a shard behind its mutex.
type shardState struct {
	mu      sync.Mutex
	windows map[uint64]int32 // key digest -> index in wins
	wins    []window
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
	sh.windows = make(map[uint64]int32)
	sh.locks = make(map[uint64]lock)
}

// clear drops every key.
func (sh *shardState) clear() {
	sh.windows = make(map[uint64]int32)
	sh.wins = nil
	sh.locks = make(map[uint64]lock)
	sh.added, sh.peak = 0, 0
}

// len returns the number of keys held.
func (sh *shardState) len() int {
	return len(sh.windows) + len(sh.locks)
}

// window returns the window of key digest d, adding an empty one if there is
// none; nowNanos and bound are for making room.
func (sh *shardState) window(d uint64, nowNanos int64, bound int) (*window, error) {
	if i, ok := sh.windows[d]; ok {
		return &sh.wins[i], nil
	}
	if err := sh.makeRoom(nowNanos, bound); err != nil {
		return nil, err
	}
	n := len(sh.wins)
	if n < cap(sh.wins) {
		sh.wins = sh.wins[:n+1] // reuse the slot, and the log buffer, of a removed window
	} else {
		sh.wins = append(sh.wins, window{})
	}
	w := &sh.wins[n]
	*w = window{digest: d, hits: ring{buf: w.hits.buf}}
	sh.windows[d] = int32(n)
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

// removeWindow removes wins[i], moving the last window into its place. The
// removed window stays beyond len(wins), so its buffer can be reused.
func (sh *shardState) removeWindow(i int) {
	last := len(sh.wins) - 1
	delete(sh.windows, sh.wins[i].digest)
	if i != last {
		sh.wins[i], sh.wins[last] = sh.wins[last], sh.wins[i]
		sh.windows[sh.wins[i].digest] = int32(i)
	}
	sh.wins = sh.wins[:last]
}

// makeRoom ensures the shard can take one more key under bound: it drops
// expired keys (at most once per bound/4 keys added, so the cost per key
// stays constant), then evicts the sampled window that empties soonest, then
// a lock that is free and whose fence is below the clock. Held locks are never
// evicted: a shard full of them reports ErrFull.
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
	if len(sh.wins) > 0 {
		victim := rand.IntN(len(sh.wins))
		for range evictSample - 1 {
			if i := rand.IntN(len(sh.wins)); sh.wins[i].expires < sh.wins[victim].expires {
				victim = i
			}
		}
		sh.removeWindow(victim)
		return nil
	}
	now := nowNanos / 1e3
	for d, l := range sh.locks {
		if !l.held(nowNanos) && l.fence < now {
			delete(sh.locks, d)
			return nil
		}
	}
	return ErrFull
}

// sweep drops the windows whose hits have all left and the locks that are
// free and whose fence counter expired. Under pressure it also drops free
// locks whose fence is below the clock in microseconds: a fence issued later
// is at least the clock, so dropping the counter cannot make fences go down.
func (sh *shardState) sweep(nowNanos int64, pressure bool) {
	now := nowNanos / 1e3
	for i := 0; i < len(sh.wins); {
		if sh.wins[i].expires <= now {
			sh.removeWindow(i)
			continue
		}
		i++
	}
	for d, l := range sh.locks {
		if l.held(nowNanos) {
			continue
		}
		if l.fenceExpires <= nowNanos || (pressure && l.fence < now) {
			delete(sh.locks, d)
		}
	}
}

// compact gives memory back after keys were dropped: the buffers of removed
// windows, and tables far larger than what they hold.
func (sh *shardState) compact() {
	clear(sh.wins[len(sh.wins):cap(sh.wins)])
	if cap(sh.wins) > 64 && len(sh.wins) < cap(sh.wins)/4 {
		wins := make([]window, len(sh.wins), 2*len(sh.wins))
		copy(wins, sh.wins)
		sh.wins = wins
	}
	if n := sh.len(); sh.peak > 1024 && n < sh.peak/4 {
		// Go maps do not shrink: copy into right-sized ones.
		windows := make(map[uint64]int32, len(sh.windows))
		for d, i := range sh.windows {
			windows[d] = i
		}
		locks := make(map[uint64]lock, len(sh.locks))
		for d, l := range sh.locks {
			locks[d] = l
		}
		sh.windows, sh.locks, sh.peak = windows, locks, n
	}
}
