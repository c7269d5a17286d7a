// Package logthrottle lets one log line of a kind through per second, for
// the failure logs of sluice's cores: an outage or a flood of bad requests
// must not flood the log.
package logthrottle

import (
	"sync/atomic"
	"time"
)

// Throttle lets one line through per second and counts the ones it holds
// back. The zero value is ready to use; a Throttle is safe for concurrent
// use.
type Throttle struct {
	last       atomic.Int64 // UnixNano of the last line let through
	suppressed atomic.Int64 // lines held back since then
}

// Allow reports whether a line may be logged now and, if so, how many were
// held back before it.
func (t *Throttle) Allow() (ok bool, suppressed int64) {
	now := time.Now().UnixNano()
	last := t.last.Load()
	if now-last < int64(time.Second) || !t.last.CompareAndSwap(last, now) {
		t.suppressed.Add(1)
		return false, 0
	}
	return true, t.suppressed.Swap(0)
}
