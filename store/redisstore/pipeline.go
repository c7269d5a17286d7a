package redisstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/lua"
	"github.com/sluicehq/sluice/store"
)

// maxInFlight is how many calls sent by themselves and pipelines may be in
// flight at once on one server's lane: with two, the server executes one
// while the replies of the other are read and the next forms, and two
// goroutines deciding at once wait for nobody (with one, they took turns,
// at 70% of the unpipelined rate).
const maxInFlight = 2

// DefaultMaxBatch is a good bound for WithPipelining: with 128 calls a
// pipeline carries about 20 kB.
const DefaultMaxBatch = 128

// WithPipelining sends the calls that many goroutines make at once in
// pipelines of at most maxBatch calls, on a client with a Pipeline method:
// *redis.Client (also Sentinel's failover client), *redis.ClusterClient or
// *redis.Ring. Each server (a Cluster's master, a Ring's shard) has its own
// pipelines. A call goes out at once, by itself, while fewer than two calls
// or pipelines are in flight to its server; calls made while two are wait,
// and go out together, in one pipeline, as soon as one of the two ends.
// Each call is still one script call (EVALSHA; EVAL after NOSCRIPT), and
// each caller's context still ends its own wait at once: see the package
// documentation, "Pipelining", for what a call shares with the others in
// its pipeline and the measurements. The default, 0 (as 1), sends every
// call by itself; DefaultMaxBatch is a good bound. maxBatch must not be
// negative, and above 1 the client must have a Pipeline method; New rejects
// other values. Acquire under WithReplicaAck always goes by itself.
func WithPipelining(maxBatch int) Option {
	return func(c *config) { c.maxBatch = maxBatch }
}

// batchConfig checks the WithPipelining setting against client.
func batchConfig(client redis.Scripter, maxBatch int) error {
	switch {
	case maxBatch < 0:
		return fmt.Errorf("%w: redisstore: pipeline batch %d must not be negative", store.ErrInvalidArgument, maxBatch)
	case maxBatch <= 1:
		return nil
	}
	if _, ok := client.(pipelineClient); !ok {
		return fmt.Errorf("%w: redisstore: pipelining needs a client with a Pipeline method (%T has none)",
			store.ErrInvalidArgument, client)
	}
	return nil
}

// batcher sends a Store's script calls in pipelines by natural batching,
// in one lane per server: while fewer than maxInFlight calls or pipelines
// are in flight on its lane, a call goes out at once, by itself; calls that
// arrive while maxInFlight are wait in the lane's queue, and when one ends
// they go out together, at most max to a pipeline. A drain goroutine sends
// a lane's queued calls, on a context of their own (see sendBatch), and
// exits when the queue is empty. A Cluster has a lane per master and a Ring
// one per shard, so that a slow or failed server delays only the calls for
// it.
type batcher struct {
	s      *Store
	client pipelineClient
	max    int
	server func(ctx context.Context, key string) string // the lane of a key; nil: one lane

	mu    sync.Mutex
	lanes map[string]*lane
}

// lane is the queue of calls for one server, guarded by the batcher's mu.
type lane struct {
	inFlight int     // calls sent by themselves and pipelines in flight
	queue    []*call // calls waiting for the next pipeline
}

// call is one script call waiting in a lane's queue. done receives once v
// and err are set; a caller whose context ended has stopped listening.
type call struct {
	ctx  context.Context
	cmd  *lua.Command
	keys []string
	args []any

	v    any
	err  error
	done chan struct{}
}

// shardForKey is implemented by *redis.Ring.
type shardForKey interface {
	GetShardClientForKey(key string) (*redis.Client, error)
}

// newBatcher returns a batcher for s over client (checked by batchConfig).
func newBatcher(s *Store, client redis.Scripter, max int) *batcher {
	b := &batcher{s: s, client: client.(pipelineClient), max: max, lanes: make(map[string]*lane)}
	switch c := client.(type) {
	case masterForKey:
		b.server = func(ctx context.Context, key string) string {
			if node, err := c.MasterForKey(ctx, key); err == nil {
				return node.Options().Addr
			}
			return "" // the pipeline will tell the caller what is wrong
		}
	case shardForKey:
		b.server = func(_ context.Context, key string) string {
			if shard, err := c.GetShardClientForKey(key); err == nil {
				return shard.Options().Addr
			}
			return ""
		}
	}
	return b
}

