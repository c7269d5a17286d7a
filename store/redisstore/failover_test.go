package redisstore_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

var rule = store.Rule{Name: "failover", Limit: 1000, Window: time.Minute}

// A Cluster whose slots move from a node that refuses connections to a live
// one (as when a replica is promoted in place of a killed master) is followed
// within about ReloadInterval: the Store makes the client reload its slot map
// instead of dialling the dead node until go-redis's periodic reload (10 s in
// v9.17, 60 s from v9.22).
func TestClusterSlotsFollowedAfterRefusedNode(t *testing.T) {
	live := redistest.Addr(t)
	dead := redistest.ClosedAddr(t)
	var owner atomic.Value // the address that serves every slot
	owner.Store(dead)
	var loads atomic.Int64
	client := redis.NewClusterClient(&redis.ClusterOptions{
		ClusterSlots: func(context.Context) ([]redis.ClusterSlot, error) {
			loads.Add(1)
			return []redis.ClusterSlot{{Start: 0, End: 16383, Nodes: []redis.ClusterNode{{Addr: owner.Load().(string)}}}}, nil
		},
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = client.Close() })
	st, err := redisstore.New(client, redisstore.WithPrefix(testPrefix(t, redistest.Client(t))))
	require.NoError(t, err)

	hit := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := st.Hit(ctx, "k", rule, 1)
		return err
	}
	// go-redis retries the dial until the deadline: the call ends with
	// context.DeadlineExceeded rather than the refused connection.
	require.Error(t, hit(), "every slot is on a node that refuses connections")

	owner.Store(live) // the slots move to a node that answers
	moved := time.Now()
	for hit() != nil {
		require.Less(t, time.Since(moved), 5*time.Second, "the Store still fails 5 s after the slots moved")
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(moved)
	t.Logf("decisions succeed %v after the slots moved (%d slot map loads)", took.Round(time.Millisecond), loads.Load())
	assert.Less(t, took, 2*time.Second)
}

// reloadCounter is a Scripter with a Cluster client's ReloadState, counting
// the reloads asked of it.
type reloadCounter struct {
	*redis.Client
	reloads atomic.Int64
}

func (c *reloadCounter) ReloadState(context.Context) { c.reloads.Add(1) }

// Reloads are asked at most once per ReloadInterval however many calls fail,
// and never by a call that succeeds or meets a script error.
func TestSlotReloadIsBoundedAndOnlyOnNodeFailure(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		c := &reloadCounter{Client: redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1})}
		t.Cleanup(func() { _ = c.Close() })
		st, err := redisstore.New(c)
		require.NoError(t, err)

		start := time.Now()
		var wg sync.WaitGroup
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.Hit(context.Background(), "k", rule, 1)
				assert.Error(t, err)
			}()
		}
		wg.Wait()
		// At most one reload per interval, however many calls fail.
		elapsed := time.Since(start)
		assert.LessOrEqual(t, c.reloads.Load(), int64(1+elapsed/redisstore.ReloadInterval),
			"64 failures in %v ask at most one reload per %v", elapsed, redisstore.ReloadInterval)
		first := c.reloads.Load()
		assert.GreaterOrEqual(t, first, int64(1))
		time.Sleep(redisstore.ReloadInterval)
		_, err = st.Acquire(context.Background(), "lock", "tok", time.Second)
		require.Error(t, err)
		assert.Greater(t, c.reloads.Load(), first, "a failure after the interval asks again")
	})
	t.Run("script error", func(t *testing.T) {
		real := redistest.Client(t)
		prefix := testPrefix(t, real)
		c := &reloadCounter{Client: redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})}
		t.Cleanup(func() { _ = c.Close() })
		st, err := redisstore.New(c, redisstore.WithPrefix(prefix))
		require.NoError(t, err)
		_, err = st.Hit(context.Background(), "k", rule, 1)
		require.NoError(t, err)
		keys, err := redistest.Keys(context.Background(), real, prefix+"*")
		require.NoError(t, err)
		require.Len(t, keys, 1)
		require.NoError(t, real.Set(context.Background(), keys[0], "not a window", time.Minute).Err())
		_, err = st.Hit(context.Background(), "k", rule, 1)
		require.ErrorContains(t, err, "WRONGTYPE")
		assert.Zero(t, c.reloads.Load())
	})
}

func TestReplicaAckOptionIsChecked(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	t.Cleanup(func() { _ = client.Close(); _ = ring.Close() })
	type scripterOnly struct{ redis.Scripter }
	for _, tc := range []struct {
		name    string
		client  redis.Scripter
		n       int
		timeout time.Duration
		ok      bool
	}{
		{"off", client, 0, 0, true},
		{"one replica", client, 1, 100 * time.Millisecond, true},
		{"negative count", client, -1, time.Second, false},
		{"no timeout", client, 1, 0, false},
		{"negative timeout", client, 1, -time.Second, false},
		{"timeout too long", client, 1, redisstore.MaxReplicaAckTimeout + time.Millisecond, false},
		{"ring", ring, 1, time.Second, false},
		{"no pipeline", scripterOnly{client}, 1, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := redisstore.New(tc.client, redisstore.WithReplicaAck(tc.n, tc.timeout))
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, store.ErrInvalidArgument)
			}
		})
	}
}

