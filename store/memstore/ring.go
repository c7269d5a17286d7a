package memstore

import (
	"math/bits"

	"github.com/sluicehq/sluice/store"
)

// maxLog is the most hits one key's log holds: the largest limit a rule may
// have. Its indices fit 16 bits.
const maxLog = store.MaxLimit

// hit is one entry of a sliding-window log.
type hit struct {
	at int64  // time of the hit, microseconds since the Unix epoch
	id uint64 // receipt id of the call that recorded it
}

// ring is a sliding-window log: hits in time order. A log of at most one hit
// lives inline, in the cache line of its table entry, so that a key seen
// once per window (the usual client) costs no buffer and no second cache
// miss; a longer log lives in a ring buffer whose length is a power of two.
type ring struct {
	// buf holds the hits when not nil; when nil the log is inline.
	buf  []hit
	head uint16 // index in buf of the oldest hit
	n    uint16 // number of hits
	// limit is the limit of the rule last applied to the log, which tells
	// eviction how far the key is from it.
	limit uint32
	// one is the hit of an inline log. With a buffer, one.at caches the
	// time of the oldest hit, so that deciding whether any hit has left the
	// window reads no buffer. Either way one.at is the oldest time if n > 0.
	one hit
}

// ringCap is the largest buffer a key with the given limit needs: limit
// rounded up to a power of two, at most maxLog.
func ringCap(limit int) int {
	switch {
	case limit <= 1:
		return 1
	case limit >= maxLog:
		return maxLog
	}
	return 1 << bits.Len(uint(limit-1))
}

// len returns the number of hits.
func (r *ring) len() int { return int(r.n) }

// oldest returns the time of the oldest hit; the log must not be empty.
func (r *ring) oldest() int64 { return r.one.at }

// at returns the i-th oldest hit; 0 <= i < r.len().
func (r *ring) at(i int) hit {
	if r.buf == nil {
		return r.one
	}
	return r.buf[(int(r.head)+i)&(len(r.buf)-1)]
}

// set replaces the i-th oldest hit of a buffered log.
func (r *ring) set(i int, h hit) {
	r.buf[(int(r.head)+i)&(len(r.buf)-1)] = h
}

// reset empties the log, keeping its buffer.
func (r *ring) reset() {
	r.head, r.n = 0, 0
}

// prune drops the hits at or before cutoff.
func (r *ring) prune(cutoff int64) {
	if r.n == 0 || r.one.at > cutoff {
		return
	}
	if r.buf == nil {
		r.n = 0
		return
	}
	mask := uint16(len(r.buf) - 1)
	for r.n > 0 && r.buf[r.head].at <= cutoff {
		r.head = (r.head + 1) & mask
		r.n--
	}
	if r.n == 0 {
		r.head = 0
		return
	}
	r.one.at = r.buf[r.head].at
}

// fit makes the log suit limit: room for need hits, and no larger than limit
// needs unless it holds more hits than that.
func (r *ring) fit(need, limit int) {
	top := ringCap(limit)
	if r.buf == nil {
		if need <= 1 {
			return
		}
		buf := make([]hit, ringCap(max(min(top, max(need, 4)), need)))
		if r.n == 1 {
			buf[0] = r.one
		}
		r.buf, r.head = buf, 0
		return
	}
	if len(r.buf) >= need && len(r.buf) <= top {
		return
	}
	if top == 1 && need <= 1 && r.n <= 1 { // back inline
		if r.n == 1 {
			r.one = r.at(0)
		}
		r.buf, r.head = nil, 0
		return
	}
	size := ringCap(max(min(top, max(need, 2*len(r.buf), 4)), need, int(r.n)))
	if size != len(r.buf) {
		r.resize(size)
	}
}

// resize moves a buffered log into a new buffer of size (a power of two, at
// least r.len()).
func (r *ring) resize(size int) {
	buf := make([]hit, size)
	for i := range r.len() {
		buf[i] = r.at(i)
	}
	r.buf, r.head = buf, 0
}

// push records h in time order and returns the time of the newest hit; fit
// must have made room.
func (r *ring) push(h hit) int64 {
	i := r.len()
	r.n++
	if i == 0 {
		r.one = h
		if r.buf != nil {
			r.set(0, h)
		}
		return h.at
	}
	newest := r.at(i - 1).at
	if newest <= h.at {
		r.set(i, h)
		return h.at
	}
	// A clock that went back puts h before newer hits: shift them up.
	for i > 0 {
		prev := r.at(i - 1)
		if prev.at <= h.at {
			break
		}
		r.set(i, prev)
		i--
	}
	r.set(i, h)
	r.one.at = r.at(0).at
	return newest
}

// remove drops up to cost hits recorded with id and reports how many it
// dropped. Recent hits are the likely ones, so it searches from the newest.
func (r *ring) remove(id uint64, cost int) int {
	if r.buf == nil {
		if r.n == 1 && r.one.id == id && cost > 0 {
			r.n = 0
			return 1
		}
		return 0
	}
	lo, found := -1, 0
	for i := r.len() - 1; i >= 0 && found < cost; i-- {
		if r.at(i).id == id {
			found++
			lo = i
		}
	}
	if found == 0 {
		return 0
	}
	j, removed := lo, 0
	for i := lo; i < r.len(); i++ {
		h := r.at(i)
		if h.id == id && removed < found {
			removed++
			continue
		}
		r.set(j, h)
		j++
	}
	r.n = uint16(j)
	if r.n == 0 {
		r.head = 0
	} else {
		r.one.at = r.at(0).at
	}
	return removed
}
