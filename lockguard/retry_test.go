package lockguard_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sluicehq/sluice/lockguard"
)

func TestRetryStrategies(t *testing.T) {
	ms := time.Millisecond
	type step struct {
		failed   int
		min, max time.Duration // the wait must lie in [min, max]
		retry    bool
	}
	cases := []struct {
		name  string
		s     lockguard.RetryStrategy
		steps []step
	}{
		{"no-retry", lockguard.NoRetry(), []step{{1, 0, 0, false}}},
		{"linear", lockguard.LinearBackoff(10*ms, 35*ms), []step{
			{1, 5 * ms, 10 * ms, true}, {2, 10 * ms, 20 * ms, true}, {3, 15 * ms, 30 * ms, true},
			{4, 35 * ms / 2, 35 * ms, true}, {1000, 35 * ms / 2, 35 * ms, true}, {math.MaxInt, 35 * ms / 2, 35 * ms, true},
		}},
		{"linear-constant", lockguard.LinearBackoff(25*ms, 25*ms), []step{
			{1, 25 * ms / 2, 25 * ms, true}, {9, 25 * ms / 2, 25 * ms, true},
		}},
		{"linear-floors", lockguard.LinearBackoff(0, -1), []step{{1, ms / 2, ms, true}, {5, ms / 2, ms, true}}},
		{"linear-no-overflow", lockguard.LinearBackoff(ms, math.MaxInt64), []step{
			{math.MaxInt, math.MaxInt64 / 2, math.MaxInt64, true},
		}},
		{"exponential", lockguard.ExponentialBackoff(10*ms, 80*ms), []step{
			{1, 5 * ms, 10 * ms, true}, {2, 10 * ms, 20 * ms, true}, {3, 20 * ms, 40 * ms, true},
			{4, 40 * ms, 80 * ms, true}, {5, 40 * ms, 80 * ms, true}, {10000, 40 * ms, 80 * ms, true},
		}},
		{"exponential-no-overflow", lockguard.ExponentialBackoff(ms, math.MaxInt64), []step{
			{100, math.MaxInt64 / 2, math.MaxInt64, true},
		}},
		{"default", lockguard.DefaultBackoff(), []step{{1, 5 * ms, 10 * ms, true}, {100, 250 * ms, 500 * ms, true}}},
		{"limit-tries", lockguard.LimitTries(lockguard.LinearBackoff(ms, ms), 3), []step{
			{1, ms / 2, ms, true}, {2, ms / 2, ms, true}, {3, 0, 0, false},
		}},
		{"limit-tries-floor", lockguard.LimitTries(lockguard.LinearBackoff(ms, ms), 0), []step{{1, 0, 0, false}}},
		{"limit-tries-nil", lockguard.LimitTries(nil, 5), []step{{1, 0, 0, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, st := range tc.steps {
				for range 20 { // jitter: try several draws
					wait, retry := tc.s.Backoff(st.failed)
					assert.Equal(t, st.retry, retry, "failed=%d", st.failed)
					if retry {
						assert.GreaterOrEqual(t, wait, st.min, "failed=%d", st.failed)
						assert.LessOrEqual(t, wait, st.max, "failed=%d", st.failed)
					}
				}
			}
		})
	}
}

// Competing waiters do not retry in lockstep: each wait is drawn anew.
func TestBackoffJitters(t *testing.T) {
	cases := []struct {
		name string
		s    lockguard.RetryStrategy
	}{
		{"linear", lockguard.LinearBackoff(time.Second, time.Second)},
		{"exponential", lockguard.ExponentialBackoff(time.Second, time.Second)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 50 {
				w, _ := tc.s.Backoff(1)
				seen[w] = true
			}
			assert.Greater(t, len(seen), 1, "waits of competing callers spread out")
		})
	}
}
