package rediscmd_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/lua"
	"github.com/sluicehq/sluice/rediscmd"
)

// exampleClient starts an in-process Redis for the examples; a real
// application passes its *redis.Client or *redis.ClusterClient.
func exampleClient() (*redis.Client, func()) {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return client, func() { _ = client.Close(); mr.Close() }
}

func ExampleCappedIncr() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()

	// At most 100 bonus points per user and day.
	key := "bonus:{user42}:2026-01-31"
	for _, points := range []int64{60, 30, 30} {
		total, err := rediscmd.CappedIncr(ctx, client, key, points, 100, 24*time.Hour)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(total)
	}
	// Output:
	// 60
	// 90
	// 100
}

func ExampleWeightedAverage() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()

	// Ratings of one product from three sources, weighted by trust.
	keys := []string{
		lua.TagKey("rating", "sku-1", "shop"),
		lua.TagKey("rating", "sku-1", "partner"),
		lua.TagKey("rating", "sku-1", "survey"),
	}
	client.HSet(ctx, keys[0], "stars", "4.5")
	client.HSet(ctx, keys[1], "stars", "3")
	// keys[2] has no rating yet: it counts as 0 with its weight.

	avg, err := rediscmd.WeightedAverage(ctx, client, keys, []float64{2, 1, 1}, "stars")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(avg)
	// Output: 3
}

func ExamplePercentile() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()

	for i := 1; i <= 10; i++ {
		client.ZAdd(ctx, "scores", redis.Z{Score: float64(i), Member: fmt.Sprint("m", i)})
	}
	for _, p := range []float64{50, 95, 100} {
		v, err := rediscmd.Percentile(ctx, client, "scores", p)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("p%v = %v\n", p, v)
	}
	_, err := rediscmd.Percentile(ctx, client, "no-such-set", 50)
	fmt.Println(errors.Is(err, rediscmd.ErrEmpty))
	// Output:
	// p50 = 5
	// p95 = 10
	// p100 = 10
	// true
}

func ExampleRecordSample() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()

	// One key per minute, kept for ten minutes: GET /stats/latency?p=95
	// reads the current minute's key.
	minute := time.Date(2026, 1, 31, 12, 30, 0, 0, time.UTC).Unix() / 60
	key := lua.TagKey("latency", "GET /checkout", fmt.Sprint(minute))
	for _, ms := range []float64{12, 15, 11, 250, 14, 13, 12, 16, 15, 14} {
		if _, err := rediscmd.RecordSample(ctx, client, key, ms, 10*time.Minute); err != nil {
			fmt.Println(err)
			return
		}
	}
	p50, _ := rediscmd.Percentile(ctx, client, key, 50)
	p95, _ := rediscmd.Percentile(ctx, client, key, 95)
	fmt.Printf("p50=%vms p95=%vms\n", p50, p95)
	// Output: p50=14ms p95=250ms
}

func ExampleLeaderboardAdd() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()

	board := lua.TagKey("board", "season-1", "scores")
	start := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	plays := []struct {
		player string
		points int64
		after  time.Duration
	}{
		{"ann", 1_000_000, 2 * time.Millisecond},
		{"bob", 1_000_000, 1 * time.Millisecond}, // same score, 1 ms earlier
		{"cat", 999_999, 0},
	}
	for _, p := range plays {
		e, err := rediscmd.LeaderboardAdd(ctx, client, board, p.player, p.points, start.Add(p.after), 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s is #%d with %d\n", e.Member, e.Rank, e.Score)
	}

	top, err := rediscmd.LeaderboardTop(ctx, client, board, 10)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range top {
		fmt.Printf("%d. %s %d at %s\n", e.Rank, e.Member, e.Score, e.AchievedAt.Format("15:04:05.000"))
	}
	// Output:
	// ann is #1 with 1000000
	// bob is #1 with 1000000
	// cat is #3 with 999999
	// 1. bob 1000000 at 12:00:00.001
	// 2. ann 1000000 at 12:00:00.002
	// 3. cat 999999 at 12:00:00.000
}

