package redisstore_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// noCallScripter fails the test if anything reaches Redis.
type noCallScripter struct{ t *testing.T }

func (s noCallScripter) fail(ctx context.Context, what string) *redis.Cmd {
	s.t.Helper()
	s.t.Errorf("unexpected %s sent to Redis", what)
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(errors.New("no Redis here"))
	return cmd
}

func (s noCallScripter) Eval(ctx context.Context, _ string, _ []string, _ ...any) *redis.Cmd {
	return s.fail(ctx, "EVAL")
}

func (s noCallScripter) EvalSha(ctx context.Context, _ string, _ []string, _ ...any) *redis.Cmd {
	return s.fail(ctx, "EVALSHA")
}

func (s noCallScripter) EvalRO(ctx context.Context, _ string, _ []string, _ ...any) *redis.Cmd {
	return s.fail(ctx, "EVAL_RO")
}

func (s noCallScripter) EvalShaRO(ctx context.Context, _ string, _ []string, _ ...any) *redis.Cmd {
	return s.fail(ctx, "EVALSHA_RO")
}

func (s noCallScripter) ScriptExists(ctx context.Context, _ ...string) *redis.BoolSliceCmd {
	s.t.Error("unexpected SCRIPT EXISTS sent to Redis")
	return redis.NewBoolSliceCmd(ctx)
}

func (s noCallScripter) ScriptLoad(ctx context.Context, _ string) *redis.StringCmd {
	s.t.Error("unexpected SCRIPT LOAD sent to Redis")
	return redis.NewStringCmd(ctx)
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, c := newMiniredis(t)
	tests := []struct {
		name   string
		client redis.Scripter
		opts   []redisstore.Option
	}{
		{"nil client", nil, nil},
		{"typed nil client", (*redis.Client)(nil), nil},
		{"typed nil cluster client", (*redis.ClusterClient)(nil), nil},
		{"prefix with {", c, []redisstore.Option{redisstore.WithPrefix("app{1}:")}},
		{"prefix with }", c, []redisstore.Option{redisstore.WithPrefix("app}:")}},
		{"negative timeout", c, []redisstore.Option{redisstore.WithTimeout(-time.Second)}},
		{"zero fence ttl", c, []redisstore.Option{redisstore.WithFenceTTL(0)}},
		{"sub-millisecond fence ttl", c, []redisstore.Option{redisstore.WithFenceTTL(time.Microsecond)}},
		{"fence ttl below MinFenceTTL", c, []redisstore.Option{redisstore.WithFenceTTL(time.Second - time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redisstore.New(tt.client, tt.opts...)
			require.ErrorIs(t, err, store.ErrInvalidArgument)
			assert.Nil(t, s)
		})
	}
}

func TestNewAcceptsDefaultsAndNilOptions(t *testing.T) {
	_, c := newMiniredis(t)
	for i, opts := range [][]redisstore.Option{
		nil,
		{nil},
		{redisstore.WithPrefix(""), redisstore.WithTimeout(0), redisstore.WithClock(nil), redisstore.WithFenceTTL(time.Second)},
	} {
		s, err := redisstore.New(c, opts...)
		require.NoError(t, err)
		res, err := s.Hit(context.Background(), strconv.Itoa(i), store.Rule{Limit: 1, Window: time.Second}, 1)
		require.NoError(t, err)
		assert.True(t, res.Allowed)
	}
}

func TestBadInputIsAnErrorAndSendsNothing(t *testing.T) {
	ctx := context.Background()
	s, err := redisstore.New(noCallScripter{t})
	require.NoError(t, err)
	rule := store.Rule{Limit: 10, Window: time.Second}
	tests := []struct {
		name string
		call func() error
	}{
		{"hit empty key", func() error { _, err := s.Hit(ctx, "", rule, 1); return err }},
		{"hit zero limit", func() error { _, err := s.Hit(ctx, "k", store.Rule{Window: time.Second}, 1); return err }},
		{"hit negative limit", func() error { _, err := s.Hit(ctx, "k", store.Rule{Limit: -1, Window: time.Second}, 1); return err }},
		{"hit zero window", func() error { _, err := s.Hit(ctx, "k", store.Rule{Limit: 1}, 1); return err }},
		{"hit sub-ms window", func() error {
			_, err := s.Hit(ctx, "k", store.Rule{Limit: 1, Window: time.Microsecond}, 1)
			return err
		}},
		{"hit zero cost", func() error { _, err := s.Hit(ctx, "k", rule, 0); return err }},
		{"hit cost above limit", func() error { _, err := s.Hit(ctx, "k", rule, 11); return err }},
		{"undo empty key", func() error { return s.Undo(ctx, "", store.Receipt{ID: 1, Cost: 1}) }},
		{"undo negative cost", func() error { return s.Undo(ctx, "k", store.Receipt{ID: 1, Cost: -1}) }},
		{"undo zero cost", func() error { return s.Undo(ctx, "k", store.Receipt{ID: 5}) }},
		{"undo zero id", func() error { return s.Undo(ctx, "k", store.Receipt{Cost: 1}) }},
		{"acquire empty key", func() error { _, err := s.Acquire(ctx, "", "tok", time.Second); return err }},
		{"acquire empty token", func() error { _, err := s.Acquire(ctx, "k", "", time.Second); return err }},
		{"acquire zero ttl", func() error { _, err := s.Acquire(ctx, "k", "tok", 0); return err }},
		{"acquire sub-ms ttl", func() error { _, err := s.Acquire(ctx, "k", "tok", 999*time.Microsecond); return err }},
		{"release empty key", func() error { return s.Release(ctx, "", "tok") }},
		{"release empty token", func() error { return s.Release(ctx, "k", "") }},
		{"extend empty token", func() error { return s.Extend(ctx, "k", "", time.Second) }},
		{"extend negative ttl", func() error { return s.Extend(ctx, "k", "tok", -time.Second) }},
		{"ttl empty key", func() error { _, err := s.TTL(ctx, "", "tok"); return err }},
		{"ttl empty token", func() error { _, err := s.TTL(ctx, "k", ""); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, tt.call(), store.ErrInvalidArgument)
		})
	}
	t.Run("zero receipt is a no-op", func(t *testing.T) {
		require.NoError(t, s.Undo(ctx, "k", store.Receipt{}))
	})
}

