// Package bench compares sluice's stores with peer Go rate limiters. It is a
// separate module, so that the peers' dependencies never enter sluice's own
// go.mod; it refers to sluice through a replace directive pointing at the
// parent directory, so it always measures the working tree.
//
// memstore_test.go measures one rate-limit decision in process, all in the
// same run:
//
//   - sluice's store/memstore (an exact sliding-window log, sharded, bounded
//     in keys);
//   - golang.org/x/time/rate, one *rate.Limiter per key kept in a
//     map[string]*rate.Limiter behind a sync.Mutex, the usual way to limit
//     per client with it (a token bucket, unbounded map);
//   - github.com/sethvargo/go-limiter's memorystore (a token bucket per key in
//     a map behind a sync.RWMutex, swept in the background).
//
// Each decides on a hot key (every call on one key) and on 100,000 distinct
// keys (calls cycling through them), serially and from GOMAXPROCS goroutines
// (b.RunParallel). The configurations are comparable: "Allowed" gives each
// limiter a limit so generous that every decision is allowed (the common
// path of a healthy service: memstore and x/time/rate 1<<20 per 10ms,
// go-limiter a bucket of 1<<40 per hour, because it resets a bucket to
// ticks*interval/tokens at each tick and would deny with a short interval),
// "Denied" a limit of one per hour, so that every decision after the first is
// denied. Every benchmark reports allocations and
// the fraction of decisions allowed (allowed/op), which shows that the path
// named is the path measured. Keys are created before timing starts.
//
// http_test.go measures what each net/http middleware adds to a bare handler
// on the allowed path (BenchmarkMiddleware): sluice's httpmw.RateLimit with
// and without its quota headers, go-limiter's httplimit, and contextOnly, a
// middleware that decides nothing and only hands the handler a copy of the
// request whose context carries a value: the least that a middleware which
// exposes its decision to the handler (limiter.FromContext) can cost.
//
// redis_test.go, when present, compares store/redisstore with go-redis/redis_rate
// on a real Redis server (REDIS_ADDR): serially, from 64 goroutines over 1,024
// keys (Parallel) and from 64 goroutines on one key (HotKey), with and without
// WithPipelining (the redisstore-pipelined contenders). Besides decisions/s
// it reports, per decision, the server's time in commands (INFO
// commandstats), its CPU time (INFO cpu) and the read events it handled
// (INFO stats, about one per round trip), and the server's time per script
// call (evalsha-µs/call), which counts each script once: the commands a
// script calls also appear on their own in commandstats. The pipelining
// comparison:
//
//	scripts/with-redis.sh sh -c 'cd bench && go test -run x -bench "RedisDecision/Allowed/.*/(redisstore|redisrate)" -cpu 2'
//
// The script's cost against the smallest sliding log (minimal_log.lua):
// redisstore-clock against minimal (both on the caller's time) and
// redisstore against minimal-time (both on Redis TIME), on keys and members
// of the same length; the machine's load moves these figures by 10-30%
// between runs, so compare within one run and repeat it (-count 3):
//
//	scripts/with-redis.sh sh -c 'cd bench && go test -run x -bench "RedisDecision/.*/.*/(redisstore|redisstore-clock|minimal|minimal-time)$" -count 3'
//
// Run the comparison from this directory:
//
//	go test -run '^$' -bench . -benchmem -benchtime=1s
//
// and compare runs with golang.org/x/perf/cmd/benchstat.
package bench
