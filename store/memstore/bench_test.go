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

func BenchmarkHit(b *testing.B) {
	hot := benchKeys(1)
	many := benchKeys(distinctKeys)
	b.Run("HotKey/Allowed", func(b *testing.B) { benchHit(b, hot, allowedRule, false) })
	b.Run("HotKey/Allowed/Parallel", func(b *testing.B) { benchHit(b, hot, allowedRule, true) })
	b.Run("HotKey/Denied", func(b *testing.B) { benchHit(b, hot, deniedRule, false) })
	b.Run("HotKey/Denied/Parallel", func(b *testing.B) { benchHit(b, hot, deniedRule, true) })
	b.Run("100kKeys/Allowed", func(b *testing.B) { benchHit(b, many, allowedRule, false) })
	b.Run("100kKeys/Allowed/Parallel", func(b *testing.B) { benchHit(b, many, allowedRule, true) })
	b.Run("100kKeys/Denied", func(b *testing.B) { benchHit(b, many, deniedRule, false) })
	b.Run("100kKeys/Denied/Parallel", func(b *testing.B) { benchHit(b, many, deniedRule, true) })
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
