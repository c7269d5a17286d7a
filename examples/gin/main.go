// Command gin is sluice's example server for gin (github.com/gin-gonic/gin):
// rate limits and a route guard mounted as route handlers. The net/http and
// echo examples serve the same routes with the same behaviour.
//
// Run it on the in-memory store (one process), on Redis or on a Redis Cluster
// (every instance shares one quota and one set of locks):
//
//	go run ./examples/gin
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/gin
//	REDIS_CLUSTER=10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379 go run ./examples/gin
//	REDIS_SENTINELS=10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379 go run ./examples/gin
//
// Environment:
//
//	ADDR             listen address (default ":8080")
//	REDIS_CLUSTER    comma-separated seed addresses of a Redis Cluster
//	REDIS_SENTINELS  comma-separated Sentinel addresses: Redis through
//	                 Sentinel (when REDIS_CLUSTER is unset), whose master is
//	REDIS_MASTER     the Sentinel master name (default "mymaster")
//	REDIS_URL        redis://host:port/db, used when REDIS_CLUSTER and
//	                 REDIS_SENTINELS are unset;
//	                 with neither, the store is in process memory
//	TRUSTED_PROXIES  comma-separated CIDRs of reverse proxies whose
//	                 X-Forwarded-For is believed (default: none)
//	API_KEYS         comma-separated API keys that /api/hello accepts as an
//	                 identity (default "demo-key-1,demo-key-2"; set but
//	                 empty: none)
//
// Routes:
//
//	GET  /healthz                 200, never limited
//	GET  /api/hello               policy "api": 5 per 10 s per X-API-Key when
//	                              it is one of API_KEYS, else per client IP
//	                              (an unknown key counts against the IP);
//	                              fail-open
//	GET  /api/daily               policy "daily": 1000 per 24 h per client IP,
//	                              sliding-window counter; fail-open
//	GET  /api/burst               policies "burst" (3 per 10 s) and "hourly"
//	                              (5 per hour) per client IP, decided together:
//	                              a request either denies counts against
//	                              neither; fail-open
//	GET  /metrics                 Prometheus text format: decisions by policy and
//	                              outcome, store latency, locks; never limited
//	POST /login                   {"user":..,"password":..}; "correct" gives 200,
//	                              else 401; policy "login": 3 failed attempts per
//	                              60 s per client IP; fail-closed
//	POST /orders/:id/pay?work=MS  works MS milliseconds (0 to 10000) holding the
//	                              lock "order:<id>"; a concurrent payment of the
//	                              same order gets 409; fail-closed
//
// Client IPs come from limiter.TrustedProxyIP, not from gin's ClientIP, which
// believes X-Forwarded-For from anyone unless SetTrustedProxies is called.
// Gin runs in release mode unless GIN_MODE says otherwise.
// It prints one line naming its store and address once it listens, and shuts
// down gracefully on SIGINT or SIGTERM. docs/examples.md has a curl session.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/adapters/ginmw"
	"github.com/sluicehq/sluice/examples/internal/demo"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/metrics/prommetrics"
	"github.com/sluicehq/sluice/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice example (gin):", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := demo.Setup(ctx)
	if err != nil {
		return err
	}
	defer env.Close()
	h, err := routes(env)
	if err != nil {
		return err
	}
	return demo.Serve(ctx, stop, "gin", env.StoreName, h)
}