// enqueue returns the lane of a call. If maxInFlight calls or pipelines are
// in flight on it, it queues the call and returns it too; otherwise it
// counts the call that the caller is about to send as in flight, and the
// caller must call release when the call has been answered.
func (b *batcher) enqueue(ctx context.Context, cmd *lua.Command, keys []string, args []any) (*lane, *call) {
	server := ""
	if b.server != nil {
		server = b.server(ctx, keys[0])
	}
	b.mu.Lock()
	ln := b.lanes[server]
	if ln == nil {
		ln = &lane{}
		b.lanes[server] = ln
	}
	if ln.inFlight < maxInFlight {
		ln.inFlight++
		b.mu.Unlock()
		return ln, nil
	}
	c := &call{ctx: ctx, cmd: cmd, keys: keys, args: args, done: make(chan struct{}, 1)}
	ln.queue = append(ln.queue, c)
	b.mu.Unlock()
	return ln, c
}

// release ends the call in flight on ln that enqueue let through: the calls
// queued meanwhile go out in a drain goroutine, which takes its place.
func (b *batcher) release(ln *lane) {
	b.mu.Lock()
	if len(ln.queue) == 0 {
		ln.inFlight--
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go b.drain(ln)
}

// wait returns the reply of c, or ctx's error as soon as ctx ends; c then
// goes out with its pipeline (or is dropped, if it has not left the queue).
func (b *batcher) wait(ctx context.Context, c *call) (any, error) {
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		select {
		case <-c.done: // the reply won the race: use it
			return c.v, c.err
		default:
			return nil, ctx.Err()
		}
	}
}

// drain sends ln's queue, at most max calls to a pipeline, until it is
// empty; then it leaves its place in flight.
func (b *batcher) drain(ln *lane) {
	var batch []*call
	for {
		b.mu.Lock()
		if len(ln.queue) == 0 {
			ln.inFlight--
			b.mu.Unlock()
			return
		}
		n := min(len(ln.queue), b.max)
		batch = append(batch[:0], ln.queue[:n]...)
		rest := copy(ln.queue, ln.queue[n:])
		clear(ln.queue[rest:])
		ln.queue = ln.queue[:rest]
		b.mu.Unlock()

		b.sendBatch(batch)
		clear(batch)
	}
}

// sendBatch sends the calls of batch whose callers still wait, and hands
// each its reply. The pipeline runs on a context detached from every
// caller, so that a caller whose context ends fails alone: its deadline is
// the latest among the calls (each already bounded by WithTimeout), and it
// has none when one of the calls has none. Calls that the server answers
// NOSCRIPT are sent again with EVAL, in one more pipeline.
func (b *batcher) sendBatch(batch []*call) {
	live := batch[:0]
	var (
		latest   time.Time
		unending bool
	)
	for _, c := range batch {
		if c.ctx.Err() != nil {
			continue // its caller has returned: send nothing for it
		}
		live = append(live, c)
		if d, ok := c.ctx.Deadline(); !ok {
			unending = true
		} else if d.After(latest) {
			latest = d
		}
	}
	if len(live) == 0 {
		return
	}
	ctx := context.Background()
	if !unending {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, latest)
		defer cancel()
	}

	if len(live) == 1 {
		c := live[0]
		c.v, c.err = result(c.cmd.Run(ctx, b.client, c.keys, c.args...))
		b.finish(c)
		return
	}
	cmds := make([]*redis.Cmd, len(live))
	pipe := b.client.Pipeline()
	for i, c := range live {
		cmds[i] = pipe.EvalSha(ctx, c.cmd.SHA(), c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error

	var again []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		pipe := b.client.Pipeline()
		for _, i := range again {
			c := live[i]
			cmds[i] = pipe.Eval(ctx, c.cmd.Source(), c.keys, c.args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	for i, c := range live {
		c.v, c.err = result(cmds[i])
		b.finish(c)
	}
}

// finish notes c's failure for the slot map and hands c its reply.
func (b *batcher) finish(c *call) {
	if c.err != nil {
		b.s.reload.failed(c.err)
	}
	c.done <- struct{}{}
}
