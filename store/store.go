// Package store defines the storage contract behind sluice's rate limiter and
// locks: rate counting by three algorithms (WindowStore) and token-checked
// locks with fencing tokens (LockStore).
//
// Two implementations ship with sluice: store/memstore keeps everything in the
// process and serves a single instance; store/redisstore runs the same semantics
// as Lua scripts on Redis (standalone, Sentinel or Cluster) so that every
// instance of an application shares one quota and one set of locks. The
// conformance suite in store/storetest checks both against the rules below.
//
// # Rates
//
// Hit records cost hits for a key under a Rule if they fit, and otherwise
// records nothing. The Rule's Algorithm says how hits are counted: the exact
// sliding log (the default: the hits in (now-window, now] plus cost must stay
// within the limit; two hits in the same millisecond are two hits), the
// sliding-window counter, or GCRA; see Algorithm for each one's definition.
// The Result tells whether the hits were recorded, how many remain, when to
// retry and when capacity next grows. HitAll decides several rules together
// (a burst and a daily limit on one route): all of them record, or none.
// Undo removes recorded hits again. For operators, Peek reads a key's state
// without counting a hit and Reset forgets it.
//
// # Locks
//
// Acquire takes a key for a TTL on behalf of a caller-chosen token (SET NX PX
// semantics; the same token acquiring again succeeds and renews the TTL) and
// returns a fencing token that increases on every successful acquire of that key,
// even across expiry of the store's own counter. Release and Extend act only when
// the token still holds the key. For operators, Inspect reports a lock's state
// and last fence, and ForceRelease deletes a lock whoever holds it.
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
	"strconv"
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

// Algorithm selects how a WindowStore counts the hits of a Rule. Every store
// implements every algorithm with the same semantics; the zero value is
// SlidingLog. With limit L, window W, cost c and the store's time t:
type Algorithm uint8

const (
	// SlidingLog is the exact sliding-window log: a hit of cost c is
	// recorded iff the hits in (t-W, t] plus c are at most L. It keeps one
	// entry per hit in the window, so its memory grows with L, and it is
	// bounded by MaxLimit and MaxCost. Remaining is L minus the hits in the
	// window; ResetAfter is the time until the oldest hit leaves the window;
	// RetryAfter is the time until enough old hits have left for c to fit.
	SlidingLog Algorithm = iota

	// SlidingCounter is the sliding-window counter: O(1) memory, and an
	// approximation of the log. Time is cut into fixed windows of length W
	// aligned to multiples of W since the Unix epoch; with prev and curr the
	// counts of the previous and the current fixed window and e = t minus
	// the start of the current one, the weighted count is
	// prev*(W-e)/W + curr, and a hit of cost c is recorded (curr += c) iff
	// the weighted count plus c is at most L. Remaining is
	// L - ceil(weighted count), floored at 0; RetryAfter is the earliest time
	// at which the same request would be recorded if nothing else arrived;
	// ResetAfter is the time until Remaining next grows (0 when the weighted
	// count is 0). Limits and costs are bounded by MaxCounterLimit.
	SlidingCounter

	// GCRA is the generic cell rate algorithm, a token bucket without a
	// timer: capacity B (Rule.Burst, or L when that is 0) refilled at L
	// tokens per W, one token every W/L (at least a microsecond: L may not
	// exceed W in microseconds). A hit of cost c is recorded iff the
	// bucket holds c tokens, and takes them. Remaining is the whole tokens
	// left; ResetAfter is the time until the bucket is full again (0 when
	// it is full); RetryAfter is the time until c tokens are there. GCRA's
	// times are rounded to the nearest microsecond (a token interval need
	// not be a whole number of them). Limits,
	// bursts and costs are bounded by MaxCounterLimit.
	GCRA
)

// String returns the algorithm's name: "sliding-log", "sliding-counter" or
// "gcra".
func (a Algorithm) String() string {
	switch a {
	case SlidingLog:
		return "sliding-log"
	case SlidingCounter:
		return "sliding-counter"
	case GCRA:
		return "gcra"
	default:
		return "Algorithm(" + strconv.Itoa(int(a)) + ")"
	}
}

