package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/lua"
	"github.com/sluicehq/sluice/rediscmd"
	"github.com/sluicehq/sluice/store/redisstore"
)

// config is what a shop is built from; defaultConfig fills in the values the
// server runs with, and tests change them.
type config struct {
	// tag is the {hash tag} of every key the shop writes itself: the stock
	// counters must share one so that a multi-item Reserve works on Redis
	// Cluster, and the other keys simply follow it.
	tag string
	// storePrefix prefixes the rate-limit and lock keys sluice writes.
	storePrefix string
	// inventory lists the items for sale and the stock seeded for each when
	// its counter does not exist yet.
	inventory map[string]int64

	// checkoutLimit checkouts per user (X-User) in any checkoutWindow.
	checkoutLimit  int
	checkoutWindow time.Duration
	// lockTTL is the TTL of a cart's lock, kept alive while a checkout runs.
	lockTTL time.Duration
	// scoresLimit score updates per client IP in any scoresWindow.
	scoresLimit  int
	scoresWindow time.Duration
	// boardTTL is how long the leaderboard lives after its first score (a
	// season): the board expires as a whole, so it never grows for ever.
	boardTTL time.Duration

	// maxSamples is how many of the newest checkout latencies are kept for
	// /stats/latency; they expire samplesTTL after the newest one.
	maxSamples int
	samplesTTL time.Duration

	// now, if set, gives the time a leaderboard score is reached at; nil uses
	// the Redis server's TIME, one clock for every instance of the shop.
	now func() time.Time
	// reserveTimeout bounds the stock reservation of a checkout, and the
	// restock that undoes it, each. Both run on a context detached from the
	// request, so that a client hanging up cannot abandon them half-way.
	reserveTimeout time.Duration
	// beforeReserve, if set, runs in a checkout while the cart is locked,
	// before the stock is reserved (think of a payment call). An error
	// answers 503 and reserves nothing.
	beforeReserve func(ctx context.Context) error

	logger *slog.Logger
}

func defaultConfig() config {
	return config{
		tag:            "shop",
		storePrefix:    "sluice:shop:",
		inventory:      map[string]int64{"apple": 10, "pear": 5, "fig": 2},
		checkoutLimit:  5,
		checkoutWindow: time.Minute,
		lockTTL:        10 * time.Second,
		reserveTimeout: 2 * time.Second,
		scoresLimit:    30,
		scoresWindow:   time.Minute,
		boardTTL:       7 * 24 * time.Hour,
		maxSamples:     1000,
		samplesTTL:     time.Hour,
		logger:         slog.Default(),
	}
}

// shop is the server: its Redis client, the sluice policies in front of the
// checkout, and the keys of its data.
type shop struct {
	cfg     config
	client  redis.UniversalClient
	log     *slog.Logger
	items   []string // the inventory's item names, sorted
	scripts *lua.Registry
	store   *redisstore.Store // rate limits and locks

	checkoutPolicy *limiter.Policy
	cartGuard      *lockguard.Guard
	scoresPolicy   *limiter.Policy

	board   string      // leaderboard sorted set
	latency *latencyLog // checkout latencies
}

