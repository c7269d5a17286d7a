package limiter_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

var t0 = time.Unix(1_900_000_000, 0)

// testClock is a controllable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *testClock { return &testClock{now: t0} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newMem returns a memstore reading time from clk, closed at cleanup.
func newMem(t *testing.T, clk *testClock) *memstore.Store {
	t.Helper()
	s, err := memstore.New(memstore.WithClock(clk.Now))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newLimiter(t *testing.T, name string, limit int, window time.Duration, s store.WindowStore) *limiter.Limiter {
	t.Helper()
	l, err := limiter.New(name, limit, window, s)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestNewValidates(t *testing.T) {
	st := newMem(t, newClock())
	cases := []struct {
		name   string
		lname  string
		limit  int
		window time.Duration
		store  store.WindowStore
	}{
		{"empty name", "", 1, time.Second, st},
		{"name too long", strings.Repeat("a", limiter.MaxNameLen+1), 1, time.Second, st},
		{"control character in name", "a\nb", 1, time.Second, st},
		{"DEL in name", "a\x7fb", 1, time.Second, st},
		{"non-ASCII name", "limité", 1, time.Second, st},
		{"limit above the log's bound", "a", store.MaxLimit + 1, time.Second, st},
		{"zero limit", "a", 0, time.Second, st},
		{"negative limit", "a", -1, time.Second, st},
		{"zero window", "a", 1, 0, st},
		{"window below 1ms", "a", 1, 999 * time.Microsecond, st},
		{"nil store", "a", 1, time.Second, nil},
		{"typed nil memstore", "a", 1, time.Second, (*memstore.Store)(nil)},
		{"typed nil redisstore", "a", 1, time.Second, (*redisstore.Store)(nil)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := limiter.New(c.lname, c.limit, c.window, c.store)
			require.ErrorIs(t, err, limiter.ErrInvalidConfig)
			assert.Nil(t, l)
		})
	}
	t.Run("valid", func(t *testing.T) {
		for _, name := range []string{"Api_v1.burst-2", "api:v1", "GET /items/{id}", `a"b\c`, "a,b;c=d"} {
			l, err := limiter.New(name, 1, time.Millisecond, st)
			require.NoError(t, err, name)
			require.NoError(t, l.Close())
		}
		_, err := limiter.New(strings.Repeat("a", limiter.MaxNameLen), 1, time.Millisecond, st)
		require.NoError(t, err)
	})
}

func TestSameNameOnOneStore(t *testing.T) {
	clk := newClock()
	st := newMem(t, clk)
	first, err := limiter.New("api", 5, time.Minute, st)
	require.NoError(t, err)

	_, err = limiter.New("api", 10, time.Hour, st)
	require.ErrorIs(t, err, limiter.ErrNameInUse)

	other := newLimiter(t, "api", 5, time.Minute, newMem(t, clk))
	assert.Equal(t, "api", other.Name(), "the same name on another store is fine")
	newLimiter(t, "api2", 5, time.Minute, st)

	require.NoError(t, first.Close())
	require.NoError(t, first.Close(), "Close twice")
	second, err := limiter.New("api", 5, time.Minute, st)
	require.NoError(t, err, "Close released the name")
	t.Cleanup(func() { _ = second.Close() })

	_, err = first.Allow(context.Background(), "k")
	require.ErrorIs(t, err, limiter.ErrClosed)
}

// TestDroppedLimiterKeepsItsName checks that only Close gives a name back:
// whether a name is free never depends on the garbage collector.
func TestDroppedLimiterKeepsItsName(t *testing.T) {
	st := newMem(t, newClock())
	_, err := limiter.New("dropped", 5, time.Minute, st)
	require.NoError(t, err)
	runtime.GC()
	runtime.GC()
	_, err = limiter.New("dropped", 5, time.Minute, st)
	require.ErrorIs(t, err, limiter.ErrNameInUse, "a dropped limiter keeps its name until Close")
}

func TestAllow(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, "api", 3, 10*time.Second, newMem(t, clk))
	ctx := context.Background()

	assert.Equal(t, "api", l.Name())
	assert.Equal(t, 3, l.Limit())
	assert.Equal(t, 10*time.Second, l.Window())

	d, err := l.Allow(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, "api", d.Policy)
	assert.Equal(t, 3, d.Limit)
	assert.Equal(t, 10*time.Second, d.Window)
	assert.Equal(t, 1, d.Cost)
	assert.True(t, d.Allowed)
	assert.Equal(t, 2, d.Remaining)
	assert.Zero(t, d.RetryAfter)
	assert.Equal(t, 10*time.Second, d.ResetAfter)

	clk.Advance(4 * time.Second)
	d, err = l.AllowN(ctx, "alice", 2)
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	assert.Equal(t, 0, d.Remaining)
	assert.Equal(t, 6*time.Second, d.ResetAfter)

	d, err = l.Allow(ctx, "alice")
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	assert.Equal(t, 6*time.Second, d.RetryAfter)

	d, err = l.Allow(ctx, "bob")
	require.NoError(t, err)
	assert.True(t, d.Allowed, "keys are independent")
}

