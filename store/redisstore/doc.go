// Package redisstore implements store.Store on Redis, so that every instance
// of an application shares one rate-limit quota and one set of locks.
//
// A Store runs its own Lua scripts (one per algorithm, stacks, undo, peek
// and reset, and the lock scripts; .lua files embedded in the package)
// through any go-redis v9 client that implements redis.Scripter:
// *redis.Client (also the failover client that redis.NewFailoverClient
// returns for Sentinel), *redis.ClusterClient and *redis.Ring. Each
// decision is one EVALSHA (a stack whose keys live in different Cluster
// slots takes one per slot, see HitAll), sent on its own or, with
// WithPipelining, in a pipeline with concurrent ones; when the server
// answers NOSCRIPT (after a restart, a
// failover or SCRIPT FLUSH) the call is retried once with EVAL and the caller
// never sees the error. To avoid that extra round trip on the first calls
// after start-up, preload the scripts on every master:
//
//	if err := st.Preload(ctx); err != nil { ... }
//
// # Keys
//
// The caller's key may carry user-controlled data (an IP address, an API key,
// a header). It is never stored verbatim: it is hashed with SHA-256 and the
// first 16 bytes of the digest, in hex (32 characters), name the Redis keys,
// so neither a megabyte-long key nor a '{' in it can bloat Redis or pin every
// key to one Cluster slot. With the default prefix "sluice:" the layout is
//
//	sluice:r:{<hash>}:s:<name hash>  sorted set: the sliding log of a key under a rule name
//	sluice:r:{<hash>}:c:<name hash>  string "idx:curr:prev": the sliding-window counter
//	sluice:r:{<hash>}:g:<name hash>  string: GCRA's theoretical arrival time
//	sluice:l:{<hash>}                string: the lock, holding the owner's token
//	sluice:l:{<hash>}:f              string: the lock's fencing counter
//
// where <name hash> is 8 bytes of the SHA-256 of the rule's name (length
// prefixed), in hex. The hash tag is the client's key alone, so one client's
// counters under several rules (the policies of a stack) share a Cluster slot
// and HitAll decides them in one script call; a lock and its fencing counter
// share theirs too, so no script gets CROSSSLOT, while the keys of different
// clients spread over all slots. Every key carries a TTL: a window log
// expires one window after its newest hit, a counter at the end of the next
// fixed window, a GCRA state when its bucket is full again, a lock after its
// TTL, a fencing counter after the fence TTL (WithFenceTTL, default 24h).
// Fences stay increasing even after the counter expires, because the script
// never issues a fence below the Redis time in microseconds, as long as the
// fence TTL (at least MinFenceTTL, 1s) exceeds the lead the counter can build
// over the Redis clock: see WithFenceTTL.
//
// A sliding-window log costs one sorted-set member per hit in the window,
// O(limit) per key. Members are short: a per-Store random prefix (8
// characters) followed by a counter in base 36. Measured with MEMORY USAGE on
// Redis 7.0, a log holding 100 hits takes 2,664 bytes (about 27 bytes per
// hit, in Redis's compact listpack encoding); above zset-max-listpack-entries
// (128 by default) Redis switches to a skiplist, and a log of 1,000 hits takes
// about 103 bytes per hit. The O(1) algorithms hold one short string per
// key whatever the limit: by MEMORY USAGE on Redis 7.0 with the default
// prefix, 136 to 168 bytes for a counter and 120 to 152 bytes for GCRA.
//
// # Time
//
// By default the scripts read the time from Redis (TIME), so application
// servers with skewed clocks still share one window. WithClock makes the store
// pass its own time instead (useful in tests). Lock TTLs always run on the
// Redis clock.
//
// # Deadlines
//
// Every call honours its context: an already cancelled context sends
// nothing, and a cancellation or a passed deadline during the call ends it
// with an error wrapping context.Canceled or context.DeadlineExceeded, also
// when Redis hangs. WithTimeout adds a per-call deadline on top of the
// caller's.
//
// How a call in flight is stopped depends on the client, and
// ContextTimeoutEnabled: true in the go-redis options (redis.Options,
// redis.ClusterOptions, redis.FailoverOptions, redis.RingOptions) is
// recommended:
//
//	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
//	s, err := redisstore.New(client, redisstore.WithTimeout(50*time.Millisecond))
//
// With it, go-redis applies each call's context deadline to its socket, so
// the Store runs the call inline, at the cost of a plain go-redis call, and a
// call fails at its deadline instead of waiting on its connection. A
// cancellation without a deadline then takes effect when Redis answers or
// the deadline (WithTimeout, the client's ReadTimeout) passes.
//
// Without it (the go-redis default), or with a client New cannot inspect,
// the Store runs every call whose context can be cancelled or carries a
// deadline (any call, with WithTimeout) in a goroutine of its own, and stops
// waiting as soon as the context is done. That costs a goroutine hand-off
// (some microseconds) per call, and an abandoned call keeps its goroutine
// and its pool connection until Redis answers or the client's ReadTimeout
// passes (5s by default); with a ReadTimeout of -1 or -2 (no read deadline) a
// hung server keeps them forever, so the pool can drain and later calls fail
// after the client's PoolTimeout. Either way, a call that ended with a
// context error may still have been applied by Redis.
//
// # Pipelining
//
// WithPipelining sends the decisions that many goroutines make at once in
// pipelines, so that many EVALSHA share one round trip:
//
//	s, err := redisstore.New(client, redisstore.WithPipelining(redisstore.DefaultMaxBatch))
//
// Each server (the one server, a Cluster's master, a Ring's shard) has its
// own pipelines. A call goes out at once, by itself, while fewer than two
// calls or pipelines are in flight to its server; calls made while two are
// wait, and go out together, at most the batch bound to a pipeline, as soon
// as one of the two ends. Every call is still one script call, and calls
// that meet NOSCRIPT in a pipeline are sent again with EVAL, in one more
// pipeline, so the caller never sees it. A caller whose context ends returns
// its context's error at once if its call is waiting or went out in a
// pipeline; a waiting call is then never sent, and the pipeline of a sent
// one goes on without it, so its neighbours are unaffected. A call that went
// out by itself ends as under Deadlines above: at once, except on a
// ContextTimeoutEnabled client, where a cancellation without a deadline
// takes effect when Redis answers. A pipeline runs on a context
// of its own: its deadline is the latest of its calls' deadlines (each
// bounded by WithTimeout), and it has none if one of its calls has none.
// Failed calls in a pipeline make a Cluster client reload its slot map as
// single calls do.
//
// In exchange, a call shares some of its pipeline's fate: its reply is read
// with the whole pipeline's; a connection that breaks fails every call of
// the pipeline, and go-redis retries the whole pipeline as it retries a
// single call (up to MaxRetries, on network errors only: each call may then
// run twice); go-redis hooks (tracing, metrics) see pipelines, not single
// calls.
//
// Measured with the bench module on a 2-core machine (decisions/s, medians
// of 5 runs of 2s, the sliding log, every contender in the same run): from
// 64 goroutines over 1,024 keys, 47,000 pipelined against 17,000
// unpipelined and 22,500 for go-redis/redis_rate (1.9 times redis_rate's
// rate, 1.5 to 2.5 across the runs); on one hot key, 64,000 against 22,800
// and 24,800 (2.1 times redis_rate's). Redis spent 13.7 µs of CPU per
// decision instead of 25.6 (INFO cpu), and handled one read event for 20
// decisions. From one goroutine the latency is the same (the call goes by
// itself); from 2 to 8 goroutines the rate is within the noise of
// unpipelined calls, from 16 it is 1.8 times theirs. While one of three
// Cluster masters was paused for a second, decisions for the other two
// went on as without pipelining.
//
// Pipelining is off by default: it never made a decision slower here, but
// it gains only where many decisions are in flight at once, and it changes
// what a call shares with others (above). Turn it on for an instance that
// decides for many concurrent requests.
package redisstore
