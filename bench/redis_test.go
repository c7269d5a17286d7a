package bench

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	ulule "github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// redisKeys is the number of keys the Redis benchmarks cycle through.
const redisKeys = 1024

// redisConfig is one limit, expressed for every Redis contender.
type redisConfig struct {
	name string
	rule store.Rule       // sluice's sliding window (redisstore and the raw script)
	gcra redis_rate.Limit // go-redis/redis_rate
}

var redisConfigs = []redisConfig{
	// Every decision allowed: the largest limit of the sliding log, which no
	// run reaches on one of redisKeys keys, and a one-second window that keeps
	// sluice's logs short (hotAllowed for the hot key).
	{name: "Allowed", rule: store.Rule{Limit: store.MaxLimit, Window: time.Second}, gcra: redis_rate.PerSecond(store.MaxLimit)},
	// Every decision after the first on a key denied.
	{name: "Denied", rule: store.Rule{Limit: 1, Window: time.Hour}, gcra: redis_rate.PerHour(1)},
}

// hotAllowed is Allowed for the hot key, where every goroutine decides on
// one key: a second's window would fill at the largest limit and deny most
// decisions; 10 ms keeps the key under it at any rate Redis serves.
var hotAllowed = redisConfig{
	name: "Allowed",
	rule: store.Rule{Limit: store.MaxLimit, Window: 10 * time.Millisecond},
	gcra: redis_rate.Limit{Rate: store.MaxLimit, Burst: store.MaxLimit, Period: 10 * time.Millisecond},
}

// redisDecider makes one rate-limit decision for the n-th key.
type redisDecider func(ctx context.Context, n int) (bool, error)

// redisContender makes a decider for c over client, with its keys under
// prefix.
type redisContender struct {
	name string
	make func(tb testing.TB, client *redis.Client, prefix string, c redisConfig) redisDecider
}

var redisContenders = []redisContender{
	{"redisstore", newRedisstore(false, false)},
	{"redisstore-clock", newRedisstoreClock},
	{"redisstore-timeout", newRedisstore(true, false)},
	{"redisstore-pipelined", newRedisstore(false, true)},
	{"redisstore-pipelined-timeout", newRedisstore(true, true)},
	{"redisstore-counter", newRedisstoreAlgorithm(store.SlidingCounter)},
	{"redisstore-gcra", newRedisstoreAlgorithm(store.GCRA)},
	{"limiter", newRedisLimiter},
	{"script", newRawScript},
	{"minimal", newMinimalLog(false)},
	{"minimal-time", newMinimalLog(true)},
	{"redisrate", newRedisRate},
	{"ulule", newUlule},
}

// newRedisstore measures sluice's store. With timeout, the store has a
// per-call timeout over a client that applies context deadlines itself
// (ContextTimeoutEnabled), the configuration for production. With
// pipelined, concurrent calls go out in pipelines
// (WithPipelining(DefaultMaxBatch)).
func newRedisstore(timeout, pipelined bool) func(testing.TB, *redis.Client, string, redisConfig) redisDecider {
	return func(tb testing.TB, client *redis.Client, prefix string, c redisConfig) redisDecider {
		opts := []redisstore.Option{redisstore.WithPrefix(prefix)}
		if pipelined {
			opts = append(opts, redisstore.WithPipelining(redisstore.DefaultMaxBatch))
		}
		if timeout {
			o := *client.Options()
			o.ContextTimeoutEnabled = true
			client = redis.NewClient(&o)
			tb.Cleanup(func() { _ = client.Close() })
			opts = append(opts, redisstore.WithTimeout(time.Second))
		}
		s, err := redisstore.New(client, opts...)
		if err != nil {
			tb.Fatal(err)
		}
		return storeDecider(s, c.rule)
	}
}

// storeDecider decides with s.Hit under rule, on the keys every redisstore
// contender uses.
func storeDecider(s *redisstore.Store, rule store.Rule) redisDecider {
	keys := redisKeyNames("client:")
	return func(ctx context.Context, n int) (bool, error) {
		res, err := s.Hit(ctx, keys[n], rule, 1)
		return res.Allowed, err
	}
}

// newRedisstoreClock measures sluice's store with the caller's time
// (WithClock(time.Now)) instead of Redis TIME: the script's cost without the
// TIME call, as the minimal contender pays it.
func newRedisstoreClock(tb testing.TB, client *redis.Client, prefix string, c redisConfig) redisDecider {
	s, err := redisstore.New(client, redisstore.WithPrefix(prefix), redisstore.WithClock(time.Now))
	if err != nil {
		tb.Fatal(err)
	}
	return storeDecider(s, c.rule)
}

