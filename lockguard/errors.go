package lockguard

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Functions wrap them with details, so test with errors.Is.
var (
	// ErrHeld reports that another owner holds the lock. The error is a
	// *HeldError, which carries the holder's remaining TTL.
	ErrHeld = errors.New("lockguard: lock held by another owner")

	// ErrNotHeld reports that a lock is no longer held by its token: it
	// expired, was released, or was taken over after expiring.
	ErrNotHeld = errors.New("lockguard: lock not held")

	// ErrLockLost is the cause with which a keep-alive cancels the work's
	// context when the lock is gone or could not be extended before its TTL
	// lapsed.
	ErrLockLost = errors.New("lockguard: lock lost")

	// ErrMaxHoldExceeded is the cause with which a keep-alive cancels the
	// work's context when the Locker's maximum hold time has passed.
	ErrMaxHoldExceeded = errors.New("lockguard: maximum hold time exceeded")

	// ErrStore reports a failure of the store (an unreachable or slow Redis,
	// a closed store). It wraps the store's own error.
	ErrStore = errors.New("lockguard: store failure")

	// ErrInvalidConfig reports a Locker or Guard that cannot be built: a nil
	// store, locker or key function, an empty guard name, or an option out of
	// range.
	ErrInvalidConfig = errors.New("lockguard: invalid configuration")
)

// HeldError reports that a lock could not be obtained because another owner
// holds it. errors.Is(err, ErrHeld) is true for it.
type HeldError struct {
	// Key is the lock's key.
	Key string
	// TTL is the holder's remaining time to live as reported by the last
	// attempt.
	TTL time.Duration
	// Attempts is the number of acquire attempts made.
	Attempts int
}

// Error describes the error.
func (e *HeldError) Error() string {
	return fmt.Sprintf("lockguard: lock %q held by another owner (remaining ttl %v, %d attempts)", e.Key, e.TTL, e.Attempts)
}

// Is reports whether target is ErrHeld.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }
