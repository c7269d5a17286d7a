package rediscmd_test

import (
	"context"
	"errors"
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

func TestWeightedAverage(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		a, b, c := tg.Key("a"), tg.Key("b"), tg.Key("c")
		require.NoError(t, tg.Client.HSet(ctx, a, "value", "1", "price", "10.5").Err())
		require.NoError(t, tg.Client.HSet(ctx, b, "value", "2", "price", "20.25").Err())
		require.NoError(t, tg.Client.HSet(ctx, c, "other", "7").Err())
		missing := tg.Key("missing")

		tests := []struct {
			name    string
			keys    []string
			weights []float64
			field   string
			want    float64
		}{
			{"keeps decimals", []string{a, b}, []float64{1, 2}, "value", 5.0 / 3.0},
			{"fractional weights and values", []string{a, b}, []float64{0.5, 1.5}, "price", (10.5*0.5 + 20.25*1.5) / 2},
			{"one key", []string{b}, []float64{3}, "value", 2},
			{"zero weights give 0", []string{a, b}, []float64{0, 0}, "value", 0},
			{"a zero weight drops the key", []string{a, b}, []float64{0, 4}, "value", 2},
			{"missing hash counts as 0 with its weight", []string{b, missing}, []float64{1, 1}, "value", 1},
			{"missing field counts as 0 with its weight", []string{b, c}, []float64{1, 3}, "value", 0.5},
			{"only missing", []string{missing}, []float64{1}, "value", 0},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := rediscmd.WeightedAverage(ctx, tg.Client, tc.keys, tc.weights, tc.field)
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
			})
		}

		t.Run("MaxKeys keys", func(t *testing.T) {
			keys := make([]string, rediscmd.MaxKeys)
			weights := make([]float64, rediscmd.MaxKeys)
			for i := range keys {
				keys[i] = tg.Key("many:" + strconv.Itoa(i))
				weights[i] = 1
			}
			require.NoError(t, tg.Client.HSet(ctx, keys[0], "value", strconv.Itoa(rediscmd.MaxKeys)).Err())
			got, err := rediscmd.WeightedAverage(ctx, tg.Client, keys, weights, "value")
			require.NoError(t, err)
			assert.Equal(t, 1.0, got)
		})

		t.Run("non-numeric field", func(t *testing.T) {
			bad := tg.Key("bad")
			require.NoError(t, tg.Client.HSet(ctx, bad, "value", "twelve").Err())
			_, err := rediscmd.WeightedAverage(ctx, tg.Client, []string{a, bad}, []float64{1, 1}, "value")
			assert.ErrorIs(t, err, rediscmd.ErrWrongValue)
		})

		t.Run("not a hash", func(t *testing.T) {
			str := tg.Key("string")
			require.NoError(t, tg.Client.Set(ctx, str, "1", 0).Err())
			_, err := rediscmd.WeightedAverage(ctx, tg.Client, []string{str}, []float64{1}, "value")
			assert.ErrorIs(t, err, rediscmd.ErrWrongValue)
		})

		t.Run("overflow", func(t *testing.T) {
			half, big, negBig := tg.Key("half"), tg.Key("big"), tg.Key("negbig")
			require.NoError(t, tg.Client.HSet(ctx, half, "value", "0.5").Err())
			require.NoError(t, tg.Client.HSet(ctx, big, "value", "1.5e308").Err())
			require.NoError(t, tg.Client.HSet(ctx, negBig, "value", "-1.5e308").Err())
			tests := []struct {
				name    string
				keys    []string
				weights []float64
			}{
				{"products", []string{big, big}, []float64{1e308, 1e308}},
				{"total weight", []string{half, half}, []float64{1e308, 1e308}},
				{"weighted sum", []string{big, big}, []float64{1, 1}},
				{"negative weighted sum", []string{negBig, negBig}, []float64{1, 1}},
				{"sum on the way", []string{big, big, negBig}, []float64{1, 1, 1}},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					got, err := rediscmd.WeightedAverage(ctx, tg.Client, tc.keys, tc.weights, "value")
					assert.ErrorIs(t, err, rediscmd.ErrOutOfRange, "got %v", got)
				})
			}
			got, err := rediscmd.WeightedAverage(ctx, tg.Client, []string{big, half}, []float64{1, 1}, "value")
			require.NoError(t, err)
			assert.Equal(t, (1.5e308+0.5)/2, got, "large but finite")
		})

		if tg.Cluster {
			t.Run("keys in different slots", func(t *testing.T) {
				keys := catCrossSlotKeys(tg)
				counting := &redistest.Counting{Next: tg.Client}
				_, err := rediscmd.WeightedAverage(ctx, counting, keys, []float64{1, 1}, "value")
				assert.ErrorIs(t, err, rediscmd.ErrCrossSlot, "the server's CROSSSLOT answer")

				_, err = rediscmd.WeightedAverage(ctx, tg.Client, keys, []float64{1, 1}, "value")
				assert.ErrorIs(t, err, rediscmd.ErrCrossSlot, "checked before sending")
				assert.Contains(t, err.Error(), "hash tag")
			})
		}
	})
}