// newRedisstoreAlgorithm measures sluice's store under another algorithm
// than the sliding log, with the same limit and window.
func newRedisstoreAlgorithm(a store.Algorithm) func(testing.TB, *redis.Client, string, redisConfig) redisDecider {
	return func(tb testing.TB, client *redis.Client, prefix string, c redisConfig) redisDecider {
		s, err := redisstore.New(client, redisstore.WithPrefix(prefix))
		if err != nil {
			tb.Fatal(err)
		}
		rule := c.rule
		rule.Algorithm = a
		return storeDecider(s, rule)
	}
}

// newRedisLimiter measures a limiter.Limiter over redisstore, as a policy runs
// it: with its deny cache in front of the store (DefaultDenyCacheSize), so
// that a denied key is answered in process until its retry-after.
func newRedisLimiter(tb testing.TB, client *redis.Client, prefix string, c redisConfig) redisDecider {
	s, err := redisstore.New(client, redisstore.WithPrefix(prefix))
	if err != nil {
		tb.Fatal(err)
	}
	l, err := limiter.New("bench", c.rule.Limit, c.rule.Window, s)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	keys := redisKeyNames("client:")
	return func(ctx context.Context, n int) (bool, error) {
		d, err := l.Allow(ctx, keys[n])
		return d.Allowed, err
	}
}

// newRawScript runs sluice's sliding-window script with go-redis directly:
// the same script (redisstore's reply.lua and sliding_window.lua) and
// arguments as redisstore, on precomputed keys.
func newRawScript(tb testing.TB, client *redis.Client, prefix string, c redisConfig) redisDecider {
	var src []byte
	for _, f := range []string{"reply.lua", "sliding_window.lua"} {
		b, err := os.ReadFile("../store/redisstore/" + f)
		if err != nil {
			tb.Fatal(err)
		}
		src = append(src, b...)
	}
	script := redis.NewScript(string(src))
	if err := script.Load(context.Background(), client).Err(); err != nil {
		tb.Fatal(err)
	}
	keys := sluiceShapedKeys(prefix, "w")
	limit, window := c.rule.Limit, c.rule.Window.Microseconds()
	member := hitMembers()
	return func(ctx context.Context, n int) (bool, error) {
		v, err := script.Run(ctx, client, []string{keys[n]}, limit, window, 1,
			member(), "").Result()
		if err != nil {
			return false, err
		}
		switch v := v.(type) {
		case int64: // the packed reply: allowed is bit 0
			return v&1 == 1, nil
		case []any:
			return v[0] == int64(1), nil
		}
		return false, fmt.Errorf("unexpected reply %v", v)
	}
}

// minimalLog is minimal_log.lua, the yardstick of the sliding-window
// script's server time.
//
//go:embed minimal_log.lua
var minimalLog string

// newMinimalLog runs the smallest sliding-window log (four commands): what
// sluice's script costs above it is the price of exact reset and retry
// times. Without withTime it takes the caller's time (compare it with
// redisstore-clock); with it, it reads Redis TIME as redisstore does. Its
// keys and members have the length of redisstore's.
func newMinimalLog(withTime bool) func(testing.TB, *redis.Client, string, redisConfig) redisDecider {
	return func(tb testing.TB, client *redis.Client, prefix string, c redisConfig) redisDecider {
		script := redis.NewScript(minimalLog)
		if err := script.Load(context.Background(), client).Err(); err != nil {
			tb.Fatal(err)
		}
		keys := sluiceShapedKeys(prefix, "m")
		limit, window := c.rule.Limit, c.rule.Window.Microseconds()
		member := hitMembers()
		return func(ctx context.Context, n int) (bool, error) {
			var now any = ""
			if !withTime {
				now = time.Now().UnixMicro()
			}
			v, err := script.Run(ctx, client, []string{keys[n]}, limit, window, now, member()).Int64()
			return v == 1, err
		}
	}
}

// sluiceShapedKeys returns redisKeys keys of the length and shape of
// redisstore's sliding-log keys under prefix: prefix, tag, ":{", 32 hex
// digits, "}:s:", 16 hex digits.
func sluiceShapedKeys(prefix, tag string) []string {
	out := make([]string, redisKeys)
	for i := range out {
		sum := sha256.Sum256([]byte("client:" + strconv.Itoa(i)))
		out[i] = prefix + tag + ":{" + hex.EncodeToString(sum[:16]) + "}:s:" + hex.EncodeToString(sum[16:24])
	}
	return out
}

// hitMembers returns a source of sorted-set members shaped like redisstore's
// hit ids: 8 random base64url characters and a counter in base 36.
func hitMembers() func() string {
	var r [6]byte
	_, _ = crand.Read(r[:])
	head := base64.RawURLEncoding.EncodeToString(r[:])
	var id atomic.Uint64
	return func() string { return head + strconv.FormatUint(id.Add(1), 36) }
}

