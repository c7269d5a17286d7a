package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/store"
)

// ErrNotReplicated reports an acquire that fewer replicas acknowledged than
// WithReplicaAck asks for. The lock was released again (or, if that release
// failed too, it expires after its TTL): the caller does not hold it.
var ErrNotReplicated = errors.New("redisstore: lock not acknowledged by enough replicas")

// MaxReplicaAckTimeout is the longest wait WithReplicaAck accepts.
const MaxReplicaAckTimeout = 10 * time.Second

// ReloadInterval is the least time between two reloads of a Redis Cluster's
// slot map that a Store asks for after calls that failed as calls to a failed
// node fail: a refused, reset or closed connection, a network timeout, a
// deadline that passed. go-redis follows MOVED replies and reloads the map on
// its own schedule, but not when a node refuses connections, so without these
// reloads a Store would keep dialling a dead master after a replica took over
// its slots, for as long as that schedule (10 s in go-redis v9.17, a minute
// from v9.22). docs/failover.md has the measured recovery times.
const ReloadInterval = 250 * time.Millisecond

// WithReplicaAck makes Acquire wait until at least n replicas of the lock's
// master have received the lock, for at most timeout, before it reports the
// lock acquired: the script and a WAIT n timeout go to the master in one
// pipeline (one round trip; two when the master's script cache is empty). If
// fewer replicas acknowledge in time, Acquire releases the lock again and
// returns an error wrapping ErrNotReplicated, so that a lock the caller holds
// is on n replicas as well as on the master, and survives a failover that
// promotes one of them. The default, n = 0, waits for no replica.
//
// The acknowledgement means the replicas hold the lock in memory, not on
// disk, and it protects the lock only if a replica that acknowledged it is
// the one promoted (with one replica per master it always is). Release,
// Extend and TTL do not wait. See docs/locks.md, "Locks and failover".
//
// timeout is rounded up to whole milliseconds; it must be positive and at
// most MaxReplicaAckTimeout, and should stay well below the deadline of the
// caller (lockguard's store timeout) and the client's ReadTimeout. The client
// must be a *redis.ClusterClient (the pipeline goes to the key's master), or
// a client with a Pipeline method whose commands all reach one server, such
// as *redis.Client (also Sentinel's failover client); New rejects a
// *redis.Ring, whose pipeline may send WAIT to another shard, and a client
// without a Pipeline method.
func WithReplicaAck(n int, timeout time.Duration) Option {
	return func(c *config) { c.ackReplicas, c.ackTimeout = n, timeout }
}

// pipelineClient is a client whose pipelines go to a single server.
type pipelineClient interface {
	redis.Scripter
	Pipeline() redis.Pipeliner
}

// masterForKey is implemented by *redis.ClusterClient.
type masterForKey interface {
	MasterForKey(ctx context.Context, key string) (*redis.Client, error)
}

// ackConfig checks the WithReplicaAck settings against client.
func ackConfig(client redis.Scripter, n int, timeout time.Duration) error {
	switch {
	case n < 0:
		return fmt.Errorf("%w: redisstore: replica ack count %d must not be negative", store.ErrInvalidArgument, n)
	case n == 0:
		return nil
	case timeout <= 0 || timeout > MaxReplicaAckTimeout:
		return fmt.Errorf("%w: redisstore: replica ack timeout %v must be in (0, %v]",
			store.ErrInvalidArgument, timeout, MaxReplicaAckTimeout)
	}
	if _, ok := client.(masterForKey); ok {
		return nil
	}
	if _, ok := client.(*redis.Ring); ok {
		return fmt.Errorf("%w: redisstore: replica ack needs a client whose pipeline reaches one server; a Ring's does not",
			store.ErrInvalidArgument)
	}
	if _, ok := client.(pipelineClient); !ok {
		return fmt.Errorf("%w: redisstore: replica ack needs a client with a Pipeline method (%T has none)",
			store.ErrInvalidArgument, client)
	}
	return nil
}