// Bounds of the sliding-window log. Each hit in the window is one entry of
// the log (a sorted-set member in Redis), and a call writes cost entries and
// may drop a whole window of them, so the bounds keep every call short: on
// Redis the slowest call the bounds allow (a full window leaving at once, or
// a write of MaxCost hits) takes under about 1ms of server time. For larger
// quotas, use SlidingCounter or GCRA, whose memory and time per call do not
// grow with the limit.
const (
	// MaxLimit is the largest Rule.Limit of a SlidingLog: 4096 hits in one
	// window.
	MaxLimit = 4096
	// MaxCost is the largest cost of one SlidingLog Hit: 256 hits.
	MaxCost = 256
)

// MaxCounterLimit bounds the limit, burst and cost of the O(1) algorithms
// (SlidingCounter and GCRA): one billion, so that their arithmetic stays
// exact in the float64 numbers that both stores and Redis's Lua use.
const MaxCounterLimit = 1_000_000_000

// MaxWindow is the longest Rule.Window: 366 days.
const MaxWindow = 366 * 24 * time.Hour

// Rule is a rate: at most Limit hits in any Window, counted by Algorithm.
type Rule struct {
	// Name is the namespace of the rule's keys, such as a policy's name:
	// the same key under two names is two windows. Any string will do,
	// including "", a namespace of its own; stores hash it with the key, so
	// a caller never joins the two. Receipts carry it back to Undo.
	Name string
	// Limit is the number of hits allowed in one window; it must be positive
	// and at most MaxLimit for SlidingLog, MaxCounterLimit otherwise.
	Limit int
	// Window is the length of the window; it must be at least one
	// millisecond and at most MaxWindow.
	Window time.Duration
	// Algorithm is how hits are counted; the zero value is SlidingLog. The
	// same key and Name under two algorithms are two independent states.
	Algorithm Algorithm
	// Burst is GCRA's bucket capacity; 0 means Limit. It must be 0 for the
	// other algorithms, and at most MaxCounterLimit.
	Burst int
}

// Capacity returns the most hits one call may take under r: the burst of a
// GCRA rule, otherwise the limit.
func (r Rule) Capacity() int {
	if r.Algorithm == GCRA && r.Burst > 0 {
		return r.Burst
	}
	return r.Limit
}

