// Package store defines the storage contract behind sluice's rate limiter and
// locks: a sliding-window log (WindowStore) and token-checked locks with fencing
// tokens (LockStore).
//
// Two implementations ship with sluice: store/memstore keeps everything in the
// process and serves a single instance; store/redisstore runs the same semantics
// as Lua scripts on Redis (standalone, Sentinel or Cluster) so that every
// instance of an application shares one quota and one set of locks. The
// conformance suite in store/storetest checks both against the rules below.
//
// # Sliding window
//
// Hit records cost hits for a key at the store's current time if the number of
// hits in the window (now-window, now] plus cost stays within the limit; otherwise
// it records nothing. Two hits in the same millisecond are two hits. The Result
// tells whether the hits were recorded, how many remain, when to retry and when
// the window next frees capacity. Undo removes recorded hits again.
//
// # Locks
//
// Acquire takes a key for a TTL on behalf of a caller-chosen token (SET NX PX
// semantics; the same token acquiring again succeeds and renews the TTL) and
// returns a fencing token that increases on every successful acquire of that key,
// even across expiry of the store's own counter. Release and Extend act only when
// the token still holds the key.
//
// # Keys
//
// Keys are arbitrary strings chosen by the caller and may carry user-controlled
// data. Implementations never store a key's bytes verbatim where that could grow
// memory with the key's length (redisstore hashes it, memstore keeps a 64-bit
// digest), and every key written carries an expiry.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors shared by every store. Implementations wrap them with %w and
// details, so test with errors.Is.
var (
	// ErrInvalidArgument reports bad input: an empty key or token, a limit,
	// window, cost or TTL that is not positive, a cost above the limit, or a
	// limit or cost above MaxLimit or MaxCost.
	ErrInvalidArgument = errors.New("store: invalid argument")

	// ErrNotHeld reports that a lock is not (or no longer) held by the given
	// token: it expired, was released, or another token holds it now.
	ErrNotHeld = errors.New("store: lock not held")

	// ErrClosed reports a call on a store that has been closed.
	ErrClosed = errors.New("store: closed")
)

// Bounds of the sliding-window log. Each hit in the window is one entry of
// the log (a sorted-set member in Redis), and a call writes cost entries and
// may drop a whole window of them, so the bounds keep every call short: on
// Redis the slowest call the bounds allow (a full window leaving at once, or
// a write of MaxCost hits) takes under about 1ms of server time. For larger
// quotas, split them over a shorter window (100 per minute rather than
// 144,000 per day) or stack a short and a long policy.
const (
	// MaxLimit is the largest Rule.Limit: 4096 hits in one window.
	MaxLimit = 4096
	// MaxCost is the largest cost of one Hit: 256 hits.
	MaxCost = 256
)

// Rule is a sliding-window rate: at most Limit hits in any Window.
type Rule struct {
	// Name is the namespace of the rule's keys, such as a policy's name:
	// the same key under two names is two windows. Any string will do,
	// including "", a namespace of its own; stores hash it with the key, so
	// a caller never joins the two. Receipts carry it back to Undo.
	Name string
	// Limit is the number of hits allowed in one window; it must be positive
	// and at most MaxLimit.
	Limit int
	// Window is the length of the sliding window; it must be at least one
	// millisecond.
	Window time.Duration
}

// Validate reports whether r is usable, wrapping ErrInvalidArgument if not.
func (r Rule) Validate() error {
	if r.Limit <= 0 {
		return fmt.Errorf("%w: limit %d must be positive", ErrInvalidArgument, r.Limit)
	}
	if r.Limit > MaxLimit {
		return fmt.Errorf("%w: limit %d exceeds the sliding log's bound of %d hits per window (use a shorter window with a smaller limit)", ErrInvalidArgument, r.Limit, MaxLimit)
	}
	if r.Window < time.Millisecond {
		return fmt.Errorf("%w: window %v must be at least 1ms", ErrInvalidArgument, r.Window)
	}
	return nil
}

// ValidateHit checks the arguments of WindowStore.Hit, wrapping
// ErrInvalidArgument if they are unusable. Stores call it before doing any work.
func ValidateHit(key string, rule Rule, cost int) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidArgument)
	}
	if err := rule.Validate(); err != nil {
		return err
	}
	if cost <= 0 {
		return fmt.Errorf("%w: cost %d must be positive", ErrInvalidArgument, cost)
	}
	if cost > rule.Limit {
		return fmt.Errorf("%w: cost %d exceeds limit %d", ErrInvalidArgument, cost, rule.Limit)
	}
	if cost > MaxCost {
		return fmt.Errorf("%w: cost %d exceeds the sliding log's bound of %d hits per call", ErrInvalidArgument, cost, MaxCost)
	}
	return nil
}