// newUlule measures ulule/limiter's Redis store (a fixed window: INCR and
// PEXPIRE in one script).
func newUlule(tb testing.TB, client *redis.Client, prefix string, c redisConfig) redisDecider {
	st, err := ulredis.NewStoreWithOptions(client, ulule.StoreOptions{Prefix: prefix + "ulule"})
	if err != nil {
		tb.Fatal(err)
	}
	l := ulule.New(st, ulule.Rate{Period: c.rule.Window, Limit: int64(c.rule.Limit)})
	keys := redisKeyNames("client:")
	return func(ctx context.Context, n int) (bool, error) {
		res, err := l.Get(ctx, keys[n])
		return !res.Reached, err
	}
}

// newRedisRate measures go-redis/redis_rate's GCRA limiter (its keys are
// "rate:" + key).
func newRedisRate(_ testing.TB, client *redis.Client, prefix string, c redisConfig) redisDecider {
	l := redis_rate.NewLimiter(client)
	keys := redisKeyNames(prefix + "client:")
	return func(ctx context.Context, n int) (bool, error) {
		res, err := l.Allow(ctx, keys[n], c.gcra)
		if err != nil {
			return false, err
		}
		return res.Allowed > 0, nil
	}
}

func redisKeyNames(prefix string) []string {
	out := make([]string, redisKeys)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// redisClient returns a client for REDIS_ADDR with sluice's scripts loaded,
// or skips b.
func redisClient(b *testing.B) *redis.Client {
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		b.Skip("REDIS_ADDR not set: skipping real-Redis benchmarks")
	}
	client := redis.NewClient(&redis.Options{Addr: addr})
	b.Cleanup(func() { _ = client.Close() })
	st, err := redisstore.New(client)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Preload(context.Background()); err != nil {
		b.Fatal(err)
	}
	return client
}

// redisPrefix returns a key prefix unique to this benchmark and deletes every
// key under it (also redis_rate's "rate:" + prefix) when b ends.
func redisPrefix(b *testing.B, client *redis.Client) string {
	var r [6]byte
	_, _ = crand.Read(r[:])
	prefix := "sluicebench:" + hex.EncodeToString(r[:]) + ":"
	b.Cleanup(func() {
		ctx := context.Background()
		for _, pattern := range []string{prefix + "*", "rate:" + prefix + "*"} {
			iter := client.Scan(ctx, 0, pattern, 1000).Iterator()
			var keys []string
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			if err := iter.Err(); err != nil {
				b.Error(err)
			}
			if len(keys) > 0 {
				if err := client.Del(ctx, keys...).Err(); err != nil {
					b.Error(err)
				}
			}
		}
	})
	return prefix
}

// The modes of redisRun.
const (
	serial   = "Serial"   // one goroutine, cycling through the keys
	parallel = "Parallel" // 64 goroutines, each cycling through the keys
	hotKey   = "HotKey"   // 64 goroutines, every call on one key
)

