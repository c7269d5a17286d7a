package httpmw_test

import (
	"bytes"
	"context"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/internal/guardtest"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

// guardMount serves POST /orders/{id} through httpmw.Guard, with a recovering
// wrapper outside that turns a panic into 500.
func guardMount(g *lockguard.Guard, h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /orders/{id}", httpmw.Guard(g)(h))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

func guardBackends() []guardtest.Backend {
	mini := guardtest.Emulated("miniredis", func(t *testing.T) guardtest.EmulatedServer { return miniredis.RunT(t) })
	return append([]guardtest.Backend{guardtest.Memory(), mini, guardtest.OwnRedis()}, guardtest.Env()...)
}

func TestGuard(t *testing.T) {
	guardtest.Run(t, guardMount, guardBackends()...)
}

// guardLogBuffer is a bytes.Buffer safe for the server's logger.
type guardLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *guardLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *guardLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Without a recovering middleware the panic goes on to net/http's server,
// which logs it and drops the connection; the lock is free at once.
func TestGuardPanicReachesServer(t *testing.T) {
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	locker, err := lockguard.New(st)
	require.NoError(t, err)
	g, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 30*time.Second, lockguard.WithLogger(nil))
	require.NoError(t, err)

	mux := http.NewServeMux()
	mux.Handle("POST /orders/{id}", httpmw.Guard(g)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("panic") != "" {
			panic("boom from the handler")
		}
		_, ok := lockguard.FromContext(r.Context())
		assert.True(t, ok, "the handler sees its lock")
	})))
	srv := httptest.NewUnstartedServer(mux)
	var logs guardLogBuffer
	srv.Config.ErrorLog = log.New(&logs, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)

	resp, err := http.Post(srv.URL+"/orders/1?panic=1", "", nil)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the panicking request was answered %d; want the server to drop the connection", resp.StatusCode)
	}
	assert.Contains(t, logs.String(), "boom from the handler", "the server saw the panic")

	resp, err = http.Post(srv.URL+"/orders/1", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the lock is free right after the panic")
}

func TestGuardNilPanics(t *testing.T) {
	assert.PanicsWithValue(t, "httpmw: Guard: nil *lockguard.Guard", func() { httpmw.Guard(nil) })
}

// Wrapping the whole mux instead of the route's handler leaves the path
// values unset: the guard answers 400 rather than locking a wrong key.
func TestGuardOutsideMuxHasNoPathValues(t *testing.T) {
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	locker, err := lockguard.New(st)
	require.NoError(t, err)
	g, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), time.Second, lockguard.WithLogger(nil))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders/{id}", func(http.ResponseWriter, *http.Request) {})

	rec := httptest.NewRecorder()
	httpmw.Guard(g)(mux).ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/orders/1", nil))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json"))
}