func TestAllowRejectsBadInput(t *testing.T) {
	l := newLimiter(t, "api", 3, time.Second, newMem(t, newClock()))
	ctx := context.Background()
	for _, c := range []struct {
		name string
		key  string
		n    int
	}{
		{"empty key", "", 1},
		{"zero cost", "k", 0},
		{"negative cost", "k", -2},
		{"cost above limit", "k", 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := l.AllowN(ctx, c.key, c.n)
			require.ErrorIs(t, err, store.ErrInvalidArgument)
			assert.False(t, d.Allowed)
		})
	}
}

func TestStoreErrorIsReturned(t *testing.T) {
	st := newMem(t, newClock())
	l := newLimiter(t, "api", 3, time.Second, st)
	require.NoError(t, st.Close())
	d, err := l.Allow(context.Background(), "k")
	require.ErrorIs(t, err, store.ErrClosed)
	assert.False(t, d.Allowed, "a store failure is never an allow")
}

func TestUndo(t *testing.T) {
	clk := newClock()
	st := newMem(t, clk)
	l := newLimiter(t, "api", 2, time.Minute, st)
	ctx := context.Background()

	d1, err := l.Allow(ctx, "k")
	require.NoError(t, err)
	d2, err := l.Allow(ctx, "k")
	require.NoError(t, err)
	denied, err := l.Allow(ctx, "k")
	require.NoError(t, err)
	require.False(t, denied.Allowed)

	require.NoError(t, l.Undo(ctx, d1))
	require.NoError(t, l.Undo(ctx, denied), "a denial recorded nothing")
	require.NoError(t, l.Undo(ctx, limiter.Decision{}), "zero decision")
	d, err := l.Allow(ctx, "k")
	require.NoError(t, err)
	assert.True(t, d.Allowed, "Undo gave the hit back")

	other := newLimiter(t, "other", 2, time.Minute, st)
	require.ErrorIs(t, other.Undo(ctx, d2), store.ErrInvalidArgument)

	require.NoError(t, l.Close())
	require.NoError(t, l.Undo(ctx, d2), "Undo works after Close")
}

func TestLimiterOnRedis(t *testing.T) {
	m := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	clk := newClock()
	st, err := redisstore.New(client, redisstore.WithClock(clk.Now))
	require.NoError(t, err)
	l := newLimiter(t, "api", 2, time.Minute, st)
	ctx := context.Background()
	for i, want := range []bool{true, true, false} {
		d, err := l.Allow(ctx, "k")
		require.NoError(t, err)
		assert.Equal(t, want, d.Allowed, "hit %d", i+1)
	}
	_, err = limiter.New("api", 1, time.Second, st)
	require.ErrorIs(t, err, limiter.ErrNameInUse)

	m.Close()
	_, err = l.Allow(ctx, "other") // "k" would be answered by the deny cache
	require.Error(t, err)
	assert.False(t, errors.Is(err, store.ErrInvalidArgument))
}

// localStore is a store that declares itself in-process.
type localStore struct{ store.WindowStore }

func (localStore) InProcess() bool { return true }

func TestInProcessStoresGetNoDeadline(t *testing.T) {
	mem := newMem(t, newClock())
	assert.True(t, limiter.InProcess(mem), "memstore is recognised")
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	rs, err := redisstore.New(client)
	require.NoError(t, err)
	assert.False(t, limiter.InProcess(rs), "redisstore does I/O")
	assert.True(t, limiter.InProcess(localStore{rs}), "a store may declare itself in-process")
	assert.False(t, limiter.InProcess(struct{ store.WindowStore }{mem}), "a wrapper of memstore may block")
}

