package memstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/store"
)

// Defaults of the options.
const (
	// DefaultMaxKeys is the bound on the number of rate-limit windows unless
	// WithMaxKeys sets another: 1<<20 (1,048,576).
	DefaultMaxKeys = 1 << 20

	// DefaultMaxLocks is the bound on the number of locks and fence counters
	// unless WithMaxLocks sets another: 1<<16 (65,536).
	DefaultMaxLocks = 1 << 16

	// DefaultFenceTTL is how long a lock's fence counter is kept after its
	// last acquire unless WithFenceTTL sets another.
	DefaultFenceTTL = 24 * time.Hour

	// DefaultSweepInterval is how often a background goroutine drops expired
	// keys unless WithSweepInterval sets another.
	DefaultSweepInterval = time.Minute
)

// maxShards is the number of shards for large key bounds; minShardKeys is the
// least number of keys a shard holds when the bound is small.
const (
	maxShards    = 256
	minShardKeys = 64
)

// ErrFull reports that a lock cannot be acquired because its shard holds the
// most locks WithMaxLocks allows and none of them can be dropped: all are
// held, or fence counters whose last fence is still ahead of the clock (see
// WithFenceTTL). Rate-limit windows never report it: they are bounded
// separately and a new window always finds room by eviction.
var ErrFull = errors.New("memstore: too many keys")

// Store is an in-memory store.Store. Create it with New; the zero value is not
// usable. A Store is safe for concurrent use. Close stops its background
// sweeper; calls after Close return store.ErrClosed.
type Store struct {
	shards     []shard
	shardShift uint // digest >> shardShift picks the shard
	shardBits  uint // low bits of a receipt id that name its shard
	shardKeys  int  // bound on the windows of one shard
	shardLocks int  // bound on the locks of one shard

	keySeed  maphash.Seed
	nameSeed maphash.Seed
	algSalt  [4]uint64 // by store.Algorithm; 0 for the sliding log
	tokSeeds [2]maphash.Seed

	clock     func() time.Time // nil: the monotonic clock below
	base      time.Time        // anchor of the monotonic clock
	baseNanos int64            // base as Unix nanoseconds
	fenceTTL  int64            // nanoseconds

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{} // closed by Close; nil without a sweeper
	done      chan struct{} // closed when the sweeper returns
}

var (
	_ store.Store     = (*Store)(nil)
	_ store.InProcess = (*Store)(nil)
)

type config struct {
	clock         func() time.Time
	maxKeys       int
	maxLocks      int
	fenceTTL      time.Duration
	sweepInterval time.Duration
}

// Option configures a Store in New.
type Option func(*config)

// WithClock makes the Store read the time from now, for the rate-limit
// algorithms and for lock expiry. The default, nil, reads the monotonic clock
// anchored to the wall clock when New runs.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.clock = now }
}

// WithMaxKeys bounds the number of rate-limit windows (one per key, rule
// name and algorithm in use) that the Store holds; it must be positive. The
// default is DefaultMaxKeys. The bound is split evenly over the shards (at
// most 256, each holding at least 64 keys when n allows), so the Store may
// start evicting a little before n keys. Eviction keeps the keys closest to
// their limit (see the package documentation). A HitAll never evicts the
// windows of its own stack, so a bound below a stack's number of rules lets
// the Store hold that stack's windows, over the bound, until they are
// evicted or swept.
func WithMaxKeys(n int) Option {
	return func(c *config) { c.maxKeys = n }
}

// WithMaxLocks bounds the number of locks and fence counters the Store holds;
// it must be positive. The default is DefaultMaxLocks. The bound is split
// over the shards like WithMaxKeys's (rounded up, at least one per shard).
// Locks never take room from rate-limit windows: when a shard holds its most
// locks and all are held, Acquire fails with ErrFull (a guard then answers
// as its store-failure mode says, 503 by default) while rate limiting goes on.
func WithMaxLocks(n int) Option {
	return func(c *config) { c.maxLocks = n }
}