func ExampleReserve() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()

	apple, pear := rediscmd.StockKey("shop", "apple"), rediscmd.StockKey("shop", "pear")
	client.Set(ctx, apple, 5, 0)
	client.Set(ctx, pear, 1, 0)

	cart := []rediscmd.Item{{Key: apple, Quantity: 2}, {Key: pear, Quantity: 1}}
	left, err := rediscmd.Reserve(ctx, client, cart)
	fmt.Println(left, err)

	// The same cart again: no pear left, so nothing is taken.
	_, err = rediscmd.Reserve(ctx, client, cart)
	var short *rediscmd.ShortageError
	if errors.As(err, &short) {
		fmt.Printf("short of %s: %d available, %d requested\n", short.Item, short.Available, short.Requested)
	}

	// Payment failed for the first order: hand its stock back.
	left, err = rediscmd.Restock(ctx, client, cart)
	fmt.Println(left, err)
	// Output:
	// [3 0] <nil>
	// short of stock:{shop}:pear: 0 available, 1 requested
	// [5 1] <nil>
}

// checkoutHandler reserves cart for each request and records the order with
// record (docs/commands.md shows it). The reservation must not be abandoned
// half-known because the client hung up, so it runs on a context detached
// from the request, bounded by a deadline of its own, and its outcome is
// always acted on: recorded, or undone with Restock.
//
// snippet:begin commands-checkout
func checkoutHandler(client redis.Scripter, cart []rediscmd.Item, record func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Not r.Context(): a client hanging up would cancel the call with the
		// script maybe run, maybe not. The deadline bounds the call when the
		// go-redis client has ContextTimeoutEnabled.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
		defer cancel()

		_, err := rediscmd.Reserve(ctx, client, cart)
		var short *rediscmd.ShortageError
		switch {
		case errors.As(err, &short):
			http.Error(w, "out of stock", http.StatusConflict) // nothing was taken
			return
		case err != nil:
			// A store error or timeout: the stock may or may not have been
			// taken, so a blind Restock could create stock. Log it to reconcile.
			log.Printf("checkout: reserve %v: outcome unknown: %v", cart, err)
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		if err := record(ctx); err != nil {
			// Reserved but not recorded: hand the stock back.
			if _, err := rediscmd.Restock(ctx, client, cart); err != nil {
				log.Printf("checkout: restock %v: %v", cart, err)
			}
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}
}

// snippet:end

func ExampleReserve_detachedContext() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()

	apple := rediscmd.StockKey("shop", "apple")
	client.Set(ctx, apple, 5, 0)
	cart := []rediscmd.Item{{Key: apple, Quantity: 2}}
	record := func(ctx context.Context) error {
		return client.RPush(ctx, "orders", "2 apples").Err()
	}
	checkout := checkoutHandler(client, cart, record)

	// A request whose client has hung up: its context is already cancelled.
	// The order is still reserved and recorded, never left half-done.
	gone, hangUp := context.WithCancel(ctx)
	hangUp()
	rec := httptest.NewRecorder()
	checkout.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/checkout", nil).WithContext(gone))
	fmt.Println(rec.Code, client.Get(ctx, apple).Val(), client.LRange(ctx, "orders", 0, -1).Val())

	// Recording fails: the reservation is handed back.
	failed := checkoutHandler(client, cart, func(context.Context) error { return errors.New("orders database down") })
	rec = httptest.NewRecorder()
	failed.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/checkout", nil))
	fmt.Println(rec.Code, client.Get(ctx, apple).Val())
	// Output:
	// 201 3 [2 apples]
	// 503 3
}

func ExamplePreload() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()

	// At start-up: cache the scripts on the server (on every master of a
	// Cluster) so that the first calls skip a NOSCRIPT round trip.
	if err := rediscmd.Preload(ctx, client); err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range rediscmd.Commands()[:3] {
		exists := client.ScriptExists(ctx, c.SHA()).Val()
		fmt.Println(c.Name(), exists[0])
	}
	// Output:
	// sluice_capped_incr true
	// sluice_leaderboard_add true
	// sluice_leaderboard_get true
}
