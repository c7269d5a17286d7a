package rediscmd_test

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/lua"
	"github.com/sluicehq/sluice/rediscmd"
)

// catMembers returns the members of entries in order.
func catMembers(entries []rediscmd.LeaderboardEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Member
	}
	return out
}

func TestLeaderboardTieBreak(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		t0 := time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
		latest := time.UnixMilli(9999999999999)
		for _, score := range []int64{1_000_000, 1_000_000_000_000, rediscmd.MaxInt} {
			t.Run(strconv.FormatInt(score, 10), func(t *testing.T) {
				for _, base := range []time.Time{t0, time.UnixMilli(0), latest.Add(-2 * time.Millisecond)} {
					key := tg.Key("tie:" + strconv.FormatInt(score, 10) + ":" + strconv.FormatInt(base.UnixMilli(), 10))
					// Added out of time order: c (latest), a (earliest), b.
					order := []struct {
						member string
						at     time.Time
					}{
						{"c", base.Add(2 * time.Millisecond)},
						{"a", base},
						{"b", base.Add(time.Millisecond)},
					}
					wantRank := map[string]int64{"c": 1, "a": 1, "b": 2}
					for _, o := range order {
						e, err := rediscmd.LeaderboardAdd(ctx, tg.Client, key, o.member, score, o.at, 0)
						require.NoError(t, err)
						assert.Equal(t, score, e.Score)
						assert.Equal(t, wantRank[o.member], e.Rank, "rank of %s when added", o.member)
						assert.True(t, o.at.Equal(e.AchievedAt), "%v != %v", o.at, e.AchievedAt)
					}
					top, err := rediscmd.LeaderboardTop(ctx, tg.Client, key, 10)
					require.NoError(t, err)
					assert.Equal(t, []string{"a", "b", "c"}, catMembers(top), "1 ms earlier ranks first")
					for i, e := range top {
						assert.Equal(t, int64(i+1), e.Rank)
						assert.Equal(t, score, e.Score)
						assert.True(t, base.Add(time.Duration(i)*time.Millisecond).Equal(e.AchievedAt))
					}
				}
			})
		}
	})
}

