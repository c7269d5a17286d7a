package memstore

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

func TestWindowIsOneCacheLine(t *testing.T) {
	if size := unsafe.Sizeof(window{}); size != 64 {
		t.Errorf("window is %d bytes, want 64", size)
	}
	if size := unsafe.Sizeof(shard{}); size%128 != 0 {
		t.Errorf("shard is %d bytes, want a multiple of 128", size)
	}
}

// TestTableAgainstMap runs random inserts, removals and sweeps on a table and
// on a Go map and checks that they agree, with digests chosen to collide in
// long probe chains.
func TestTableAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var tab table
	ref := make(map[uint64]int64) // digest -> expires
	digest := func() uint64 {
		// Few distinct low bits: many windows share a home slot.
		return r.Uint64()&^0xff | uint64(r.IntN(4)) | 1
	}
	check := func(step int) {
		t.Helper()
		if tab.n != len(ref) {
			t.Fatalf("step %d: table holds %d, map %d", step, tab.n, len(ref))
		}
		for d, exp := range ref {
			w := tab.find(d)
			if w == nil || w.expires != exp {
				t.Fatalf("step %d: digest %x lost (got %v)", step, d, w)
			}
		}
		occupied := 0
		for i := range tab.slots {
			if tab.slots[i].digest != 0 {
				occupied++
			}
		}
		if occupied != tab.n {
			t.Fatalf("step %d: %d occupied slots, n = %d", step, occupied, tab.n)
		}
	}
	for step := range 20000 {
		switch op := r.IntN(10); {
		case op < 6: // insert
			d := digest()
			if _, ok := ref[d]; ok {
				continue
			}
			w := tab.insert(d, true)
			w.expires = int64(r.IntN(1000))
			ref[d] = w.expires
		case op < 9 && tab.n > 0: // remove a random window
			i := tab.sample()
			delete(ref, tab.slots[i].digest)
			tab.removeAt(i)
		default: // sweep the expired
			now := int64(r.IntN(200))
			tab.sweep(now)
			for d, exp := range ref {
				if exp <= now {
					delete(ref, d)
				}
			}
		}
		if step%500 == 0 {
			check(step)
		}
	}
	check(-1)
	for range 1000 { // digests never inserted are not found
		if d := r.Uint64() | 0x100; ref[d] == 0 && tab.find(d) != nil {
			if _, ok := ref[d]; !ok {
				t.Fatalf("found digest %x, never inserted", d)
			}
		}
	}
}

func TestTableZeroDigest(t *testing.T) {
	var tab table
	tab.insert(0, true).expires = 7
	if w := tab.find(0); w == nil || w.expires != 7 {
		t.Fatalf("digest 0 not found: %v", w)
	}
}

func TestTableCompact(t *testing.T) {
	var tab table
	for d := uint64(1); d <= 1000; d++ {
		tab.insert(d*0x9e3779b97f4a7c15, true).expires = int64(d)
	}
	big := len(tab.slots)
	tab.sweep(990) // keeps 10
	if tab.n != 10 {
		t.Fatalf("n = %d after sweep, want 10", tab.n)
	}
	tab.compact()
	if len(tab.slots) >= big {
		t.Errorf("compact kept %d slots (was %d) for %d windows", len(tab.slots), big, tab.n)
	}
	for d := uint64(991); d <= 1000; d++ {
		if w := tab.find(d * 0x9e3779b97f4a7c15); w == nil || w.expires != int64(d) {
			t.Fatalf("window %d lost by compact", d)
		}
	}
}
