package main

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/rediscmd"
)

// waitBound bounds every wait of these tests, so that a hung handler fails
// the test instead of hanging it.
const waitBound = 10 * time.Second

// A client hangs up while its reservation is in Redis, and the reply comes
// back only after the server has noticed: the reservation was applied, so
// the handler must give the stock back (nobody will ever learn of the order),
// not answer into the void. No unit of stock is lost.
func TestHungUpCheckoutLosesNoStock(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		logs := &logBuffer{}
		cfg := testConfig(b)
		cfg.logger = slog.New(slog.NewTextHandler(logs, nil))
		requests := make(chan context.Context, 1)
		cfg.beforeReserve = func(ctx context.Context) error {
			select {
			case requests <- ctx: // the first checkout's request context
			default:
			}
			return nil
		}
		reserved := make(chan struct{})
		b.client.AddHook(&lateReply{
			isReserve: func(cmd redis.Cmder) bool { return scriptOn(cmd, rediscmd.StockKey(cfg.tag, "apple")) },
			wait: func() {
				close(reserved)
				select { // the reply is late: it comes once the client has gone
				case <-(<-requests).Done():
				case <-time.After(waitBound):
				}
			},
		})
		s, _ := startShop(t, b, cfg)
		srv, handled := serveObserved(t, s)

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		gone := make(chan error, 1)
		go func() {
			_, err := doErr(ctx, http.MethodPost, srv.URL+"/carts/c1/checkout", "gone", `{"items":{"apple":1}}`)
			gone <- err
		}()
		waitFor(t, reserved, "the reservation to reach Redis")
		cancel()
		require.ErrorIs(t, <-gone, context.Canceled)
		waitFor(t, handled, "the checkout handler to return")

		assert.Equal(t, seeded, stock(t, srv), "nobody was told of an order: every unit is back in stock")
		assert.Contains(t, logs.String(), "checkout interrupted; its stock was returned")

		// The shop still sells, and what it sells is what it told.
		r := checkout(t, srv, "c2", "stays", `{"apple":2}`)
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		assert.Equal(t, seeded["apple"]-2, stock(t, srv)["apple"])
	})
}

// TestSlowRedisCheckoutLosesNoStock injects the fault for real: Redis is
// paused (CLIENT PAUSE) while two checkouts reserve, and one of the clients
// hangs up before Redis answers. Every unit of stock is either still in stock
// or in the order the other client was told of.
//
// It needs a redis-server of its own (redistest.StartServer): pausing the
// server at REDIS_ADDR would stall every other test using it.
func TestSlowRedisCheckoutLosesNoStock(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true}) // as main.go opens it
	t.Cleanup(func() { _ = client.Close() })
	admin := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = admin.Close() })
	b := &backend{name: "redis-server", client: client, token: redistest.Token()}

	cfg := testConfig(b)
	entered := make(chan context.Context, 2)
	proceed := make(chan struct{})
	cfg.beforeReserve = func(ctx context.Context) error {
		entered <- ctx
		select {
		case <-proceed:
		case <-time.After(waitBound):
		}
		return nil
	}
	s, _ := startShop(t, b, cfg)
	srv, handled := serveObserved(t, s)

	// Both checkouts pass the rate limit and lock their carts, then wait.
	ctx, hangUp := context.WithCancel(context.Background())
	defer hangUp()
	gone := make(chan error, 1)
	go func() {
		_, err := doErr(ctx, http.MethodPost, srv.URL+"/carts/c1/checkout", "gone", `{"items":{"apple":1}}`)
		gone <- err
	}()
	goneRequest := waitFor(t, entered, "the first checkout to lock its cart")
	stays := make(chan reply, 1)
	go func() {
		r, err := doErr(context.Background(), http.MethodPost, srv.URL+"/carts/c2/checkout", "stays", `{"items":{"apple":2}}`)
		if err != nil {
			r = reply{status: -1, body: []byte(err.Error())}
		}
		stays <- r
	}()
	waitFor(t, entered, "the second checkout to lock its cart")

	// Redis stops serving writes; both reservations reach it and wait.
	require.NoError(t, admin.Do(context.Background(), "CLIENT", "PAUSE", strconv.Itoa(int(waitBound.Milliseconds())), "WRITE").Err())
	t.Cleanup(func() { _ = admin.Do(context.Background(), "CLIENT", "UNPAUSE").Err() })
	close(proceed)
	require.Eventually(t, func() bool { return blockedClients(t, admin) >= 2 }, waitBound, 5*time.Millisecond,
		"both reservations wait in Redis")

	// One client gives up; once the server has noticed, Redis answers.
	hangUp()
	require.ErrorIs(t, <-gone, context.Canceled)
	waitFor(t, goneRequest.Done(), "the server to notice the hang-up")
	require.NoError(t, admin.Do(context.Background(), "CLIENT", "UNPAUSE").Err())

	r := waitFor(t, stays, "the answer to the patient client")
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	var told checkoutResponse
	r.json(t, &told)
	waitFor(t, handled, "a checkout handler to return")
	waitFor(t, handled, "the other checkout handler to return")

	want := maps.Clone(seeded) // what is in stock plus what the client was told it has
	for item, n := range told.Reserved {
		want[item] -= n
	}
	assert.Equal(t, want, stock(t, srv), "every unit is in stock or in the order the client was told of (%v)", told.Reserved)
}