func TestKeyLayout(t *testing.T) {
	ctx := context.Background()
	m, c := newMiniredis(t)
	s := must(redisstore.New(c, redisstore.WithPrefix("app:")))(t)
	_, err := s.Hit(ctx, "client-1", store.Rule{Limit: 5, Window: time.Minute}, 1)
	require.NoError(t, err)
	_, err = s.Hit(ctx, "client-1", store.Rule{Name: "api", Limit: 5, Window: time.Minute, Algorithm: store.SlidingCounter}, 1)
	require.NoError(t, err)
	_, err = s.Hit(ctx, "client-1", store.Rule{Name: "daily", Limit: 5, Window: time.Minute, Algorithm: store.GCRA}, 1)
	require.NoError(t, err)
	_, err = s.Acquire(ctx, "order:42", "tok", time.Minute)
	require.NoError(t, err)
	// The hash tag is the key's hash alone; the name's hash (of its length,
	// a colon and the name) and the algorithm's letter follow it.
	client1 := "5704de18fc6045e4d08c3a2611627956" // hex(sha256("client-1")[:16])
	assert.Equal(t, client1, keyHash("client-1"))
	assert.ElementsMatch(t, []string{
		"app:r:{" + client1 + "}:s:ba768b331fd86cec", // sha256("0:")
		"app:r:{" + client1 + "}:c:3d08289352202b6d", // sha256("3:api")
		"app:r:{" + client1 + "}:g:56e815784e7c74ca", // sha256("5:daily")
		"app:l:{" + keyHash("order:42") + "}",
		"app:l:{" + keyHash("order:42") + "}:f",
	}, m.Keys())
	assert.Equal(t, "app:r:{"+client1+"}:g:56e815784e7c74ca", stateKey("app:", "daily", store.GCRA, "client-1"))

	d := must(redisstore.New(c))(t)
	_, err = d.Hit(ctx, "client-1", store.Rule{Limit: 5, Window: time.Minute}, 1)
	require.NoError(t, err)
	assert.True(t, m.Exists("sluice:r:{"+client1+"}:s:ba768b331fd86cec"), "default prefix is %q", redisstore.DefaultPrefix)
}