// WithFenceTTL sets how long a lock's fence counter is kept after the lock's
// last acquire. The default is DefaultFenceTTL (24h); it must be at least one
// millisecond. Fences keep increasing after the counter is dropped, because
// none is issued below the clock in microseconds. Acquires faster than one per
// microsecond run the counter ahead of the clock (each fence is the last one
// plus one); such a counter is kept past its TTL until the clock has passed
// its last fence, so even a short fence TTL never lets fences go down.
func WithFenceTTL(d time.Duration) Option {
	return func(c *config) { c.fenceTTL = d }
}

// WithSweepInterval sets how often a background goroutine drops expired keys.
// The default is DefaultSweepInterval (1m); 0 starts no goroutine, leaving
// expired keys to be dropped when they are next used or when their shard is
// full. A negative interval is rejected by New.
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) { c.sweepInterval = d }
}

// New returns an empty Store. Bad options are an error wrapping
// store.ErrInvalidArgument. Unless WithSweepInterval(0) is given, New starts
// a sweeper goroutine that Close stops.
func New(opts ...Option) (*Store, error) {
	cfg := config{
		maxKeys:       DefaultMaxKeys,
		maxLocks:      DefaultMaxLocks,
		fenceTTL:      DefaultFenceTTL,
		sweepInterval: DefaultSweepInterval,
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.maxKeys <= 0 {
		return nil, fmt.Errorf("%w: memstore: max keys %d must be positive", store.ErrInvalidArgument, cfg.maxKeys)
	}
	if cfg.maxLocks <= 0 {
		return nil, fmt.Errorf("%w: memstore: max locks %d must be positive", store.ErrInvalidArgument, cfg.maxLocks)
	}
	if cfg.fenceTTL < time.Millisecond {
		return nil, fmt.Errorf("%w: memstore: fence ttl %v must be at least 1ms", store.ErrInvalidArgument, cfg.fenceTTL)
	}
	if cfg.sweepInterval < 0 {
		return nil, fmt.Errorf("%w: memstore: sweep interval %v must not be negative", store.ErrInvalidArgument, cfg.sweepInterval)
	}

	n := 1
	for n < maxShards && n*2*minShardKeys <= cfg.maxKeys {
		n *= 2
	}
	shardBits := uint(bits.TrailingZeros(uint(n)))
	s := &Store{
		shards:     make([]shard, n),
		shardShift: 64 - shardBits,
		shardBits:  shardBits,
		shardKeys:  min(cfg.maxKeys/n, math.MaxInt32),
		shardLocks: min((cfg.maxLocks+n-1)/n, math.MaxInt32),
		keySeed:    maphash.MakeSeed(),
		nameSeed:   maphash.MakeSeed(),
		tokSeeds:   [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		clock:      cfg.clock,
		base:       time.Now(),
		fenceTTL:   int64(cfg.fenceTTL),
	}
	s.baseNanos = s.base.UnixNano()
	for a := store.SlidingCounter; a <= store.GCRA; a++ {
		s.algSalt[a] = rand.Uint64() | 1
	}
	for i := range s.shards {
		s.shards[i].init(uint64(i))
	}
	if cfg.sweepInterval > 0 {
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go s.sweeper(cfg.sweepInterval)
	}
	return s, nil
}

// Close stops the background sweeper and drops every key. It is safe to call
// more than once and always returns nil; any call on the Store after Close
// returns store.ErrClosed. A call made while Close runs either takes effect
// before Close drops its key or returns store.ErrClosed: once Close has
// returned, the Store holds no key.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			sh.clear()
			sh.mu.Unlock()
		}
	})
	return nil
}

// InProcess reports true: every call is answered from process memory, so
// callers need no per-call deadline. It implements store.InProcess.
func (s *Store) InProcess() bool { return true }

// Len returns the number of keys the Store holds, windows and locks together,
// including expired ones not yet dropped.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.len()
		sh.mu.Unlock()
	}
	return n
}