// redisRun measures decide in mode (serial, parallel or hotKey) and
// reports decisions/s, the fraction of decisions allowed, and per decision
// the server's time in commands (server-µs/op, from INFO commandstats:
// commands that a script calls count there too, on top of the script's own
// time, which already holds them), the time of one script call
// (evalsha-µs/call: usec over calls of EVALSHA in INFO commandstats, the
// script's whole cost and nothing else), the server's CPU time (server-cpu-µs/op, from INFO cpu: also the reading and
// writing of sockets that commandstats leaves out) and the read events the
// server handled (reads/op, total_reads_processed from INFO stats: about
// one per round trip of each client).
func redisRun(b *testing.B, client *redis.Client, decide redisDecider, mode string) {
	ctx := context.Background()
	for n := range redisKeys { // every key exists before timing starts
		if _, err := decide(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
	if mode == hotKey {
		all := decide
		decide = func(ctx context.Context, _ int) (bool, error) { return all(ctx, 0) }
	}
	var allowed atomic.Int64
	before := serverStats(b, client)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if mode != serial {
		// 64 goroutines on a 2-core machine: enough callers in flight to
		// keep Redis busy, as a loaded application server would.
		b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			i, n := rand.IntN(redisKeys), int64(0)
			for pb.Next() {
				if i++; i == redisKeys {
					i = 0
				}
				ok, err := decide(ctx, i)
				if err != nil {
					b.Error(err)
					return
				}
				if ok {
					n++
				}
			}
			allowed.Add(n)
		})
	} else {
		var n int64
		for i := 0; b.Loop(); i++ {
			ok, err := decide(ctx, i%redisKeys)
			if err != nil {
				b.Fatal(err)
			}
			if ok {
				n++
			}
		}
		allowed.Add(n)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	after := serverStats(b, client)
	n := float64(b.N)
	b.ReportMetric(n/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(allowed.Load())/n, "allowed/op")
	b.ReportMetric(float64(after.commandMicros-before.commandMicros)/n, "server-µs/op")
	if calls := after.evalsha - before.evalsha; calls > 0 {
		b.ReportMetric(float64(after.evalshaMicros-before.evalshaMicros)/float64(calls), "evalsha-µs/call")
	}
	b.ReportMetric(float64(after.cpuMicros-before.cpuMicros)/n, "server-cpu-µs/op")
	b.ReportMetric(float64(after.reads-before.reads)/n, "reads/op")
}

// stats are a server's counters since it started (or since its statistics
// were last reset).
type stats struct {
	commandMicros int64 // time in commands: the sum of usec over INFO commandstats
	cpuMicros     int64 // CPU time: used_cpu_sys + used_cpu_user of INFO cpu
	reads         int64 // read events handled: total_reads_processed of INFO stats
	evalsha       int64 // EVALSHA calls: calls of cmdstat_evalsha
	evalshaMicros int64 // time in EVALSHA: usec of cmdstat_evalsha
}

// serverStats reads the server's counters. Other clients of the server
// count too, so the benchmarks run one at a time (make bench runs packages
// one after another).
func serverStats(b *testing.B, client *redis.Client) stats {
	info, err := client.Info(context.Background(), "commandstats", "cpu", "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var st stats
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if name, value, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "cmdstat_") {
			switch name {
			case "used_cpu_sys", "used_cpu_user":
				sec, err := strconv.ParseFloat(value, 64)
				if err != nil {
					b.Fatalf("INFO cpu: %q: %v", line, err)
				}
				st.cpuMicros += int64(sec * 1e6)
			case "total_reads_processed":
				n, err := strconv.ParseInt(value, 10, 64)
				if err != nil {
					b.Fatalf("INFO stats: %q: %v", line, err)
				}
				st.reads = n
			}
			continue
		}
		_, rest, ok := strings.Cut(line, ",usec=")
		if !ok || !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_info:") {
			continue
		}
		v, _, _ := strings.Cut(rest, ",")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("INFO commandstats: %q: %v", line, err)
		}
		st.commandMicros += n
		if strings.HasPrefix(line, "cmdstat_evalsha:calls=") {
			calls, _, _ := strings.Cut(strings.TrimPrefix(line, "cmdstat_evalsha:calls="), ",")
			if st.evalsha, err = strconv.ParseInt(calls, 10, 64); err != nil {
				b.Fatalf("INFO commandstats: %q: %v", line, err)
			}
			st.evalshaMicros = n
		}
	}
	return st
}

// BenchmarkRedisDecision runs every Redis contender under every
// configuration, serially, in parallel over many keys and in parallel on one
// hot key, against the server at REDIS_ADDR. Names read
// RedisDecision/<config>/<Serial|Parallel|HotKey>/<library>, so that
// benchstat can set the libraries side by side: redisstore is sluice's store
// (background context), redisstore-timeout the same with WithTimeout over a
// ContextTimeoutEnabled client, redisstore-pipelined and
// redisstore-pipelined-timeout the same two with WithPipelining, script
// sluice's sliding-window script run
// with go-redis directly (the floor for redisstore), redisstore-clock
// redisstore with the caller's time (WithClock) rather than Redis TIME,
// minimal and minimal-time the smallest sliding log (minimal_log.lua, the
// yardstick of the script's server time) with the caller's time and with
// Redis TIME, on keys and members as long as redisstore's,
// redisrate go-redis/redis_rate's Allow (GCRA), ulule ulule/limiter's Redis
// store (a fixed window), redisstore-counter and redisstore-gcra sluice's
// store under its O(1) algorithms, and limiter a limiter.Limiter over
// redisstore with its deny cache (a denied hot key is answered in process).
func BenchmarkRedisDecision(b *testing.B) {
	client := redisClient(b)
	for _, c := range redisConfigs {
		for _, mode := range []string{serial, parallel, hotKey} {
			if mode == hotKey && c.name == "Allowed" {
				c = hotAllowed
			}
			for _, lib := range redisContenders {
				b.Run(c.name+"/"+mode+"/"+lib.name, func(b *testing.B) {
					prefix := redisPrefix(b, client)
					redisRun(b, client, lib.make(b, client, prefix, c), mode)
				})
			}
		}
	}
}