func TestSlidingWindowOnMiniredis(t *testing.T) {
	ctx := context.Background()
	_, c := newMiniredis(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := must(redisstore.New(c, redisstore.WithClock(func() time.Time { return now })))(t)
	rule := store.Rule{Limit: 3, Window: 10 * time.Second}

	r1 := must(s.Hit(ctx, "k", rule, 1))(t)
	assert.Equal(t, store.Result{Allowed: true, Limit: 3, Remaining: 2, ResetAfter: 10 * time.Second,
		Receipt: store.Receipt{ID: r1.Receipt.ID, Cost: 1, Rule: rule}}, r1)
	assert.NotZero(t, r1.Receipt.ID)

	now = now.Add(2 * time.Second)
	r2 := must(s.Hit(ctx, "k", rule, 2))(t)
	assert.True(t, r2.Allowed)
	assert.Equal(t, 0, r2.Remaining)
	assert.Equal(t, 8*time.Second, r2.ResetAfter)
	assert.Equal(t, 2, r2.Receipt.Cost)
	assert.NotEqual(t, r1.Receipt.ID, r2.Receipt.ID)

	now = now.Add(time.Second)
	denied := must(s.Hit(ctx, "k", rule, 2))(t)
	assert.Equal(t, store.Result{Allowed: false, Limit: 3, Remaining: 0,
		RetryAfter: 9 * time.Second, ResetAfter: 7 * time.Second}, denied,
		"two hits fit only when the cost-2 hit at t+2s leaves")

	// Undoing the cost-2 hit frees two slots.
	require.NoError(t, s.Undo(ctx, "k", r2.Receipt))
	r3 := must(s.Hit(ctx, "k", rule, 2))(t)
	assert.True(t, r3.Allowed)
	assert.Equal(t, 0, r3.Remaining)
	// Undoing twice, or undoing hits that left the window, is not an error.
	require.NoError(t, s.Undo(ctx, "k", r2.Receipt))
	now = now.Add(time.Hour)
	require.NoError(t, s.Undo(ctx, "k", r3.Receipt))
	r4 := must(s.Hit(ctx, "k", rule, 3))(t)
	assert.True(t, r4.Allowed, "old hits left the window")
}

func TestSameInstantHitsAreCounted(t *testing.T) {
	ctx := context.Background()
	_, c := newMiniredis(t)
	now := time.Unix(1_900_000_000, 0)
	clock := func() time.Time { return now }
	a := must(redisstore.New(c, redisstore.WithClock(clock)))(t)
	b := must(redisstore.New(c, redisstore.WithClock(clock)))(t)
	rule := store.Rule{Limit: 4, Window: time.Second}
	// Two stores (two app servers) with counters that both start at 1.
	for i, s := range []*redisstore.Store{a, b, a, b} {
		r := must(s.Hit(ctx, "k", rule, 1))(t)
		require.True(t, r.Allowed, "hit %d", i)
		assert.Equal(t, 3-i, r.Remaining, "hit %d", i)
	}
	r := must(a.Hit(ctx, "k", rule, 1))(t)
	assert.False(t, r.Allowed)
}

func TestLocksOnMiniredis(t *testing.T) {
	ctx := context.Background()
	m, c := newMiniredis(t)
	s, err := redisstore.New(c, redisstore.WithPrefix("p:"), redisstore.WithFenceTTL(time.Minute))
	require.NoError(t, err)

	t.Run("ttl rounds up to whole milliseconds", func(t *testing.T) {
		r := must(s.Acquire(ctx, "round", "tok", 1500*time.Microsecond))(t)
		require.True(t, r.Acquired)
		assert.Equal(t, 2*time.Millisecond, m.TTL(lockKey("p:", "round")))
		assert.Equal(t, 2*time.Millisecond, must(s.TTL(ctx, "round", "tok"))(t))
		require.NoError(t, s.Extend(ctx, "round", "tok", 2*time.Second+time.Nanosecond))
		assert.Equal(t, 2001*time.Millisecond, must(s.TTL(ctx, "round", "tok"))(t))
		assert.Equal(t, time.Minute, m.TTL(fenceKey("p:", "round")), "fence counter carries the fence TTL")
	})

	t.Run("held by another", func(t *testing.T) {
		a := must(s.Acquire(ctx, "k", "a", 10*time.Second))(t)
		require.True(t, a.Acquired)
		b := must(s.Acquire(ctx, "k", "b", 10*time.Second))(t)
		assert.Equal(t, store.LockResult{HolderTTL: 10 * time.Second}, b)
		require.ErrorIs(t, s.Release(ctx, "k", "b"), store.ErrNotHeld)
		require.ErrorIs(t, s.Extend(ctx, "k", "b", time.Minute), store.ErrNotHeld)
		_, err := s.TTL(ctx, "k", "b")
		require.ErrorIs(t, err, store.ErrNotHeld)

		again := must(s.Acquire(ctx, "k", "a", 20*time.Second))(t)
		require.True(t, again.Acquired, "same token re-acquires")
		assert.Greater(t, again.Fence, a.Fence)
		assert.Equal(t, 20*time.Second, must(s.TTL(ctx, "k", "a"))(t))

		require.NoError(t, s.Release(ctx, "k", "a"))
		require.ErrorIs(t, s.Release(ctx, "k", "a"), store.ErrNotHeld)
		b = must(s.Acquire(ctx, "k", "b", 10*time.Second))(t)
		require.True(t, b.Acquired)
		assert.Greater(t, b.Fence, again.Fence)
	})

	t.Run("expired lock is not re-created by extend", func(t *testing.T) {
		require.True(t, must(s.Acquire(ctx, "exp", "a", time.Second))(t).Acquired)
		m.FastForward(time.Second)
		require.ErrorIs(t, s.Extend(ctx, "exp", "a", time.Minute), store.ErrNotHeld)
		assert.False(t, m.Exists(lockKey("p:", "exp")))
	})

	t.Run("fences increase after the counter expires", func(t *testing.T) {
		m.SetTime(time.Unix(1_900_000_000, 0))
		first := must(s.Acquire(ctx, "fence", "a", time.Second))(t)
		require.True(t, first.Acquired)
		assert.Equal(t, int64(1_900_000_000_000_000), first.Fence, "fence starts at Redis TIME in microseconds")
		m.FastForward(2 * time.Minute)
		m.SetTime(time.Unix(1_900_000_120, 0))
		require.False(t, m.Exists(fenceKey("p:", "fence")), "counter expired")
		second := must(s.Acquire(ctx, "fence", "b", time.Second))(t)
		require.True(t, second.Acquired)
		assert.Greater(t, second.Fence, first.Fence)
	})
}

func TestDefaultTimeIsRedisTime(t *testing.T) {
	ctx := context.Background()
	m, c := newMiniredis(t)
	redisNow := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	m.SetTime(redisNow)
	s := must(redisstore.New(c, redisstore.WithPrefix("p:")))(t)
	r := must(s.Hit(ctx, "k", store.Rule{Limit: 2, Window: time.Minute}, 1))(t)
	require.True(t, r.Allowed)
	members, err := c.ZRangeWithScores(ctx, windowKey("p:", "k"), 0, -1).Result()
	require.NoError(t, err)
	require.Len(t, members, 1)
	assert.Equal(t, float64(redisNow.UnixMicro()), members[0].Score, "hit scored with Redis TIME")
	assert.Less(t, len(members[0].Member.(string)), 16, "members are short")
}

func TestUndoNeedsTheSameStore(t *testing.T) {
	ctx := context.Background()
	_, c := newMiniredis(t)
	a := must(redisstore.New(c))(t)
	b := must(redisstore.New(c))(t)
	rule := store.Rule{Limit: 1, Window: time.Minute}
	r := must(a.Hit(ctx, "k", rule, 1))(t)
	require.True(t, r.Allowed)
	// b's hit ids carry another random prefix: its Undo of a's receipt
	// removes nothing.
	require.NoError(t, b.Undo(ctx, "k", r.Receipt))
	assert.False(t, must(b.Hit(ctx, "k", rule, 1))(t).Allowed)
	require.NoError(t, a.Undo(ctx, "k", r.Receipt))
	assert.True(t, must(b.Hit(ctx, "k", rule, 1))(t).Allowed)
}

func TestErrorsNameTheOperation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, c := newMiniredis(t)
	s := must(redisstore.New(c))(t)
	_, err := s.Hit(ctx, "k", store.Rule{Limit: 1, Window: time.Second}, 1)
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, strings.HasPrefix(err.Error(), "redisstore: hit: "), err.Error())
}
