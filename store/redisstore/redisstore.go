package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/lua"
	"github.com/sluicehq/sluice/store"
)

// DefaultPrefix is the key prefix a Store uses unless WithPrefix sets another.
const DefaultPrefix = "sluice:"

// DefaultFenceTTL is the time to live of a lock's fencing counter unless
// WithFenceTTL sets another.
const DefaultFenceTTL = 24 * time.Hour

// MinFenceTTL is the shortest fence TTL New accepts (see WithFenceTTL).
const MinFenceTTL = time.Second

// hashBytes is how many bytes of the SHA-256 digest of a caller's key name its
// Redis keys (in hex: twice as many characters).
const hashBytes = 16

// nameHashBytes is how many bytes of the SHA-256 digest of a rule's name
// name its windows' Redis keys, after the key's hash.
const nameHashBytes = 8

// idPrefixBytes is how many random bytes make a Store's hit id prefix
// (base64url: 8 characters).
const idPrefixBytes = 6

// Store is a store.Store on Redis. Create it with New; the zero value is not
// usable. A Store is safe for concurrent use. It does not own the Redis
// client: closing the client is the caller's job.
type Store struct {
	client   redis.Scripter
	prefix   string
	timeout  time.Duration
	clock    func() time.Time
	fenceTTL time.Duration

	inline   bool          // the client applies context deadlines itself
	reload   *slotReloader // nil unless the client has a Cluster slot map
	idPrefix string        // random, per Store: keeps hit ids of different Stores apart
	seq      atomic.Uint64 // last hit id issued

	ackReplicas int           // WithReplicaAck: replicas Acquire waits for; 0: none
	ackTimeout  time.Duration // WithReplicaAck: how long it waits for them

	batch *batcher // WithPipelining: sends concurrent calls in pipelines; nil: off
}

var _ store.Store = (*Store)(nil)

type config struct {
	prefix   string
	timeout  time.Duration
	clock    func() time.Time
	fenceTTL time.Duration

	ackReplicas int
	ackTimeout  time.Duration

	maxBatch int
}

// Option configures a Store in New.
type Option func(*config)

// WithPrefix sets the prefix of every Redis key the Store writes. The default
// is DefaultPrefix ("sluice:"). Use distinct prefixes for applications that
// share a Redis server. The prefix must not contain '{' or '}', which would
// change the keys' Cluster hash tags; New rejects it.
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithTimeout sets a deadline for every call to Redis, on top of the deadline
// the caller's context may carry. The default, 0, adds none. A negative
// timeout is rejected by New.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithClock makes the sliding window read the time from now instead of from
// Redis. The default, nil, lets the scripts read Redis TIME, so that
// application servers with skewed clocks share one window. Lock TTLs always
// run on the Redis clock.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.clock = now }
}

// WithFenceTTL sets the time to live of a lock's fencing counter, renewed on
// every acquire. The default is DefaultFenceTTL (24h); New rejects a TTL
// below MinFenceTTL (1s).
//
// Each fence is the counter's last fence plus one, and never below the Redis
// time in microseconds, so fences keep increasing after the counter expires
// as long as the counter's last fence is below the Redis clock by then. The
// counter runs ahead of the clock only by one microsecond per acquire made
// within the same microsecond (which a script run on Redis hardly allows), or
// by as much as the Redis clock steps back (a wall-clock correction, a
// failover to a server whose clock lags). Fences therefore stay increasing
// while the fence TTL exceeds that lead; the default leaves a day for the
// clock to catch up.
func WithFenceTTL(d time.Duration) Option {
	return func(c *config) { c.fenceTTL = d }
}

