package memstore

import "math/bits"

// hit is one entry of a sliding-window log.
type hit struct {
	at int64  // time of the hit, microseconds since the Unix epoch
	id uint64 // receipt id of the call that recorded it
}

// ring is a sliding-window log: hits in time order in a ring buffer whose
// length is zero or a power of two. It caches the time of its oldest hit, so
// that deciding whether any hit has left the window reads no buffer.
type ring struct {
	buf    []hit
	head   int   // index in buf of the oldest hit
	n      int   // number of hits
	oldest int64 // time of the oldest hit, when n > 0
}

// ringCap is the largest buffer a key with the given limit needs: limit
// rounded up to a power of two.
func ringCap(limit int) int {
	switch {
	case limit <= 1:
		return 1
	case limit > 1<<62:
		return 1 << 62
	}
	return 1 << bits.Len(uint(limit-1))
}

// at returns the i-th oldest hit; 0 <= i < r.n.
func (r *ring) at(i int) hit {
	return r.buf[(r.head+i)&(len(r.buf)-1)]
}

func (r *ring) set(i int, h hit) {
	r.buf[(r.head+i)&(len(r.buf)-1)] = h
}

// reset empties the log, keeping its buffer.
func (r *ring) reset() {
	r.head, r.n = 0, 0
}

// prune drops the hits at or before cutoff.
func (r *ring) prune(cutoff int64) {
	if r.n == 0 || r.oldest > cutoff {
		return
	}
	mask := len(r.buf) - 1
	for r.n > 0 && r.buf[r.head].at <= cutoff {
		r.head = (r.head + 1) & mask
		r.n--
	}
	if r.n == 0 {
		r.head = 0
		return
	}
	r.oldest = r.buf[r.head].at
}

// fit makes the buffer suit limit: large enough for need hits, and no larger
// than limit needs unless it holds more hits than that.
func (r *ring) fit(need, limit int) {
	top := ringCap(limit)
	if len(r.buf) >= need && len(r.buf) <= top {
		return
	}
	size := ringCap(max(min(top, max(need, 2*len(r.buf), 4)), need, r.n))
	if size != len(r.buf) {
		r.resize(size)
	}
}

// resize moves the hits into a new buffer of size (a power of two >= r.n).
func (r *ring) resize(size int) {
	buf := make([]hit, size)
	for i := range r.n {
		buf[i] = r.at(i)
	}
	r.buf, r.head = buf, 0
}

// push records h in time order and returns the time of the newest hit; the
// buffer must have room.
func (r *ring) push(h hit) int64 {
	i := r.n
	r.n++
	if i == 0 {
		r.set(0, h)
		r.oldest = h.at
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
	r.oldest = r.at(0).at
	return newest
}

// remove drops up to cost hits recorded with id and reports how many it
// dropped. Recent hits are the likely ones, so it searches from the newest.
func (r *ring) remove(id uint64, cost int) int {
	lo, found := -1, 0
	for i := r.n - 1; i >= 0 && found < cost; i-- {
		if r.at(i).id == id {
			found++
			lo = i
		}
	}
	if found == 0 {
		return 0
	}
	j, removed := lo, 0
	for i := lo; i < r.n; i++ {
		h := r.at(i)
		if h.id == id && removed < found {
			removed++
			continue
		}
		r.set(j, h)
		j++
	}
	r.n = j
	if r.n == 0 {
		r.head = 0
	} else {
		r.oldest = r.at(0).at
	}
	return removed
}