// catCrossSlotKeys returns two untagged keys that live in different slots.
func catCrossSlotKeys(tg *redistest.Target) []string {
	first := tg.Untagged("x0")
	for i := 1; ; i++ {
		k := tg.Untagged("x" + strconv.Itoa(i))
		if lua.Slot(k) != lua.Slot(first) {
			return []string{first, k}
		}
	}
}

func TestWeightedAverageInvalidArguments(t *testing.T) {
	client := &redistest.Counting{Next: redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t)})}
	ctx := context.Background()
	many := make([]string, rediscmd.MaxKeys+1)
	manyWeights := make([]float64, rediscmd.MaxKeys+1)
	for i := range many {
		many[i] = "k" + strconv.Itoa(i)
	}
	tests := []struct {
		name    string
		keys    []string
		weights []float64
		field   string
	}{
		{"no keys", nil, nil, "value"},
		{"more weights than keys", []string{"a"}, []float64{1, 2}, "value"},
		{"more keys than weights", []string{"a", "b"}, []float64{1}, "value"},
		{"empty key", []string{"a", ""}, []float64{1, 1}, "value"},
		{"negative weight", []string{"a"}, []float64{-1}, "value"},
		{"NaN weight", []string{"a"}, []float64{math.NaN()}, "value"},
		{"infinite weight", []string{"a"}, []float64{math.Inf(1)}, "value"},
		{"too many keys", many, manyWeights, "value"},
		{"empty field", []string{"a"}, []float64{1}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rediscmd.WeightedAverage(ctx, client, tc.keys, tc.weights, tc.field)
			assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
		})
	}
	assert.Zero(t, client.Calls(), "invalid calls never reach Redis")
}

func TestPercentile(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		ten := tg.Key("ten")
		for i := 1; i <= 10; i++ {
			require.NoError(t, tg.Client.ZAdd(ctx, ten, redis.Z{Score: float64(i), Member: "m" + strconv.Itoa(i)}).Err())
		}
		thousand := tg.Key("thousand")
		zs := make([]redis.Z, 1000)
		for i := range zs {
			zs[i] = redis.Z{Score: float64(i + 1), Member: strconv.Itoa(i + 1)}
		}
		require.NoError(t, tg.Client.ZAdd(ctx, thousand, zs...).Err())
		one := tg.Key("one")
		require.NoError(t, tg.Client.ZAdd(ctx, one, redis.Z{Score: 2.5, Member: "only"}).Err())

		tests := []struct {
			key  string
			p    float64
			want float64
		}{
			{ten, 0.0001, 1},
			{ten, math.SmallestNonzeroFloat64, 1},
			{ten, 10, 1},
			{ten, 10.0001, 2},
			{ten, 50, 5},
			{ten, 90, 9},
			{ten, 95, 10},
			{ten, 99.999, 10},
			{ten, 100, 10},
			// p/100*n is an integer here, but not in float64 arithmetic:
			// 16.1*1000/100 is 161.00000000000003.
			{thousand, 16.1, 161},
			{thousand, 8.3, 83},
			{thousand, 32.7, 327},
			{thousand, 99.9, 999},
			{thousand, 99.95, 1000},
			{thousand, 0.1, 1},
			{thousand, 0.11, 2},
			{one, 0.5, 2.5},
			{one, 100, 2.5},
		}
		for _, tc := range tests {
			t.Run(strconv.FormatFloat(tc.p, 'g', -1, 64), func(t *testing.T) {
				got, err := rediscmd.Percentile(ctx, tg.Client, tc.key, tc.p)
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
			})
		}

		t.Run("fractional scores", func(t *testing.T) {
			key := tg.Key("fractional")
			require.NoError(t, tg.Client.ZAdd(ctx, key, redis.Z{Score: 0.125, Member: "a"}, redis.Z{Score: 1e-7, Member: "b"}).Err())
			got, err := rediscmd.Percentile(ctx, tg.Client, key, 100)
			require.NoError(t, err)
			assert.Equal(t, 0.125, got)
			got, err = rediscmd.Percentile(ctx, tg.Client, key, 50)
			require.NoError(t, err)
			assert.Equal(t, 1e-7, got)
		})

		t.Run("infinite scores", func(t *testing.T) {
			key := tg.Key("infinite")
			require.NoError(t, tg.Client.ZAdd(ctx, key, redis.Z{Score: math.Inf(-1), Member: "a"}, redis.Z{Score: 1, Member: "b"}, redis.Z{Score: math.Inf(1), Member: "c"}).Err())
			for _, tc := range []struct{ p, want float64 }{{1, math.Inf(-1)}, {50, 1}, {100, math.Inf(1)}} {
				got, err := rediscmd.Percentile(ctx, tg.Client, key, tc.p)
				require.NoError(t, err)
				assert.Equal(t, tc.want, got, "p%v", tc.p)
			}
		})

		t.Run("empty or missing set", func(t *testing.T) {
			_, err := rediscmd.Percentile(ctx, tg.Client, tg.Key("nothing"), 50)
			assert.ErrorIs(t, err, rediscmd.ErrEmpty)
		})

		t.Run("not a sorted set", func(t *testing.T) {
			str := tg.Key("string")
			require.NoError(t, tg.Client.Set(ctx, str, "1", 0).Err())
			_, err := rediscmd.Percentile(ctx, tg.Client, str, 50)
			assert.ErrorIs(t, err, rediscmd.ErrWrongValue)
		})
	})
}

