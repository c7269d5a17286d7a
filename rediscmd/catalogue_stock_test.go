package rediscmd_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/rediscmd"
)

func TestReserve(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		stock := func(t *testing.T, key string) string {
			t.Helper()
			v, err := tg.Client.Get(ctx, key).Result()
			if errors.Is(err, redis.Nil) {
				return "<missing>"
			}
			require.NoError(t, err)
			return v
		}

		t.Run("one item", func(t *testing.T) {
			k := tg.Key("one")
			require.NoError(t, tg.Client.Set(ctx, k, "10", 0).Err())
			left, err := rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: k, Quantity: 3}})
			require.NoError(t, err)
			assert.Equal(t, []int64{7}, left)
			left, err = rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: k, Quantity: 7}})
			require.NoError(t, err)
			assert.Equal(t, []int64{0}, left, "all of it")
			assert.Equal(t, "0", stock(t, k))
		})

		t.Run("several items", func(t *testing.T) {
			a, b := tg.Key("several:a"), tg.Key("several:b")
			require.NoError(t, tg.Client.Set(ctx, a, "5", 0).Err())
			require.NoError(t, tg.Client.Set(ctx, b, "2", 0).Err())
			left, err := rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: a, Quantity: 2}, {Key: b, Quantity: 2}})
			require.NoError(t, err)
			assert.Equal(t, []int64{3, 0}, left)
		})

		t.Run("a shortage changes nothing and names the item", func(t *testing.T) {
			a, b, c := tg.Key("short:a"), tg.Key("short:b"), tg.Key("short:c")
			require.NoError(t, tg.Client.Set(ctx, a, "5", 0).Err())
			require.NoError(t, tg.Client.Set(ctx, b, "1", 0).Err())
			require.NoError(t, tg.Client.Set(ctx, c, "9", 0).Err())
			_, err := rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: a, Quantity: 2}, {Key: b, Quantity: 3}, {Key: c, Quantity: 1}})
			require.ErrorIs(t, err, rediscmd.ErrShortage)
			var short *rediscmd.ShortageError
			require.ErrorAs(t, err, &short)
			assert.Equal(t, rediscmd.ShortageError{Item: b, Index: 1, Available: 1, Requested: 3}, *short)
			assert.Contains(t, err.Error(), b)
			assert.Equal(t, "5", stock(t, a))
			assert.Equal(t, "1", stock(t, b))
			assert.Equal(t, "9", stock(t, c))
		})

		t.Run("a missing counter holds nothing", func(t *testing.T) {
			k := tg.Key("never-stocked")
			_, err := rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: k, Quantity: 1}})
			var short *rediscmd.ShortageError
			require.ErrorAs(t, err, &short)
			assert.Equal(t, int64(0), short.Available)
			assert.Equal(t, "<missing>", stock(t, k), "not created")
		})

		t.Run("non-integer stock", func(t *testing.T) {
			good, bad := tg.Key("wv:good"), tg.Key("wv:bad")
			require.NoError(t, tg.Client.Set(ctx, good, "5", 0).Err())
			for _, v := range []string{"five", "2.5", "9007199254740992"} {
				require.NoError(t, tg.Client.Set(ctx, bad, v, 0).Err())
				_, err := rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: good, Quantity: 1}, {Key: bad, Quantity: 1}})
				assert.ErrorIs(t, err, rediscmd.ErrWrongValue, "%q", v)
				assert.Equal(t, "5", stock(t, good))
				assert.Equal(t, v, stock(t, bad))
			}
		})

		t.Run("expiry is kept", func(t *testing.T) {
			k := tg.Key("ttl")
			require.NoError(t, tg.Client.Set(ctx, k, "3", time.Hour).Err())
			_, err := rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: k, Quantity: 1}})
			require.NoError(t, err)
			assert.Greater(t, tg.Client.PTTL(ctx, k).Val(), time.Duration(0))
		})

		t.Run("StockKey", func(t *testing.T) {
			a, b := rediscmd.StockKey(tg.Token, "apple"), rediscmd.StockKey(tg.Token, "pear")
			assert.Equal(t, "stock:{"+tg.Token+"}:apple", a)
			require.NoError(t, tg.Client.Set(ctx, a, "1", 0).Err())
			require.NoError(t, tg.Client.Set(ctx, b, "1", 0).Err())
			left, err := rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: a, Quantity: 1}, {Key: b, Quantity: 1}})
			require.NoError(t, err)
			assert.Equal(t, []int64{0, 0}, left)
		})

		if tg.Cluster {
			t.Run("keys without a shared tag", func(t *testing.T) {
				keys := catCrossSlotKeys(tg)
				items := []rediscmd.Item{{Key: keys[0], Quantity: 1}, {Key: keys[1], Quantity: 1}}
				_, err := rediscmd.Reserve(ctx, tg.Client, items)
				require.ErrorIs(t, err, rediscmd.ErrCrossSlot, "checked before sending")
				assert.Contains(t, err.Error(), "StockKey")

				counting := &redistest.Counting{Next: tg.Client}
				_, err = rediscmd.Reserve(ctx, counting, items)
				require.ErrorIs(t, err, rediscmd.ErrCrossSlot, "the server's CROSSSLOT answer")
				assert.Contains(t, err.Error(), "hash tag")
				assert.Positive(t, counting.Calls(), "this one reached the server")
			})
		}
	})
}

