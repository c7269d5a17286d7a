package redisstore_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// op is one Store call, reporting whether it would let the caller through
// (an allowed hit, an acquired lock) besides its error.
type op struct {
	name string
	call func(ctx context.Context, s *redisstore.Store) (granted bool, err error)
}

var ops = []op{
	{"hit", func(ctx context.Context, s *redisstore.Store) (bool, error) {
		r, err := s.Hit(ctx, "k", store.Rule{Limit: 10, Window: time.Minute}, 1)
		return r.Allowed || r != (store.Result{}), err
	}},
	{"undo", func(ctx context.Context, s *redisstore.Store) (bool, error) {
		return false, s.Undo(ctx, "k", store.Receipt{ID: 1, Cost: 1})
	}},
	{"acquire", func(ctx context.Context, s *redisstore.Store) (bool, error) {
		r, err := s.Acquire(ctx, "lock", "tok", time.Minute)
		return r.Acquired || r != (store.LockResult{}), err
	}},
	{"release", func(ctx context.Context, s *redisstore.Store) (bool, error) {
		return false, s.Release(ctx, "lock", "tok")
	}},
	{"extend", func(ctx context.Context, s *redisstore.Store) (bool, error) {
		return false, s.Extend(ctx, "lock", "tok", time.Minute)
	}},
	{"ttl", func(ctx context.Context, s *redisstore.Store) (bool, error) {
		d, err := s.TTL(ctx, "lock", "tok")
		return d != 0, err
	}},
}

// assertStoreError checks that err is a store failure: not nil, not a lock
// "not held", not redis.Nil, and that the call granted nothing.
func assertStoreError(t *testing.T, granted bool, err error) {
	t.Helper()
	require.Error(t, err)
	assert.False(t, granted, "a failed call must not allow or acquire")
	assert.NotErrorIs(t, err, store.ErrNotHeld)
	assert.NotErrorIs(t, err, redis.Nil)
}

// runWithin runs call and fails the test if it does not return within a
// generous bound (a hang guard, not a speed assertion).
func runWithin(t *testing.T, call func() (bool, error)) (bool, error) {
	t.Helper()
	type res struct {
		granted bool
		err     error
	}
	done := make(chan res, 1)
	go func() {
		g, err := call()
		done <- res{g, err}
	}()
	select {
	case r := <-done:
		return r.granted, r.err
	case <-time.After(30 * time.Second):
		t.Fatal("call did not return: the deadline was not honoured")
		return false, nil
	}
}

func TestStoppedServerIsAnError(t *testing.T) {
	t.Run("closed port", func(t *testing.T) {
		addr := redistest.ClosedAddr(t)
		// No retries: each call fails on its first attempt (the outcome
		// with retries is the same, only slower).
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		t.Cleanup(func() { _ = c.Close() })
		s := must(redisstore.New(c))(t)
		for _, o := range ops {
			t.Run(o.name, func(t *testing.T) {
				granted, err := runWithin(t, func() (bool, error) { return o.call(context.Background(), s) })
				assertStoreError(t, granted, err)
			})
		}
	})

	t.Run("server killed", func(t *testing.T) {
		addr, stop := redistest.StartServer(t)
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		t.Cleanup(func() { _ = c.Close() })
		s := must(redisstore.New(c))(t)
		ctx := context.Background()
		require.True(t, must(s.Hit(ctx, "k", store.Rule{Limit: 10, Window: time.Minute}, 1))(t).Allowed)
		require.True(t, must(s.Acquire(ctx, "lock", "tok", time.Minute))(t).Acquired)
		stop()
		for _, o := range ops {
			t.Run(o.name, func(t *testing.T) {
				granted, err := runWithin(t, func() (bool, error) { return o.call(ctx, s) })
				assertStoreError(t, granted, err)
			})
		}
	})
}

