// Command shop is a small web shop built on sluice's middleware and the custom
// Redis commands of package rediscmd: a rate-limited, per-cart locked checkout
// that reserves stock all or nothing, a leaderboard, and latency percentiles.
//
// Run it on a bare machine (an in-process miniredis stands in for Redis):
//
//	go run ./examples/shop
//
// or against Redis:
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/shop
//
// Environment:
//
//	ADDR            listen address (default :8081; 127.0.0.1:0 picks a free port)
//	REDIS_URL       redis://host:port/db; unset: in-process miniredis
//	REDIS_CLUSTER   comma-separated Redis Cluster seed addresses (instead of REDIS_URL)
//	REDIS_SENTINELS comma-separated Sentinel addresses: Redis through Sentinel
//	                (instead of REDIS_URL), whose master is
//	REDIS_MASTER    the Sentinel master name (default "mymaster")
//	CHECKOUT_DELAY  a Go duration each checkout waits while holding its cart's
//	                lock, to watch the lock at work (default 0)
//
// At start it pings the store, preloads every script (SCRIPT LOAD), sets the
// stock of apple (10), pear (5) and fig (2) where no counter exists yet, and
// prints one line naming the store and the address it listens on.
//
// Routes (every answer is JSON; errors are {"error":"..."}; a failing Redis
// gives 503, never the error's text):
//
//	POST /carts/{cart}/checkout   header X-User: <user>, body {"items":{"apple":2,"pear":1}}
//	    Reserves every item, all or nothing (rediscmd.Reserve). 200 with what
//	    was reserved, the stock left of those items and the lock's fence; 409
//	    {"error":"insufficient stock","item":..,"available":..,"requested":..}
//	    when an item is short (nothing is reserved); 400 for malformed JSON,
//	    an empty cart, an unknown item or a quantity < 1. The reservation
//	    runs detached from the request, within 2 s of its own: if the client
//	    hangs up (or the cart's lock is lost) meanwhile, the reserved stock
//	    is given back (rediscmd.Restock) and the answer is 503
//	    {"error":"checkout interrupted"}.
//	    Rate limit "checkout": 5 per minute per X-User (429 past it; 400
//	    without the header). Guard "cart" on {cart}: a second checkout of a cart
//	    that is being checked out gets 409 {"error":"resource is locked"}.
//	    The handling time of each checkout that reaches the reservation (200
//	    or a shortage) is recorded for /stats/latency.
//	GET /stock                    {"stock":{"apple":10,"fig":2,"pear":5}}
//	POST /scores                  body {"player":"p1","points":10}: adds the points
//	    (rediscmd.LeaderboardAdd); 200 with the player's rank, score and the
//	    time the score was reached; 400 for bad input. Rate limit "scores": 30
//	    per minute per client IP. The board is a season: it expires 7 days after
//	    its first score.
//	GET /leaderboard?n=10         the top n (1..100, default 10) players, highest
//	    score first; equal scores: whoever reached the score first.
//	GET /stats/latency?p=95       nearest-rank p-th percentile (0 < p <= 100,
//	    default 95) of the last 1000 checkout latencies in ms
//	    (rediscmd.Percentile): {"p":95,"latency_ms":3.2,"samples":12}; before
//	    any checkout 200 with "latency_ms":null and a "message"; 400 for a bad
//	    p. The samples expire an hour after the newest.
//	GET /healthz                  200 {"status":"ok"}
//
// Keys: the shop's own keys share the hash tag {shop} (stock:{shop}:apple,
// board:{shop}:scores, latency:{shop}:checkout), so one Reserve may take
// several items on Redis Cluster; sluice's rate-limit and lock keys start with
// "sluice:shop:". Every key expires except the stock counters, which are the
// shop's data (one per item).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}

// run serves the shop until ctx is cancelled (SIGINT, SIGTERM), then shuts
// down gracefully: requests in flight finish, the store is closed.
func run(ctx context.Context, getenv func(string) string, out io.Writer) error {
	st, err := openStore(getenv)
	if err != nil {
		return err
	}
	defer st.close()

	cfg := defaultConfig()
	if v := getenv("CHECKOUT_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("CHECKOUT_DELAY %q: want a duration such as 2s", v)
		}
		cfg.beforeReserve = func(ctx context.Context) error { return sleep(ctx, d) }
	}
	app, err := newShop(st.client, cfg)
	if err != nil {
		return err
	}
	defer app.close()

	startCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := st.client.Ping(startCtx).Err(); err != nil {
		return fmt.Errorf("ping %s: %w", st.name, err)
	}
	if err := app.preload(startCtx); err != nil {
		return err
	}
	if err := app.seed(startCtx); err != nil {
		return err
	}

	addr := getenv("ADDR")
	if addr == "" {
		addr = ":8081"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: app.routes(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "sluice shop example: store=%s listening on %s\n", st.name, ln.Addr())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// store is the Redis the shop talks to.
type store struct {
	client redis.UniversalClient
	name   string // for the start-up line; never holds a password
	close  func()
}

// openStore connects to REDIS_URL, REDIS_CLUSTER or REDIS_SENTINELS, or
// else starts an in-process miniredis.
func openStore(getenv func(string) string) (*store, error) {
	if url := getenv("REDIS_URL"); url != "" {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, errors.New("REDIS_URL: want redis://host:port/db")
		}
		opt.ContextTimeoutEnabled = true // deadlines apply on the socket: no goroutine per call
		c := redis.NewClient(opt)
		return &store{
			client: c,
			name:   fmt.Sprintf("redis (%s db %d)", opt.Addr, opt.DB),
			close:  func() { _ = c.Close() },
		}, nil
	}
	if seeds := getenv("REDIS_CLUSTER"); seeds != "" {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(seeds, ","), ContextTimeoutEnabled: true})
		return &store{
			client: c,
			name:   "redis-cluster (" + seeds + ")",
			close:  func() { _ = c.Close() },
		}, nil
	}

	if sentinels := getenv("REDIS_SENTINELS"); sentinels != "" {
		master := getenv("REDIS_MASTER")
		if master == "" {
			master = "mymaster"
		}
		c := redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: master, SentinelAddrs: strings.Split(sentinels, ","), ContextTimeoutEnabled: true,
		})
		return &store{
			client: c,
			name:   "redis-sentinel (" + master + " via " + sentinels + ")",
			close:  func() { _ = c.Close() },
		}, nil
	}

	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("start miniredis: %w", err)
	}
	c := redis.NewClient(&redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
	stopClock := runClock(m, 100*time.Millisecond)
	return &store{
		client: c,
		name:   "miniredis (in-process; set REDIS_URL to use Redis)",
		close: func() {
			_ = c.Close()
			stopClock()
			m.Close()
		},
	}, nil
}

// runClock makes m's keys expire as they would on Redis: miniredis only counts
// down TTLs when told that time has passed (FastForward), so it is told every
// tick. The returned function stops the goroutine and waits for it.
func runClock(m *miniredis.Miniredis, tick time.Duration) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(tick)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-exited }) }
}

// sleep waits for d or until ctx ends (the client left, or the cart's lock
// was lost), whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
