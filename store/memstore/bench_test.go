package memstore_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// Rules of the benchmarks. allowedRule is the most generous rule there is:
// a key allows store.MaxLimit hits per millisecond, so most decisions are
// allowed unless one key sees more than that (the allowed/op metric tells);
// deniedRule denies every hit after the first.
var (
	allowedRule = store.Rule{Limit: store.MaxLimit, Window: time.Millisecond}
	deniedRule  = store.Rule{Limit: 1, Window: time.Hour}
)

const distinctKeys = 100_000

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "client:" + strconv.Itoa(i)
	}
	return keys
}

// benchHit measures Hit over keys under rule on the store's default clock,
// serially or from GOMAXPROCS goroutines, and reports the allowed fraction.
func benchHit(b *testing.B, keys []string, rule store.Rule, parallel bool) {
	s, err := memstore.New()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, k := range keys { // every key exists before timing starts
		if _, err := s.Hit(ctx, k, rule, 1); err != nil {
			b.Fatal(err)
		}
	}
	var allowed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			i, n := rand.IntN(len(keys)), int64(0)
			for pb.Next() {
				if i++; i == len(keys) {
					i = 0
				}
				res, err := s.Hit(ctx, keys[i], rule, 1)
				if err != nil {
					b.Error(err)
					return
				}
				if res.Allowed {
					n++
				}
			}
			allowed.Add(n)
		})
	} else {
		var n int64
		for i := 0; b.Loop(); i++ {
			res, err := s.Hit(ctx, keys[i%len(keys)], rule, 1)
			if err != nil {
				b.Fatal(err)
			}
			if res.Allowed {
				n++
			}
		}
		allowed.Add(n)
	}
	b.ReportMetric(float64(allowed.Load())/float64(b.N), "allowed/op")
}

// BenchmarkHit measures Hit under the sliding log (the top-level cases),
// the sliding-window counter (Counter/...) and GCRA (GCRA/...), each with the
// same limits and windows.
func BenchmarkHit(b *testing.B) {
	hot := benchKeys(1)
	many := benchKeys(distinctKeys)
	for _, alg := range []struct {
		prefix    string
		algorithm store.Algorithm
	}{
		{"", store.SlidingLog},
		{"Counter/", store.SlidingCounter},
		{"GCRA/", store.GCRA},
	} {
		allowed, denied := allowedRule, deniedRule
		allowed.Algorithm, denied.Algorithm = alg.algorithm, alg.algorithm
		b.Run(alg.prefix+"HotKey/Allowed", func(b *testing.B) { benchHit(b, hot, allowed, false) })
		b.Run(alg.prefix+"HotKey/Allowed/Parallel", func(b *testing.B) { benchHit(b, hot, allowed, true) })
		b.Run(alg.prefix+"HotKey/Denied", func(b *testing.B) { benchHit(b, hot, denied, false) })
		b.Run(alg.prefix+"HotKey/Denied/Parallel", func(b *testing.B) { benchHit(b, hot, denied, true) })
		b.Run(alg.prefix+"100kKeys/Allowed", func(b *testing.B) { benchHit(b, many, allowed, false) })
		b.Run(alg.prefix+"100kKeys/Allowed/Parallel", func(b *testing.B) { benchHit(b, many, allowed, true) })
		b.Run(alg.prefix+"100kKeys/Denied", func(b *testing.B) { benchHit(b, many, denied, false) })
		b.Run(alg.prefix+"100kKeys/Denied/Parallel", func(b *testing.B) { benchHit(b, many, denied, true) })
	}
}

// BenchmarkHitAll measures a stack of a burst rule (sliding log) and a
// longer one (sliding-window counter) on one hot key, allowed or denied by
// the burst rule.
func BenchmarkHitAll(b *testing.B) {
	long := store.Rule{Name: "long", Limit: store.MaxCounterLimit, Window: time.Hour, Algorithm: store.SlidingCounter}
	for _, tc := range []struct {
		name  string
		burst store.Rule
	}{
		{"Allowed", store.Rule{Name: "burst", Limit: store.MaxLimit, Window: time.Millisecond}},
		{"Denied", store.Rule{Name: "burst", Limit: 1, Window: time.Hour}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := memstore.New()
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			hits := []store.Hit{{Key: "client:0", Rule: tc.burst, Cost: 1}, {Key: "client:0", Rule: long, Cost: 1}}
			out := make([]store.Result, len(hits))
			var allowed int64
			b.ReportAllocs()
			for b.Loop() {
				if err := s.HitAll(ctx, hits, out); err != nil {
					b.Fatal(err)
				}
				if out[0].Allowed {
					allowed++
				}
			}
			b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
		})
	}
}

// BenchmarkLock measures an Acquire and Release pair on one key.
func BenchmarkLock(b *testing.B) {
	s, err := memstore.New()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.Acquire(ctx, "order:42", "token", time.Second)
		if err != nil || !res.Acquired {
			b.Fatalf("Acquire: %+v, %v", res, err)
		}
		if err := s.Release(ctx, "order:42", "token"); err != nil {
			b.Fatal(err)
		}
	}
}
