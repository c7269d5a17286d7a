package rediscmd_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/rediscmd"
)

// catCorrupt runs scripts on a real (miniredis) server and rewrites their
// replies, as a broken proxy or an incompatible server would.
type catCorrupt struct {
	*redis.Client
	corrupt func(v any, err error) (any, error)
}

func (c catCorrupt) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	cmd := c.Client.EvalSha(ctx, sha, keys, args...)
	if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		return cmd // let Script.Run fall back to EVAL, whose reply is corrupted
	}
	return c.rewrite(ctx, cmd)
}

func (c catCorrupt) Eval(ctx context.Context, src string, keys []string, args ...any) *redis.Cmd {
	return c.rewrite(ctx, c.Client.Eval(ctx, src, keys, args...))
}

func (c catCorrupt) rewrite(ctx context.Context, cmd *redis.Cmd) *redis.Cmd {
	v, err := c.corrupt(cmd.Val(), cmd.Err())
	out := redis.NewCmd(ctx)
	out.SetVal(v)
	out.SetErr(err)
	return out
}

// catOps calls every catalogue function on data it first writes with c.
var catOps = []struct {
	name string
	call func(ctx context.Context, c *redis.Client, s redis.Scripter) (any, error)
}{
	{"CappedIncr", func(ctx context.Context, _ *redis.Client, s redis.Scripter) (any, error) {
		return rediscmd.CappedIncr(ctx, s, "n", 1, 10, 0)
	}},
	{"WeightedAverage", func(ctx context.Context, c *redis.Client, s redis.Scripter) (any, error) {
		c.HSet(ctx, "h", "value", "1.5")
		return rediscmd.WeightedAverage(ctx, s, []string{"h"}, []float64{1}, "value")
	}},
	{"Percentile", func(ctx context.Context, c *redis.Client, s redis.Scripter) (any, error) {
		c.ZAdd(ctx, "z", redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2, Member: "b"}, redis.Z{Score: 3, Member: "c"})
		return rediscmd.Percentile(ctx, s, "z", 50)
	}},
	{"RecordSample", func(ctx context.Context, _ *redis.Client, s redis.Scripter) (any, error) {
		return rediscmd.RecordSample(ctx, s, "samples", 1, 0)
	}},
	{"LeaderboardAdd", func(ctx context.Context, _ *redis.Client, s redis.Scripter) (any, error) {
		return rediscmd.LeaderboardAdd(ctx, s, "lb", "ann", 5, time.UnixMilli(1000), 0)
	}},
	{"LeaderboardGet", func(ctx context.Context, c *redis.Client, s redis.Scripter) (any, error) {
		if _, err := rediscmd.LeaderboardAdd(ctx, c, "lb", "ann", 5, time.UnixMilli(1000), 0); err != nil {
			return nil, err
		}
		return rediscmd.LeaderboardGet(ctx, s, "lb", "ann")
	}},
	{"LeaderboardTop", func(ctx context.Context, c *redis.Client, s redis.Scripter) (any, error) {
		for _, m := range []string{"ann", "bob"} {
			if _, err := rediscmd.LeaderboardAdd(ctx, c, "lb", m, 5, time.UnixMilli(1000), 0); err != nil {
				return nil, err
			}
		}
		return rediscmd.LeaderboardTop(ctx, s, "lb", 10)
	}},
	{"Reserve", func(ctx context.Context, c *redis.Client, s redis.Scripter) (any, error) {
		c.Set(ctx, "s1", 5, 0)
		c.Set(ctx, "s2", 5, 0)
		return rediscmd.Reserve(ctx, s, []rediscmd.Item{{Key: "s1", Quantity: 1}, {Key: "s2", Quantity: 1}})
	}},
	{"Reserve short", func(ctx context.Context, c *redis.Client, s redis.Scripter) (any, error) {
		c.Set(ctx, "s1", 5, 0)
		return rediscmd.Reserve(ctx, s, []rediscmd.Item{{Key: "s1", Quantity: 1}, {Key: "s2", Quantity: 1}})
	}},
	{"Restock", func(ctx context.Context, _ *redis.Client, s redis.Scripter) (any, error) {
		return rediscmd.Restock(ctx, s, []rediscmd.Item{{Key: "s1", Quantity: 1}, {Key: "s2", Quantity: 1}})
	}},
}

