package lua_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/lua"
)

func TestTagKey(t *testing.T) {
	assert.Equal(t, "board:{season-1}:scores", lua.TagKey("board", "season-1", "scores"))
	assert.Equal(t, lua.Slot("season-1"), lua.Slot(lua.TagKey("board", "season-1", "scores")))
	assert.Equal(t, lua.Slot(lua.TagKey("a", "t", "x")), lua.Slot(lua.TagKey("b", "t", "y")), "one tag, one slot")
}

func TestSlot(t *testing.T) {
	tests := []struct {
		key  string
		want int
	}{
		{"123456789", 0x31C3 % 16384}, // the CRC-16/XMODEM check value
		{"foo", 12182},
		{"", 0},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, lua.Slot(tc.key), "%q", tc.key)
	}
	same := [][2]string{
		{"{user1000}.following", "{user1000}.followers"},
		{"foo{bar}{zap}", "bar"},
		{"foo{{bar}}zap", "{bar"},
		{"foo{}{bar}", "foo{}{bar}"},
		{"stock:{shop}:a", "shop"},
	}
	for _, p := range same {
		assert.Equal(t, lua.Slot(p[0]), lua.Slot(p[1]), "%q and %q", p[0], p[1])
	}

	t.Run("cluster", func(t *testing.T) {
		c := redistest.ClusterClient(t)
		ctx := context.Background()
		for _, k := range []string{"foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "stock:{shop}:a", "ü{ß}", "a{b"} {
			want, err := c.ClusterKeySlot(ctx, k).Result()
			require.NoError(t, err)
			assert.Equal(t, int(want), lua.Slot(k), "CLUSTER KEYSLOT %q", k)
		}
	})
}
