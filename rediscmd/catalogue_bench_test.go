package rediscmd_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/rediscmd"
)

// catBenchClient returns a client of REDIS_ADDR, or of miniredis when unset,
// and a key prefix unique to the benchmark.
func catBenchClient(b *testing.B) (*redis.Client, string) {
	b.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = miniredis.RunT(b).Addr()
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	prefix := "sluicebench:{" + strconv.FormatInt(int64(os.Getpid()), 36) + b.Name() + "}:"
	b.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		_ = c.Close()
	})
	return c, prefix
}

func BenchmarkCappedIncr(b *testing.B) {
	c, prefix := catBenchClient(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rediscmd.CappedIncr(ctx, c, prefix+"n", 1, rediscmd.MaxInt, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReserve3(b *testing.B) {
	c, prefix := catBenchClient(b)
	ctx := context.Background()
	items := []rediscmd.Item{{Key: prefix + "a", Quantity: 1}, {Key: prefix + "b", Quantity: 1}, {Key: prefix + "c", Quantity: 1}}
	for _, it := range items {
		c.Set(ctx, it.Key, rediscmd.MaxInt, 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rediscmd.Reserve(ctx, c, items); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLeaderboardAdd(b *testing.B) {
	c, prefix := catBenchClient(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := rediscmd.LeaderboardAdd(ctx, c, prefix+"board", "p"+strconv.Itoa(i%1000), 1, time.Time{}, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPercentile(b *testing.B) {
	c, prefix := catBenchClient(b)
	ctx := context.Background()
	for i := range 1000 {
		if _, err := rediscmd.RecordSample(ctx, c, prefix+"lat", float64(i), 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rediscmd.Percentile(ctx, c, prefix+"lat", 95); err != nil {
			b.Fatal(err)
		}
	}
}