func TestReserveConcurrent(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		k := tg.Key("hot-item")
		other := tg.Key("other-item")
		require.NoError(t, tg.Client.Set(ctx, k, "10", 0).Err())
		require.NoError(t, tg.Client.Set(ctx, other, "1000", 0).Err())

		const callers = 100
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, short := 0, 0
		var unexpected []error
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: other, Quantity: 1}, {Key: k, Quantity: 1}})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, rediscmd.ErrShortage):
					short++
				default:
					unexpected = append(unexpected, err)
				}
			}()
		}
		wg.Wait()
		require.Empty(t, unexpected)
		assert.Equal(t, 10, ok, "exactly the stock is sold")
		assert.Equal(t, callers-10, short)
		assert.Equal(t, "0", tg.Client.Get(ctx, k).Val(), "never negative")
		assert.Equal(t, "990", tg.Client.Get(ctx, other).Val(), "failed reservations take nothing")
	})
}

func TestRestock(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		a, b := tg.Key("a"), tg.Key("b")
		require.NoError(t, tg.Client.Set(ctx, a, "2", 0).Err())

		left, err := rediscmd.Restock(ctx, tg.Client, []rediscmd.Item{{Key: a, Quantity: 3}, {Key: b, Quantity: 4}})
		require.NoError(t, err)
		assert.Equal(t, []int64{5, 4}, left, "a missing counter starts at 0")

		left, err = rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: a, Quantity: 5}, {Key: b, Quantity: 1}})
		require.NoError(t, err)
		assert.Equal(t, []int64{0, 3}, left)
		left, err = rediscmd.Restock(ctx, tg.Client, []rediscmd.Item{{Key: a, Quantity: 5}, {Key: b, Quantity: 1}})
		require.NoError(t, err)
		assert.Equal(t, []int64{5, 4}, left, "a failed order hands its reservation back")

		full := tg.Key("full")
		require.NoError(t, tg.Client.Set(ctx, full, strconv.FormatInt(rediscmd.MaxInt-1, 10), 0).Err())
		_, err = rediscmd.Restock(ctx, tg.Client, []rediscmd.Item{{Key: a, Quantity: 1}, {Key: full, Quantity: 2}})
		assert.ErrorIs(t, err, rediscmd.ErrOutOfRange)
		assert.Equal(t, "5", tg.Client.Get(ctx, a).Val(), "nothing changed")
		left, err = rediscmd.Restock(ctx, tg.Client, []rediscmd.Item{{Key: full, Quantity: 1}})
		require.NoError(t, err)
		assert.Equal(t, []int64{rediscmd.MaxInt}, left)

		bad := tg.Key("bad")
		require.NoError(t, tg.Client.Set(ctx, bad, "x", 0).Err())
		_, err = rediscmd.Restock(ctx, tg.Client, []rediscmd.Item{{Key: a, Quantity: 1}, {Key: bad, Quantity: 1}})
		assert.ErrorIs(t, err, rediscmd.ErrWrongValue)
		assert.Equal(t, "5", tg.Client.Get(ctx, a).Val(), "nothing changed")
	})
}

func TestStockInvalidArguments(t *testing.T) {
	client := &redistest.Counting{Next: redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t)})}
	ctx := context.Background()
	many := make([]rediscmd.Item, rediscmd.MaxKeys+1)
	for i := range many {
		many[i] = rediscmd.Item{Key: "k" + strconv.Itoa(i), Quantity: 1}
	}
	tests := []struct {
		name  string
		items []rediscmd.Item
	}{
		{"no items", nil},
		{"zero quantity", []rediscmd.Item{{Key: "a", Quantity: 0}}},
		{"negative quantity", []rediscmd.Item{{Key: "a", Quantity: -1}}},
		{"quantity past MaxInt", []rediscmd.Item{{Key: "a", Quantity: rediscmd.MaxInt + 1}}},
		{"empty key", []rediscmd.Item{{Key: "", Quantity: 1}}},
		{"same key twice", []rediscmd.Item{{Key: "a", Quantity: 1}, {Key: "b", Quantity: 1}, {Key: "a", Quantity: 2}}},
		{"too many items", many},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rediscmd.Reserve(ctx, client, tc.items)
			assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
			_, err = rediscmd.Restock(ctx, client, tc.items)
			assert.ErrorIs(t, err, rediscmd.ErrInvalidArgument)
		})
	}
	assert.Zero(t, client.Calls(), "invalid calls never reach Redis")
}

func TestShortageError(t *testing.T) {
	var err error = &rediscmd.ShortageError{Item: "stock:{shop}:apple", Index: 2, Available: 1, Requested: 4}
	wrapped := errors.Join(errors.New("checkout"), err)
	assert.ErrorIs(t, wrapped, rediscmd.ErrShortage)
	assert.NotErrorIs(t, wrapped, rediscmd.ErrInvalidArgument)
	var short *rediscmd.ShortageError
	require.ErrorAs(t, wrapped, &short)
	assert.Equal(t, 2, short.Index)
	assert.Equal(t, "rediscmd: insufficient stock: stock:{shop}:apple has 1, 4 requested", err.Error())
}

// TestDocsCheckoutHandler keeps the reservation handler of docs/commands.md
// the one ExampleReserve_detachedContext compiles and runs.
func TestDocsCheckoutHandler(t *testing.T) {
	example, err := os.ReadFile("example_catalogue_test.go")
	require.NoError(t, err)
	docs, err := os.ReadFile("../docs/commands.md")
	require.NoError(t, err)
	src := string(example)
	start := strings.Index(src, "func checkoutHandler(")
	require.GreaterOrEqual(t, start, 0)
	end := strings.Index(src[start:], "\n}\n")
	require.GreaterOrEqual(t, end, 0)
	assert.Contains(t, string(docs), src[start:start+end+3], "docs/commands.md shows checkoutHandler as the example has it")
}