// cancelOnceSent cancels when received reports that a request reached the
// server.
func cancelOnceSent(received func() int64, cancel context.CancelFunc) {
	go func() {
		for received() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
}

// hungClient returns a client for a hung server that never gives up on its
// own (no read or write timeout), with or without ContextTimeoutEnabled.
func hungClient(t *testing.T, addr string, ctxTimeouts bool) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ReadTimeout:           -1,
		WriteTimeout:          -1,
		MaxRetries:            -1,
		ContextTimeoutEnabled: ctxTimeouts,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestHungServerHonoursTimeout(t *testing.T) {
	for _, ctxTimeouts := range []bool{false, true} {
		t.Run("ContextTimeoutEnabled="+strconv.FormatBool(ctxTimeouts), func(t *testing.T) {
			addr, _ := redistest.HungListener(t)
			c := hungClient(t, addr, ctxTimeouts)

			t.Run("WithTimeout", func(t *testing.T) {
				s := must(redisstore.New(c, redisstore.WithTimeout(100*time.Millisecond)))(t)
				for _, o := range ops {
					t.Run(o.name, func(t *testing.T) {
						granted, err := runWithin(t, func() (bool, error) { return o.call(context.Background(), s) })
						assertStoreError(t, granted, err)
						assert.ErrorIs(t, err, context.DeadlineExceeded)
					})
				}
			})

			t.Run("caller deadline", func(t *testing.T) {
				s := must(redisstore.New(c))(t)
				for _, o := range ops {
					t.Run(o.name, func(t *testing.T) {
						ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
						defer cancel()
						granted, err := runWithin(t, func() (bool, error) { return o.call(ctx, s) })
						assertStoreError(t, granted, err)
						assert.ErrorIs(t, err, context.DeadlineExceeded)
					})
				}
			})
		})
	}
}

func TestCancelledContextIsHonoured(t *testing.T) {
	t.Run("before the call nothing is sent", func(t *testing.T) {
		addr, received := redistest.HungListener(t)
		s := must(redisstore.New(hungClient(t, addr, false), redisstore.WithTimeout(time.Minute)))(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, o := range ops {
			t.Run(o.name, func(t *testing.T) {
				granted, err := runWithin(t, func() (bool, error) { return o.call(ctx, s) })
				assertStoreError(t, granted, err)
				assert.ErrorIs(t, err, context.Canceled)
			})
		}
		assert.Zero(t, received(), "a cancelled call must not reach Redis")
	})

	t.Run("during the call", func(t *testing.T) {
		for _, o := range ops {
			t.Run(o.name, func(t *testing.T) {
				addr, received := redistest.HungListener(t)
				s := must(redisstore.New(hungClient(t, addr, false), redisstore.WithTimeout(time.Minute)))(t)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				cancelOnceSent(received, cancel)
				granted, err := runWithin(t, func() (bool, error) { return o.call(ctx, s) })
				assertStoreError(t, granted, err)
				assert.ErrorIs(t, err, context.Canceled)
			})
		}
	})
}

func TestCancelledContextWithDeadlineApplyingClient(t *testing.T) {
	// A client with ContextTimeoutEnabled runs calls inline: a cancellation
	// during a hung call takes effect by the deadline, and says Canceled.
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			addr, received := redistest.HungListener(t)
			s := must(redisstore.New(hungClient(t, addr, true), redisstore.WithTimeout(time.Second)))(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cancelOnceSent(received, cancel)
			granted, err := runWithin(t, func() (bool, error) { return o.call(ctx, s) })
			assertStoreError(t, granted, err)
			assert.ErrorIs(t, err, context.Canceled)
		})
	}
}

// corruptScripter is a real client whose script replies are rewritten.
type corruptScripter struct {
	*redis.Client
	corrupt func(v any) (any, error)
}

func (s corruptScripter) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	return s.rewrite(ctx, s.Client.EvalSha(ctx, sha, keys, args...))
}

func (s corruptScripter) Eval(ctx context.Context, src string, keys []string, args ...any) *redis.Cmd {
	return s.rewrite(ctx, s.Client.Eval(ctx, src, keys, args...))
}

func (s corruptScripter) rewrite(ctx context.Context, cmd *redis.Cmd) *redis.Cmd {
	v, err := cmd.Result()
	if err != nil {
		return cmd // NOSCRIPT must still reach go-redis's fallback
	}
	out := redis.NewCmd(ctx)
	v, err = s.corrupt(v)
	out.SetVal(v)
	out.SetErr(err)
	return out
}

// mapInts applies f to every integer of a reply.
func mapInts(v any, f func(int64) any) any {
	switch x := v.(type) {
	case int64:
		return f(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = mapInts(e, f)
		}
		return out
	default:
		return v
	}
}

func TestMalformedReplyIsAnError(t *testing.T) {
	corruptions := []struct {
		name    string
		corrupt func(v any) (any, error)
	}{
		{"nil reply", func(any) (any, error) { return nil, redis.Nil }},
		{"status string", func(any) (any, error) { return "OK", nil }},
		{"integers as strings", func(v any) (any, error) {
			return mapInts(v, func(n int64) any { return strconv.FormatInt(n, 10) }), nil
		}},
		{"out-of-range integers", func(v any) (any, error) {
			return mapInts(v, func(int64) any { return int64(-5) }), nil
		}},
		{"array shape", func(v any) (any, error) {
			if arr, ok := v.([]any); ok {
				return arr[:len(arr)-1], nil
			}
			return []any{v}, nil
		}},
		{"nil element", func(v any) (any, error) {
			if arr, ok := v.([]any); ok {
				return append([]any{nil}, arr[1:]...), nil
			}
			return []any{nil}, nil
		}},
	}
	for _, cr := range corruptions {
		t.Run(cr.name, func(t *testing.T) {
			_, c := newMiniredis(t)
			s := must(redisstore.New(corruptScripter{Client: c, corrupt: cr.corrupt}))(t)
			for _, o := range ops {
				t.Run(o.name, func(t *testing.T) {
					granted, err := o.call(context.Background(), s)
					assertStoreError(t, granted, err)
					assert.ErrorContains(t, err, "redisstore: "+o.name+": unexpected reply")
				})
			}
		})
	}
}

func TestErrorsFromRedisAreWrapped(t *testing.T) {
	_, c := newMiniredis(t)
	boom := errors.New("boom")
	s := must(redisstore.New(corruptScripter{Client: c, corrupt: func(any) (any, error) { return nil, boom }}))(t)
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			granted, err := o.call(context.Background(), s)
			assertStoreError(t, granted, err)
			assert.ErrorIs(t, err, boom)
			assert.ErrorContains(t, err, "redisstore: "+o.name+": ")
		})
	}
}
