package rediscmd_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/lua"
	"github.com/sluicehq/sluice/rediscmd"
)

func TestCommands(t *testing.T) {
	cmds := rediscmd.Commands()
	want := []string{
		"sluice_capped_incr", "sluice_leaderboard_add", "sluice_leaderboard_get",
		"sluice_leaderboard_top", "sluice_percentile", "sluice_record_sample",
		"sluice_reserve", "sluice_restock", "sluice_weighted_avg",
	}
	require.Len(t, cmds, len(want))
	for i, c := range cmds {
		assert.Equal(t, want[i], c.Name(), "sorted by name")
		sum := sha1.Sum([]byte(c.Source()))
		assert.Equal(t, hex.EncodeToString(sum[:]), c.SHA())
		assert.Contains(t, c.Source(), "-- KEYS[1", "%s documents its KEYS", c.Name())
		assert.Contains(t, c.Source(), "-- Reply:", "%s documents its reply", c.Name())
	}
	reg := lua.NewRegistry()
	_, err := reg.Define("myapp_cmd", 0, "return 1")
	require.NoError(t, err)
	require.NoError(t, reg.Add(rediscmd.Commands()...), "the commands share a registry with an application's own")
	assert.ErrorIs(t, reg.Add(rediscmd.Commands()[0]), lua.ErrInvalidCommand)
}

func TestPreload(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		var shas []string
		for _, c := range rediscmd.Commands() {
			shas = append(shas, c.SHA())
		}
		redistest.FlushScripts(t, tg.Client)
		if tg.Mini != nil { // a shared server may see other tests run them meanwhile
			assert.Equal(t, []bool{false}, redistest.ScriptsCached(t, tg.Client, shas[0]), "before Preload")
		}
		require.NoError(t, rediscmd.Preload(ctx, tg.Client))
		cached := redistest.ScriptsCached(t, tg.Client, shas...)
		if tg.Cluster {
			assert.Len(t, cached, 3, "one answer per master")
		}
		for i, c := range cached {
			assert.True(t, c, "node %d after Preload: SCRIPT EXISTS of every command", i)
		}
	})
}

func TestCommandsRecoverFromNoScript(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		require.NoError(t, rediscmd.Preload(ctx, tg.Client))

		redistest.FlushScripts(t, tg.Client)
		n, err := rediscmd.CappedIncr(ctx, tg.Client, tg.Key("capped"), 2, 10, 0)
		require.NoError(t, err, "calls recover from NOSCRIPT")
		assert.Equal(t, int64(2), n)
		redistest.FlushScripts(t, tg.Client)
		_, err = rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: tg.Key("stock"), Quantity: 1}})
		assert.ErrorIs(t, err, rediscmd.ErrShortage, "a multi-key call too")
	})
}
