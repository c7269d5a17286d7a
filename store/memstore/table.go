package memstore

import "math/rand/v2"

// Bounds of the spare log buffers a table keeps for reuse.
const (
	maxSpare    = 32 // buffers per table
	maxSpareLen = 64 // hits per buffer
)

// table is an open-addressing hash table of windows keyed by their digest,
// with linear probing. An entry holds the digest next to the window's state,
// in one 64-byte cache line, so a lookup usually touches one line, where a Go
// map and a separate slice of windows would touch three. A load of up to 7/8
// keeps the table small (the cache misses it saves outweigh the longer probe
// sequences, which run over adjacent lines).
type table struct {
	slots []window // length zero or a power of two; digest 0 marks a free slot
	n     int      // occupied slots
	spare [][]hit  // small log buffers of removed windows, for reuse
}

// slotDigest maps a key digest to the digest stored in a slot: never 0,
// which marks a free slot.
func slotDigest(d uint64) uint64 {
	if d == 0 {
		return 1
	}
	return d
}

// find returns the window of digest d, or nil.
func (t *table) find(d uint64) *window {
	if t.n == 0 {
		return nil
	}
	d = slotDigest(d)
	mask := uint64(len(t.slots) - 1)
	for i := d & mask; ; i = (i + 1) & mask {
		w := &t.slots[i]
		if w.digest == d {
			return w
		}
		if w.digest == 0 {
			return nil
		}
	}
}

// insert adds an empty window for digest d, which must not be present, and
// returns it; a window for the log (log true) takes a spare buffer if the
// table has one. The pointer is valid until the table next changes.
func (t *table) insert(d uint64, log bool) *window {
	if (t.n+1)*8 > len(t.slots)*7 { // keep the load at most 7/8
		t.resize(max(8, 2*len(t.slots)))
	}
	d = slotDigest(d)
	mask := uint64(len(t.slots) - 1)
	i := d & mask
	for t.slots[i].digest != 0 {
		i = (i + 1) & mask
	}
	w := &t.slots[i]
	*w = window{digest: d}
	if k := len(t.spare); k > 0 && log {
		w.hits.buf = t.spare[k-1]
		t.spare[k-1] = nil
		t.spare = t.spare[:k-1]
	}
	t.n++
	return w
}

// resize rehashes the windows into size slots (a power of two).
func (t *table) resize(size int) {
	old := t.slots
	t.slots = make([]window, size)
	mask := uint64(size - 1)
	for k := range old {
		if d := old[k].digest; d != 0 {
			i := d & mask
			for t.slots[i].digest != 0 {
				i = (i + 1) & mask
			}
			t.slots[i] = old[k]
		}
	}
}

// removeAt frees slot i, shifting later windows of its probe chain back so
// that every window stays reachable from its home slot.
func (t *table) removeAt(i int) {
	if buf := t.slots[i].hits.buf; buf != nil && len(buf) <= maxSpareLen && len(t.spare) < maxSpare {
		t.spare = append(t.spare, buf)
	}
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].digest != 0; j = (j + 1) & mask {
		home := int(t.slots[j].digest) & mask
		// The window at j may fill i unless its home lies in (i, j].
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = window{}
	t.n--
}

// remove frees the slot of digest d, if present.
func (t *table) remove(d uint64) {
	if t.n == 0 {
		return
	}
	d = slotDigest(d)
	mask := uint64(len(t.slots) - 1)
	for i := d & mask; t.slots[i].digest != 0; i = (i + 1) & mask {
		if t.slots[i].digest == d {
			t.removeAt(int(i))
			return
		}
	}
}

// other returns the slot of a window whose digest is not in keep, starting
// the search at a random slot, or -1 if there is none.
func (t *table) other(keep []uint64) int {
	if t.n == 0 {
		return -1
	}
	mask := len(t.slots) - 1
	start := t.sample()
	for k := range len(t.slots) {
		i := (start + k) & mask
		if d := t.slots[i].digest; d != 0 && !kept(keep, d) {
			return i
		}
	}
	return -1
}

// sample returns the slot of a window picked at random; the table must not
// be empty.
func (t *table) sample() int {
	mask := len(t.slots) - 1
	i := rand.IntN(len(t.slots))
	for t.slots[i].digest == 0 {
		i = (i + 1) & mask
	}
	return i
}

// sweep removes the windows whose state emptied at or before now.
func (t *table) sweep(now int64) {
	for i := 0; i < len(t.slots); {
		if w := &t.slots[i]; w.digest != 0 && w.expires <= now {
			t.removeAt(i) // another window may move into slot i: look again
			continue
		}
		i++
	}
}

// compact shrinks a table that holds far fewer windows than it has room for,
// and drops the spare buffers.
func (t *table) compact() {
	t.spare = nil
	if len(t.slots) > 64 && t.n*8 < len(t.slots) {
		t.resize(max(8, ringCap(2*t.n)))
	}
}
