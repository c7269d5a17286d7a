package limiter

import (
	"sync/atomic"
	"time"
)

// wallClock is the default clock of a Policy: time.Now, read from the
// monotonic clock alone. time.Now reads two clocks, the wall clock and the
// monotonic one, and on virtual machines each read can cost tens of
// nanoseconds, a large share of a decision; wallClock reads the monotonic
// clock and adds what it measures to the time of an anchor. The anchor is
// taken again from time.Now once a second, so the times it gives follow the
// wall clock within the drift of a second (under a millisecond) and follow
// a step of the wall clock within a second. Its times carry a monotonic
// reading, as time.Now's do.
type wallClock struct {
	anchor atomic.Pointer[time.Time]
}

// now returns the current time.
func (c *wallClock) now() time.Time {
	if a := c.anchor.Load(); a != nil {
		if d := time.Since(*a); d >= 0 && d < time.Second {
			return a.Add(d)
		}
	}
	t := time.Now()
	c.anchor.Store(&t)
	return t
}
