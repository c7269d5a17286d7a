package limiter

import (
	"strconv"
	"testing"
	"time"
)

// The cache keeps at most its size, forgets the least recently used first,
// and a lookup counts as a use.
func TestDenyCacheBoundedLRU(t *testing.T) {
	c := newDenyCache(3, time.Now)
	deny := Decision{Cost: 1, Limit: 5, RetryAfter: time.Hour}
	for i := range 3 {
		c.add(digest("k"+strconv.Itoa(i)), deny)
	}
	if _, ok := c.lookup(digest("k0"), 1, 5); !ok { // k0 is now the most recent
		t.Fatal("k0 not cached")
	}
	c.add(digest("k3"), deny) // evicts k1, the least recently used
	if n := c.len(); n != 3 {
		t.Fatalf("len = %d, want 3", n)
	}
	for key, want := range map[string]bool{"k0": true, "k1": false, "k2": true, "k3": true} {
		if _, ok := c.lookup(digest(key), 1, 5); ok != want {
			t.Errorf("%s cached = %v, want %v", key, ok, want)
		}
	}
	for i := range 1000 {
		c.add(digest("flood"+strconv.Itoa(i)), deny)
		if i%7 == 0 {
			c.remove(digest("flood" + strconv.Itoa(i-3)))
		}
	}
	if n := c.len(); n > 3 {
		t.Fatalf("len = %d after a flood, want at most 3", n)
	}
	if _, ok := c.lookup(digest("flood999"), 1, 5); !ok {
		t.Error("the most recent denial was forgotten")
	}
}

// A cached denial applies only to the same or a larger cost under the same
// or a smaller limit.
func TestDenyCacheCostAndLimit(t *testing.T) {
	c := newDenyCache(8, time.Now)
	c.add(digest("k"), Decision{Cost: 3, Limit: 10, RetryAfter: time.Hour})
	for _, tc := range []struct {
		cost, limit int
		want        bool
	}{{3, 10, true}, {5, 10, true}, {2, 10, false}, {3, 9, true}, {3, 11, false}} {
		if _, ok := c.lookup(digest("k"), tc.cost, tc.limit); ok != tc.want {
			t.Errorf("cost %d limit %d: cached = %v, want %v", tc.cost, tc.limit, ok, tc.want)
		}
	}
}