func TestDecisionJSON(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, "api", 1, 10*time.Second, newMem(t, clk))
	ctx := context.Background()
	_, err := l.Allow(ctx, "k")
	require.NoError(t, err)
	clk.Advance(2 * time.Second)
	d, err := l.Allow(ctx, "k")
	require.NoError(t, err)
	b, err := json.Marshal(d)
	require.NoError(t, err)
	assert.JSONEq(t, `{"policy":"api","limit":1,"window":"10s","cost":1,"allowed":false,
		"remaining":0,"retry_after":"8s","reset_after":"8s"}`, string(b))
}

// WithLimitFunc chooses the limit per request; the headers show it.
func TestLimitFunc(t *testing.T) {
	clk := newClock()
	plan := func(r *http.Request) (int, error) {
		switch r.Header.Get("X-Plan") {
		case "pro":
			return 4, nil
		case "free":
			return 2, nil
		}
		return 0, errors.New("no plan")
	}
	p := mustPolicy(t, "plans", 2, time.Minute, newMem(t, clk), limiter.WithClock(clk.Now),
		limiter.WithKey(limiter.HeaderKey("X-User", nil)), limiter.WithLimitFunc(plan))
	h := chain(ok, p)
	send := func(user, plan string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-User", user)
		r.Header.Set("X-Plan", plan)
		return serve(h, r)
	}
	var free, pro []int
	for range 5 {
		free = append(free, send("f", "free").Code)
		pro = append(pro, send("p", "pro").Code)
	}
	assert.Equal(t, []int{200, 200, 429, 429, 429}, free)
	assert.Equal(t, []int{200, 200, 200, 200, 429}, pro)
	w := send("p2", "pro")
	assert.Equal(t, "4", w.Header().Get("X-RateLimit-Limit"))
	assert.Equal(t, `"plans";q=4;w=60`, w.Header().Get("RateLimit-Policy"))

	// No plan, or a limit out of range: a request error, reported, never a
	// silent allow, under either fail mode.
	w = send("nobody", "")
	assert.Equal(t, 400, w.Code)
	assert.JSONEq(t, `{"error":"invalid request limit"}`, w.Body.String())
	var reported []error
	bad := mustPolicy(t, "badplan", 2, time.Minute, newMem(t, clk),
		limiter.WithLimitFunc(func(*http.Request) (int, error) { return 5000, nil }),
		limiter.WithErrorHandler(func(_ context.Context, _ string, err error) { reported = append(reported, err) }))
	assert.Equal(t, 400, serve(chain(ok, bad), httptest.NewRequest("GET", "/", nil)).Code)
	require.Len(t, reported, 1)
	assert.ErrorIs(t, reported[0], limiter.ErrInvalidLimit)

	// A limit below the policy's fixed cost is a request error too, under
	// the default fail-open: the request is not served unlimited.
	costly := mustPolicy(t, "costly", 10, time.Minute, newMem(t, clk), limiter.WithCost(3),
		limiter.WithLimitFunc(func(*http.Request) (int, error) { return 2, nil }),
		limiter.WithErrorHandler(func(_ context.Context, _ string, err error) { reported = append(reported, err) }))
	w = serve(chain(ok, costly), httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, 400, w.Code)
	assert.JSONEq(t, `{"error":"invalid request limit"}`, w.Body.String())
	require.Len(t, reported, 2)
	assert.ErrorIs(t, reported[1], limiter.ErrInvalidLimit)
}

// New refuses an option that only a Policy uses.
func TestNewRefusesPolicyOptions(t *testing.T) {
	_, err := limiter.New("x", 1, time.Minute, newMem(t, newClock()), limiter.WithKey(limiter.ClientIP))
	require.ErrorIs(t, err, limiter.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "WithKey")
	l, err := limiter.New("y", 1, time.Minute, newMem(t, newClock()), limiter.WithAlgorithm(store.GCRA), limiter.WithBurst(1))
	require.NoError(t, err)
	assert.Equal(t, store.GCRA, l.Algorithm())
	require.NoError(t, l.Close())
}