func routes(env *demo.Env) (*gin.Engine, error) {
	st, clientIP, apiKeys := env.Store, env.ClientIP, env.APIKeys
	// Decisions and locks are counted for Prometheus, served at /metrics.
	metrics, err := prommetrics.New()
	if err != nil {
		return nil, err
	}
	registry := prometheus.NewRegistry()
	if err := registry.Register(metrics); err != nil {
		return nil, err
	}
	metricsHandler := promhttp.HandlerFor(registry, promhttp.HandlerOpts{})
	// X-API-Key is the client only when it is one of API_KEYS: a key the
	// client made up counts against its address, so a fresh key per request
	// buys no fresh quota.
	isKey := func(k string) bool { return apiKeys[k] }
	api, err := policy(st, metrics, "api", 5, 10*time.Second,
		limiter.WithKey(limiter.ValidatedHeaderKey("X-API-Key", isKey, clientIP))) // fail-open: the default
	if err != nil {
		return nil, err
	}
	login, err := policy(st, metrics, "login", 3, time.Minute, limiter.WithKey(clientIP),
		limiter.WithSkipSuccessful(), limiter.WithFailMode(limiter.FailClosed))
	if err != nil {
		return nil, err
	}
	// 1000 a day per client in O(1) memory per client: the sliding-window
	// counter (the sliding log keeps one entry per hit).
	daily, err := policy(st, metrics, "daily", 1000, 24*time.Hour, limiter.WithKey(clientIP),
		limiter.WithAlgorithm(store.SlidingCounter))
	if err != nil {
		return nil, err
	}
	// A burst limit and an hourly one decided together: a request that
	// either denies counts against neither.
	burst, err := policy(st, metrics, "burst", 3, 10*time.Second, limiter.WithKey(clientIP))
	if err != nil {
		return nil, err
	}
	hourly, err := policy(st, metrics, "hourly", 5, time.Hour, limiter.WithKey(clientIP))
	if err != nil {
		return nil, err
	}
	burstHourly, err := limiter.Stack(burst, hourly)
	if err != nil {
		return nil, err
	}
	locker, err := lockguard.New(st)
	if err != nil {
		return nil, err
	}
	// Fail-closed (the default): without the lock store, no payment runs.
	// limiter.PathValueKey reads gin's :id, which the adapter copies into the request.
	orders, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second, lockguard.WithObserver(metrics))
	if err != nil {
		return nil, err
	}

	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}
	r := gin.New()
	r.GET("/healthz", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	r.GET("/metrics", gin.WrapH(metricsHandler))
	r.GET("/api/hello", ginmw.RateLimit(api), hello)
	r.GET("/api/daily", ginmw.RateLimit(daily), hello)
	r.GET("/api/burst", ginmw.RateLimit(burstHourly), hello)
	r.POST("/login", ginmw.RateLimit(login), loginHandler)
	// Handlers run left to right: validWork before the guard, so that a bad
	// request never takes the lock.
	r.POST("/orders/:id/pay", validWork, ginmw.Guard(orders), pay)
	return r, nil
}

func policy(st store.Store, obs limiter.Observer, name string, limit int, window time.Duration, opts ...limiter.Option) (*limiter.Policy, error) {
	return limiter.NewPolicy(name, limit, window, st, append(opts, limiter.WithObserver(obs))...)
}

func hello(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"message": "hello"})
}

func loginHandler(c *gin.Context) {
	var creds struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, 4<<10)
	if err := json.NewDecoder(body).Decode(&creds); err != nil {
		c.JSON(http.StatusBadRequest, errorBody("malformed JSON body"))
		return
	}
	if creds.Password != "correct" {
		c.JSON(http.StatusUnauthorized, errorBody("wrong user or password"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"message": "welcome", "user": creds.User})
}

func validWork(c *gin.Context) {
	if _, ok := demo.ParseWork(c.Request.URL.Query()); !ok {
		c.AbortWithStatusJSON(http.StatusBadRequest, errorBody(demo.BadWork))
	}
}

func pay(c *gin.Context) {
	work, _ := demo.ParseWork(c.Request.URL.Query()) // validWork checked it
	ctx := c.Request.Context()
	select {
	case <-time.After(work):
	case <-ctx.Done(): // the client hung up, or the lock was lost
		c.JSON(http.StatusServiceUnavailable, errorBody("payment interrupted"))
		return
	}
	var fence int64
	if lock, ok := lockguard.FromContext(ctx); ok {
		fence = lock.Fence() // pass it to the payment system, which rejects stale fences
	}
	c.JSON(http.StatusOK, demo.Payment{Order: c.Param("id"), Paid: true, Fence: fence})
}

func errorBody(msg string) gin.H { return gin.H{"error": msg} }