func TestMalformedCatalogueReplies(t *testing.T) {
	corruptions := []struct {
		name    string
		corrupt func(v any, err error) (any, error)
	}{
		{"status string", func(any, error) (any, error) { return "OK", nil }},
		{"shorter array", func(v any, _ error) (any, error) {
			if arr, ok := v.([]any); ok && len(arr) > 0 {
				return arr[:len(arr)-1], nil
			}
			return []any{v}, nil
		}},
		{"nil first element", func(v any, _ error) (any, error) {
			if arr, ok := v.([]any); ok && len(arr) > 0 {
				return append([]any{nil}, arr[1:]...), nil
			}
			return []any{nil}, nil
		}},
		{"letters for digits", func(v any, _ error) (any, error) {
			var f func(any) any
			f = func(v any) any {
				switch x := v.(type) {
				case int64:
					return "x"
				case string:
					return "x" + x
				case []any:
					out := make([]any, len(x))
					for i, e := range x {
						out[i] = f(e)
					}
					return out
				}
				return v
			}
			return f(v), nil
		}},
	}
	ctx := context.Background()
	for _, op := range catOps {
		t.Run(op.name, func(t *testing.T) {
			clean := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
			want, wantErr := op.call(ctx, clean, clean)
			for _, cr := range corruptions {
				t.Run(cr.name, func(t *testing.T) {
					c := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
					var got any
					var err error
					require.NotPanics(t, func() {
						got, err = op.call(ctx, c, catCorrupt{Client: c, corrupt: cr.corrupt})
					})
					if err == nil {
						// Only a reply that still carries the answer may pass.
						assert.NoError(t, wantErr)
						assert.Equal(t, want, got)
						return
					}
					assert.NotErrorIs(t, err, rediscmd.ErrInvalidArgument, "not the caller's fault")
					assert.NotErrorIs(t, err, rediscmd.ErrShortage)
				})
			}
		})
	}
}

func TestClientErrorsPassThrough(t *testing.T) {
	boom := errors.New("boom")
	ctx := context.Background()
	for _, op := range catOps {
		t.Run(op.name, func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
			_, err := op.call(ctx, c, catCorrupt{Client: c, corrupt: func(any, error) (any, error) { return nil, boom }})
			assert.ErrorIs(t, err, boom)
		})
	}
	t.Run("context", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := rediscmd.CappedIncr(cctx, c, "n", 1, 10, 0)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestRingKeysMustShareATag(t *testing.T) {
	m1, m2 := miniredis.RunT(t), miniredis.RunT(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": m1.Addr(), "b": m2.Addr()}})
	t.Cleanup(func() { _ = ring.Close() })
	ctx := context.Background()

	_, err := rediscmd.Reserve(ctx, ring, []rediscmd.Item{{Key: rediscmd.StockKey("east", "x"), Quantity: 1}, {Key: rediscmd.StockKey("west", "y"), Quantity: 1}})
	assert.ErrorIs(t, err, rediscmd.ErrCrossSlot)
	_, err = rediscmd.WeightedAverage(ctx, ring, []string{"a", "b"}, []float64{1, 1}, "value")
	assert.ErrorIs(t, err, rediscmd.ErrCrossSlot)

	a, b := rediscmd.StockKey("east", "x"), rediscmd.StockKey("east", "y")
	_, err = rediscmd.Restock(ctx, ring, []rediscmd.Item{{Key: a, Quantity: 2}, {Key: b, Quantity: 2}})
	require.NoError(t, err)
	left, err := rediscmd.Reserve(ctx, ring, []rediscmd.Item{{Key: a, Quantity: 1}, {Key: b, Quantity: 2}})
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 0}, left)
	require.NoError(t, rediscmd.Preload(ctx, ring), "loads on every shard")
	for _, m := range []*miniredis.Miniredis{m1, m2} {
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		exists, err := c.ScriptExists(ctx, rediscmd.Commands()[0].SHA()).Result()
		require.NoError(t, err)
		assert.Equal(t, []bool{true}, exists)
		_ = c.Close()
	}
}