// Validate reports whether r is usable, wrapping ErrInvalidArgument if not.
func (r Rule) Validate() error {
	if r.Limit <= 0 {
		return fmt.Errorf("%w: limit %d must be positive", ErrInvalidArgument, r.Limit)
	}
	if r.Window < time.Millisecond {
		return fmt.Errorf("%w: window %v must be at least 1ms", ErrInvalidArgument, r.Window)
	}
	if r.Window > MaxWindow {
		return fmt.Errorf("%w: window %v exceeds MaxWindow (%v)", ErrInvalidArgument, r.Window, MaxWindow)
	}
	switch r.Algorithm {
	case SlidingLog:
		if r.Limit > MaxLimit {
			return fmt.Errorf("%w: limit %d exceeds the sliding log's bound of %d hits per window (use SlidingCounter or GCRA for larger quotas)", ErrInvalidArgument, r.Limit, MaxLimit)
		}
	case SlidingCounter, GCRA:
		if r.Limit > MaxCounterLimit {
			return fmt.Errorf("%w: limit %d exceeds MaxCounterLimit (%d)", ErrInvalidArgument, r.Limit, MaxCounterLimit)
		}
	default:
		return fmt.Errorf("%w: unknown algorithm %v", ErrInvalidArgument, r.Algorithm)
	}
	if r.Burst < 0 || r.Burst > MaxCounterLimit {
		return fmt.Errorf("%w: burst %d must be between 0 and %d", ErrInvalidArgument, r.Burst, MaxCounterLimit)
	}
	if r.Algorithm == GCRA && int64(r.Window/time.Microsecond) < int64(r.Limit) {
		return fmt.Errorf("%w: GCRA refills at most one token per microsecond: limit %d over %v", ErrInvalidArgument, r.Limit, r.Window)
	}
	if r.Burst != 0 && r.Algorithm != GCRA {
		return fmt.Errorf("%w: burst %d is only for GCRA, not %v", ErrInvalidArgument, r.Burst, r.Algorithm)
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
	if c := rule.Capacity(); cost > c {
		return fmt.Errorf("%w: cost %d exceeds capacity %d", ErrInvalidArgument, cost, c)
	}
	if rule.Algorithm == SlidingLog && cost > MaxCost {
		return fmt.Errorf("%w: cost %d exceeds the sliding log's bound of %d hits per call", ErrInvalidArgument, cost, MaxCost)
	}
	return nil
}

// MaxStack is the most parts one WindowStore.HitAll decides.
const MaxStack = 16

// ValidateStack checks the arguments of WindowStore.HitAll, wrapping
// ErrInvalidArgument if they are unusable: an empty stack or one of more
// than MaxStack parts, len(out) != len(hits), a part that ValidateHit
// rejects, or two parts with the same Key, Rule.Name and Rule.Algorithm.
// Stores call it before doing any work.
func ValidateStack(hits []Hit, out []Result) error {
	switch {
	case len(hits) == 0:
		return fmt.Errorf("%w: empty stack", ErrInvalidArgument)
	case len(hits) > MaxStack:
		return fmt.Errorf("%w: %d parts in one stack, at most %d", ErrInvalidArgument, len(hits), MaxStack)
	case len(out) != len(hits):
		return fmt.Errorf("%w: %d results for %d parts", ErrInvalidArgument, len(out), len(hits))
	}
	for i, h := range hits {
		if err := ValidateHit(h.Key, h.Rule, h.Cost); err != nil {
			return fmt.Errorf("stack part %d: %w", i, err)
		}
		for j, o := range hits[:i] {
			if o.Key == h.Key && o.Rule.Name == h.Rule.Name && o.Rule.Algorithm == h.Rule.Algorithm {
				return fmt.Errorf("%w: stack parts %d and %d share key, rule name and algorithm", ErrInvalidArgument, j, i)
			}
		}
	}
	return nil
}

// ValidateUndo checks the arguments of WindowStore.Undo, wrapping
// ErrInvalidArgument if they are unusable: an empty key; a receipt that is
// not zero (see Receipt.IsZero) without both an ID and a positive Cost; or,
// for an algorithm other than SlidingLog (whose undo needs only the ID), a
// receipt whose Rule is not valid. A zero receipt is valid, and Undo does
// nothing for it. Stores call it before doing any work.
func ValidateUndo(key string, receipt Receipt) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidArgument)
	}
	if receipt.IsZero() {
		return nil
	}
	if receipt.ID == 0 || receipt.Cost <= 0 {
		return fmt.Errorf("%w: receipt %+v", ErrInvalidArgument, receipt)
	}
	if receipt.Rule.Algorithm != SlidingLog {
		if err := receipt.Rule.Validate(); err != nil {
			return fmt.Errorf("receipt: %w", err)
		}
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
	// ID identifies the call's hits to the store that recorded them: unique
	// among the SlidingLog hits of one store value, and store-defined for
	// the other algorithms (which need not tell calls apart).
	ID uint64
	// Cost is the number of hits recorded.
	Cost int
	// Rule is the rule the hits were recorded under.
	Rule Rule
}

// IsZero reports whether r identifies nothing: its ID and Cost are zero.
func (r Receipt) IsZero() bool { return r.ID == 0 && r.Cost == 0 }

// Result is the outcome of WindowStore.Hit. What Remaining, RetryAfter and
// ResetAfter mean for each algorithm is set out at Algorithm.
type Result struct {
	// Allowed reports whether the hits were recorded.
	Allowed bool
	// Limit is the rule's limit.
	Limit int
	// Remaining is how many more hits the rule takes right now, after this
	// call. It is never negative.
	Remaining int
	// RetryAfter is, when denied, the time until the requested cost would
	// fit. It is 0 when allowed.
	RetryAfter time.Duration
	// ResetAfter is the time until Remaining next grows (the time until the
	// bucket is full, for GCRA); 0 when nothing is counted.
	ResetAfter time.Duration
	// Receipt identifies what was recorded, for Undo; zero when denied.
	Receipt Receipt
}

// Hit is one rule's part of a stacked decision: HitAll records cost hits for
// Key under Rule.
type Hit struct {
	Key  string
	Rule Rule
	Cost int
}

