package redisstore

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluicehq/sluice/store"
)

// TestHitReplyReadsBothForms checks the decoding of a Hit script's reply: the
// array as it stands, and the integer that packs it (reply.lua) with the
// retry time and receipt id it implies.
func TestHitReplyReadsBothForms(t *testing.T) {
	const maxRemaining, maxReset = 1<<13 - 1, 1<<39 - 1
	pack := func(allowed, remaining, reset int64) int64 { return allowed + remaining*2 + reset*16384 }
	cases := []struct {
		name  string
		reply any
		alg   store.Algorithm
		want  [partReplyLen]int64
	}{
		{"array", []any{int64(0), int64(3), int64(7), int64(9), int64(0)}, store.SlidingLog, [partReplyLen]int64{0, 3, 7, 9, 0}},
		{"log allowed", pack(1, 4, 1_000_000), store.SlidingLog, [partReplyLen]int64{1, 4, 0, 1_000_000, 0}},
		{"log denied", pack(0, 0, 2_500_000), store.SlidingLog, [partReplyLen]int64{0, 0, 2_500_000, 2_500_000, 0}},
		{"gcra allowed", pack(1, 9, 600), store.GCRA, [partReplyLen]int64{1, 9, 0, 600, 1}},
		{"largest", pack(1, maxRemaining, maxReset), store.SlidingLog, [partReplyLen]int64{1, maxRemaining, 0, maxReset, 0}},
		{"empty", pack(1, 0, 0), store.GCRA, [partReplyLen]int64{1, 0, 0, 0, 1}},
	}
	for _, c := range cases {
		var v [partReplyLen]int64
		if assert.True(t, hitReply(c.reply, c.alg, &v), c.name) {
			assert.Equal(t, c.want, v, c.name)
		}
	}
	for _, bad := range []struct {
		name  string
		reply any
		alg   store.Algorithm
	}{
		{"negative", int64(-2), store.SlidingLog},
		{"counter packed", pack(1, 1, 1), store.SlidingCounter}, // its receipt id cannot be implied
		{"short array", []any{int64(1), int64(2)}, store.GCRA},
		{"string", "1", store.SlidingLog},
	} {
		var v [partReplyLen]int64
		assert.False(t, hitReply(bad.reply, bad.alg, &v), bad.name)
	}
}
