package limiter

import (
	"hash/maphash"
	"sync"
	"time"
)

// DefaultDenyCacheSize is the number of denied keys a Limiter over a remote
// store remembers unless WithDenyCache sets another.
const DefaultDenyCacheSize = 4096

// seed keys the digests of every deny cache.
var seed = maphash.MakeSeed()

// digest returns the digest of a client's key, under which a Limiter's deny
// cache keeps its denial.
func digest(key string) uint64 { return maphash.String(seed, key) }

// denyCache remembers, per client key, a denial until its retry-after has
// passed, so that a client that keeps knocking is answered without a store
// call. It holds at most len(entries) keys; the least recently used goes
// first. Keys are kept as 64-bit digests (see digest and stackDigest), so a
// client's key costs no memory beyond its entry whatever its length.
type denyCache struct {
	now func() time.Time // the limiter's clock (see WithClock)

	mu      sync.Mutex
	index   map[uint64]int32 // digest -> position in entries
	entries []denyEntry
	head    int32 // most recently used; -1 when empty
	tail    int32 // least recently used; -1 when empty
}

// denyEntry is a Limiter's denial of one key (cost and limit) or a Stack's
// denial of one request (decs).
type denyEntry struct {
	digest     uint64
	until      time.Time  // monotonic: the denial holds before it
	cost       int        // the denied cost: smaller costs ask the store
	limit      int        // the limit the denial was made under
	decs       []Decision // a Stack's decisions, as the store gave them
	prev, next int32
}

func newDenyCache(size int, now func() time.Time) *denyCache {
	return &denyCache{
		now:     now,
		index:   make(map[uint64]int32, size),
		entries: make([]denyEntry, 0, size),
		head:    -1,
		tail:    -1,
	}
}

// lookup returns how long the denial cached under h (a key's digest) still
// holds for a request of cost n under limit: the same or a larger cost, the
// same or a smaller limit, before the cached retry-after has passed. The
// cache never admits: no entry, or one that does not apply, sends the
// request to the store.
func (c *denyCache) lookup(h uint64, n, limit int) (wait time.Duration, ok bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[h]
	if !ok {
		return 0, false
	}
	e := &c.entries[i]
	wait = e.until.Sub(now)
	if wait <= 0 {
		c.unlink(i)
		c.free(i)
		return 0, false
	}
	if n < e.cost || limit > e.limit {
		return 0, false
	}
	c.unlink(i)
	c.pushFront(i)
	return wait, true
}

// add remembers d, a denial of the key of digest h, until its RetryAfter
// has passed.
func (c *denyCache) add(h uint64, d Decision) {
	if d.RetryAfter <= 0 {
		return
	}
	e := denyEntry{digest: h, until: c.now().Add(d.RetryAfter), cost: d.Cost, limit: d.Limit}
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.index[e.digest]; ok {
		e.cost = min(e.cost, c.entries[i].cost)
	}
	c.put(e)
}

// put stores e, replacing the entry of its digest or, when the cache is
// full, the least recently used one. c.mu must be held.
func (c *denyCache) put(e denyEntry) {
	h := e.digest
	if i, ok := c.index[h]; ok {
		c.unlink(i)
		c.entries[i] = e
		c.pushFront(i)
		return
	}
	var i int32
	if len(c.entries) < cap(c.entries) {
		c.entries = append(c.entries, e)
		i = int32(len(c.entries) - 1)
	} else {
		i = c.tail // evict the least recently used
		c.unlink(i)
		delete(c.index, c.entries[i].digest)
		c.entries[i] = e
	}
	c.index[h] = i
	c.pushFront(i)
}

// longestWait returns the longest RetryAfter of the denying decisions of a
// stacked request.
func longestWait(decs []Decision) time.Duration {
	var wait time.Duration
	for i := range decs {
		if decs[i].denying() {
			wait = max(wait, decs[i].RetryAfter)
		}
	}
	return wait
}

// addStack remembers the decisions of a denied stacked request under h (see
// stackDigest) until the longest wait has passed.
func (c *denyCache) addStack(h uint64, decs []Decision) {
	wait := longestWait(decs)
	if wait <= 0 {
		return
	}
	kept := make([]Decision, len(decs))
	for i, d := range decs {
		d.key = "" // a client's key may be long: the cache keeps digests only
		kept[i] = d
	}
	e := denyEntry{digest: h, until: c.now().Add(wait), decs: kept}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put(e)
}

// lookupStack returns the decisions cached for a stacked request under h
// (see stackDigest), each given its part's key back, with their waits
// counted down, when every part asks for the same cost under the same limit
// as then and a denying part still has to wait.
func (c *denyCache) lookupStack(h uint64, parts []stackPart) ([]Decision, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[h]
	if !ok {
		return nil, false
	}
	e := &c.entries[i]
	if len(e.decs) != len(parts) {
		return nil, false
	}
	// The decisions were made when the longest wait of them began.
	elapsed := longestWait(e.decs) - e.until.Sub(now)
	out := make([]Decision, len(e.decs))
	denied := false
	for j, d := range e.decs {
		if d.lim != parts[j].p.lim || d.Cost != parts[j].cost || d.Limit != parts[j].rule.Limit {
			return nil, false
		}
		d.key = parts[j].key
		d.ResetAfter = max(d.ResetAfter-elapsed, 0)
		if d.denying() {
			d.RetryAfter -= elapsed
			if d.RetryAfter <= 0 { // this part has room again: no longer denying
				d.RetryAfter = 0
			} else {
				denied = true
			}
		}
		out[j] = d
	}
	if !denied {
		c.unlink(i)
		c.free(i)
		return nil, false
	}
	c.unlink(i)
	c.pushFront(i)
	return out, true
}

// remove forgets the denial cached under h: this instance gave some of its
// hits back.
func (c *denyCache) remove(h uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.index[h]; ok {
		c.unlink(i)
		c.free(i)
	}
}

// free drops the unlinked entry i and moves the last entry into its place
// (keeping its place in the recency list), so that entries stay dense.
func (c *denyCache) free(i int32) {
	delete(c.index, c.entries[i].digest)
	last := int32(len(c.entries) - 1)
	if i != last {
		m := c.entries[last]
		c.entries[i] = m
		if m.prev >= 0 {
			c.entries[m.prev].next = i
		} else {
			c.head = i
		}
		if m.next >= 0 {
			c.entries[m.next].prev = i
		} else {
			c.tail = i
		}
		c.index[m.digest] = i
	}
	c.entries = c.entries[:last]
}

func (c *denyCache) unlink(i int32) {
	e := &c.entries[i]
	if e.prev >= 0 {
		c.entries[e.prev].next = e.next
	} else {
		c.head = e.next
	}
	if e.next >= 0 {
		c.entries[e.next].prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (c *denyCache) pushFront(i int32) {
	e := &c.entries[i]
	e.prev, e.next = -1, c.head
	if c.head >= 0 {
		c.entries[c.head].prev = i
	}
	c.head = i
	if c.tail < 0 {
		c.tail = i
	}
}

// len returns the number of keys remembered.
func (c *denyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