// WindowStore counts hits per key and rule.
type WindowStore interface {
	// Hit records cost hits for key under rule if they fit, and reports the
	// outcome. Bad input is an error wrapping ErrInvalidArgument; a denial
	// is not an error.
	Hit(ctx context.Context, key string, rule Rule, cost int) (Result, error)
	// HitAll decides a stack of rules together: it records every hit of
	// hits if each fits under its rule, and none of them otherwise. out
	// must have len(hits) elements and receives each rule's outcome: when
	// the stack is admitted every Result is Allowed with a receipt; when it
	// is denied none is Allowed, no Result carries a receipt, each
	// Remaining, ResetAfter and Limit is the rule's state as it stands
	// without this call, and RetryAfter is set on the Results of the rules
	// that did not fit (0 on the others). Bad input in any element is an
	// error wrapping ErrInvalidArgument, and records nothing.
	//
	// Hits whose keys the store keeps together are decided atomically;
	// where it cannot (Redis Cluster keys in different slots), the store
	// records what fits and undoes it before returning when another part
	// was denied, so that a denied stack is counted nowhere once HitAll has
	// returned.
	HitAll(ctx context.Context, hits []Hit, out []Result) error
	// Undo removes the hits that receipt identifies from key's state under
	// receipt.Rule. Hits that already left the window, or a zero receipt
	// (see Receipt.IsZero), are not an error; a receipt with a negative
	// Cost, or with exactly one of ID and Cost zero, is an error wrapping
	// ErrInvalidArgument.
	Undo(ctx context.Context, key string, receipt Receipt) error
	// Peek reports the state of key under rule and records nothing: the
	// Result a Hit of cost 1 would give, without the hit. Allowed
	// reports whether a hit of cost 1 would be recorded now. Remaining is
	// how many hits the rule takes now, not reduced by the hit not made:
	// when a hit of cost 1 fits, one more than that Hit would report.
	// ResetAfter is the state's as it stands. RetryAfter is, when a hit of
	// cost 1 does not fit, the time until it would; 0 otherwise. The
	// Receipt is zero. So a Hit of cost 1 at the same time, with nothing
	// in between, is allowed exactly when Peek reports Allowed, and then
	// reports Remaining one less; denied, it reports what Peek did. Bad
	// input, as for a Hit of cost 1, is an error wrapping
	// ErrInvalidArgument.
	Peek(ctx context.Context, key string, rule Rule) (Result, error)
	// Reset forgets key's state under rule's Name and Algorithm (its other
	// fields need only be valid), so that the next Hit finds the key as
	// if it had never been hit. Resetting a key that has no state is not
	// an error. Undo of a receipt issued before the Reset is not an error
	// either; under SlidingCounter and GCRA, which do not tell calls
	// apart, it may give back hits recorded since, never leaving more
	// room than a fresh key has. Bad input, as for a Hit of cost 1, is an
	// error wrapping ErrInvalidArgument.
	Reset(ctx context.Context, key string, rule Rule) error
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

// LockInfo is the state of a lock as LockStore.Inspect reports it, for
// operators. It never carries the holder's token.
type LockInfo struct {
	// Held reports whether some token holds the lock now.
	Held bool
	// TTL is, when Held, the lock's remaining time to live; 0 otherwise.
	TTL time.Duration
	// Fence is the last fencing token issued for the key, whether the lock
	// is held or not; 0 when the store remembers none (the key was never
	// acquired, or its fence counter expired).
	Fence int64
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
	// Inspect reports whether key's lock is held, for how long, and the
	// last fence issued for key, whoever holds it; it changes nothing. An
	// empty key is an error wrapping ErrInvalidArgument.
	Inspect(ctx context.Context, key string) (LockInfo, error)
	// ForceRelease deletes key's lock whoever holds it, for an operator
	// freeing a resource whose holder is stuck. It is dangerous: the
	// holder is not told and keeps running, believing it holds the lock,
	// until its next Extend or Release finds it gone (ErrNotHeld), and a
	// new owner may acquire the key meanwhile; only fencing protects the
	// resource then. The fence counter is kept, so the next acquire's fence
	// is above every fence issued before. A lock that is not held is not an
	// error. An empty key is an error wrapping ErrInvalidArgument.
	ForceRelease(ctx context.Context, key string) error
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
