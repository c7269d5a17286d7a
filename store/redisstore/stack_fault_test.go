package redisstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// stackFaults is a client hook that injects faults into the script calls of
// a stack decided across Cluster slots or Ring shards: after each stack.lua
// call is answered it calls afterStack, and it fails every undo.lua call
// with undoErr instead of sending it.
type stackFaults struct {
	mu         sync.Mutex
	afterStack func(ctx context.Context)
	undoErr    error
	undos      int // undo.lua calls seen, sent or failed
}

var (
	stackSHA = redisstore.ScriptSHAs()["sluice_stack"]
	undoSHA  = redisstore.ScriptSHAs()["sluice_undo"]
)

func (f *stackFaults) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *stackFaults) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		var sha string
		if args := cmd.Args(); cmd.Name() == "evalsha" && len(args) > 1 {
			sha, _ = args[1].(string)
		}
		f.mu.Lock()
		after, undoErr := f.afterStack, f.undoErr
		if sha == undoSHA {
			f.undos++
		}
		f.mu.Unlock()
		if sha == undoSHA && undoErr != nil {
			cmd.SetErr(undoErr)
			return undoErr
		}
		err := next(ctx, cmd)
		if sha == stackSHA && after != nil {
			after(ctx)
		}
		return err
	}
}

func (f *stackFaults) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// set replaces the faults and clears the count of undo calls.
func (f *stackFaults) set(afterStack func(context.Context), undoErr error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.afterStack, f.undoErr, f.undos = afterStack, undoErr, 0
}

// undoCalls returns the undo.lua calls seen since the last set.
func (f *stackFaults) undoCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.undos
}

// TestStackUndoSurvivesTheCaller decides a stack over two keys, one script
// call per key, on a Ring of two miniredis servers and on the real Cluster,
// with faults injected after the first key's parts are recorded: a caller
// that cancels or whose deadline passes then gets its context's error, and
// the recorded parts are still given back; an undo that fails is an error,
// and leaves the recorded parts counted.
func TestStackUndoSurvivesTheCaller(t *testing.T) {
	t.Run("ring", func(t *testing.T) {
		m1, m2 := miniredis.RunT(t), miniredis.RunT(t)
		ring := redis.NewRing(&redis.RingOptions{
			Addrs:                 map[string]string{"a": m1.Addr(), "b": m2.Addr()},
			ContextTimeoutEnabled: true, // calls run inline: a reply is read even if ctx ends meanwhile
		})
		t.Cleanup(func() { _ = ring.Close() })
		faults := &stackFaults{}
		ring.AddHook(faults)
		testStackUndoFaults(t, ring, faults)
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.ClusterClient(t, func(o *redis.ClusterOptions) { o.ContextTimeoutEnabled = true })
		faults := &stackFaults{}
		c.AddHook(faults)
		testStackUndoFaults(t, c, faults)
	})
}

func testStackUndoFaults(t *testing.T, client redis.UniversalClient, faults *stackFaults) {
	ctx := context.Background()
	clock := newFakeClock(time.Minute)
	s := must(redisstore.New(client, redisstore.WithPrefix(testPrefix(t, client)), redisstore.WithClock(clock.Now)))(t)
	require.NoError(t, s.Preload(ctx)) // every call an EVALSHA

	userRule := store.Rule{Name: "user", Limit: 5, Window: time.Minute}
	ipRule := store.Rule{Name: "ip", Limit: 1, Window: time.Minute}
	user, ip := "user:alice", "ip:203.0.113.7"
	stack := []store.Hit{{Key: user, Rule: userRule, Cost: 1}, {Key: ip, Rule: ipRule, Cost: 1}}
	remaining := func(key string, rule store.Rule) int {
		return must(s.Peek(ctx, key, rule))(t).Remaining
	}

	t.Run("cancelled after the first key", func(t *testing.T) {
		callCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		faults.set(func(context.Context) { cancel() }, nil)
		defer faults.set(nil, nil)
		err := s.HitAll(callCtx, stack, make([]store.Result, 2))
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 1, faults.undoCalls(), "the user's recorded part is undone")
		assert.Equal(t, 5, remaining(user, userRule), "the user's part is not counted")
		assert.Equal(t, 1, remaining(ip, ipRule), "the ip's part was never sent")
	})

	t.Run("deadline passed after the first key", func(t *testing.T) {
		callCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		faults.set(func(c context.Context) { <-c.Done() }, nil)
		defer faults.set(nil, nil)
		err := s.HitAll(callCtx, stack, make([]store.Result, 2))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 1, faults.undoCalls(), "the user's recorded part is undone")
		assert.Equal(t, 5, remaining(user, userRule), "the user's part is not counted")
		assert.Equal(t, 1, remaining(ip, ipRule), "the ip's part was never sent")
	})

	t.Run("undo fails", func(t *testing.T) {
		require.True(t, must(s.Hit(ctx, ip, ipRule, 1))(t).Allowed) // the ip's rule is full
		injected := errors.New("injected: undo lost")
		faults.set(nil, injected)
		defer faults.set(nil, nil)
		err := s.HitAll(ctx, stack, make([]store.Result, 2))
		require.ErrorIs(t, err, injected)
		assert.ErrorContains(t, err, "undo")
		assert.Equal(t, 1, faults.undoCalls())
		assert.Equal(t, 4, remaining(user, userRule), "the user's part stays counted")
		assert.Equal(t, 0, remaining(ip, ipRule), "the ip's rule holds its own hit only")

		// It counts until it leaves its window.
		clock.Advance(time.Minute)
		assert.Equal(t, 5, remaining(user, userRule))
	})
}
