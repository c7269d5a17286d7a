package lockguard

import (
	"math/rand/v2"
	"time"
)

// RetryStrategy decides whether and how long Obtain waits before trying again
// after the lock was held by another owner. Implementations keep no state
// between calls, so one strategy can serve any number of concurrent Obtain
// calls.
type RetryStrategy interface {
	// Backoff returns the wait before the next attempt after failed attempts
	// so far (1 after the first attempt), and false to give up.
	Backoff(failed int) (wait time.Duration, retry bool)
}

// NoRetry returns a strategy that never retries: Obtain tries once.
func NoRetry() RetryStrategy { return noRetry{} }

type noRetry struct{}

func (noRetry) Backoff(int) (time.Duration, bool) { return 0, false }

// DefaultBackoff returns the strategy that WaitFor uses when no other strategy
// is set: ExponentialBackoff(10*time.Millisecond, 500*time.Millisecond).
func DefaultBackoff() RetryStrategy {
	return ExponentialBackoff(10*time.Millisecond, 500*time.Millisecond)
}

// LinearBackoff returns a strategy whose wait grows by step after every
// failed attempt: step after the first, 2*step after the second and so on,
// never more than max. Like ExponentialBackoff it jitters: each wait is
// drawn uniformly from the upper half of its nominal value (from step/2 to
// step after the first attempt), so that competing waiters do not retry in
// lockstep. A step below one millisecond counts as one millisecond; a max
// below step counts as step, so LinearBackoff(d, d) retries every d/2 to d.
func LinearBackoff(step, max time.Duration) RetryStrategy {
	step = max2(step, time.Millisecond)
	return linear{step: step, max: max2(max, step)}
}

type linear struct{ step, max time.Duration }

func (s linear) Backoff(failed int) (time.Duration, bool) {
	n := time.Duration(max(failed, 1))
	d := s.max
	if n <= s.max/s.step {
		d = n * s.step
	}
	return jitter(d), true
}

// ExponentialBackoff returns a strategy whose wait doubles after every failed
// attempt, from min up to max, with jitter: each wait is drawn uniformly from
// the upper half of its nominal value, so that competing waiters spread out.
// A min below one millisecond counts as one millisecond; a max below min
// counts as min.
func ExponentialBackoff(min, max time.Duration) RetryStrategy {
	min = max2(min, time.Millisecond)
	return exponential{min: min, max: max2(max, min)}
}

type exponential struct{ min, max time.Duration }

func (s exponential) Backoff(failed int) (time.Duration, bool) {
	d := s.min
	for i := 1; i < failed && d < s.max; i++ {
		if d > s.max/2 {
			d = s.max
			break
		}
		d *= 2
	}
	return jitter(min(d, s.max)), true
}

// jitter draws a wait uniformly from the upper half of d: [d-d/2, d].
func jitter(d time.Duration) time.Duration {
	half := d / 2
	return d - half + rand.N(half+1)
}

// LimitTries returns a strategy that follows s but gives up after n attempts
// in all, the first one included. An n below 1 counts as 1 (no retry).
func LimitTries(s RetryStrategy, n int) RetryStrategy {
	return limited{s: s, n: max(n, 1)}
}

type limited struct {
	s RetryStrategy
	n int
}

func (s limited) Backoff(failed int) (time.Duration, bool) {
	if failed >= s.n || s.s == nil {
		return 0, false
	}
	return s.s.Backoff(failed)
}

func max2(d, floor time.Duration) time.Duration {
	if d < floor {
		return floor
	}
	return d
}