// nowNanos returns the current time in nanoseconds since the Unix epoch.
func (s *Store) nowNanos() int64 {
	if s.clock == nil {
		return s.baseNanos + int64(time.Since(s.base))
	}
	return s.clock().UnixNano()
}

// shard returns the shard holding a key digest.
func (s *Store) shard(d uint64) *shard {
	return &s.shards[d>>s.shardShift&uint64(len(s.shards)-1)]
}

// check returns the error every call reports before doing any work. A call
// checks the closed flag again once it holds its shard: Close sets the flag
// before it clears each shard under the shard's mutex, so a call that passed
// check just before Close cannot re-insert a key into a cleared shard.
func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// Hit records cost hits for key under rule if they fit, counted by the
// rule's algorithm. See store.WindowStore.
func (s *Store) Hit(ctx context.Context, key string, rule store.Rule, cost int) (res store.Result, err error) {
	if err := s.check(ctx); err != nil {
		return store.Result{}, err
	}
	if !validHit(key, &rule, cost) {
		if err := store.ValidateHit(key, rule, cost); err != nil {
			return store.Result{}, err
		}
	}
	d := s.digest(rule.Name, key, rule.Algorithm)
	sh := s.shard(d)

	sh.mu.Lock()
	if s.closed.Load() { // Close may have cleared the shard since check
		sh.mu.Unlock()
		return store.Result{}, store.ErrClosed
	}
	w := sh.windows.find(d)
	// The clock is read under the lock, so a shard records its hits in time
	// order even under concurrency.
	nowNanos := s.nowNanos()
	if w == nil {
		w = sh.addWindow(d, nowNanos, s.shardKeys, rule.Algorithm, nil)
	}
	// Time is kept in microseconds, like the Lua scripts.
	s.decide(sh, w, nowNanos/1e3, &rule, cost, record, &res)
	sh.mu.Unlock()
	return res, nil
}

// validHit reports whether store.ValidateHit accepts the arguments of a Hit
// without a burst, checked inline: the usual rules pass here, at a fraction
// of ValidateHit's cost on a decision. False means "not shown valid here":
// the caller then asks ValidateHit, which has the last word and the error.
func validHit(key string, rule *store.Rule, cost int) bool {
	if key == "" || cost <= 0 || cost > rule.Limit || rule.Burst != 0 ||
		rule.Window < time.Millisecond || rule.Window > store.MaxWindow {
		return false
	}
	switch rule.Algorithm {
	case store.SlidingLog:
		return rule.Limit <= store.MaxLimit && cost <= store.MaxCost
	case store.SlidingCounter:
		return rule.Limit <= store.MaxCounterLimit
	case store.GCRA:
		return rule.Limit <= store.MaxCounterLimit && int64(rule.Window/time.Microsecond) >= int64(rule.Limit)
	}
	return false
}

// A mode says what decide does besides telling whether a hit fits.
type mode uint8

const (
	// fitsOnly only tells whether the hit fits.
	fitsOnly mode = iota
	// describe also sets the Result to the state as it stands, recording
	// nothing: RetryAfter is set if the hit does not fit.
	describe
	// record records the hit if it fits and sets the Result: allowed with
	// a receipt, or as describe does.
	record
)

// decide decides a hit of cost on w at now (microseconds) under rule, by the
// rule's algorithm, does what m says, and reports whether the hit fits. The
// rule and cost must have been validated, and sh must be locked.
func (s *Store) decide(sh *shard, w *window, now int64, rule *store.Rule, cost int, m mode, res *store.Result) bool {
	switch rule.Algorithm {
	case store.SlidingCounter:
		return hitCounter(w, now, rule, cost, m, res)
	case store.GCRA:
		return hitGCRA(w, now, rule, cost, m, res)
	}
	return s.hitLog(sh, w, now, rule, cost, m, res)
}