// ValidateLock checks the key, token and TTL of a lock call, wrapping
// ErrInvalidArgument if they are unusable. With needTTL false the TTL is not
// checked (for calls that take none).
func ValidateLock(key, token string, ttl time.Duration, needTTL bool) error {
	if key == "" {
		return fmt.Errorf("%w: empty lock key", ErrInvalidArgument)
	}
	if token == "" {
		return fmt.Errorf("%w: empty lock token", ErrInvalidArgument)
	}
	if needTTL && ttl < time.Millisecond {
		return fmt.Errorf("%w: lock ttl %v must be at least 1ms", ErrInvalidArgument, ttl)
	}
	return nil
}

// Receipt identifies the hits recorded by one successful Hit, so that they can
// be removed with Undo. A Receipt with zero ID and Cost identifies nothing and
// Undo ignores it.
type Receipt struct {
	// ID is unique among the hits recorded through one store value.
	ID uint64
	// Cost is the number of hits recorded.
	Cost int
	// Name is the Rule.Name the hits were recorded under.
	Name string
}

// IsZero reports whether r identifies nothing: its ID and Cost are zero.
func (r Receipt) IsZero() bool { return r.ID == 0 && r.Cost == 0 }

// Result is the outcome of WindowStore.Hit.
type Result struct {
	// Allowed reports whether the hits were recorded.
	Allowed bool
	// Limit is the rule's limit.
	Limit int
	// Remaining is how many more hits the window takes right now, after this
	// call: Limit minus the hits in the window. It is never negative.
	Remaining int
	// RetryAfter is, when denied, the time until enough old hits have left the
	// window for the requested cost to fit. It is 0 when allowed.
	RetryAfter time.Duration
	// ResetAfter is the time until the oldest hit in the window leaves it, that
	// is, until Remaining next grows. It is 0 for an empty window.
	ResetAfter time.Duration
	// Receipt identifies what was recorded, for Undo; zero when denied.
	Receipt Receipt
}

// WindowStore is a sliding-window log of hits per key.
type WindowStore interface {
	// Hit records cost hits for key under rule if they fit in the window, and
	// reports the outcome. Bad input is an error wrapping ErrInvalidArgument;
	// a denial is not an error.
	Hit(ctx context.Context, key string, rule Rule, cost int) (Result, error)
	// Undo removes the hits that receipt identifies from the window of key
	// under receipt.Name. Hits that already left the window, or a zero
	// receipt (see Receipt.IsZero), are not an error; a receipt with a
	// negative Cost, or with exactly one of ID and Cost zero, is an error
	// wrapping ErrInvalidArgument.
	Undo(ctx context.Context, key string, receipt Receipt) error
}

// LockResult is the outcome of LockStore.Acquire.
type LockResult struct {
	// Acquired reports whether the caller's token now holds the lock.
	Acquired bool
	// Fence is the fencing token of this acquisition when Acquired: it is
	// greater than every fence issued for the key before.
	Fence int64
	// HolderTTL is, when not Acquired, the remaining time to live of the
	// current holder's lock.
	HolderTTL time.Duration
}

// LockStore holds token-checked locks with fencing tokens.
type LockStore interface {
	// Acquire takes key for ttl on behalf of token if the key is free or
	// already held by the same token (then the TTL is renewed and a new fence
	// issued). Held by another token is not an error: Acquired is false and
	// HolderTTL says how long the holder has left.
	Acquire(ctx context.Context, key, token string, ttl time.Duration) (LockResult, error)
	// Release frees key if token holds it; otherwise it returns ErrNotHeld.
	Release(ctx context.Context, key, token string) error
	// Extend sets key's remaining TTL to ttl if token holds it; otherwise it
	// returns ErrNotHeld and does not re-create the key.
	Extend(ctx context.Context, key, token string, ttl time.Duration) error
	// TTL returns the remaining time to live of key's lock if token holds it;
	// otherwise it returns ErrNotHeld.
	TTL(ctx context.Context, key, token string) (time.Duration, error)
}

// Store is both a WindowStore and a LockStore.
type Store interface {
	WindowStore
	LockStore
}

// InProcess is implemented by stores that answer from process memory without
// I/O, such as store/memstore. Callers may skip per-call deadlines for them,
// which would cost a timer and protect against nothing. A store that does not
// implement it is assumed to do I/O.
type InProcess interface {
	// InProcess reports whether every call is answered without I/O.
	InProcess() bool
}
