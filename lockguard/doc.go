// Package lockguard provides distributed locks with fencing tokens over a
// store.LockStore, and an HTTP guard that lets one request at a time work on a
// resource.
//
// # Locks
//
// A Locker obtains locks from a store (store/memstore for one process,
// store/redisstore for every instance of an application sharing one Redis):
//
//	locker, err := lockguard.New(st)
//	lock, err := locker.Obtain(ctx, "report:daily", 30*time.Second)
//	if errors.Is(err, lockguard.ErrHeld) {
//		// someone else is working on it
//	}
//	defer lock.Release(ctx)
//
// Obtain tries once by default; with a RetryStrategy (LinearBackoff,
// ExponentialBackoff, LimitTries) or WaitFor it waits until the lock is free,
// the strategy gives up, or the deadline passes. Every Lock carries its key, a
// random token from crypto/rand and a fencing token (Fence) that increases on
// every successful acquisition of the key.
//
// Work that may outlive the TTL runs under a keep-alive: Lock.KeepAlive or
// Locker.Do extend the lock at about a third of its TTL, cancel the work's
// context with cause ErrLockLost if the lock is lost, and with cause
// ErrMaxHoldExceeded once the Locker's maximum hold time has passed.
//
// Errors tell apart a lock held by another owner (ErrHeld, as a *HeldError
// carrying the holder's remaining TTL), a lock no longer held (ErrNotHeld), an
// ended context (wrapping ctx.Err()) and a store failure (ErrStore wrapping the
// store's error). Every store call has a deadline (WithStoreTimeout, 1s by
// default), so a hung Redis fails a call instead of holding it. Release runs
// on a context detached from the caller's, with a short timeout, so that a
// cancelled request still frees the resource; a release that a stalled store
// did not answer is retried in the background while the lock's TTL lasts.
//
// # Guard
//
// A Guard is the HTTP policy around a handler, framework-neutral and working on
// net/http types; the adapters in adapters/httpmw, adapters/echomw and
// adapters/ginmw turn it into middleware. It speaks the limiter's vocabulary: a
// limiter.KeyFunc picks the resource from the request (limiter.PathValueKey
// reads a route parameter), and limiter.FailClosed (the default) or
// limiter.FailOpen says what a store failure does. A Guard has a name, like a
// limiter.Policy, and locks the name, a colon and the resource's key. While
// one request holds the resource, another for the same resource gets 409
// Conflict with Retry-After (the holder's remaining TTL in whole seconds, at
// least 1) and a JSON body {"error":"resource is locked","retry_after":N};
// requests for other resources run in parallel. The handler finds the lock
// with FromContext; the lock is kept alive while the handler runs, the
// handler's context is cancelled if it is lost, and it is released when the
// handler returns or panics. A store failure answers 503 unless the Guard
// fails open.
//
// lockguard imports package limiter for these types; limiter never imports
// lockguard.
//
// # What a lock does not promise
//
// A lock expires after its TTL even if its holder is still working (a paused
// process, a partition); Redis replication is asynchronous, so a failover can
// lose a lock that was just granted. Protect writes with the fencing token: the
// downstream system remembers the highest fence it has seen and rejects writes
// carrying a lower one. docs/locks.md explains the pattern.
package lockguard
