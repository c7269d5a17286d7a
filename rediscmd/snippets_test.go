package rediscmd_test

// The code of docs/commands.md: each "snippet:begin NAME" region below (and
// checkoutHandler in example_catalogue_test.go) is shown by a Go block of
// that file, which internal/doccheck keeps equal to it.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/lua"
)

// snippet:begin commands-import
import "github.com/sluicehq/sluice/rediscmd"

// snippet:end

// docs/commands.md, "Recording samples (latencies)": percentiles over the
// current minute.
func ExamplePercentile_perMinute() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()

	key, err := recordLatency(ctx, client, "GET /checkout", 12500*time.Microsecond)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(latencyP95(ctx, client, key))
	fmt.Println(latencyP95(ctx, client, key+"-empty"))
	// Output:
	// 12.5 <nil>
	// 0 <nil>
}

// recordLatency records one request's latency in milliseconds and returns
// the key it went to.
func recordLatency(ctx context.Context, c redis.Scripter, route string, elapsed time.Duration) (string, error) {
	// snippet:begin commands-latency-record
	minute := time.Now().Unix() / 60
	key := lua.TagKey("latency", route, strconv.FormatInt(minute, 10))
	_, err := rediscmd.RecordSample(ctx, c, key, float64(elapsed.Microseconds())/1000, 10*time.Minute)
	// snippet:end
	return key, err
}

func latencyP95(ctx context.Context, c redis.Scripter, key string) (float64, error) {
	// snippet:begin commands-latency-read
	// GET /stats/latency?p=95
	p95, err := rediscmd.Percentile(ctx, c, key, 95)
	if errors.Is(err, rediscmd.ErrEmpty) {
		return 0, nil // no traffic this minute yet
	}
	// snippet:end
	return p95, err
}

// docs/commands.md, "Leaderboard".
func ExampleLeaderboardTop() {
	client, done := exampleClient()
	defer done()
	if err := leaderboard(context.Background(), client); err != nil {
		fmt.Println(err)
	}
	// Output:
	// ann is #1 with 120
	// 1. ann 120
}

func leaderboard(ctx context.Context, c redis.Scripter) error {
	// snippet:begin commands-leaderboard
	board := lua.TagKey("board", "season-1", "scores") // board:{season-1}:scores

	e, err := rediscmd.LeaderboardAdd(ctx, c, board, "ann", 120, time.Time{}, 0) // POST /scores
	if err != nil {
		return err
	}
	fmt.Printf("%s is #%d with %d\n", e.Member, e.Rank, e.Score)

	top, err := rediscmd.LeaderboardTop(ctx, c, board, 10) // GET /leaderboard
	if err != nil {
		return err
	}
	for _, e := range top {
		fmt.Printf("%d. %s %d\n", e.Rank, e.Member, e.Score)
	}
	// snippet:end
	return nil
}
