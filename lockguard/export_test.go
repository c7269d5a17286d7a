package lockguard

// OnReleaseRetryDone makes l call f whenever a goroutine retrying a failed
// release (see Lock.Release) ends. Set it before l is used.
func OnReleaseRetryDone(l *Locker, f func()) { l.retryDone = f }
