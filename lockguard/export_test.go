package lockguard

// OnReleaseRetryDone makes l call f whenever a goroutine retrying a failed
// release (see Lock.Release) ends. Set it before l is used.
func OnReleaseRetryDone(l *Locker, f func()) { l.retryDone = f }

// MaxReleaseRetries exposes the bound on release retry goroutines in flight.
const MaxReleaseRetries = maxReleaseRetries

// ReleaseRetrying returns the release retry goroutines of l in flight.
func ReleaseRetrying(l *Locker) int64 { return l.retrying.Load() }
