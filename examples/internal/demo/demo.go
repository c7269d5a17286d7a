// Package demo is what sluice's example servers share and that is not
// about sluice: reading their environment, opening the store it names,
// serving with a graceful shutdown, and the net/http handlers of the
// example routes. Each example's main.go keeps what it shows: how its
// policies and guard are made and mounted.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// Env is what the environment gives an example server.
type Env struct {
	// ClientIP finds the client behind TRUSTED_PROXIES.
	ClientIP limiter.KeyFunc
	// APIKeys are the API keys API_KEYS lists.
	APIKeys map[string]bool
	// Store is the store REDIS_CLUSTER, REDIS_SENTINELS or REDIS_URL
	// names, else process memory; StoreName names it for the start-up line.
	Store     store.Store
	StoreName string

	close func()
}

// Close closes the store and its Redis client.
func (e *Env) Close() { e.close() }

// Setup reads TRUSTED_PROXIES and API_KEYS, and opens the store; a bad
// variable or an unreachable Redis is an error naming it (a password in
// REDIS_URL is never in it).
func Setup(ctx context.Context) (*Env, error) {
	clientIP, err := limiter.TrustedProxyIP(List(os.Getenv("TRUSTED_PROXIES"))...)
	if err != nil {
		return nil, fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	env := &Env{ClientIP: clientIP, APIKeys: knownKeys()}
	if env.Store, env.StoreName, env.close, err = openStore(ctx); err != nil {
		return nil, err
	}
	return env, nil
}

// Serve serves h on ADDR (default ":8080") until ctx is done, then shuts
// down gracefully, letting requests in flight finish. It prints the
// start-up line "sluice example (<framework>): store=<name> listening on
// <address>" once it listens. stop is called once ctx is done, so that a
// second signal ends the process at once.
func Serve(ctx context.Context, stop func(), framework, storeName string, h http.Handler) error {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("sluice example (%s): store=%s listening on %s\n", framework, storeName, ln.Addr())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx) // lets requests in flight (up to 10 s of work) finish
}

// openStore returns the store the environment names (a Redis Cluster, else
// Redis through Sentinel, else Redis, else process memory), its name for the
// start-up line, and a function that closes it.
func openStore(ctx context.Context) (store.Store, string, func(), error) {
	var client redis.UniversalClient
	var name string
	switch seeds, sentinels, rawURL := List(os.Getenv("REDIS_CLUSTER")), List(os.Getenv("REDIS_SENTINELS")), os.Getenv("REDIS_URL"); {
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
	for _, k := range List(s) {
		keys[k] = true
	}
	return keys
}

// List splits a comma-separated list, dropping blanks.
func List(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// BadWork is the error of a payment whose ?work= is not valid.
const BadWork = "work must be a whole number of milliseconds from 0 to 10000"

// ParseWork reads ?work= from a request's query q: milliseconds from 0 to
// 10000, 0 when the parameter is missing. A parameter given empty is not a
// number, and not valid.
func ParseWork(q url.Values) (time.Duration, bool) {
	if !q.Has("work") {
		return 0, true
	}
	ms, err := strconv.Atoi(q.Get("work"))
	if err != nil || ms < 0 || ms > 10000 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// Payment is the body of a paid order.
type Payment struct {
	Order string `json:"order"`
	Paid  bool   `json:"paid"`
	Fence int64  `json:"fence"`
}

// The net/http handlers of the example routes.

// Healthz answers GET /healthz.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Hello answers GET /api/hello (and the other /api routes).
func Hello(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"message": "hello"})
}

// Login answers POST /login: 200 for the password "correct", else 401.
func Login(w http.ResponseWriter, r *http.Request) {
	var creds struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&creds); err != nil {
		WriteJSON(w, http.StatusBadRequest, ErrorBody("malformed JSON body"))
		return
	}
	if creds.Password != "correct" {
		WriteJSON(w, http.StatusUnauthorized, ErrorBody("wrong user or password"))
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"message": "welcome", "user": creds.User})
}

// ValidWork answers 400 for a payment whose ?work= is not valid, before
// next (and its guard) runs: a bad request never takes the lock.
func ValidWork(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ParseWork(r.URL.Query()); !ok {
			WriteJSON(w, http.StatusBadRequest, ErrorBody(BadWork))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Pay answers POST /orders/{id}/pay: it works ?work= milliseconds holding
// the order's lock, then reports the lock's fence.
func Pay(w http.ResponseWriter, r *http.Request) {
	work, _ := ParseWork(r.URL.Query()) // ValidWork checked it
	select {
	case <-time.After(work):
	case <-r.Context().Done(): // the client hung up, or the lock was lost
		WriteJSON(w, http.StatusServiceUnavailable, ErrorBody("payment interrupted"))
		return
	}
	var fence int64
	if lock, ok := lockguard.FromContext(r.Context()); ok {
		fence = lock.Fence() // pass it to the payment system, which rejects stale fences
	}
	WriteJSON(w, http.StatusOK, Payment{Order: r.PathValue("id"), Paid: true, Fence: fence})
}

// ErrorBody is the JSON body of an error.
func ErrorBody(msg string) map[string]string { return map[string]string{"error": msg} }

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
