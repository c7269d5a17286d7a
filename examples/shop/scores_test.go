package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func postScore(t *testing.T, srv *httptest.Server, player string, points int64) entry {
	t.Helper()
	r := do(t, http.MethodPost, srv.URL+"/scores", "", fmt.Sprintf(`{"player":%q,"points":%d}`, player, points))
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	var e entry
	r.json(t, &e)
	return e
}

func leaderboard(t *testing.T, srv *httptest.Server, query string) []entry {
	t.Helper()
	r := do(t, http.MethodGet, srv.URL+"/leaderboard"+query, "", "")
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	var lb struct {
		Players []entry `json:"players"`
	}
	r.json(t, &lb)
	require.NotNil(t, lb.Players, "an empty board is [], not null: %s", r.body)
	return lb.Players
}

// ranking returns "player:score" of each entry, in order.
func ranking(es []entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s:%d", e.Player, e.Score)
	}
	return out
}

func TestScoresAndLeaderboard(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		cfg := testConfig(b)
		start := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
		cfg.now = fakeClock(start) // one millisecond per score update
		s, srv := startShop(t, b, cfg)

		assert.Empty(t, leaderboard(t, srv, ""))

		e := postScore(t, srv, "p1", 20) // p1 reaches 20 first
		assert.Equal(t, entry{Rank: 1, Player: "p1", Score: 20, AchievedAt: start.Add(1 * time.Millisecond)}, e)
		e = postScore(t, srv, "p3", 30)
		assert.Equal(t, int64(1), e.Rank)
		e = postScore(t, srv, "p2", 5)
		assert.Equal(t, int64(3), e.Rank)
		// p2 reaches 20 after p1 did: the tie goes to p1, although "p2" is the
		// greater id (which decides only ties within one millisecond).
		e = postScore(t, srv, "p2", 15)
		assert.Equal(t, entry{Rank: 3, Player: "p2", Score: 20, AchievedAt: start.Add(4 * time.Millisecond)}, e)

		top := leaderboard(t, srv, "")
		assert.Equal(t, []string{"p3:30", "p1:20", "p2:20"}, ranking(top))
		for i, e := range top {
			assert.Equal(t, int64(i+1), e.Rank)
		}
		assert.Equal(t, start.Add(1*time.Millisecond), top[1].AchievedAt)
		assert.Equal(t, []string{"p3:30", "p1:20"}, ranking(leaderboard(t, srv, "?n=2")))

		// Negative points lower a score.
		e = postScore(t, srv, "p3", -25)
		assert.Equal(t, entry{Rank: 3, Player: "p3", Score: 5, AchievedAt: start.Add(5 * time.Millisecond)}, e)
		assert.Equal(t, []string{"p1:20", "p2:20", "p3:5"}, ranking(leaderboard(t, srv, "?n=100")))

		// The board is a season: it expires as a whole, with its companion hash.
		ctx := context.Background()
		for _, key := range []string{s.board, s.board + ":times"} {
			ttl := b.client.PTTL(ctx, key).Val()
			assert.Positive(t, ttl, key)
			assert.LessOrEqual(t, ttl, 7*24*time.Hour, key)
		}

		// A total past 2^53-1 is refused and changes nothing.
		r := do(t, http.MethodPost, srv.URL+"/scores", "", `{"player":"p1","points":9007199254740991}`)
		require.Equal(t, http.StatusConflict, r.status, "body %s", r.body)
		assert.Equal(t, "score would leave the range ±(2^53-1)", r.errorMsg(t))
		assert.Equal(t, []string{"p1:20", "p2:20", "p3:5"}, ranking(leaderboard(t, srv, "")))
	})
}

// Without an injected clock the time comes from the Redis server.
func TestScoresUseRedisTime(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		_, srv := startShop(t, b, testConfig(b))
		before := time.Now()
		e := postScore(t, srv, "ann", 10)
		assert.WithinDuration(t, before, e.AchievedAt, time.Minute)
		assert.Equal(t, time.UTC, e.AchievedAt.Location())
	})
}

func TestScoresBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		_, srv := startShop(t, b, testConfig(b))

		const want = `invalid JSON body: want {"player":"p1","points":10}`
		tests := []struct {
			name, body, error string
		}{
			{"malformed JSON", `{"player":"p1"`, want},
			{"unknown field", `{"player":"p1","points":1,"bonus":2}`, want},
			{"fractional points", `{"player":"p1","points":1.5}`, want},
			{"string points", `{"player":"p1","points":"10"}`, want},
			{"empty body", ``, want},
			{"missing player", `{"points":10}`, "player must be 1 to 64 bytes"},
			{"empty player", `{"player":"","points":10}`, "player must be 1 to 64 bytes"},
			{"long player", `{"player":"` + strings.Repeat("x", 65) + `","points":10}`, "player must be 1 to 64 bytes"},
			{"missing points", `{"player":"p1"}`, "points is required"},
			{"null points", `{"player":"p1","points":null}`, "points is required"},
			{"points past 2^53-1", `{"player":"p1","points":9007199254740992}`, "points out of range"},
			{"points below -(2^53-1)", `{"player":"p1","points":-9007199254740992}`, "points out of range"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := do(t, http.MethodPost, srv.URL+"/scores", "", tt.body)
				require.Equal(t, http.StatusBadRequest, r.status, "body %s", r.body)
				assert.Equal(t, tt.error, r.errorMsg(t))
			})
		}
		assert.Empty(t, leaderboard(t, srv, ""), "bad input scores nothing")

		for _, n := range []string{"0", "-1", "101", "x", "1.5", "1e2"} {
			t.Run("n="+n, func(t *testing.T) {
				r := do(t, http.MethodGet, srv.URL+"/leaderboard?n="+n, "", "")
				require.Equal(t, http.StatusBadRequest, r.status, "body %s", r.body)
				assert.Equal(t, "n must be an integer from 1 to 100", r.errorMsg(t))
			})
		}
	})
}

func TestScoresRateLimitPerClient(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		cfg := testConfig(b)
		cfg.scoresLimit = 3
		_, srv := startShop(t, b, cfg)

		for i := range 3 {
			postScore(t, srv, fmt.Sprintf("p%d", i), 1)
		}
		r := do(t, http.MethodPost, srv.URL+"/scores", "", `{"player":"p9","points":1}`)
		require.Equal(t, http.StatusTooManyRequests, r.status, "body %s", r.body)
		assert.Equal(t, "too many requests", r.errorMsg(t))
		assert.Equal(t, `"scores";q=3;w=60`, r.header.Get("RateLimit-Policy"))
		assert.Len(t, leaderboard(t, srv, ""), 3, "a denied update scores nothing")
	})
}
