package limiter

import (
	"testing"
	"time"
)

// TestWallClock checks that the default clock tells the time as time.Now
// does, and that it takes a new anchor once its anchor is a second old.
func TestWallClock(t *testing.T) {
	var c wallClock
	for range 3 {
		before := time.Now()
		got := c.now()
		after := time.Now()
		if got.Before(before) || got.After(after) {
			t.Fatalf("now() = %v, outside [%v, %v]", got, before, after)
		}
		if wall := got.UnixNano(); wall < before.UnixNano()-int64(time.Millisecond) || wall > after.UnixNano()+int64(time.Millisecond) {
			t.Fatalf("now() wall time %d, outside [%d, %d] by more than 1ms", wall, before.UnixNano(), after.UnixNano())
		}
	}

	old := time.Now().Add(-2 * time.Second)
	c.anchor.Store(&old)
	before := time.Now()
	got := c.now()
	if got.Before(before) || got.Sub(before) > time.Second {
		t.Fatalf("now() with a 2s-old anchor = %v, want about %v", got, before)
	}
	if a := c.anchor.Load(); a == nil || a.Before(before) {
		t.Fatalf("anchor %v not renewed (renewal due after %v)", a, before)
	}
}