// A reservation that runs past its deadline may have taken the stock: the
// handler says so in the log, naming the items, and answers 503.
func TestReserveTimeoutIsLogged(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		logs := &logBuffer{}
		cfg := testConfig(b)
		cfg.logger = slog.New(slog.NewTextHandler(logs, nil))
		cfg.reserveTimeout = 50 * time.Millisecond
		b.client.AddHook(&lateReply{
			isReserve: func(cmd redis.Cmder) bool { return scriptOn(cmd, rediscmd.StockKey(cfg.tag, "fig")) },
			late:      true,
		})
		_, srv := startShop(t, b, cfg)

		r := checkout(t, srv, "c1", "u1", `{"fig":2}`)
		require.Equal(t, http.StatusServiceUnavailable, r.status, "body %s", r.body)
		assert.Equal(t, "store unavailable", r.errorMsg(t))
		assert.Contains(t, logs.String(), "shop: reserve: outcome unknown")
		assert.Contains(t, logs.String(), "items=map[fig:2]")
		assert.Contains(t, logs.String(), "user=u1")
	})
}

// lateReply is a go-redis hook that delays the reply of the first script call
// isReserve picks, after Redis has run it: the caller learns of the
// reservation late. With late set, the reply is lost altogether: the hook
// waits for the caller's deadline and returns its error, as a read that timed
// out would.
type lateReply struct {
	isReserve func(cmd redis.Cmder) bool
	wait      func() // runs once the call has been applied
	late      bool
	done      atomic.Bool
}

func (h *lateReply) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lateReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *lateReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil || !h.isReserve(cmd) || h.done.Swap(true) {
			return err
		}
		if h.wait != nil {
			h.wait()
		}
		if h.late {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(waitBound):
			}
		}
		return nil
	}
}

// blockedClients returns the number of clients whose commands wait for the
// server (INFO clients), those that a CLIENT PAUSE holds among them.
func blockedClients(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "clients").Result()
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "blocked_clients:"); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err, "INFO clients: %s", line)
			return n
		}
	}
	t.Fatalf("INFO clients has no blocked_clients:\n%s", info)
	return 0
}

// scriptOn reports whether cmd runs a script (EVALSHA or EVAL) on key.
func scriptOn(cmd redis.Cmder, key string) bool {
	args := cmd.Args()
	if name := strings.ToLower(cmd.Name()); name != "evalsha" && name != "eval" || len(args) < 4 {
		return false
	}
	return slices.Contains(args[3:], any(key))
}

// serveObserved serves s over HTTP and reports, on the returned channel, each
// time a checkout handler has returned.
func serveObserved(t *testing.T, s *shop) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	routes := s.routes()
	handled := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		routes.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/checkout") {
			handled <- struct{}{}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, handled
}

// waitFor receives from ch, failing the test after waitBound.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitBound):
		t.Fatalf("waited %v for %s", waitBound, what)
		var zero T
		return zero
	}
}

// logBuffer collects log lines from concurrent handlers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
