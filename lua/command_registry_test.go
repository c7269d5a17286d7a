package lua_test

import (
	"context"
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

// raiseSrc raises the integer at KEYS[1] to ARGV[1] if that is greater and
// returns the value the key holds afterwards.
const raiseSrc = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = tonumber(ARGV[1])
if v > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  cur = v
end
return cur
`

func TestUserCommandDefineAndRun(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		reg := lua.NewRegistry()
		raise, err := reg.Define("myapp_raise", 1, raiseSrc)
		require.NoError(t, err)
		assert.Equal(t, "myapp_raise", raise.Name())
		assert.Equal(t, 1, raise.Keys())
		assert.Equal(t, raiseSrc, raise.Source())
		assert.Equal(t, sha1Hex(raiseSrc), raise.SHA())
		assert.Equal(t, raise.SHA(), raise.Script().Hash())

		got, ok := reg.Lookup("myapp_raise")
		require.True(t, ok)
		assert.Same(t, raise, got)
		_, ok = reg.Lookup("missing")
		assert.False(t, ok)

		key := tg.Key("high")
		for _, tc := range []struct{ arg, want int64 }{{5, 5}, {3, 5}, {9, 9}} {
			v, err := raise.Run(ctx, tg.Client, []string{key}, tc.arg).Int64()
			require.NoError(t, err)
			assert.Equal(t, tc.want, v)
		}
		assert.Equal(t, "9", tg.Client.Get(ctx, key).Val())
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

	b, err := lua.NewCommand("b", 1, "return 2")
	require.NoError(t, err)
	require.NoError(t, reg.Add(a, b))
	assert.ErrorIs(t, reg.Add(b), lua.ErrInvalidCommand, "a command added twice")
}

func TestUserCommandKeyCount(t *testing.T) {
	client := &redistest.Counting{Next: redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1})}
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
	assert.Zero(t, client.Calls(), "a wrong key count never reaches Redis")

	err = two.Run(ctx, client, []string{"a", "b"}).Err()
	assert.Error(t, err)
	assert.NotErrorIs(t, err, lua.ErrKeyCount, "the right count is sent")
	assert.Positive(t, client.Calls())
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
		assert.Equal(t, sha1Hex(srcs[want]), cmds[i].SHA())
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

func TestPreload(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		reg := lua.NewRegistry()
		// Sources unique to this run, so that no earlier run cached them.
		mine, err := reg.Define("myapp_token", 0, "return '"+tg.Token+"'")
		require.NoError(t, err)
		raise, err := reg.Define("myapp_raise", 1, raiseSrc+"-- "+tg.Token)
		require.NoError(t, err)
		shas := []string{mine.SHA(), raise.SHA()}

		redistest.FlushScripts(t, tg.Client)
		for i, cached := range redistest.ScriptsCached(t, tg.Client, shas...) {
			assert.False(t, cached, "node %d before Preload", i)
		}
		require.NoError(t, reg.Preload(ctx, tg.Client))
		cached := redistest.ScriptsCached(t, tg.Client, shas...)
		if tg.Cluster {
			assert.Len(t, cached, 3, "one answer per master")
		}
		for i, c := range cached {
			assert.True(t, c, "node %d after Registry.Preload: SCRIPT EXISTS of every command", i)
		}

		redistest.FlushScripts(t, tg.Client)
		require.NoError(t, lua.Preload(ctx, tg.Client, mine))
		for i, c := range redistest.ScriptsCached(t, tg.Client, mine.SHA()) {
			assert.True(t, c, "node %d after Preload", i)
		}
		for i, c := range redistest.ScriptsCached(t, tg.Client, raise.SHA()) {
			assert.False(t, c, "node %d: Preload loads only the commands it is given", i)
		}

		require.NoError(t, lua.Preload(ctx, tg.Client), "no commands: nothing to do")
		assert.ErrorIs(t, lua.Preload(ctx, tg.Client, mine, nil), lua.ErrInvalidCommand)
	})
}

func TestUserCommandNoScript(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		reg := lua.NewRegistry()
		raise, err := reg.Define("myapp_raise", 1, raiseSrc)
		require.NoError(t, err)
		require.NoError(t, reg.Preload(ctx, tg.Client))
		key := tg.Key("n")

		redistest.FlushScripts(t, tg.Client)
		err = tg.Client.EvalSha(ctx, raise.SHA(), []string{key}, 1).Err()
		require.Error(t, err)
		require.Contains(t, err.Error(), "NOSCRIPT", "the flush emptied the cache")

		v, err := raise.Run(ctx, tg.Client, []string{key}, 4).Int64()
		require.NoError(t, err, "Run recovers from NOSCRIPT")
		assert.Equal(t, int64(4), v)
	})
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