// hitLog is decide for the sliding log.
func (s *Store) hitLog(sh *shard, w *window, now int64, rule *store.Rule, cost int, m mode, res *store.Result) bool {
	win := int64(rule.Window / time.Microsecond)
	if w.expires <= now {
		w.hits.reset() // every hit has left: skip the pruning
	} else {
		w.hits.prune(now - win)
	}
	limit := rule.Limit
	w.hits.limit = uint32(limit)
	count := w.hits.len()
	fits := count+cost <= limit
	if m == fitsOnly {
		return fits
	}
	*res = store.Result{Limit: limit}
	switch {
	case fits && m == record:
		sh.seq++
		id := sh.seq<<s.shardBits | sh.id
		w.hits.fit(count+cost, limit)
		var newest int64
		for range cost {
			newest = w.hits.push(hit{at: now, id: id})
		}
		count += cost
		w.expires = newest + win
		res.Allowed = true
		res.Receipt = store.Receipt{ID: id, Cost: cost, Rule: *rule}
	case !fits:
		// The (count+cost-limit)-th oldest hit must leave before cost fits.
		at := w.hits.oldest()
		if rank := count + cost - limit - 1; rank > 0 {
			at = w.hits.at(rank).at
		}
		res.RetryAfter = leaves(at, win, now)
	}
	if count > 0 {
		res.ResetAfter = leaves(w.hits.oldest(), win, now)
	}
	res.Remaining = max(limit-count, 0)
	return fits
}

// leaves returns how long until a hit at the given time leaves a window of
// win microseconds, clamped to [0, win] as the Lua script does.
func leaves(at, win, now int64) time.Duration {
	d := min(max(at+win-now, 0), win)
	return time.Duration(d) * time.Microsecond
}

// Undo removes the hits that receipt identifies from key's state under
// receipt.Rule. A zero receipt, or hits that no longer count, are no-ops.
// Any other receipt without both an ID and a positive cost, or whose rule is
// not valid for an O(1) algorithm, is an error wrapping
// store.ErrInvalidArgument. See store.WindowStore.
func (s *Store) Undo(ctx context.Context, key string, receipt store.Receipt) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := store.ValidateUndo(key, receipt); err != nil {
		return err
	}
	if receipt.IsZero() {
		return nil
	}
	rule := receipt.Rule
	d := s.digest(rule.Name, key, rule.Algorithm)
	sh := s.shard(d)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	w := sh.windows.find(d)
	if w == nil {
		return nil
	}
	switch rule.Algorithm {
	case store.SlidingCounter:
		undoCounter(w, receipt.ID, receipt.Cost)
	case store.GCRA:
		undoGCRA(&sh.windows, d, w, s.nowNanos()/1e3, rule, receipt.Cost)
	default:
		w.hits.remove(receipt.ID, receipt.Cost)
	}
	return nil
}

// digest returns the 64-bit digest of key under the namespace name and the
// algorithm alg (which must be valid): the key's digest alone for an empty
// name under the sliding log, else mixed with the digest of the name, in
// which a random salt per algorithm other than the log is folded. The name
// is hashed apart from the key, never joined to it, so a decision allocates
// nothing.
func (s *Store) digest(name, key string, alg store.Algorithm) uint64 {
	d := maphash.String(s.keySeed, key)
	n := s.algSalt[alg&3]
	if name != "" {
		n ^= maphash.String(s.nameSeed, name)
	}
	if n == 0 {
		return d
	}
	// A multiply-xorshift step (as in splitmix64) mixes the two: for one
	// name and algorithm it is a bijection of the key's digest, so their
	// keys collide only when their digests do; across names and algorithms
	// the seeds and salts are secret, so no collision can be aimed at.
	x := (d ^ n) * 0xbf58476d1ce4e5b9
	x ^= x >> 31
	return x ^ n
}

// tokenDigest returns the 128-bit digest under which a lock token is held.
func (s *Store) tokenDigest(token string) [2]uint64 {
	return [2]uint64{maphash.String(s.tokSeeds[0], token), maphash.String(s.tokSeeds[1], token)}
}

