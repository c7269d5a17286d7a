package bench

import (
	"context"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sethvargo/go-limiter/memorystore"
	"golang.org/x/time/rate"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// distinctKeys is the number of keys of the many-keys benchmarks.
const distinctKeys = 100_000

// config is one limit, expressed for every library.
type config struct {
	name string
	// limit decisions per window, for memstore and x/time/rate (as a rate of
	// limit/window with a burst of limit).
	limit  int
	window time.Duration
	// tokens per interval, for go-limiter.
	tokens   uint64
	interval time.Duration
}

var configs = []config{
	// Mostly allowed: the largest limit of the sliding log (store.MaxLimit)
	// over its shortest window, 1ms, so a key allows about 4 decisions per
	// microsecond; a hot key served faster than that is partly denied (the
	// allowed/op metric tells). go-limiter sets a bucket to
	// ticks*interval/tokens at each interval tick (rather than adding to it),
	// so a large limit with a short interval would deny after the first
	// tick: it gets a bucket no run can empty instead.
	{name: "Allowed", limit: store.MaxLimit, window: time.Millisecond, tokens: 1 << 40, interval: time.Hour},
	// Every decision after the first on a key denied.
	{name: "Denied", limit: 1, window: time.Hour, tokens: 1, interval: time.Hour},
}

// decider makes one rate-limit decision for key.
type decider func(ctx context.Context, key string) (bool, error)

// contender is a library under test: make returns a decider configured for
// c and a function releasing it.
type contender struct {
	name string
	make func(tb testing.TB, c config) (decider, func())
}

var contenders = []contender{
	{"limiter", newLimiter},
	{"memstore", newMemstore},
	{"xtimerate", newRateMap},
	{"golimiter", newGoLimiter},
}

// newLimiter measures what an application calls: a sluice Limiter over
// memstore.
func newLimiter(tb testing.TB, c config) (decider, func()) {
	s, err := memstore.New()
	if err != nil {
		tb.Fatal(err)
	}
	l, err := limiter.New("api", c.limit, c.window, s)
	if err != nil {
		tb.Fatal(err)
	}
	return func(ctx context.Context, key string) (bool, error) {
		d, err := l.Allow(ctx, key)
		return d.Allowed, err
	}, func() { _ = l.Close(); _ = s.Close() }
}

func newMemstore(tb testing.TB, c config) (decider, func()) {
	s, err := memstore.New()
	if err != nil {
		tb.Fatal(err)
	}
	rule := store.Rule{Limit: c.limit, Window: c.window}
	return func(ctx context.Context, key string) (bool, error) {
		res, err := s.Hit(ctx, key, rule, 1)
		return res.Allowed, err
	}, func() { _ = s.Close() }
}

// rateMap is the usual per-client use of x/time/rate: a limiter per key in a
// map behind a mutex.
type rateMap struct {
	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	limit    rate.Limit
	burst    int
}

func (m *rateMap) allow(key string) bool {
	m.mu.Lock()
	l, ok := m.limiters[key]
	if !ok {
		l = rate.NewLimiter(m.limit, m.burst)
		m.limiters[key] = l
	}
	m.mu.Unlock()
	return l.Allow()
}

func newRateMap(_ testing.TB, c config) (decider, func()) {
	m := &rateMap{
		limiters: make(map[string]*rate.Limiter),
		limit:    rate.Limit(float64(c.limit) / c.window.Seconds()),
		burst:    c.limit,
	}
	return func(_ context.Context, key string) (bool, error) {
		return m.allow(key), nil
	}, func() {}
}

func newGoLimiter(tb testing.TB, c config) (decider, func()) {
	s, err := memorystore.New(&memorystore.Config{
		Tokens:   c.tokens,
		Interval: c.interval,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return func(ctx context.Context, key string) (bool, error) {
			_, _, _, ok, err := s.Take(ctx, key)
			return ok, err
		}, func() {
			_ = s.Close(context.Background())
		}
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "client:" + strconv.Itoa(i)
	}
	return out
}

// run measures decide over keys, serially or in parallel, and reports the
// fraction of decisions allowed.
func run(b *testing.B, decide decider, keys []string, parallel bool) {
	ctx := context.Background()
	for _, k := range keys { // every key exists before timing starts
		if _, err := decide(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	// The set-up's garbage is collected before timing starts, so that no
	// contender pays for a collection another one's set-up caused.
	runtime.GC()
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
				ok, err := decide(ctx, keys[i])
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
			ok, err := decide(ctx, keys[i%len(keys)])
			if err != nil {
				b.Fatal(err)
			}
			if ok {
				n++
			}
		}
		allowed.Add(n)
	}
	b.ReportMetric(float64(allowed.Load())/float64(b.N), "allowed/op")
}

// BenchmarkDecision runs every contender under every configuration on a hot
// key and on distinctKeys keys, serially and in parallel. Names read
// Decision/<keys>/<config>/<serial|parallel>/<library>, so that benchstat
// can set the libraries side by side.
func BenchmarkDecision(b *testing.B) {
	keySets := []struct {
		name string
		keys []string
	}{
		{"HotKey", keys(1)},
		{"10kKeys", keys(10_000)},
		{"100kKeys", keys(distinctKeys)},
	}
	for _, ks := range keySets {
		for _, c := range configs {
			for _, mode := range []string{"Serial", "Parallel"} {
				for _, lib := range contenders {
					b.Run(ks.name+"/"+c.name+"/"+mode+"/"+lib.name, func(b *testing.B) {
						decide, done := lib.make(b, c)
						defer done()
						run(b, decide, ks.keys, mode == "Parallel")
					})
				}
			}
		}
	}
}
