// Package memstore is an in-memory store.Store: the three rate-limit
// algorithms of store.Algorithm (an exact sliding-window log, a sliding-window
// counter and GCRA), stacked decisions, and token-checked locks with fencing
// tokens, for a single process. It has the same semantics as store/redisstore's
// Lua scripts, decision for decision, so an application can start on memstore
// and move to Redis when it runs more than one instance.
//
// # Sliding log
//
// Each key keeps a log of its hits in the window (now-window, now], at
// microsecond precision like the Lua scripts: (time, receipt id) pairs, 16
// bytes a hit. A log of one hit lives inline in the key's table entry; a
// longer one in a ring buffer that grows on demand up to the rule's limit
// rounded up to a power of two, so a key costs O(limit) memory. A hit of cost
// n records n entries. Hits at the same instant are distinct hits. If a key's
// limit shrinks between calls, hits above the new limit stay until they leave
// the window (meanwhile the key is denied), and the buffer shrinks to fit the
// new limit once they have. A rule's limit is at most store.MaxLimit and a
// call's cost at most store.MaxCost, as for every store.
//
// # Sliding-window counter and GCRA
//
// The O(1) algorithms keep a few numbers per key inside its 64-byte table
// entry, whatever the limit (up to store.MaxCounterLimit): the counter, the
// index of the fixed window it last counted in and the counts of that window
// and the one before; GCRA, the theoretical arrival time as a float64 of
// microseconds. Their arithmetic, down to the order of the float64
// operations and the rounding of the times they report, is the one the Redis
// scripts do. A counter's state empties at the end of the fixed window after
// the one it last counted in; a GCRA state when its bucket is full again.
// The same key and rule name under two algorithms are two independent states.
//
// # Stacks
//
// HitAll decides up to 16 rules at once. It locks the shards of all of them,
// in ascending order so that stacks never deadlock, reads the clock once,
// checks every rule against the state as it stands, and records every rule
// or none: a stack is atomic in memstore. Recording a rule never evicts
// another rule of the same stack.
//
// # Keys
//
// Keys are never stored: a key is held as its 64-bit maphash digest under a
// seed chosen at random by New, so a 1 MB key costs 8 bytes (hashing it costs
// one pass over its bytes per call); the rule's name and algorithm are mixed
// into the digest. Two distinct keys share a state only if
// their digests collide, which for n keys happens with probability about
// n²/2⁶⁵ (3·10⁻⁸ for a million keys) and cannot be aimed at, because the seed
// is secret and differs per Store. Lock tokens are held as a 128-bit digest
// (two seeds). Windows and locks live in separate tables, so a window and a
// lock with the same key name are independent.
//
// # Sharding and memory bound
//
// Keys are spread over up to 256 shards by their digest, each behind its own
// mutex, so decisions on different keys rarely contend. A shard keeps its
// windows (the state of a key under a rule name and algorithm) in an
// open-addressing hash table whose 64-byte entries (one cache line) hold the
// digest next to the window's state, so a decision usually reads one cache
// line; a log of a single hit, and every counter and GCRA state, live in that
// line too. With the table at most 7/8 full, a window costs 73 to 146 bytes,
// plus, for a log, 16 bytes per hit in its window once it holds two or more
// (its log buffer then has room for at least 4 hits, fewer when the limit is
// smaller).
//
// The number of windows is bounded by WithMaxKeys (DefaultMaxKeys, about a
// million) and the number of locks separately by WithMaxLocks
// (DefaultMaxLocks), each split evenly over the shards. A key whose window
// has emptied is reset in place when it is next used, and dropped by a
// background sweep every DefaultSweepInterval (see WithSweepInterval) or
// under pressure: when a shard holds its most windows, a new key first
// triggers a sweep of emptied windows (at most once per quarter of the
// shard's capacity inserted, so the cost is amortised) and then evicts one
// window from a random sample of eight: an emptied one if the sample holds
// one, else the one that has used the smallest share of its limit (hits in
// the log, the counter's weighted count, the tokens taken from GCRA's
// bucket, each over the rule's limit or capacity), and among those the one
// that empties soonest, whatever their algorithms. Forgetting a window gives its client
// its used hits back, so the store forgets the clients that used least of
// their quota: a client that has used up its quota stays denied while a flood
// of new clients, each with a hit or two, pushes out other new clients. A
// flood of distinct clients therefore costs a bounded amount of memory.
//
// Locks never take the room of windows, so holding locks cannot switch rate
// limiting off. Held locks are never dropped, nor are fence counters still
// ahead of the clock (see below); when a shard holds its most locks and all
// are of that kind, Acquire fails with ErrFull until one is released or
// expires.
//
// # Locks and fences
//
// A lock is held while the store's clock is before its expiry; locks expire by
// the clock given to WithClock, read while the key's shard is held. A key's
// fence counter is kept for WithFenceTTL after its last acquire, every fence
// is at least the clock in microseconds, and a shard remembers the highest
// fence of the counters it dropped and starts new counters above it, so
// fences keep increasing after a counter was dropped, whatever the clock
// does.
// A burst of acquires faster than one per microsecond runs a counter ahead of
// the clock (each fence is the last one plus one); the counter is then kept,
// past its TTL and through eviction, until the clock has passed its last
// fence.
//
// # Time
//
// By default the store reads the monotonic clock, anchored to the wall clock
// when New runs: a wall-clock step never stretches or shrinks a window, and a
// reading costs half of time.Now. WithClock injects another source, such as a
// fake clock in tests. Hit reads the clock while it holds the key's shard, so
// concurrent hits on a key are recorded in time order; a clock that goes back
// is still handled, by inserting the hit in order as a sorted set would. As in
// the Redis scripts, a counter state from a later fixed window than the
// clock's counts as empty, and a GCRA bucket never holds more than its
// capacity.
//
// # Performance
//
// A decision takes one shard mutex (a stack, one per shard it touches) and
// does no allocation: none at all under the counter and GCRA, none under the
// log once the key's log has grown to fit its traffic. See the package benchmarks and the comparison
// with golang.org/x/time/rate and sethvargo/go-limiter in sluice's bench
// module.
package memstore
