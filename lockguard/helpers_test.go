package lockguard_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/guardtest"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store"
)

// miniredisBackend runs redisstore on miniredis with real-time TTLs; if mini
// is not nil it receives each test's server, for fault injection.
func miniredisBackend(mini **miniredis.Miniredis) guardtest.Backend {
	return guardtest.Emulated("miniredis", func(t *testing.T) guardtest.EmulatedServer {
		m := miniredis.RunT(t)
		if mini != nil {
			*mini = m
		}
		return m
	})
}

// backends are the stores every core test runs on: memstore, redisstore on
// miniredis, and redisstore on the real server and Cluster of the
// environment (skipped when unset).
func backends() []guardtest.Backend {
	return append([]guardtest.Backend{guardtest.Memory(), miniredisBackend(nil)}, guardtest.Env()...)
}

// eachBackend runs fn as a subtest per backend, with a fresh store.
func eachBackend(t *testing.T, fn func(t *testing.T, inst guardtest.Instance)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.New(t)) })
	}
}

func newLocker(t *testing.T, s store.LockStore, opts ...lockguard.Option) *lockguard.Locker {
	t.Helper()
	l, err := lockguard.New(s, opts...)
	require.NoError(t, err)
	return l
}

// settleGoroutines waits until no more than n goroutines run, failing t if
// that does not happen within 5 s.
func settleGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blackhole is a TCP proxy to a Redis server that can stop passing bytes:
// while it drops, requests never reach the server and nothing comes back,
// as with a hung Redis, on connections already open and on new ones.
type blackhole struct {
	addr string
	drop atomic.Bool
}

// newBlackhole starts a proxy to upstream, stopped by t's cleanup.
func newBlackhole(t *testing.T, upstream string) *blackhole {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	b := &blackhole{addr: l.Addr().String()}
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			track(down)
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = down.Close()
				continue
			}
			track(up)
			go b.pipe(up, down)
			go b.pipe(down, up)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return b
}

// Drop makes the proxy drop every byte (true) or pass them on (false).
func (b *blackhole) Drop(drop bool) { b.drop.Store(drop) }

func (b *blackhole) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !b.drop.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// countingHandler counts the records logged, by message.
type countingHandler struct {
	mu     sync.Mutex
	counts map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.counts[r.Message]++
	h.mu.Unlock()
	return nil
}

func (h *countingHandler) snapshot() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.counts)
}