// Acquire takes key for ttl on behalf of token. See store.LockStore.
func (s *Store) Acquire(ctx context.Context, key, token string, ttl time.Duration) (store.LockResult, error) {
	if err := s.check(ctx); err != nil {
		return store.LockResult{}, err
	}
	if err := store.ValidateLock(key, token, ttl, true); err != nil {
		return store.LockResult{}, err
	}
	tok := s.tokenDigest(token)
	d := maphash.String(s.keySeed, key)
	sh := s.shard(d)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() { // Close may have cleared the shard since check
		return store.LockResult{}, store.ErrClosed
	}
	// The clock is read under the lock: a time read before it could be older
	// than a fence issued meanwhile by another caller.
	now := s.nowNanos()
	st, ok := sh.locks[d]
	if ok && st.held(now) && st.holder != tok {
		return store.LockResult{HolderTTL: time.Duration(st.expires - now)}, nil
	}
	if !ok {
		if err := sh.makeLockRoom(now, s.shardLocks); err != nil {
			return store.LockResult{}, err
		}
	}
	// A counter still in the map is used even if its TTL has passed: it is
	// kept only while its last fence may be ahead of the clock. A new counter
	// starts above every counter the shard dropped.
	last := sh.fenceFloor
	if ok {
		last = max(last, st.fence)
	}
	fence := max(last+1, now/1e3)
	l := lock{
		holder:       tok,
		expires:      now + int64(ttl),
		fence:        fence,
		fenceExpires: now + s.fenceTTL,
	}
	if ok {
		sh.locks[d] = l
	} else {
		sh.addLock(d, l)
	}
	return store.LockResult{Acquired: true, Fence: fence}, nil
}

// Release frees key if token holds it. See store.LockStore.
func (s *Store) Release(ctx context.Context, key, token string) error {
	if err := store.ValidateLock(key, token, 0, false); err != nil {
		return err
	}
	return s.withHeld(ctx, key, token, func(sh *shard, d uint64, st lock, now int64) {
		st.expires = 0
		if st.droppable(now) {
			sh.dropLock(d, st)
			return
		}
		sh.locks[d] = st
	})
}

// Extend sets key's remaining TTL to ttl if token holds it; it never
// re-creates an expired lock. See store.LockStore.
func (s *Store) Extend(ctx context.Context, key, token string, ttl time.Duration) error {
	if err := store.ValidateLock(key, token, ttl, true); err != nil {
		return err
	}
	return s.withHeld(ctx, key, token, func(sh *shard, d uint64, st lock, now int64) {
		st.expires = now + int64(ttl)
		sh.locks[d] = st
	})
}

// TTL returns the remaining time to live of key's lock if token holds it.
// See store.LockStore.
func (s *Store) TTL(ctx context.Context, key, token string) (time.Duration, error) {
	if err := store.ValidateLock(key, token, 0, false); err != nil {
		return 0, err
	}
	var ttl time.Duration
	err := s.withHeld(ctx, key, token, func(_ *shard, _ uint64, st lock, now int64) {
		ttl = time.Duration(st.expires - now)
	})
	return ttl, err
}

// withHeld runs fn under key's shard lock if token holds key's lock, and
// returns store.ErrNotHeld otherwise (store.ErrClosed after Close, the
// context's error if it is done). The arguments must have been validated.
func (s *Store) withHeld(ctx context.Context, key, token string, fn func(sh *shard, d uint64, st lock, now int64)) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	tok := s.tokenDigest(token)
	d := maphash.String(s.keySeed, key)
	sh := s.shard(d)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	now := s.nowNanos() // under the lock, as in Acquire
	st, ok := sh.locks[d]
	if !ok || !st.held(now) || st.holder != tok {
		return store.ErrNotHeld
	}
	fn(sh, d, st, now)
	return nil
}

// sweeper drops expired keys every interval until Close.
func (s *Store) sweeper(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep drops the expired keys of every shard, one shard at a time.
func (s *Store) sweep() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.sweep(s.nowNanos())
		sh.compact()
		sh.mu.Unlock()
	}
}
