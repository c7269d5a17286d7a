// Command config is sluice's example server with its limits and guards
// declared in a file, sluice.yaml, rather than in Go: the same routes and
// the same behaviour as examples/nethttp, on an http.ServeMux. Change a limit
// in the file and restart; no rebuild.
//
//	go run ./examples/config
//	SLUICE_CONFIG=my-limits.yaml go run ./examples/config
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/config
//
// Environment: that of examples/nethttp (ADDR, REDIS_CLUSTER,
// REDIS_SENTINELS, REDIS_MASTER, REDIS_URL, TRUSTED_PROXIES, API_KEYS), and
//
//	SLUICE_CONFIG    the configuration file to serve (default: the
//	                 sluice.yaml of this directory, built into the binary)
//
// Routes: those of examples/nethttp, with the policies and the guard that
// sluice.yaml declares (GET /healthz and GET /metrics are never limited).
// A file with a mistake stops the server at start, with each mistake's line.
package main

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/examples/internal/demo"
	"github.com/sluicehq/sluice/metrics/prommetrics"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice example (config):", err)
		os.Exit(1)
	}
}

func run() error {
	file, err := loadConfig() // a mistake in the file stops the server before it connects
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := demo.Setup(ctx)
	if err != nil {
		return err
	}
	defer env.Close()
	h, err := routes(file, env)
	if err != nil {
		return err
	}
	return demo.Serve(ctx, stop, "config", env.StoreName, h)
}

func routes(file *config.File, env *demo.Env) (http.Handler, error) {
	// Decisions and locks are counted for Prometheus, served at /metrics.
	metrics, err := prommetrics.New()
	if err != nil {
		return nil, err
	}
	registry := prometheus.NewRegistry()
	if err := registry.Register(metrics); err != nil {
		return nil, err
	}
	// What a file cannot say: how to find the client behind TRUSTED_PROXIES,
	// which X-API-Key values are real (the file's "known: api-keys"), and
	// where metrics go.
	limits, err := file.Build(env.Store,
		config.WithClientIP(env.ClientIP),
		config.WithKnown("api-keys", func(k string) bool { return env.APIKeys[k] }),
		config.WithObserver(metrics))
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", demo.Healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/hello", demo.Hello)
	mux.HandleFunc("GET /api/daily", demo.Hello)
	mux.HandleFunc("GET /api/burst", demo.Hello)
	mux.HandleFunc("POST /login", demo.Login)
	mux.HandleFunc("POST /orders/{id}/pay", demo.Pay)

	// The file's routes in front of the mux, in one call. A payment's work
	// is checked before them, so that a bad request never takes the lock.
	guarded := limits.Handler(mux)
	outer := http.NewServeMux()
	outer.Handle("POST /orders/{id}/pay", demo.ValidWork(guarded))
	outer.Handle("/", guarded)
	return outer, nil
}

// loadConfig reads SLUICE_CONFIG, or the sluice.yaml built in.
func loadConfig() (*config.File, error) {
	if path := os.Getenv("SLUICE_CONFIG"); path != "" {
		return config.Load(path)
	}
	return config.Parse("sluice.yaml", builtinConfig)
}

//go:embed sluice.yaml
var builtinConfig []byte
