package memstore_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// backend makes memstores for the conformance suite; locks expire by the
// suite's clock, so Elapse stays nil.
func backend(opts ...memstore.Option) storetest.Backend {
	return storetest.Backend{
		New: func(t *testing.T, now func() time.Time) store.Store {
			o := append([]memstore.Option{}, opts...)
			if now != nil {
				o = append(o, memstore.WithClock(now))
			}
			s, err := memstore.New(o...)
			if err != nil {
				t.Fatalf("memstore.New: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, backend())
}

// TestConformanceSmall runs the suite on a store small enough that keys are
// swept and evicted under pressure while it runs.
func TestConformanceSmall(t *testing.T) {
	storetest.Run(t, backend(memstore.WithMaxKeys(64), memstore.WithSweepInterval(0)))
}

// TestConformanceShortFenceTTL runs the suite with a fence TTL shorter than
// the lead a burst of acquires builds over the frozen clock.
func TestConformanceShortFenceTTL(t *testing.T) {
	b := backend(memstore.WithFenceTTL(time.Millisecond))
	b.FenceTTL = time.Millisecond
	storetest.Run(t, b)
}
