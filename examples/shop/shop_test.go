package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/lua"
	"github.com/sluicehq/sluice/rediscmd"
)

func TestHealthz(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		_, srv := startShop(t, b, testConfig(b))
		r := do(t, http.MethodGet, srv.URL+"/healthz", "", "")
		require.Equal(t, http.StatusOK, r.status)
		assert.JSONEq(t, `{"status":"ok"}`, string(r.body))
		assert.Empty(t, r.header.Get("X-RateLimit-Limit"), "health checks are not limited")
	})
}

// Seeding sets only missing counters, so a restart keeps the stock sold so far.
func TestSeedKeepsExistingStock(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		s, srv := startShop(t, b, testConfig(b))
		ctx := context.Background()

		r := checkout(t, srv, "c1", "u1", `{"apple":3}`)
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		require.NoError(t, b.client.Del(ctx, s.stockKey("fig")).Err())

		require.NoError(t, s.seed(ctx)) // as after a restart
		assert.Equal(t, map[string]int64{"apple": 7, "fig": 2, "pear": 5}, stock(t, srv))
	})
}

// Every stock counter of a shop lies in one Cluster slot, so that one Reserve
// may take several items.
func TestStockKeysShareOneSlot(t *testing.T) {
	c := redis.NewClient(&redis.Options{}) // never dialled
	defer c.Close()
	s, err := newShop(c, defaultConfig())
	require.NoError(t, err)
	defer s.close()
	slot := lua.Slot(s.stockKey(s.items[0]))
	for _, item := range s.items {
		assert.Equal(t, "stock:{shop}:"+item, s.stockKey(item))
		assert.Equal(t, slot, lua.Slot(s.stockKey(item)), item)
	}
}

func TestPreloadCachesEveryScript(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		s, _ := startShop(t, b, testConfig(b)) // preloads
		var shas []string
		for _, cmds := range [][]*lua.Command{rediscmd.Commands(), s.scripts.Commands()} {
			for _, c := range cmds {
				shas = append(shas, c.SHA())
			}
		}
		// The store's scripts are its own: the .lua files beside redisstore,
		// as they stand or, for sliding_window.lua and gcra.lua, after
		// reply.lua (stack.lua, undo.lua and peek.lua run with the
		// algorithms' functions put before them; redisstore's own tests
		// check those).
		files, err := filepath.Glob("../../store/redisstore/*.lua")
		require.NoError(t, err)
		require.NotEmpty(t, files)
		reply, err := os.ReadFile("../../store/redisstore/reply.lua")
		require.NoError(t, err)
		for _, f := range files {
			base := filepath.Base(f)
			if base == "stack.lua" || base == "undo.lua" || base == "peek.lua" || base == "reply.lua" {
				continue
			}
			src, err := os.ReadFile(f)
			require.NoError(t, err)
			if base == "sliding_window.lua" || base == "gcra.lua" {
				src = append(reply[:len(reply):len(reply)], src...)
			}
			sum := sha1.Sum(src)
			shas = append(shas, hex.EncodeToString(sum[:]))
		}
		require.Len(t, s.scripts.Commands(), 1)
		err = redistest.ForEachMaster(context.Background(), b.client, func(ctx context.Context, node *redis.Client) error {
			exists, err := node.ScriptExists(ctx, shas...).Result()
			if err != nil {
				return err
			}
			for i, ok := range exists {
				assert.True(t, ok, "script %s not cached on %s", shas[i], node.Options().Addr)
			}
			return nil
		})
		require.NoError(t, err)
	})
}

// After the script cache is flushed (a restart or failover), every route
// still works: calls reload their scripts themselves.
func TestRoutesSurviveScriptFlush(t *testing.T) {
	mr := miniredis.RunT(t) // only on a server of our own: others may rely on its cache
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	b := &backend{name: "miniredis", client: c, mr: mr, token: redistest.Token()}
	_, srv := startShop(t, b, testConfig(b))
	require.NoError(t, c.ScriptFlush(context.Background()).Err())

	r := checkout(t, srv, "c1", "u1", `{"apple":1}`)
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	postScore(t, srv, "p1", 1)
	assert.Len(t, leaderboard(t, srv, ""), 1)
	assert.NotNil(t, latency(t, srv, "").LatencyMS)
}

// When Redis is gone every route that needs it answers 503 with a JSON error
// that gives nothing away; the health check still answers.
func TestStoreFailureAnswers503(t *testing.T) {
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	b := &backend{name: "miniredis", client: c, mr: mr, token: redistest.Token()}
	_, srv := startShop(t, b, testConfig(b))
	mr.Close()

	tests := []struct {
		name, method, path, user, body, error string
	}{
		{"checkout (rate limit fails closed)", http.MethodPost, "/carts/c1/checkout", "u1", `{"items":{"apple":1}}`, "rate limiter unavailable"},
		{"stock", http.MethodGet, "/stock", "", "", "store unavailable"},
		{"scores", http.MethodPost, "/scores", "", `{"player":"p1","points":1}`, "store unavailable"},
		{"leaderboard", http.MethodGet, "/leaderboard", "", "", "store unavailable"},
		{"latency", http.MethodGet, "/stats/latency", "", "", "store unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, srv.URL+tt.path, tt.user, tt.body)
			require.Equal(t, http.StatusServiceUnavailable, r.status, "body %s", r.body)
			assert.Equal(t, tt.error, r.errorMsg(t))
		})
	}
	r := do(t, http.MethodGet, srv.URL+"/healthz", "", "")
	assert.Equal(t, http.StatusOK, r.status)
}

// A stock counter overwritten with something that is not a number (here in
// the middle of a checkout) answers 500, reserves nothing and leaks no detail.
func TestCorruptStockAnswers500(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		var s *shop
		cfg := testConfig(b)
		cfg.beforeReserve = func(ctx context.Context) error {
			return b.client.Set(ctx, s.stockKey("pear"), "many", 0).Err()
		}
		s, srv := startShop(t, b, cfg)

		r := checkout(t, srv, "c1", "u1", `{"apple":1,"pear":1}`)
		require.Equal(t, http.StatusInternalServerError, r.status, "body %s", r.body)
		assert.Equal(t, "internal error", r.errorMsg(t))
		assert.Equal(t, "10", b.client.Get(context.Background(), s.stockKey("apple")).Val(), "nothing reserved")

		r = do(t, http.MethodGet, srv.URL+"/stock", "", "")
		require.Equal(t, http.StatusInternalServerError, r.status, "body %s", r.body)
		assert.Equal(t, "internal error", r.errorMsg(t))
	})
}
