package memstore

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

// TestValidHitAgreesWithValidateHit checks the inline check of Hit against
// store.ValidateHit over the edges of every bound: whatever it lets through
// must be valid, and the usual rules of each algorithm must take it.
func TestValidHitAgreesWithValidateHit(t *testing.T) {
	keys := []string{"", "k"}
	counts := []int{-1, 0, 1, 2, 5, store.MaxCost - 1, store.MaxCost, store.MaxCost + 1,
		store.MaxLimit, store.MaxLimit + 1, 1_000_000, store.MaxCounterLimit, store.MaxCounterLimit + 1}
	windows := []time.Duration{-time.Second, 0, time.Millisecond - 1, time.Millisecond, time.Millisecond + 1,
		time.Second, store.MaxWindow, store.MaxWindow + 1}
	algorithms := []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA, store.GCRA + 1, 255}
	bursts := []int{-1, 0, 1, 5, store.MaxCounterLimit, store.MaxCounterLimit + 1}
	checked := 0
	for _, key := range keys {
		for _, cost := range counts {
			for _, limit := range counts {
				for _, window := range windows {
					for _, alg := range algorithms {
						for _, burst := range bursts {
							rule := store.Rule{Name: "api", Limit: limit, Window: window, Algorithm: alg, Burst: burst}
							if !validHit(key, &rule, cost) {
								continue
							}
							checked++
							if err := store.ValidateHit(key, rule, cost); err != nil {
								t.Fatalf("validHit(%q, %+v, %d) = true, ValidateHit: %v", key, rule, cost, err)
							}
						}
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("validHit accepted nothing")
	}
	for _, rule := range []store.Rule{
		{Name: "api", Limit: 5, Window: 10 * time.Second},
		{Name: "api", Limit: store.MaxLimit, Window: time.Millisecond},
		{Name: "daily", Limit: 1000, Window: 24 * time.Hour, Algorithm: store.SlidingCounter},
		{Name: "gcra", Limit: 100, Window: time.Minute, Algorithm: store.GCRA},
	} {
		if !validHit("203.0.113.7", &rule, 1) {
			t.Errorf("validHit rejects the usual rule %+v", rule)
		}
	}
}
