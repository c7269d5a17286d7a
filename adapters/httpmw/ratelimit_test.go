package httpmw_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/internal/limitertest"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store/memstore"
)

// rateLimitMount serves the suite's routes on an http.ServeMux, each through
// its stacked RateLimit middlewares (the first outermost).
func rateLimitMount(routes []limitertest.Route) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		h := rt.Handler
		for i := len(rt.Policies) - 1; i >= 0; i-- {
			h = httpmw.RateLimit(rt.Policies[i])(h)
		}
		mux.Handle(rt.Method+" "+rt.Path, h)
	}
	return mux
}

func rateLimitBackends() []limitertest.Backend {
	mini := limitertest.Emulated("miniredis", func(t *testing.T) limitertest.EmulatedServer { return miniredis.RunT(t) })
	return append([]limitertest.Backend{limitertest.Memory(), mini, limitertest.OwnRedis()}, limitertest.Env()...)
}

func TestRateLimit(t *testing.T) {
	limitertest.Run(t, rateLimitMount, rateLimitBackends()...)
}

// rateLimitPolicy returns a policy over a fresh memstore.
func rateLimitPolicy(t *testing.T, name string, limit int, opts ...limiter.Option) *limiter.Policy {
	t.Helper()
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	p, err := limiter.NewPolicy(name, limit, time.Minute, st, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func rateLimitGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}

func TestRateLimitWrapperKeepsFlushAndHijack(t *testing.T) {
	p := rateLimitPolicy(t, "stream", 2, limiter.WithSkipSuccessful())
	read := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /flush", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-read // the client has the first line: the flush reached it
		_, _ = io.WriteString(w, "second\n")
		assert.NoError(t, http.NewResponseController(w).Flush())
		assert.NoError(t, http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)), "Unwrap reaches the connection")
	})
	mux.HandleFunc("GET /hijack", func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := w.(http.Hijacker).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		_ = rw.Flush()
	})
	srv := httptest.NewServer(httpmw.RateLimit(p)(mux))
	t.Cleanup(srv.Close)

	for i := 0; i < 3; i++ {
		res, err := http.Get(srv.URL + "/flush")
		require.NoError(t, err)
		br := bufio.NewReader(res.Body)
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "first\n", line)
		read <- struct{}{}
		rest, err := io.ReadAll(br)
		require.NoError(t, err)
		assert.Equal(t, "second\n", string(rest))
		assert.Equal(t, "1", res.Header.Get("X-RateLimit-Remaining"), "streamed successes are not counted")
		_ = res.Body.Close()
	}
	for i := 0; i < 3; i++ {
		res, body := rateLimitGet(t, srv.URL+"/hijack")
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "hijacked", body, "a hijacked connection counts as a success")
	}
}

func TestRateLimitPanicCountsAsFailure(t *testing.T) {
	for _, c := range []struct {
		name      string
		opt       limiter.Option
		afterNext int
	}{
		{"skip successful: a panic is counted", limiter.WithSkipSuccessful(), http.StatusTooManyRequests},
		{"skip failed: a panic is undone", limiter.WithSkipFailed(), http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := rateLimitPolicy(t, "p", 1, c.opt)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
			mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {})
			h := httpmw.RateLimit(p)(mux)
			recovering := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer func() {
					if recover() != nil {
						w.WriteHeader(http.StatusInternalServerError)
					}
				}()
				h.ServeHTTP(w, r)
			})
			srv := httptest.NewServer(recovering)
			t.Cleanup(srv.Close)
			res, _ := rateLimitGet(t, srv.URL+"/panic")
			assert.Equal(t, http.StatusInternalServerError, res.StatusCode)
			res, _ = rateLimitGet(t, srv.URL+"/ok")
			assert.Equal(t, c.afterNext, res.StatusCode)
		})
	}
}

func TestRateLimitWrapsOnlyWhenNeeded(t *testing.T) {
	for _, c := range []struct {
		name    string
		opts    []limiter.Option
		wrapped bool
	}{
		{"counting every request", nil, false},
		{"skip successful", []limiter.Option{limiter.WithSkipSuccessful()}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := rateLimitPolicy(t, "w", 5, c.opts...)
			var sawRecorder bool
			h := httpmw.RateLimit(p)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, sawRecorder = w.(*httptest.ResponseRecorder)
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			h.ServeHTTP(httptest.NewRecorder(), r)
			assert.Equal(t, !c.wrapped, sawRecorder)
		})
	}
}

func TestRateLimitRejectsBadWiring(t *testing.T) {
	assert.Panics(t, func() { httpmw.RateLimit(nil) })
	assert.Panics(t, func() { httpmw.RateLimit(new(limiter.Policy)) })
	p := rateLimitPolicy(t, "p", 1)
	assert.Panics(t, func() { httpmw.RateLimit(p)(nil) })
}

func TestRateLimitWrapperKeepsReadFrom(t *testing.T) {
	p := rateLimitPolicy(t, "copy", 1, limiter.WithSkipSuccessful())
	h := httpmw.RateLimit(p)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok := w.(io.ReaderFrom)
		assert.True(t, ok, "io.Copy keeps its fast path")
		_, err := io.Copy(w, strings.NewReader("payload"))
		assert.NoError(t, err)
	}))
	srv := httptest.NewServer(h) // the server's writer implements io.ReaderFrom
	t.Cleanup(srv.Close)
	for i := 0; i < 2; i++ {
		res, body := rateLimitGet(t, srv.URL)
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "payload", body)
	}
	w := httptest.NewRecorder() // a writer without io.ReaderFrom
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "payload", w.Body.String())
	assert.Equal(t, "0", w.Header().Get("X-RateLimit-Remaining"))
}

// TestRateLimitClientGoneIsNotServed checks that a client cannot escape a
// fail-open limit by going away: net/http cancels the request's context when
// the client closes or half-closes its connection, the store then refuses
// the hit, and the handler must not run uncounted.
func TestRateLimitClientGoneIsNotServed(t *testing.T) {
	t.Run("cancelled request context", func(t *testing.T) {
		p := rateLimitPolicy(t, "post", 1)
		ran := 0
		h := httpmw.RateLimit(p)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran++ }))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for i := 0; i < 5; i++ {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodPost, "/orders", nil))
			assert.Equal(t, http.StatusServiceUnavailable, w.Code, "a client that went away gets a 503, not the handler")
		}
		assert.Zero(t, ran, "the handler never ran")
	})

	t.Run("half-closed connection", func(t *testing.T) {
		p := rateLimitPolicy(t, "post", 1)
		var ran atomic.Int64
		limited := httpmw.RateLimit(p)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran.Add(1) }))
		// Work before the limiter (authentication, a body read) gives the
		// server time to see the client's EOF.
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
				t.Error("the server never noticed the half-close")
			}
			limited.ServeHTTP(w, r)
		})
		srv := httptest.NewServer(slow)
		t.Cleanup(srv.Close)
		for i := 0; i < 3; i++ {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			require.NoError(t, err)
			_, err = io.WriteString(conn, "POST /orders HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n")
			require.NoError(t, err)
			require.NoError(t, conn.(*net.TCPConn).CloseWrite())
			_, _ = io.ReadAll(conn) // the server is done with the request
			_ = conn.Close()
		}
		assert.Zero(t, ran.Load(), "no half-closed request reached the handler")
	})
}