func TestLeaderboard(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		key := tg.Key("board")
		t0 := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
		at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

		add := func(member string, by int64, at time.Time) rediscmd.LeaderboardEntry {
			t.Helper()
			e, err := rediscmd.LeaderboardAdd(ctx, tg.Client, key, member, by, at, 0)
			require.NoError(t, err)
			return e
		}
		assert.Equal(t, int64(1), add("alice", 50, at(0)).Rank)
		assert.Equal(t, int64(1), add("bob", 70, at(1)).Rank, "higher score first, whatever the time")
		assert.Equal(t, int64(3), add("carol", 10, at(2)).Rank)
		e := add("alice", 20, at(3))
		assert.Equal(t, int64(70), e.Score, "points add up")
		assert.Equal(t, int64(2), e.Rank, "bob reached 70 first")

		e = add("bob", 0, at(4))
		assert.Equal(t, int64(70), e.Score)
		assert.True(t, t0.Add(time.Millisecond).Equal(e.AchievedAt), "by 0 keeps the achievement time")
		assert.Equal(t, int64(1), e.Rank)

		e = add("carol", -15, at(5))
		assert.Equal(t, int64(-5), e.Score, "negative points lower the score")
		assert.Equal(t, int64(3), e.Rank)

		e = add("dave", 0, at(6))
		assert.Equal(t, int64(0), e.Score, "a new member with by 0 joins at 0")
		assert.Equal(t, int64(3), e.Rank)

		top, err := rediscmd.LeaderboardTop(ctx, tg.Client, key, 10)
		require.NoError(t, err)
		assert.Equal(t, []string{"bob", "alice", "dave", "carol"}, catMembers(top))
		top, err = rediscmd.LeaderboardTop(ctx, tg.Client, key, 2)
		require.NoError(t, err)
		assert.Equal(t, []string{"bob", "alice"}, catMembers(top))

		got, err := rediscmd.LeaderboardGet(ctx, tg.Client, key, "alice")
		require.NoError(t, err)
		assert.Equal(t, rediscmd.LeaderboardEntry{Member: "alice", Score: 70, Rank: 2, AchievedAt: t0.Add(3 * time.Millisecond)}, got)
		_, err = rediscmd.LeaderboardGet(ctx, tg.Client, key, "erin")
		assert.ErrorIs(t, err, rediscmd.ErrNotFound)

		n, err := tg.Client.ZCard(ctx, key).Result()
		require.NoError(t, err)
		assert.Equal(t, int64(4), n, "one sorted-set member per player")

		t.Run("member ids with separators", func(t *testing.T) {
			k := tg.Key("ids")
			for i, id := range []string{"a:b", "9999999999999:x", " ", "ü"} {
				_, err := rediscmd.LeaderboardAdd(ctx, tg.Client, k, id, int64(10-i), at(i), 0)
				require.NoError(t, err)
			}
			top, err := rediscmd.LeaderboardTop(ctx, tg.Client, k, 10)
			require.NoError(t, err)
			assert.Equal(t, []string{"a:b", "9999999999999:x", " ", "ü"}, catMembers(top))
		})

		t.Run("score range", func(t *testing.T) {
			k := tg.Key("range")
			_, err := rediscmd.LeaderboardAdd(ctx, tg.Client, k, "max", rediscmd.MaxInt, at(0), 0)
			require.NoError(t, err)
			_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, k, "max", 1, at(1), 0)
			assert.ErrorIs(t, err, rediscmd.ErrOutOfRange)
			e, err := rediscmd.LeaderboardGet(ctx, tg.Client, k, "max")
			require.NoError(t, err)
			assert.Equal(t, int64(rediscmd.MaxInt), e.Score, "unchanged")
			assert.True(t, t0.Equal(e.AchievedAt), "unchanged")

			_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, k, "min", -rediscmd.MaxInt, at(0), 0)
			require.NoError(t, err)
			_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, k, "min", -1, at(1), 0)
			assert.ErrorIs(t, err, rediscmd.ErrOutOfRange)
		})

		t.Run("server time by default", func(t *testing.T) {
			k := tg.Key("clock")
			if tg.Mini != nil {
				now := time.Date(2032, 3, 4, 5, 6, 7, 891_234_000, time.UTC)
				tg.Mini.SetTime(now)
				e, err := rediscmd.LeaderboardAdd(ctx, tg.Client, k, "x", 1, time.Time{}, 0)
				require.NoError(t, err)
				assert.Equal(t, now.Truncate(time.Millisecond), e.AchievedAt)
				return
			}
			before := time.Now()
			e, err := rediscmd.LeaderboardAdd(ctx, tg.Client, k, "x", 1, time.Time{}, 0)
			require.NoError(t, err)
			// The server shares this machine's clock; allow for skew, not speed.
			assert.WithinDuration(t, before, e.AchievedAt, time.Minute)
		})

		t.Run("TTL", func(t *testing.T) {
			k := tg.Key("weekly")
			times, err := rediscmd.LeaderboardTimesKey(k)
			require.NoError(t, err)
			_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, k, "x", 1, time.Time{}, time.Hour)
			require.NoError(t, err)
			boardTTL := tg.Client.PTTL(ctx, k).Val()
			timesTTL := tg.Client.PTTL(ctx, times).Val()
			assert.Greater(t, boardTTL, 59*time.Minute)
			assert.LessOrEqual(t, boardTTL, time.Hour)
			assert.Greater(t, timesTTL, 59*time.Minute, "the times hash expires with the board")

			_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, k, "y", 1, time.Time{}, 0)
			require.NoError(t, err)
			assert.Greater(t, tg.Client.PTTL(ctx, k).Val(), time.Duration(0), "later calls keep the expiry")

			// A board of one member keeps its expiry when that member's
			// score changes, with ttl 0 or not (kept, not started again).
			one := tg.Key("weekly:one")
			oneTimes, err := rediscmd.LeaderboardTimesKey(one)
			require.NoError(t, err)
			_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, one, "x", 1, time.Time{}, time.Hour)
			require.NoError(t, err)
			require.NoError(t, tg.Client.PExpire(ctx, one, 50*time.Second).Err())
			for _, ttl := range []time.Duration{0, time.Hour} {
				_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, one, "x", 5, time.Time{}, ttl)
				require.NoError(t, err)
				for _, key := range []string{one, oneTimes} {
					got := tg.Client.PTTL(ctx, key).Val()
					assert.Greater(t, got, time.Duration(0), "%s after a change with ttl %v", key, ttl)
					assert.LessOrEqual(t, got, 50*time.Second, "%s after a change with ttl %v", key, ttl)
				}
			}

			if tg.Mini != nil {
				tg.Mini.FastForward(time.Hour)
				assert.Zero(t, tg.Client.Exists(ctx, k, times).Val(), "both keys are gone")
			}
		})

		t.Run("data it did not write", func(t *testing.T) {
			k := tg.Key("foreign")
			require.NoError(t, tg.Client.ZAdd(ctx, k, redis.Z{Score: 1, Member: "alice"}).Err())
			_, err := rediscmd.LeaderboardTop(ctx, tg.Client, k, 5)
			assert.ErrorIs(t, err, rediscmd.ErrWrongValue)

			str := tg.Key("string")
			require.NoError(t, tg.Client.Set(ctx, str, "1", 0).Err())
			_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, str, "x", 1, time.Time{}, 0)
			assert.ErrorIs(t, err, rediscmd.ErrWrongValue)
		})

		t.Run("empty board", func(t *testing.T) {
			top, err := rediscmd.LeaderboardTop(ctx, tg.Client, tg.Key("empty"), 10)
			require.NoError(t, err)
			assert.Empty(t, top)
		})

		if tg.Cluster {
			t.Run("untagged key on Cluster", func(t *testing.T) {
				k := tg.Untagged("board")
				_, err := rediscmd.LeaderboardAdd(ctx, tg.Client, k, "x", 1, time.Time{}, 0)
				require.NoError(t, err, "the times hash is tagged with the whole key")
				e, err := rediscmd.LeaderboardGet(ctx, tg.Client, k, "x")
				require.NoError(t, err)
				assert.Equal(t, int64(1), e.Score)
			})
		}
	})
}

