package memstore

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSweepKeepsCounterAheadOfClock lets a burst of acquires run a fence
// counter ahead of the clock, expires the counter, and sweeps: the sweep must
// keep the counter while its last fence is ahead of the clock, so that the
// next fence is still above it, and drop it once the clock has passed it.
func TestSweepKeepsCounterAheadOfClock(t *testing.T) {
	const burst = 5000 // fences run 5ms ahead of the frozen clock
	var nanos atomic.Int64
	nanos.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	s, err := New(
		WithClock(func() time.Time { return time.Unix(0, nanos.Load()) }),
		WithFenceTTL(time.Millisecond),
		WithSweepInterval(0),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	var last int64
	for range burst {
		res, err := s.Acquire(ctx, "lock", "A", time.Hour)
		if err != nil || !res.Acquired {
			t.Fatalf("Acquire: %+v, %v", res, err)
		}
		last = res.Fence
		if err := s.Release(ctx, "lock", "A"); err != nil {
			t.Fatal(err)
		}
	}
	nanos.Add(int64(2 * time.Millisecond)) // counter expired, still ahead of the clock
	s.sweep()
	if n := s.Len(); n != 1 {
		t.Errorf("Len after a sweep = %d, want 1: the counter is still ahead of the clock", n)
	}
	res, err := s.Acquire(ctx, "lock", "B", time.Hour)
	if err != nil || !res.Acquired {
		t.Fatalf("Acquire after the sweep: %+v, %v", res, err)
	}
	if res.Fence <= last {
		t.Errorf("fence after the sweep = %d, want above the burst's last %d", res.Fence, last)
	}
	last = res.Fence
	if err := s.Release(ctx, "lock", "B"); err != nil {
		t.Fatal(err)
	}

	// Once the clock has passed the last fence and the counter's TTL, the
	// sweep drops it; the next fence, at least the clock, still increases.
	nanos.Add(int64(time.Duration(last-nanos.Load()/1e3+1)*time.Microsecond + 2*time.Millisecond))
	s.sweep()
	if n := s.Len(); n != 0 {
		t.Errorf("Len after the clock passed the counter = %d, want 0", n)
	}
	res, err = s.Acquire(ctx, "lock", "C", time.Hour)
	if err != nil || !res.Acquired || res.Fence <= last {
		t.Errorf("Acquire after the counter was dropped: %+v, %v; want a fence above %d", res, err, last)
	}
}

// TestFencesUnderPressure has several goroutines take and release one key on
// the real clock while others flood its shard with locks, and a fence TTL of
// 1ms, so the key's counter is dropped again and again: each holder checks,
// while it holds the lock, that its fence is above every fence seen before.
func TestFencesUnderPressure(t *testing.T) {
	const (
		holders  = 6
		acquires = 2000 // per holder
		flooders = 2
	)
	s, err := New(WithMaxKeys(64), WithMaxLocks(64), WithFenceTTL(time.Millisecond), WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	var (
		highest     int64 // guarded by the lock under test
		regressions atomic.Int64
		stop        = make(chan struct{})
		flood       sync.WaitGroup
		wg          sync.WaitGroup
	)
	for f := range flooders {
		flood.Add(1)
		go func() {
			defer flood.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := "flood-" + strconv.Itoa(f) + "-" + strconv.Itoa(i)
				if res, err := s.Acquire(ctx, key, "F", time.Microsecond); err == nil && res.Acquired {
					_ = s.Release(ctx, key, "F")
				}
			}
		}()
	}
	for h := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := "holder-" + strconv.Itoa(h)
			for done := 0; done < acquires; {
				res, err := s.Acquire(ctx, "lock", tok, time.Second)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				if !res.Acquired {
					continue
				}
				done++
				if res.Fence <= highest {
					regressions.Add(1)
				}
				highest = res.Fence
				if err := s.Release(ctx, "lock", tok); err != nil {
					t.Errorf("Release: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	flood.Wait()
	if n := regressions.Load(); n != 0 {
		t.Errorf("%d of %d fences were not above every fence issued before", n, holders*acquires)
	}
}
