package lockguard

import (
	"sync/atomic"
	"time"
)

// throttle lets one log line of a kind through per second and counts the
// ones it holds back, so that an outage or a flood of bad requests does not
// flood the log.
type throttle struct {
	last       atomic.Int64 // UnixNano of the last line let through
	suppressed atomic.Int64 // lines held back since then
}

// allow reports whether a line may be logged now and, if so, how many were
// held back before it.
func (t *throttle) allow() (ok bool, suppressed int64) {
	now := time.Now().UnixNano()
	last := t.last.Load()
	if now-last < int64(time.Second) || !t.last.CompareAndSwap(last, now) {
		t.suppressed.Add(1)
		return false, 0
	}
	return true, t.suppressed.Swap(0)
}