// New returns a Store that runs sluice's scripts through client: a
// *redis.Client (standalone or Sentinel failover), *redis.ClusterClient,
// *redis.Ring or anything else implementing redis.Scripter. New sends nothing
// to Redis; call Preload to cache the scripts at start-up. Bad options are an
// error wrapping store.ErrInvalidArgument.
//
// Create the client with ContextTimeoutEnabled: true in its options: go-redis
// then applies each call's deadline to its socket and the Store runs calls
// inline. Without it (the go-redis default), every call whose context can be
// cancelled or has a deadline (every call, with WithTimeout) runs in a
// goroutine that the Store stops waiting for when the context is done; an
// abandoned call keeps that goroutine and a pool connection until Redis
// answers or the client's ReadTimeout passes, and forever on a hung server
// if ReadTimeout is -1 or -2. See the package documentation, "Deadlines".
func New(client redis.Scripter, opts ...Option) (*Store, error) {
	if client == nil || isNilPointer(client) {
		return nil, fmt.Errorf("%w: redisstore: nil client", store.ErrInvalidArgument)
	}
	cfg := config{prefix: DefaultPrefix, fenceTTL: DefaultFenceTTL}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if strings.ContainsAny(cfg.prefix, "{}") {
		return nil, fmt.Errorf("%w: redisstore: prefix %q must not contain '{' or '}'", store.ErrInvalidArgument, cfg.prefix)
	}
	if cfg.timeout < 0 {
		return nil, fmt.Errorf("%w: redisstore: timeout %v must not be negative", store.ErrInvalidArgument, cfg.timeout)
	}
	if cfg.fenceTTL < MinFenceTTL {
		return nil, fmt.Errorf("%w: redisstore: fence ttl %v must be at least %v (MinFenceTTL)",
			store.ErrInvalidArgument, cfg.fenceTTL, MinFenceTTL)
	}
	if err := ackConfig(client, cfg.ackReplicas, cfg.ackTimeout); err != nil {
		return nil, err
	}
	if err := batchConfig(client, cfg.maxBatch); err != nil {
		return nil, err
	}
	var rnd [idPrefixBytes]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("redisstore: hit id prefix: %w", err)
	}
	s := &Store{
		client:   client,
		prefix:   cfg.prefix,
		timeout:  cfg.timeout,
		clock:    cfg.clock,
		fenceTTL: cfg.fenceTTL,
		inline:   appliesDeadlines(client),
		reload:   newSlotReloader(client),
		idPrefix: base64.RawURLEncoding.EncodeToString(rnd[:]),

		ackReplicas: cfg.ackReplicas,
		ackTimeout:  cfg.ackTimeout,
	}
	if cfg.maxBatch > 1 {
		s.batch = newBatcher(s, client, cfg.maxBatch)
	}
	return s, nil
}

// Hit records cost hits for key under rule if they fit, in one round trip:
// one EVALSHA of the rule's algorithm's script. See store.WindowStore.
func (s *Store) Hit(ctx context.Context, key string, rule store.Rule, cost int) (store.Result, error) {
	if err := store.ValidateHit(key, rule, cost); err != nil {
		return store.Result{}, err
	}
	c := new(hitCall)
	s.preparePart(&c.part, key, rule, cost)
	c.keys[0] = c.part.key
	c.limit, c.window, c.cost = int64(rule.Limit), rule.Window.Microseconds(), int64(cost)
	c.args = [...]any{&c.limit, &c.window, &c.cost, c.part.extra, ""}
	if s.clock != nil {
		c.now = s.clock().UnixMicro()
		c.args[4] = &c.now
	}
	reply, err := s.run(ctx, hitScripts[rule.Algorithm], c.keys[:], c.args[:]...)
	if err != nil {
		return store.Result{}, opError("hit", err)
	}
	var v [partReplyLen]int64
	if !hitReply(reply, rule.Algorithm, &v) {
		return store.Result{}, unexpected("hit", reply)
	}
	res, ok := c.part.result(v[:])
	if !ok {
		return store.Result{}, unexpected("hit", reply)
	}
	return res, nil
}

// Undo removes the hits that receipt identifies from key's state under
// receipt.Rule, in one round trip. A sliding log's receipt must come from
// the same Store value (hit ids carry the Store's random prefix); a zero
// receipt, or hits that already left the window, are not an error. Any other
// receipt without both an ID and a positive cost, or with an invalid rule
// for an algorithm other than the sliding log, is an error wrapping
// store.ErrInvalidArgument, and sends nothing. See store.WindowStore.
func (s *Store) Undo(ctx context.Context, key string, receipt store.Receipt) error {
	if err := store.ValidateUndo(key, receipt); err != nil {
		return err
	}
	if receipt.IsZero() {
		return nil
	}
	args := append(make([]any, 0, 1+undoArgsPerPart), s.now())
	args = s.appendUndoArgs(args, receipt)
	reply, err := s.run(ctx, windowUndo, []string{s.windowKey(receipt.Rule.Name, receipt.Rule.Algorithm, key)}, args...)
	if err != nil {
		return opError("undo", err)
	}
	if n, ok := reply.(int64); !ok || n < 0 {
		return unexpected("undo", reply)
	}
	return nil
}

// Acquire takes key for ttl (rounded up to whole milliseconds) on behalf of
// token, in one round trip, and issues a fencing token. See store.LockStore.
func (s *Store) Acquire(ctx context.Context, key, token string, ttl time.Duration) (store.LockResult, error) {
	if err := store.ValidateLock(key, token, ttl, true); err != nil {
		return store.LockResult{}, err
	}
	lockKey := s.redisKey("l:{", key, "}")
	reply, err := s.run(ctx, lockAcquire, []string{lockKey, lockKey + ":f"},
		token, ceilMillis(ttl), ceilMillis(s.fenceTTL))
	if err != nil {
		return store.LockResult{}, opError("acquire", err)
	}
	var v [2]int64
	ok := int64s(reply, v[:])
	switch {
	case ok && v[0] == 1 && v[1] > 0:
		return store.LockResult{Acquired: true, Fence: v[1]}, nil
	case ok && v[0] == 0 && v[1] >= 0:
		return store.LockResult{HolderTTL: time.Duration(v[1]) * time.Millisecond}, nil
	default:
		return store.LockResult{}, unexpected("acquire", reply)
	}
}