// acquireAcked runs the acquire script and WAIT in one pipeline on the lock's
// master, and releases a lock that fewer than s.ackReplicas replicas
// acknowledged. It returns the script's reply.
func (s *Store) acquireAcked(ctx context.Context, keys []string, args ...any) (any, error) {
	var node pipelineClient
	if c, ok := s.client.(masterForKey); ok {
		m, err := c.MasterForKey(ctx, keys[0])
		if err != nil {
			return nil, err
		}
		node = m
	} else {
		node = s.client.(pipelineClient) // checked by New
	}
	reply, acked, err := s.evalWait(ctx, node, func(p redis.Pipeliner) *redis.Cmd {
		return p.EvalSha(ctx, lockAcquire.SHA(), keys, args...)
	})
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		reply, acked, err = s.evalWait(ctx, node, func(p redis.Pipeliner) *redis.Cmd {
			return p.Eval(ctx, lockAcquire.Source(), keys, args...)
		})
	}
	if err != nil {
		return nil, err
	}
	if arr, ok := reply.([]any); !ok || len(arr) != 2 || arr[0] != int64(1) || acked >= int64(s.ackReplicas) {
		return reply, nil // not acquired, malformed (Acquire reports it), or acknowledged
	}
	if err := lockRelease.Run(ctx, node, keys[:1], args[0]).Err(); err != nil {
		return nil, fmt.Errorf("%w: %d of %d replicas within %v; releasing it failed too (it expires after its TTL): %w",
			ErrNotReplicated, acked, s.ackReplicas, s.ackTimeout, err)
	}
	return nil, fmt.Errorf("%w: %d of %d replicas within %v", ErrNotReplicated, acked, s.ackReplicas, s.ackTimeout)
}

// evalWait sends the script call that eval queues (EVALSHA or EVAL) and WAIT
// in one pipeline, and returns the script's reply and the number of replicas
// that acknowledged.
func (s *Store) evalWait(ctx context.Context, node pipelineClient, eval func(redis.Pipeliner) *redis.Cmd) (any, int64, error) {
	pipe := node.Pipeline()
	call := eval(pipe)
	// WAIT is queued as a command of its own: redis.Pipeliner has no Wait
	// method (only go-redis's own *redis.Pipeline has, and it truncates the
	// timeout to whole milliseconds where WithReplicaAck rounds it up).
	wait := redis.NewIntCmd(ctx, "wait", s.ackReplicas, ceilMillis(s.ackTimeout))
	_ = pipe.Process(ctx, wait)
	_, _ = pipe.Exec(ctx)
	reply, err := result(call)
	if err != nil {
		return nil, 0, err
	}
	acked, err := wait.Result()
	if err != nil {
		return nil, 0, err
	}
	return reply, acked, nil
}

// slotReloader asks a Redis Cluster client to reload its slot map after a
// call failed as calls to a dead or unreachable node fail, at most once per
// ReloadInterval (see there why).
type slotReloader struct {
	client interface{ ReloadState(context.Context) }
	last   atomic.Int64 // time of the last reload asked, in Unix nanoseconds
}

// newSlotReloader returns a reloader for a client that has a slot map (a
// *redis.ClusterClient), and nil for any other.
func newSlotReloader(client redis.Scripter) *slotReloader {
	c, ok := client.(interface{ ReloadState(context.Context) })
	if !ok {
		return nil
	}
	return &slotReloader{client: c}
}

// failed notes the error of a call. ReloadState of go-redis only starts a
// reload in the background (one at a time), so failed never blocks.
func (r *slotReloader) failed(err error) {
	if r == nil || err == nil || !nodeFailure(err) {
		return
	}
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(ReloadInterval) || !r.last.CompareAndSwap(last, now) {
		return
	}
	r.client.ReloadState(context.Background())
}

// nodeFailure reports whether err is how a call to a failed or unreachable
// node ends: a refused, reset or closed connection, a network timeout or a
// deadline that passed, or a redirection the client did not follow (the
// replica acknowledgement's pipeline goes to one node and follows none).
func nodeFailure(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return false // the caller gave up; says nothing about the node
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.As(err, &ne):
		return true
	default:
		return redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "ASK")
	}
}