func TestPercentileInvalidArguments(t *testing.T) {
	client := &redistest.Counting{Next: redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t)})}
	for _, p := range []float64{0, -1, 100.0000001, 101, math.NaN(), math.Inf(1), math.Inf(-1)} {
		t.Run(strconv.FormatFloat(p, 'g', -1, 64), func(t *testing.T) {
			_, err := rediscmd.Percentile(context.Background(), client, "k", p)
			assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
		})
	}
	_, err := rediscmd.Percentile(context.Background(), client, "", 50)
	assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
	assert.Zero(t, client.Calls(), "invalid calls never reach Redis")
}

func TestRecordSample(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		key := tg.Key("latency")
		var n int64
		for _, v := range []float64{12.5, 3, 12.5, 40, 3} {
			got, err := rediscmd.RecordSample(ctx, tg.Client, key, v, time.Minute)
			require.NoError(t, err)
			n++
			assert.Equal(t, n, got, "equal values are separate samples")
		}
		p, err := rediscmd.Percentile(ctx, tg.Client, key, 60)
		require.NoError(t, err)
		assert.Equal(t, 12.5, p)
		ttl := tg.Client.PTTL(ctx, key).Val()
		assert.Greater(t, ttl, time.Duration(0))
		assert.LessOrEqual(t, ttl, time.Minute)

		_, err = rediscmd.RecordSample(ctx, tg.Client, key, math.NaN(), 0)
		assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
		_, err = rediscmd.RecordSample(ctx, tg.Client, key, 1, -time.Second)
		assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
	})
}

func TestRecordSampleExtremes(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		key := tg.Key("extremes")
		for _, v := range []float64{math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, -0.5} {
			_, err := rediscmd.RecordSample(ctx, tg.Client, key, v, 0)
			require.NoError(t, err, "%v is finite", v)
		}
		for _, tc := range []struct{ p, want float64 }{
			{25, -math.MaxFloat64},
			{50, -0.5},
			{75, math.SmallestNonzeroFloat64},
			{100, math.MaxFloat64},
		} {
			got, err := rediscmd.Percentile(ctx, tg.Client, key, tc.p)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got, "p%v", tc.p)
		}
	})
}

func TestRecordSampleConcurrent(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		key := tg.Key("concurrent")
		errs := make(chan error, 50)
		for range 50 {
			go func() {
				_, err := rediscmd.RecordSample(ctx, tg.Client, key, 1, 0)
				errs <- err
			}()
		}
		for range 50 {
			require.NoError(t, <-errs)
		}
		assert.Equal(t, int64(50), tg.Client.ZCard(ctx, key).Val(), "no two samples share a member")
	})
}

func TestValidationBeforeNetwork(t *testing.T) {
	// Nothing listens at this address: a call that reached the network would
	// fail with a connection error instead.
	client := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	ctx := context.Background()

	_, err := rediscmd.CappedIncr(ctx, client, "k", 1, 10, 0)
	require.Error(t, err)
	require.NotErrorIs(t, err, rediscmd.ErrInvalidArgument, "a valid call reaches the network")
	var netErr interface{ Timeout() bool }
	require.True(t, errors.As(err, &netErr), "a connection error: %v", err)

	calls := map[string]func() error{
		"CappedIncr": func() error { _, err := rediscmd.CappedIncr(ctx, client, "k", -1, 10, 0); return err },
		"WeightedAverage": func() error {
			_, err := rediscmd.WeightedAverage(ctx, client, []string{"a", "b"}, []float64{1}, "value")
			return err
		},
		"Percentile":     func() error { _, err := rediscmd.Percentile(ctx, client, "k", 0); return err },
		"RecordSample":   func() error { _, err := rediscmd.RecordSample(ctx, client, "k", math.Inf(1), 0); return err },
		"LeaderboardAdd": func() error { _, err := rediscmd.LeaderboardAdd(ctx, client, "lb", "", 1, time.Time{}, 0); return err },
		"LeaderboardGet": func() error { _, err := rediscmd.LeaderboardGet(ctx, client, "", "m"); return err },
		"LeaderboardTop": func() error { _, err := rediscmd.LeaderboardTop(ctx, client, "lb", 0); return err },
		"Reserve": func() error {
			_, err := rediscmd.Reserve(ctx, client, []rediscmd.Item{{Key: "s", Quantity: 0}})
			return err
		},
		"Restock": func() error {
			_, err := rediscmd.Restock(ctx, client, []rediscmd.Item{{Key: "s", Quantity: -2}})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
			assert.False(t, errors.As(err, &netErr), "not a connection error: %v", err)
		})
	}
}