func newShop(client redis.UniversalClient, cfg config) (*shop, error) {
	if len(cfg.inventory) == 0 {
		return nil, errors.New("shop: empty inventory")
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	s := &shop{
		cfg:     cfg,
		client:  client,
		log:     cfg.logger,
		scripts: lua.NewRegistry(),
		board:   lua.TagKey("board", cfg.tag, "scores"),
	}
	for item := range cfg.inventory {
		s.items = append(s.items, item)
	}
	slices.Sort(s.items)

	// Rate limits and locks are sluice's store, on the same Redis.
	st, err := redisstore.New(client, redisstore.WithPrefix(cfg.storePrefix))
	if err != nil {
		return nil, err
	}
	s.store = st

	// POST /carts/{cart}/checkout: at most checkoutLimit per user. The user is
	// the X-User header (the stand-in for authentication), which the limiter
	// reads without touching the body; a request without it gets 400.
	s.checkoutPolicy, err = limiter.NewPolicy("checkout", cfg.checkoutLimit, cfg.checkoutWindow, st,
		limiter.WithKey(limiter.HeaderKey("X-User", nil)),
		limiter.WithRequestErrorHandler(func(w http.ResponseWriter, _ *http.Request, _ error) {
			writeError(w, http.StatusBadRequest, "missing X-User header")
		}),
		// Checkouts need Redis anyway: without it, answer 503 at once.
		limiter.WithFailMode(limiter.FailClosed),
	)
	if err != nil {
		s.close()
		return nil, err
	}

	// One checkout at a time per cart: the guard "cart" locks the path's {cart}.
	locker, err := lockguard.New(st)
	if err != nil {
		s.close()
		return nil, err
	}
	s.cartGuard, err = lockguard.NewGuard("cart", locker, limiter.PathValueKey("cart"), cfg.lockTTL,
		lockguard.WithLogger(cfg.logger))
	if err != nil {
		s.close()
		return nil, err
	}

	// POST /scores: at most scoresLimit per client IP (the default key).
	// Fail-open: a failing limiter does not block the leaderboard by itself.
	s.scoresPolicy, err = limiter.NewPolicy("scores", cfg.scoresLimit, cfg.scoresWindow, st)
	if err != nil {
		s.close()
		return nil, err
	}

	s.latency, err = newLatencyLog(s.scripts, lua.TagKey("latency", cfg.tag, "checkout"), cfg.maxSamples, cfg.samplesTTL)
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// routes returns the shop's HTTP handler.
func (s *shop) routes() http.Handler {
	mux := http.NewServeMux()

	// Rate limit first, so that a flood of requests never reaches the locks;
	// the guard wraps the route's handler, after the mux has set {cart}.
	checkout := http.HandlerFunc(s.handleCheckout)
	mux.Handle("POST /carts/{cart}/checkout",
		httpmw.RateLimit(s.checkoutPolicy)(httpmw.Guard(s.cartGuard)(checkout)))

	mux.HandleFunc("GET /stock", s.handleStock)
	mux.Handle("POST /scores", httpmw.RateLimit(s.scoresPolicy)(http.HandlerFunc(s.handleScores)))
	mux.HandleFunc("GET /leaderboard", s.handleLeaderboard)
	mux.HandleFunc("GET /stats/latency", s.handleLatency)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

// preload caches every script the shop runs with SCRIPT LOAD, on every master
// of a Cluster, so that the first requests skip a NOSCRIPT round trip. Calls
// reload a missing script themselves, so this is an optimisation only.
func (s *shop) preload(ctx context.Context) error {
	if err := s.store.Preload(ctx); err != nil { // sluice's rate-limit and lock scripts
		return fmt.Errorf("load store scripts: %w", err)
	}
	if err := rediscmd.Preload(ctx, s.client); err != nil { // Reserve, Leaderboard*, Percentile...
		return fmt.Errorf("load rediscmd scripts: %w", err)
	}
	if err := s.scripts.Preload(ctx, s.client); err != nil { // the shop's own command
		return fmt.Errorf("load shop scripts: %w", err)
	}
	return nil
}

// seed sets every item's stock counter that does not exist yet (SETNX), so
// that restarting against a real Redis keeps the stock it had.
func (s *shop) seed(ctx context.Context) error {
	for _, item := range s.items {
		if err := s.client.SetNX(ctx, s.stockKey(item), s.cfg.inventory[item], 0).Err(); err != nil {
			return fmt.Errorf("seed %s: %w", item, err)
		}
	}
	return nil
}

// stockKey is the counter of item: "stock:{<tag>}:<item>". Every counter shares
// the tag, so one Reserve may take several items on Redis Cluster.
func (s *shop) stockKey(item string) string { return rediscmd.StockKey(s.cfg.tag, item) }

// close releases the policies' names. It does not close the client.
func (s *shop) close() {
	for _, p := range []*limiter.Policy{s.checkoutPolicy, s.scoresPolicy} {
		if p != nil {
			_ = p.Close()
		}
	}
}