// replicaPair starts a master and a replica of it and returns clients of both
// and the function that kills the replica.
func replicaPair(t *testing.T) (master, replica *redis.Client, stopReplica func()) {
	t.Helper()
	maddr, _ := redistest.StartServer(t)
	raddr, stop := redistest.StartServer(t)
	master = redis.NewClient(&redis.Options{Addr: maddr, ContextTimeoutEnabled: true})
	replica = redis.NewClient(&redis.Options{Addr: raddr})
	t.Cleanup(func() { _ = master.Close(); _ = replica.Close() })
	host, port, _ := net.SplitHostPort(maddr)
	ctx := context.Background()
	require.NoError(t, master.ConfigSet(ctx, "repl-diskless-sync-delay", "0").Err())
	require.NoError(t, replica.SlaveOf(ctx, host, port).Err())
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := replica.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			break
		}
		require.True(t, time.Now().Before(deadline), "replica did not connect to its master: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
	return master, replica, stop
}

// An acknowledged lock is on the replica when Acquire returns; a lock that no
// replica acknowledges is refused and released, so that another owner gets
// it at once; a master without its scripts cached (SCRIPT FLUSH, a promoted
// replica) is recovered from transparently.
func TestReplicaAck(t *testing.T) {
	master, replica, stopReplica := replicaPair(t)
	ctx := context.Background()
	const prefix = "sluicetest:ack:"
	// A second for the replica to answer: a loaded CI machine can hold a
	// healthy replica up for longer than a production timeout would allow.
	const ackTimeout = time.Second
	st, err := redisstore.New(master, redisstore.WithPrefix(prefix), redisstore.WithReplicaAck(1, ackTimeout))
	require.NoError(t, err)

	res, err := st.Acquire(ctx, "order:1", "owner-a", time.Minute)
	require.NoError(t, err)
	require.True(t, res.Acquired)
	assertOnReplica(t, replica, prefix+"l:{*}", "owner-a")

	res, err = st.Acquire(ctx, "order:1", "owner-b", time.Minute)
	require.NoError(t, err, "a lock held by another is a plain refusal")
	assert.False(t, res.Acquired)

	redistest.FlushScripts(t, master)
	res, err = st.Acquire(ctx, "order:2", "owner-a", time.Minute)
	require.NoError(t, err, "NOSCRIPT is recovered")
	require.True(t, res.Acquired)

	stopReplica()
	start := time.Now()
	_, err = st.Acquire(ctx, "order:3", "owner-a", time.Minute)
	took := time.Since(start)
	require.ErrorIs(t, err, redisstore.ErrNotReplicated)
	assert.GreaterOrEqual(t, took, ackTimeout, "WAIT waited for the timeout")
	assert.Less(t, took, ackTimeout+3*time.Second)

	plain, err := redisstore.New(master, redisstore.WithPrefix(prefix))
	require.NoError(t, err)
	res, err = plain.Acquire(ctx, "order:3", "owner-b", time.Minute)
	require.NoError(t, err)
	assert.True(t, res.Acquired, "the unacknowledged lock was released")
}

// assertOnReplica checks that the replica holds a key matching pattern with
// value token.
func assertOnReplica(t *testing.T, replica *redis.Client, pattern, token string) {
	t.Helper()
	ctx := context.Background()
	keys, err := replica.Keys(ctx, pattern).Result()
	require.NoError(t, err)
	for _, k := range keys {
		if v, err := replica.Get(ctx, k).Result(); err == nil && v == token {
			return
		}
	}
	t.Fatalf("no key %s holds %q on the replica (keys %v)", pattern, token, keys)
}

// On a Cluster the WAIT goes to the lock's master: without replicas no lock
// is acknowledged, and each refused lock is released.
func TestReplicaAckCluster(t *testing.T) {
	client := redistest.ClusterClient(t, func(o *redis.ClusterOptions) { o.ContextTimeoutEnabled = true })
	prefix := testPrefix(t, client)
	st, err := redisstore.New(client, redisstore.WithPrefix(prefix), redisstore.WithReplicaAck(1, 20*time.Millisecond))
	require.NoError(t, err)
	plain, err := redisstore.New(client, redisstore.WithPrefix(prefix))
	require.NoError(t, err)
	ctx := context.Background()
	for _, key := range []string{"a", "b", "c", "d", "e", "f"} {
		_, err := st.Acquire(ctx, key, "owner-a", time.Minute)
		require.ErrorIs(t, err, redisstore.ErrNotReplicated, "a master without replicas acknowledges nothing")
		assert.False(t, errors.Is(err, store.ErrNotHeld))
		res, err := plain.Acquire(ctx, key, "owner-b", time.Minute)
		require.NoError(t, err)
		assert.True(t, res.Acquired, "key %s: the refused lock was released", key)
	}
}