// TestLeaderboardMalformedData checks that every leaderboard call answers
// data it did not write with ErrWrongValue.
func TestLeaderboardMalformedData(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		at := time.UnixMilli(1000)

		t.Run("time not a decimal integer", func(t *testing.T) {
			for i, bad := range []string{"0x10", " 16", "1.6e1", "16.0", "-16", "x"} {
				k := tg.Key("badtime:" + strconv.Itoa(i))
				times, err := rediscmd.LeaderboardTimesKey(k)
				require.NoError(t, err)
				_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, k, "ann", 5, time.UnixMilli(16), 0)
				require.NoError(t, err)
				require.NoError(t, tg.Client.HSet(ctx, times, "ann", bad).Err())

				_, err = rediscmd.LeaderboardGet(ctx, tg.Client, k, "ann")
				assert.ErrorIs(t, err, rediscmd.ErrWrongValue, "LeaderboardGet, time %q", bad)
				_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, k, "ann", 1, at, 0)
				assert.ErrorIs(t, err, rediscmd.ErrWrongValue, "LeaderboardAdd, time %q", bad)
				assert.Equal(t, bad, tg.Client.HGet(ctx, times, "ann").Val(), "unchanged")
			}
		})

		t.Run("score not an integer", func(t *testing.T) {
			for i, bad := range []float64{1.5, 1e300, math.Inf(1)} {
				k := tg.Key("badscore:" + strconv.Itoa(i))
				e, err := rediscmd.LeaderboardAdd(ctx, tg.Client, k, "ann", 5, at, 0)
				require.NoError(t, err)
				member := tg.Client.ZRange(ctx, k, 0, 0).Val()[0]
				require.NoError(t, tg.Client.ZAdd(ctx, k, redis.Z{Score: bad, Member: member}).Err())

				_, err = rediscmd.LeaderboardGet(ctx, tg.Client, k, "ann")
				assert.ErrorIs(t, err, rediscmd.ErrWrongValue, "LeaderboardGet, score %v", bad)
				_, err = rediscmd.LeaderboardTop(ctx, tg.Client, k, 10)
				assert.ErrorIs(t, err, rediscmd.ErrWrongValue, "LeaderboardTop, score %v", bad)
				_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, k, "ann", 1, at, 0)
				assert.ErrorIs(t, err, rediscmd.ErrWrongValue, "LeaderboardAdd, score %v", bad)
				assert.Equal(t, int64(1), e.Rank)
			}
		})
	})
}

func TestLeaderboardInvalidArguments(t *testing.T) {
	client := &redistest.Counting{Next: redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t)})}
	ctx := context.Background()
	addTests := []struct {
		name   string
		key    string
		member string
		by     int64
		at     time.Time
		ttl    time.Duration
	}{
		{"empty key", "", "m", 1, time.Time{}, 0},
		{"key with '}' and no tag", "lb}x", "m", 1, time.Time{}, 0},
		{"empty member", "lb", "", 1, time.Time{}, 0},
		{"by past MaxInt", "lb", "m", rediscmd.MaxInt + 1, time.Time{}, 0},
		{"by below -MaxInt", "lb", "m", -rediscmd.MaxInt - 1, time.Time{}, 0},
		{"time before 1970", "lb", "m", 1, time.UnixMilli(-1), 0},
		{"time after 2286", "lb", "m", 1, time.UnixMilli(9999999999999 + 1), 0},
		{"negative TTL", "lb", "m", 1, time.Time{}, -1},
	}
	for _, tc := range addTests {
		t.Run("Add/"+tc.name, func(t *testing.T) {
			_, err := rediscmd.LeaderboardAdd(ctx, client, tc.key, tc.member, tc.by, tc.at, tc.ttl)
			assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
		})
	}
	for _, n := range []int{0, -1, rediscmd.MaxKeys + 1} {
		t.Run("Top/"+strconv.Itoa(n), func(t *testing.T) {
			_, err := rediscmd.LeaderboardTop(ctx, client, "lb", n)
			assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
		})
	}
	_, err := rediscmd.LeaderboardGet(ctx, client, "lb", "")
	assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
	assert.Zero(t, client.Calls(), "invalid calls never reach Redis")
}

func TestLeaderboardTimesKey(t *testing.T) {
	tests := []struct {
		key, want string
	}{
		{"lb:{game}", "lb:{game}:times"},
		{"{game}:lb", "{game}:lb:times"},
		{"lb:game", "{lb:game}:times"},
		{"lb{", "{lb{}:times"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			got, err := rediscmd.LeaderboardTimesKey(tc.key)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, lua.Slot(tc.key), lua.Slot(got), "same Cluster slot")
		})
	}
	for _, bad := range []string{"", "a}b", "a{}b", "a{}b}"} {
		_, err := rediscmd.LeaderboardTimesKey(bad)
		assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument, "%q", bad)
	}
}
