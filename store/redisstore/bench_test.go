package redisstore_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// Benchmarks run against the real server at REDIS_ADDR. Every decision is
// allowed: 1024 keys at the largest limit (store.MaxLimit hits a second per
// key, which no run reaches), a one-second window that keeps the logs short.

const benchKeys = 1024

var benchRule = store.Rule{Limit: store.MaxLimit, Window: time.Second}

func benchUserKeys() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "client:" + strconv.Itoa(i)
	}
	return keys
}

// benchRun runs hit serially and in parallel, each call with a number unique
// in the run.
func benchRun(b *testing.B, hit func(n uint64) error) {
	var n atomic.Uint64
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := hit(n.Add(1)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := hit(n.Add(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkHit measures redisstore's Hit: with a context that cannot be
// cancelled; with a per-call timeout on a client that applies context
// deadlines itself (ContextTimeoutEnabled: the call runs inline); and with a
// per-call timeout on a default client (the store watches the deadline from
// another goroutine).
func BenchmarkHit(b *testing.B) {
	c := redistest.Client(b)
	ctxClient := redis.NewClient(&redis.Options{Addr: c.Options().Addr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = ctxClient.Close() })
	ctx := context.Background()
	if err := must(redisstore.New(c))(b).Preload(ctx); err != nil {
		b.Fatal(err)
	}
	keys := benchUserKeys()
	for _, bc := range []struct {
		name   string
		client *redis.Client
		opts   []redisstore.Option
	}{
		{"background", c, nil},
		{"timeout-ctxclient", ctxClient, []redisstore.Option{redisstore.WithTimeout(time.Second)}},
		{"timeout-watched", c, []redisstore.Option{redisstore.WithTimeout(time.Second)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			prefix := testPrefix(b, c)
			s, err := redisstore.New(bc.client, append(bc.opts, redisstore.WithPrefix(prefix))...)
			if err != nil {
				b.Fatal(err)
			}
			benchRun(b, func(i uint64) error {
				res, err := s.Hit(ctx, keys[i%benchKeys], benchRule, 1)
				if err == nil && !res.Allowed {
					b.Fatal("denied")
				}
				return err
			})
		})
	}
}

// BenchmarkScriptDirect is the baseline for BenchmarkHit: the same script
// with the same arguments through go-redis directly, on precomputed keys.
func BenchmarkScriptDirect(b *testing.B) {
	c := redistest.Client(b)
	ctx := context.Background()
	reply, err := os.ReadFile("reply.lua")
	if err != nil {
		b.Fatal(err)
	}
	src, err := os.ReadFile("sliding_window.lua")
	if err != nil {
		b.Fatal(err)
	}
	script := redis.NewScript(string(reply) + string(src)) // as the Store runs it
	if err := script.Load(ctx, c).Err(); err != nil {
		b.Fatal(err)
	}
	prefix := testPrefix(b, c)
	keys := make([]string, benchKeys)
	for i, k := range benchUserKeys() {
		keys[i] = prefix + k
	}
	limit, window := benchRule.Limit, benchRule.Window.Microseconds()
	benchRun(b, func(i uint64) error {
		v, err := script.Run(ctx, c, []string{keys[i%benchKeys]}, limit, window, 1, "id"+strconv.FormatUint(i, 36), "").Int64()
		if err == nil && v&1 != 1 { // allowed, in the packed reply
			b.Fatal("denied")
		}
		return err
	})
}

// BenchmarkHitAlgorithm measures Hit under each algorithm on the real server
// (background context), every decision allowed: the rule of BenchmarkHit
// (store.MaxLimit per second on each of 1024 keys) counted by each
// algorithm. Besides the client's time it reports the server's time per
// decision (server-µs/op: the usec of INFO commandstats, summed over every
// command, per decision), which other clients of the server inflate: run it
// alone.
func BenchmarkHitAlgorithm(b *testing.B) {
	c := redistest.Client(b)
	ctx := context.Background()
	if err := must(redisstore.New(c))(b).Preload(ctx); err != nil {
		b.Fatal(err)
	}
	keys := benchUserKeys()
	for _, alg := range []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA} {
		rule := benchRule
		rule.Algorithm = alg
		b.Run(alg.String(), func(b *testing.B) {
			prefix := testPrefix(b, c)
			s := must(redisstore.New(c, redisstore.WithPrefix(prefix)))(b)
			var n atomic.Uint64
			hit := func() error {
				res, err := s.Hit(ctx, keys[n.Add(1)%benchKeys], rule, 1)
				if err == nil && !res.Allowed {
					return errors.New("denied")
				}
				return err
			}
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				before := serverMicros(b, c)
				for b.Loop() {
					if err := hit(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(serverMicros(b, c)-before)/float64(b.N), "server-µs/op")
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				before := serverMicros(b, c)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := hit(); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(serverMicros(b, c)-before)/float64(b.N), "server-µs/op")
			})
		})
	}
}

// serverMicros returns the microseconds the server has spent in commands:
// the sum of usec over INFO commandstats, but for INFO itself.
func serverMicros(b *testing.B, c *redis.Client) int64 {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(info, "\n") {
		_, rest, ok := strings.Cut(line, ",usec=")
		if !ok || !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_info:") {
			continue
		}
		v, _, _ := strings.Cut(rest, ",")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("INFO commandstats: %q: %v", line, err)
		}
		total += n
	}
	return total
}
