package rediscmd_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/rediscmd"
)

func TestCappedIncr(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		tests := []struct {
			name    string
			initial string // "" = missing key
			by, max int64
			want    int64
		}{
			{"missing key starts at 0", "", 3, 10, 3},
			{"below the cap", "2", 3, 10, 5},
			{"reaches exactly max", "7", 3, 10, 10},
			{"passing max stops at max", "8", 5, 10, 10},
			{"at max stays at max", "10", 1, 10, 10},
			{"above a lowered max is left alone", "15", 1, 10, 15},
			{"by 0 reads", "4", 0, 10, 4},
			{"max 0", "", 5, 0, 0},
			{"negative counter", "-5", 3, 10, -2},
			{"up to MaxInt", strconv.FormatInt(rediscmd.MaxInt-1, 10), 5, rediscmd.MaxInt, rediscmd.MaxInt},
			{"by MaxInt from the lowest counter", strconv.FormatInt(-rediscmd.MaxInt, 10), rediscmd.MaxInt, rediscmd.MaxInt, 0},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				key := tg.Key("counter:" + strconv.Itoa(i))
				if tc.initial != "" {
					require.NoError(t, tg.Client.Set(ctx, key, tc.initial, 0).Err())
				}
				got, err := rediscmd.CappedIncr(ctx, tg.Client, key, tc.by, tc.max, 0)
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
				stored, err := tg.Client.Get(ctx, key).Result()
				if tc.initial == "" && tc.want == 0 {
					assert.ErrorIs(t, err, redis.Nil, "nothing added, so no key is created")
					return
				}
				require.NoError(t, err)
				assert.Equal(t, strconv.FormatInt(tc.want, 10), stored)
			})
		}

		t.Run("repeated increments never pass max", func(t *testing.T) {
			key := tg.Key("repeat")
			var got int64
			for range 5 {
				v, err := rediscmd.CappedIncr(ctx, tg.Client, key, 4, 10, 0)
				require.NoError(t, err)
				assert.GreaterOrEqual(t, v, got)
				assert.LessOrEqual(t, v, int64(10))
				got = v
			}
			assert.Equal(t, int64(10), got)
		})

		t.Run("non-integer values are errors, not 0", func(t *testing.T) {
			for i, bad := range []string{"abc", "1.5", "007", " 5", "+5", "-0", "", "9007199254740992", "-9007199254740992", "1e3"} {
				key := tg.Key("bad:" + strconv.Itoa(i))
				require.NoError(t, tg.Client.Set(ctx, key, bad, 0).Err())
				_, err := rediscmd.CappedIncr(ctx, tg.Client, key, 1, 100, 0)
				assert.ErrorIs(t, err, rediscmd.ErrWrongValue, "value %q", bad)
				stored, err := tg.Client.Get(ctx, key).Result()
				require.NoError(t, err)
				assert.Equal(t, bad, stored, "unchanged")
			}
		})

		t.Run("wrong type", func(t *testing.T) {
			key := tg.Key("hash")
			require.NoError(t, tg.Client.HSet(ctx, key, "f", 1).Err())
			_, err := rediscmd.CappedIncr(ctx, tg.Client, key, 1, 100, 0)
			assert.ErrorIs(t, err, rediscmd.ErrWrongValue)
		})

		t.Run("TTL", func(t *testing.T) {
			key := tg.Key("ttl:new")
			_, err := rediscmd.CappedIncr(ctx, tg.Client, key, 1, 10, time.Hour)
			require.NoError(t, err)
			ttl := tg.Client.PTTL(ctx, key).Val()
			assert.Greater(t, ttl, 59*time.Minute)
			assert.LessOrEqual(t, ttl, time.Hour)

			kept := tg.Key("ttl:kept")
			require.NoError(t, tg.Client.Set(ctx, kept, "1", 10*time.Second).Err())
			_, err = rediscmd.CappedIncr(ctx, tg.Client, kept, 1, 10, time.Hour)
			require.NoError(t, err)
			ttl = tg.Client.PTTL(ctx, kept).Val()
			assert.Greater(t, ttl, time.Duration(0))
			assert.LessOrEqual(t, ttl, 10*time.Second, "an existing expiry is kept")

			_, err = rediscmd.CappedIncr(ctx, tg.Client, kept, 1, 10, 0)
			require.NoError(t, err)
			assert.Greater(t, tg.Client.PTTL(ctx, kept).Val(), time.Duration(0), "INCRBY keeps the expiry")

			none := tg.Key("ttl:none")
			_, err = rediscmd.CappedIncr(ctx, tg.Client, none, 1, 10, 0)
			require.NoError(t, err)
			assert.Equal(t, time.Duration(-1), tg.Client.PTTL(ctx, none).Val(), "no expiry with ttl 0")

			atMax := tg.Key("ttl:atmax")
			require.NoError(t, tg.Client.Set(ctx, atMax, "10", 0).Err())
			got, err := rediscmd.CappedIncr(ctx, tg.Client, atMax, 1, 10, time.Minute)
			require.NoError(t, err)
			assert.Equal(t, int64(10), got)
			assert.Greater(t, tg.Client.PTTL(ctx, atMax).Val(), time.Duration(0), "a full counter gets the expiry too")

			if tg.Mini != nil {
				tg.Mini.FastForward(time.Hour)
				got, err := rediscmd.CappedIncr(ctx, tg.Client, key, 1, 10, time.Hour)
				require.NoError(t, err)
				assert.Equal(t, int64(1), got, "the counter restarts after it expired")
			}
		})
	})
}

func TestCappedIncrInvalidArguments(t *testing.T) {
	client := &redistest.Counting{Next: redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t)})}
	ctx := context.Background()
	tests := []struct {
		name    string
		key     string
		by, max int64
		ttl     time.Duration
	}{
		{"empty key", "", 1, 10, 0},
		{"negative by", "k", -1, 10, 0},
		{"by past MaxInt", "k", rediscmd.MaxInt + 1, rediscmd.MaxInt, 0},
		{"negative max", "k", 1, -1, 0},
		{"max past MaxInt", "k", 1, rediscmd.MaxInt + 1, 0},
		{"negative TTL", "k", 1, 10, -time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rediscmd.CappedIncr(ctx, client, tc.key, tc.by, tc.max, tc.ttl)
			assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
		})
	}
	assert.Zero(t, client.Calls(), "invalid calls never reach Redis")
}
