package limiter

import (
	"strconv"
	"time"
)

// Observer is told about every decision of the policies and every lock
// event of the guards it is given to (WithObserver here,
// lockguard.WithObserver there), for metrics. Its methods run on the
// request's goroutine, often concurrently, and must return quickly; the
// events are passed by value and hold no request data beyond the policy or
// lock name. sluice's metrics modules implement it for Prometheus and
// OpenTelemetry.
type Observer interface {
	// ObserveDecision is told the outcome of one policy for one request.
	ObserveDecision(DecisionEvent)
	// ObserveLock is told one event of one lock.
	ObserveLock(LockEvent)
}

// Outcome is what a policy did with a request.
type Outcome uint8

const (
	// Allowed: the request was counted and may reach the handler.
	Allowed Outcome = iota + 1
	// Denied: the request was answered 429.
	Denied
	// Skipped: the skip predicate left the request uncounted.
	Skipped
	// StoreError: the store failed; the fail mode decided.
	StoreError
	// BadRequest: the request's key or cost could not be determined (400).
	BadRequest
)

// String returns the outcome as a metric label value: "allowed", "denied",
// "skipped", "store_error" or "bad_request".
func (o Outcome) String() string {
	switch o {
	case Allowed:
		return "allowed"
	case Denied:
		return "denied"
	case Skipped:
		return "skipped"
	case StoreError:
		return "store_error"
	case BadRequest:
		return "bad_request"
	default:
		return "Outcome(" + strconv.Itoa(int(o)) + ")"
	}
}

// DecisionEvent describes one policy's decision on one request.
type DecisionEvent struct {
	// Policy is the policy's name.
	Policy string
	// Outcome is what the policy did.
	Outcome Outcome
	// Cost is the hits the request asked for (0 when skipped or when its
	// cost could not be determined).
	Cost int
	// Latency is the time the store took to decide; 0 when no store call
	// was made (skipped, bad request, or a denial answered from the deny
	// cache).
	Latency time.Duration
	// Cached reports a denial answered from the deny cache, without a store
	// call.
	Cached bool
}

// LockOutcome is one event in the life of a lock.
type LockOutcome uint8

const (
	// LockAcquired: the lock was taken.
	LockAcquired LockOutcome = iota + 1
	// LockConflict: another holder had the lock (a 409 from a guard).
	LockConflict
	// LockReleased: the holder let go of the lock (a release the store
	// refused is reported as LockStoreError too: the store frees the lock
	// by its TTL).
	LockReleased
	// LockLost: the lock expired or was taken over while held (its
	// keep-alive could not extend it).
	LockLost
	// LockStoreError: the store failed on an acquire or a release.
	LockStoreError
)

// String returns the outcome as a metric label value: "acquired",
// "conflict", "released", "lost" or "store_error".
func (o LockOutcome) String() string {
	switch o {
	case LockAcquired:
		return "acquired"
	case LockConflict:
		return "conflict"
	case LockReleased:
		return "released"
	case LockLost:
		return "lost"
	case LockStoreError:
		return "store_error"
	default:
		return "LockOutcome(" + strconv.Itoa(int(o)) + ")"
	}
}

// LockEvent describes one event of one lock.
type LockEvent struct {
	// Name is the guard's name (lockguard.NewGuard), not the
	// lock key, which may carry client data.
	Name string
	// Outcome is what happened.
	Outcome LockOutcome
	// Latency is the time the store call took; 0 for LockLost.
	Latency time.Duration
	// Held is, for LockReleased and LockLost, how long the lock was held.
	Held time.Duration
}