// Release frees key if token holds it; otherwise it returns an error wrapping
// store.ErrNotHeld. See store.LockStore.
func (s *Store) Release(ctx context.Context, key, token string) error {
	if err := store.ValidateLock(key, token, 0, false); err != nil {
		return err
	}
	reply, err := s.run(ctx, lockRelease, []string{s.redisKey("l:{", key, "}")}, token)
	if err != nil {
		return opError("release", err)
	}
	return heldReply("release", reply)
}

// Extend sets key's remaining TTL to ttl (rounded up to whole milliseconds)
// if token holds it; otherwise it returns an error wrapping store.ErrNotHeld
// and does not re-create the key. See store.LockStore.
func (s *Store) Extend(ctx context.Context, key, token string, ttl time.Duration) error {
	if err := store.ValidateLock(key, token, ttl, true); err != nil {
		return err
	}
	reply, err := s.run(ctx, lockExtend, []string{s.redisKey("l:{", key, "}")}, token, ceilMillis(ttl))
	if err != nil {
		return opError("extend", err)
	}
	return heldReply("extend", reply)
}

// TTL returns the remaining time to live of key's lock, in whole
// milliseconds, if token holds it; otherwise it returns an error wrapping
// store.ErrNotHeld. See store.LockStore.
func (s *Store) TTL(ctx context.Context, key, token string) (time.Duration, error) {
	if err := store.ValidateLock(key, token, 0, false); err != nil {
		return 0, err
	}
	reply, err := s.run(ctx, lockTTL, []string{s.redisKey("l:{", key, "}")}, token)
	if err != nil {
		return 0, opError("ttl", err)
	}
	ms, ok := reply.(int64)
	switch {
	case ok && ms == -1:
		return 0, fmt.Errorf("redisstore: ttl: %w", store.ErrNotHeld)
	case ok && ms >= 0:
		return time.Duration(ms) * time.Millisecond, nil
	default:
		return 0, unexpected("ttl", reply)
	}
}

// run sends one script call, honouring ctx and the Store's timeout. A client
// that applies context deadlines to its socket runs the call inline;
// otherwise the call runs in a goroutine that the Store stops waiting for
// when ctx is done. With pipelining, a call that finds another in flight
// waits for the next pipeline instead (see batcher). A call that fails as
// calls to a failed Cluster node fail makes the client reload its slot map
// (see slotReloader).
func (s *Store) run(ctx context.Context, cmd *lua.Command, keys []string, args ...any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	var ln *lane // with pipelining, the lane this call goes out on by itself
	if s.batch != nil && (cmd != lockAcquire || s.ackReplicas == 0) {
		var queued *call
		if ln, queued = s.batch.enqueue(ctx, cmd, keys, args); queued != nil {
			v, err := s.batch.wait(ctx, queued)
			return v, explain(ctx, err)
		}
	}
	if s.inline || ctx.Done() == nil {
		v, err := s.send(ctx, cmd, keys, args)
		if ln != nil {
			s.batch.release(ln)
		}
		return v, explain(ctx, err)
	}
	type reply struct {
		v   any
		err error
	}
	done := make(chan reply, 1)
	go func() {
		v, err := s.send(ctx, cmd, keys, args)
		done <- reply{v, err}
		if ln != nil {
			s.batch.release(ln)
		}
	}()
	select {
	case r := <-done:
		return r.v, explain(ctx, r.err)
	case <-ctx.Done():
		select {
		case r := <-done: // the reply won the race: use it
			return r.v, explain(ctx, r.err)
		default:
			return nil, ctx.Err()
		}
	}
}

// send sends one script call (with WAIT for the lock acquire under
// WithReplicaAck) and notes its failure.
func (s *Store) send(ctx context.Context, cmd *lua.Command, keys []string, args []any) (any, error) {
	var v any
	var err error
	if cmd == lockAcquire && s.ackReplicas > 0 {
		v, err = s.acquireAcked(ctx, keys, args...)
	} else {
		v, err = result(cmd.Run(ctx, s.client, keys, args...))
	}
	if err != nil {
		s.reload.failed(err)
	}
	return v, err
}

