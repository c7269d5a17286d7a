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
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/metrics/prommetrics"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice example (config):", err)
		os.Exit(1)
	}
}

func run() error {
	clientIP, err := limiter.TrustedProxyIP(list(os.Getenv("TRUSTED_PROXIES"))...)
	if err != nil {
		return fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	apiKeys := knownKeys()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	file, err := loadConfig() // a mistake in the file stops the server before it connects
	if err != nil {
		return err
	}
	st, storeName, closeStore, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	mux, err := routes(file, st, clientIP, apiKeys)
	if err != nil {
		return err
	}

	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("sluice example (config): store=%s listening on %s\n", storeName, ln.Addr())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal ends the process at once
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx) // lets requests in flight (up to 10 s of work) finish
}

func routes(file *config.File, st store.Store, clientIP limiter.KeyFunc, apiKeys map[string]bool) (http.Handler, error) {
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
	limits, err := file.Build(st,
		config.WithClientIP(clientIP),
		config.WithKnown("api-keys", func(k string) bool { return apiKeys[k] }),
		config.WithObserver(metrics))
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/hello", hello)
	mux.HandleFunc("GET /api/daily", hello)
	mux.HandleFunc("GET /api/burst", hello)
	mux.HandleFunc("POST /login", loginHandler)
	mux.HandleFunc("POST /orders/{id}/pay", pay)

	// The file's routes in front of the mux, in one call. A payment's work
	// is checked before them, so that a bad request never takes the lock.
	guarded := limits.Handler(mux)
	outer := http.NewServeMux()
	outer.Handle("POST /orders/{id}/pay", validWork(guarded))
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

func hello(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"message": "hello"})
}

func loginHandler(w http.ResponseWriter, r *http.Request) {
	var creds struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&creds); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody("malformed JSON body"))
		return
	}
	if creds.Password != "correct" {
		writeJSON(w, http.StatusUnauthorized, errorBody("wrong user or password"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "welcome", "user": creds.User})
}

func validWork(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := parseWork(r.URL.Query().Get("work")); !ok {
			writeJSON(w, http.StatusBadRequest, errorBody(badWork))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func pay(w http.ResponseWriter, r *http.Request) {
	work, _ := parseWork(r.URL.Query().Get("work")) // validWork checked it
	select {
	case <-time.After(work):
	case <-r.Context().Done(): // the client hung up, or the lock was lost
		writeJSON(w, http.StatusServiceUnavailable, errorBody("payment interrupted"))
		return
	}
	var fence int64
	if lock, ok := lockguard.FromContext(r.Context()); ok {
		fence = lock.Fence() // pass it to the payment system, which rejects stale fences
	}
	writeJSON(w, http.StatusOK, payment{Order: r.PathValue("id"), Paid: true, Fence: fence})
}

type payment struct {
	Order string `json:"order"`
	Paid  bool   `json:"paid"`
	Fence int64  `json:"fence"`
}

const badWork = "work must be a whole number of milliseconds from 0 to 10000"

// parseWork reads ?work=: milliseconds from 0 to 10000, 0 when missing.
func parseWork(s string) (time.Duration, bool) {
	if s == "" {
		return 0, true
	}
	ms, err := strconv.Atoi(s)
	if err != nil || ms < 0 || ms > 10000 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

func errorBody(msg string) map[string]string { return map[string]string{"error": msg} }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// openStore returns the store the environment names (a Redis Cluster, else
// Redis through Sentinel, else Redis, else process memory), its name for the
// start-up line, and a function that closes it.
func openStore(ctx context.Context) (store.Store, string, func(), error) {
	var client redis.UniversalClient
	var name string
	switch seeds, sentinels, rawURL := list(os.Getenv("REDIS_CLUSTER")), list(os.Getenv("REDIS_SENTINELS")), os.Getenv("REDIS_URL"); {
	case len(seeds) > 0:
		client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds, ContextTimeoutEnabled: true})
		name = "redis-cluster(" + strings.Join(seeds, ",") + ")"
	case len(sentinels) > 0:
		master := os.Getenv("REDIS_MASTER")
		if master == "" {
			master = "mymaster"
		}
		// The failover client asks the Sentinels for the master and follows
		// their +switch-master announcements.
		client = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: sentinels, ContextTimeoutEnabled: true})
		name = "redis-sentinel(" + master + " via " + strings.Join(sentinels, ",") + ")"
	case rawURL != "":
		opts, err := redis.ParseURL(rawURL)
		if urlErr := (*url.Error)(nil); errors.As(err, &urlErr) {
			err = urlErr.Err // url.Error's text repeats the URL, password included
		}
		if err != nil {
			return nil, "", nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		opts.ContextTimeoutEnabled = true // deadlines apply on the socket: no goroutine per call
		client = redis.NewClient(opts)
		u, _ := url.Parse(rawURL) // redis.ParseURL accepted it
		name = "redis(" + u.Redacted() + ")"
	default:
		st, err := memstore.New()
		if err != nil {
			return nil, "", nil, err
		}
		return st, "memory", func() { _ = st.Close() }, nil
	}

	// Fail fast on an unreachable Redis, and preload the scripts on every master.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := client.Ping(ctx).Err()
	var st *redisstore.Store
	if err == nil {
		// Concurrent decisions share pipelines: fewer round trips under load.
		st, err = redisstore.New(client, redisstore.WithTimeout(time.Second), redisstore.WithPipelining(redisstore.DefaultMaxBatch))
	}
	if err == nil {
		err = st.Preload(ctx)
	}
	if err != nil {
		_ = client.Close()
		return nil, "", nil, fmt.Errorf("cannot use %s: %w", name, err)
	}
	return st, name, func() { _ = client.Close() }, nil
}

// knownKeys returns the API keys API_KEYS lists: demo-key-1 and demo-key-2
// when it is unset, none when it is set but empty.
func knownKeys() map[string]bool {
	s, ok := os.LookupEnv("API_KEYS")
	if !ok {
		s = "demo-key-1,demo-key-2"
	}
	keys := make(map[string]bool)
	for _, k := range list(s) {
		keys[k] = true
	}
	return keys
}

// list splits a comma-separated list, dropping blanks.
func list(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
