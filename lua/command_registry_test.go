package lua_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/lua"
)

// catRaiseSrc raises the integer at KEYS[1] to ARGV[1] if that is greater and
// returns the value the key holds afterwards.
const catRaiseSrc = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = tonumber(ARGV[1])
if v > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  cur = v
end
return cur
`

func catSHA(src string) string {
	sum := sha1.Sum([]byte(src))
	return hex.EncodeToString(sum[:])
}

func TestUserCommandDefineAndRun(t *testing.T) {
	catEach(t, func(t *testing.T, tg *catTarget) {
		ctx := context.Background()
		reg := lua.NewRegistry()
		raise, err := reg.Define("myapp_raise", 1, catRaiseSrc)
		require.NoError(t, err)
		assert.Equal(t, "myapp_raise", raise.Name())
		assert.Equal(t, 1, raise.Keys())
		assert.Equal(t, catRaiseSrc, raise.Source())
		assert.Equal(t, catSHA(catRaiseSrc), raise.SHA())
		assert.Equal(t, raise.SHA(), raise.Script().Hash())

		got, ok := reg.Lookup("myapp_raise")
		require.True(t, ok)
		assert.Same(t, raise, got)
		_, ok = reg.Lookup("missing")
		assert.False(t, ok)

		key := tg.key("high")
		for _, tc := range []struct{ arg, want int64 }{{5, 5}, {3, 5}, {9, 9}} {
			v, err := raise.Run(ctx, tg.client, []string{key}, tc.arg).Int64()
			require.NoError(t, err)
			assert.Equal(t, tc.want, v)
		}
		assert.Equal(t, "9", tg.client.Get(ctx, key).Val())
	})
}

func TestUserCommandDefinitionErrors(t *testing.T) {
	reg := lua.NewRegistry()
	first, err := reg.Define("dup", 1, "return 1")
	require.NoError(t, err)

	_, err = reg.Define("dup", 1, "return 2")
	assert.ErrorIs(t, err, lua.ErrInvalidCommand, "a name defined twice")
	got, _ := reg.Lookup("dup")
	assert.Same(t, first, got, "the first definition stays")

	tests := []struct {
		name string
		keys int
		src  string
	}{
		{"", 1, "return 1"},
		{"neg", -2, "return 1"},
		{"nosrc", 0, ""},
	}
	for _, tc := range tests {
		_, err := reg.Define(tc.name, tc.keys, tc.src)
		assert.ErrorIs(t, err, lua.ErrInvalidCommand, "%q %d %q", tc.name, tc.keys, tc.src)
		_, err = lua.NewCommand(tc.name, tc.keys, tc.src)
		assert.ErrorIs(t, err, lua.ErrInvalidCommand)
	}

	a, err := lua.NewCommand("a", 0, "return 1")
	require.NoError(t, err)
	otherDup, err := lua.NewCommand("dup", 0, "return 3")
	require.NoError(t, err)
	assert.ErrorIs(t, reg.Add(a, otherDup), lua.ErrInvalidCommand)
	_, ok := reg.Lookup("a")
	assert.False(t, ok, "a failed Add adds nothing")
	assert.ErrorIs(t, reg.Add(a, a), lua.ErrInvalidCommand, "the same name twice in one Add")
	assert.ErrorIs(t, reg.Add(nil), lua.ErrInvalidCommand)

	require.NoError(t, reg.Add(lua.Catalogue()...))
	assert.ErrorIs(t, reg.Add(lua.Catalogue()[0]), lua.ErrInvalidCommand)
}

func TestUserCommandKeyCount(t *testing.T) {
	client := &catCounting{next: redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1})}
	ctx := context.Background()
	two, err := lua.NewCommand("two", 2, "return 1")
	require.NoError(t, err)
	none, err := lua.NewCommand("none", 0, "return 1")
	require.NoError(t, err)

	for _, keys := range [][]string{nil, {"a"}, {"a", "b", "c"}} {
		err := two.Run(ctx, client, keys).Err()
		assert.ErrorIs(t, err, lua.ErrKeyCount, "%d keys", len(keys))
	}
	assert.ErrorIs(t, none.Run(ctx, client, []string{"a"}).Err(), lua.ErrKeyCount)
	assert.Zero(t, client.calls.Load(), "a wrong key count never reaches Redis")

	err = two.Run(ctx, client, []string{"a", "b"}).Err()
	assert.Error(t, err)
	assert.NotErrorIs(t, err, lua.ErrKeyCount, "the right count is sent")
	assert.Positive(t, client.calls.Load())
}

func TestUserCommandList(t *testing.T) {
	reg := lua.NewRegistry()
	srcs := map[string]string{"b_cmd": "return 'b'", "a_cmd": "return 'a'", "c_cmd": "return 'c'"}
	for _, name := range []string{"b_cmd", "c_cmd", "a_cmd"} {
		_, err := reg.Define(name, 0, srcs[name])
		require.NoError(t, err)
	}
	cmds := reg.Commands()
	require.Len(t, cmds, 3)
	for i, want := range []string{"a_cmd", "b_cmd", "c_cmd"} {
		assert.Equal(t, want, cmds[i].Name())
		assert.Equal(t, catSHA(srcs[want]), cmds[i].SHA())
	}
	assert.Empty(t, lua.NewRegistry().Commands())
}

func TestUserCommandConcurrentRegistry(t *testing.T) {
	reg := lua.NewRegistry()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := reg.Define("cmd"+strconv.Itoa(i), 0, "return "+strconv.Itoa(i))
			assert.NoError(t, err)
			_ = reg.Commands()
			_, _ = reg.Lookup("cmd0")
		}()
	}
	wg.Wait()
	assert.Len(t, reg.Commands(), 20)
}

func TestUserCommandLoad(t *testing.T) {
	catEach(t, func(t *testing.T, tg *catTarget) {
		ctx := context.Background()
		reg := lua.NewRegistry()
		// A source unique to this run, so that no earlier run cached it.
		src := "return '" + tg.token + "'"
		mine, err := reg.Define("myapp_token", 0, src)
		require.NoError(t, err)
		require.NoError(t, reg.Add(lua.Catalogue()...))
		var shas []string
		for _, c := range reg.Commands() {
			shas = append(shas, c.SHA())
		}

		catFlushScripts(t, tg.client)
		for i, cached := range catScriptsCached(t, tg.client, shas...) {
			assert.False(t, cached, "node %d before Load", i)
		}
		require.NoError(t, reg.Load(ctx, tg.client))
		cached := catScriptsCached(t, tg.client, shas...)
		if tg.cluster {
			assert.Len(t, cached, 3, "one answer per master")
		}
		for i, c := range cached {
			assert.True(t, c, "node %d after Load: SCRIPT EXISTS of every command", i)
		}

		catFlushScripts(t, tg.client)
		require.NoError(t, mine.Load(ctx, tg.client))
		for i, c := range catScriptsCached(t, tg.client, mine.SHA()) {
			assert.True(t, c, "node %d after Command.Load", i)
		}

		catFlushScripts(t, tg.client)
		require.NoError(t, lua.LoadCatalogue(ctx, tg.client))
		var catalogue []string
		for _, c := range lua.Catalogue() {
			catalogue = append(catalogue, c.SHA())
		}
		for i, c := range catScriptsCached(t, tg.client, catalogue...) {
			assert.True(t, c, "node %d after LoadCatalogue", i)
		}
	})
}

func TestUserCommandNoScript(t *testing.T) {
	catEach(t, func(t *testing.T, tg *catTarget) {
		ctx := context.Background()
		reg := lua.NewRegistry()
		raise, err := reg.Define("myapp_raise", 1, catRaiseSrc)
		require.NoError(t, err)
		require.NoError(t, reg.Load(ctx, tg.client))
		require.NoError(t, lua.LoadCatalogue(ctx, tg.client))
		key := tg.key("n")

		catFlushScripts(t, tg.client)
		err = tg.client.EvalSha(ctx, raise.SHA(), []string{key}, 1).Err()
		require.Error(t, err)
		require.Contains(t, err.Error(), "NOSCRIPT", "the flush emptied the cache")

		v, err := raise.Run(ctx, tg.client, []string{key}, 4).Int64()
		require.NoError(t, err, "Run recovers from NOSCRIPT")
		assert.Equal(t, int64(4), v)

		catFlushScripts(t, tg.client)
		n, err := lua.CappedIncr(ctx, tg.client, tg.key("capped"), 2, 10)
		require.NoError(t, err, "catalogue calls recover from NOSCRIPT")
		assert.Equal(t, int64(2), n)
		_, err = lua.Reserve(ctx, tg.client, []lua.Item{{Key: tg.key("stock"), Quantity: 1}})
		assert.ErrorIs(t, err, lua.ErrShortage, "a multi-key catalogue call too")
	})
}

func TestCatalogue(t *testing.T) {
	cmds := lua.Catalogue()
	want := []string{
		"sluice_capped_incr", "sluice_leaderboard_add", "sluice_leaderboard_get",
		"sluice_leaderboard_top", "sluice_percentile", "sluice_record_sample",
		"sluice_reserve", "sluice_restock", "sluice_weighted_avg",
	}
	require.Len(t, cmds, len(want))
	for i, c := range cmds {
		assert.Equal(t, want[i], c.Name(), "sorted by name")
		assert.Equal(t, catSHA(c.Source()), c.SHA())
		assert.Contains(t, c.Source(), "-- KEYS[1", "%s documents its KEYS", c.Name())
		assert.Contains(t, c.Source(), "-- Reply:", "%s documents its reply", c.Name())
	}
	for _, b := range lua.Builtin() {
		for _, c := range cmds {
			assert.NotEqual(t, b.Name(), c.Name(), "no clash with the built-in scripts")
		}
	}
	reg := lua.NewRegistry()
	require.NoError(t, reg.Add(lua.Builtin()...))
	require.NoError(t, reg.Add(lua.Catalogue()...), "built-in and catalogue scripts share a registry")
}

func TestZeroRegistryIsUsable(t *testing.T) {
	var reg lua.Registry
	cmd, err := reg.Define("zero", 0, "return 1")
	require.NoError(t, err)
	got, ok := reg.Lookup("zero")
	require.True(t, ok)
	assert.Same(t, cmd, got)
	assert.Len(t, reg.Commands(), 1)
}

func TestAnyKeysCommandTakesAnyNumberOfKeys(t *testing.T) {
	m := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = client.Close() })

	count, err := lua.NewCommand("count_keys", lua.AnyKeys, "return #KEYS")
	require.NoError(t, err)
	assert.Equal(t, lua.AnyKeys, count.Keys())
	for _, keys := range [][]string{nil, {"a"}, {"a", "b", "c"}} {
		n, err := count.Run(context.Background(), client, keys).Int()
		require.NoError(t, err)
		assert.Equal(t, len(keys), n)
	}
}