// hitCall is what Hit passes to its script, in one allocation: the key and
// argument slices and the values the arguments point to (go-redis writes
// *int64 and *string arguments as their values, and would allocate to hold
// each int64 or string in an interface).
type hitCall struct {
	part                     part
	keys                     [1]string
	args                     [5]any
	limit, window, cost, now int64
}

// appliesDeadlines reports whether client is a go-redis client that applies
// context deadlines to its socket (the ContextTimeoutEnabled option).
func appliesDeadlines(client redis.Scripter) bool {
	switch c := client.(type) {
	case interface{ Options() *redis.Options }:
		return c.Options().ContextTimeoutEnabled
	case interface{ Options() *redis.ClusterOptions }:
		return c.Options().ContextTimeoutEnabled
	case interface{ Options() *redis.RingOptions }:
		return c.Options().ContextTimeoutEnabled
	default:
		return false
	}
}

// isNilPointer reports whether v is a typed nil pointer, such as a nil
// *redis.Client in a redis.Scripter.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// explain adds ctx's error to err when ctx ended the call: a client that
// applies deadlines to its socket reports a bare i/o timeout, possibly before
// ctx's own timer has fired.
func explain(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := contextError(ctx); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// contextError returns ctx's error, or context.DeadlineExceeded once ctx's
// deadline has passed even if its timer has not fired yet.
func contextError(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// result unpacks a script reply; redis.Nil (which no sluice script returns)
// becomes a nil reply, which the callers reject as unexpected.
func result(cmd *redis.Cmd) (any, error) {
	v, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return v, err
}

// windowKey returns the Redis key of key's state under the rule name and
// algorithm alg: "r:{" + the hash of key + "}:" + the algorithm's letter + ":"
// + the hash of the name's length, a colon and the name. The hash tag holds
// the key alone, so that one key's states under several rules share a
// Cluster slot (a stack on them is one script call); the length keeps
// (name, key) pairs apart whatever bytes they hold, and the letter keeps
// the states of two algorithms apart.
func (s *Store) windowKey(name string, alg store.Algorithm, key string) string {
	sum := sha256.Sum256([]byte(key))
	nameSum := sha256.Sum256([]byte(strconv.Itoa(len(name)) + ":" + name))
	code := algorithmCodes[alg]
	var b strings.Builder
	b.Grow(len(s.prefix) + len("r:{}::") + 2*hashBytes + len(code) + 2*nameHashBytes)
	b.WriteString(s.prefix)
	b.WriteString("r:{")
	var h [2 * hashBytes]byte
	hex.Encode(h[:], sum[:hashBytes])
	b.Write(h[:])
	b.WriteString("}:")
	b.WriteString(code)
	b.WriteByte(':')
	hex.Encode(h[:2*nameHashBytes], nameSum[:nameHashBytes])
	b.Write(h[:2*nameHashBytes])
	return b.String()
}

// redisKey returns prefix + open + hex(sha256(key)[:16]) + close.
func (s *Store) redisKey(open, key, close string) string {
	sum := sha256.Sum256([]byte(key))
	var b strings.Builder
	b.Grow(len(s.prefix) + len(open) + 2*hashBytes + len(close) + 2)
	b.WriteString(s.prefix)
	b.WriteString(open)
	var h [2 * hashBytes]byte
	hex.Encode(h[:], sum[:hashBytes])
	b.Write(h[:])
	b.WriteString(close)
	return b.String()
}

// hitID returns the sorted-set member of hit id: the Store's random prefix and
// the id in base 36.
func (s *Store) hitID(id uint64) string {
	var buf [idPrefixBytes*2 + 16]byte
	b := append(buf[:0], s.idPrefix...)
	b = strconv.AppendUint(b, id, 36)
	return string(b)
}

// ceilMillis returns d in milliseconds, rounded up.
func ceilMillis(d time.Duration) int64 {
	ms := d / time.Millisecond
	if d%time.Millisecond != 0 {
		ms++
	}
	return int64(ms)
}

// int64s reports whether reply is an array of len(out) integers, and stores
// them in out.
func int64s(reply any, out []int64) bool {
	arr, ok := reply.([]any)
	if !ok || len(arr) != len(out) {
		return false
	}
	for i, x := range arr {
		if out[i], ok = x.(int64); !ok {
			return false
		}
	}
	return true
}

// heldReply maps the 1/0 reply of release and extend.
func heldReply(op string, reply any) error {
	switch n, ok := reply.(int64); {
	case ok && n == 1:
		return nil
	case ok && n == 0:
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrNotHeld)
	default:
		return unexpected(op, reply)
	}
}

func opError(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

func unexpected(op string, reply any) error {
	return fmt.Errorf("redisstore: %s: unexpected reply %T %v", op, reply, reply)
}
