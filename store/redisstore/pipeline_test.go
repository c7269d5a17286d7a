package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

var pipelined = redisstore.WithPipelining(redisstore.DefaultMaxBatch)

// A Store for an application server that decides for many requests at
// once: concurrent decisions share round trips. (Compiled, not run: it
// needs a Redis server.)
func ExampleWithPipelining() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	st, err := redisstore.New(client,
		redisstore.WithTimeout(50*time.Millisecond),
		redisstore.WithPipelining(redisstore.DefaultMaxBatch))
	if err != nil {
		log.Fatal(err)
	}
	_ = st
}

func TestConformancePipelinedMiniredis(t *testing.T) {
	var (
		mu   sync.Mutex
		mini []*miniredis.Miniredis
	)
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T, now func() time.Time) store.Store {
			m, c := newMiniredis(t)
			mu.Lock()
			mini = append(mini, m)
			mu.Unlock()
			return must(redisstore.New(c, append(clockOption(now), pipelined)...))(t)
		},
		Elapse: func(d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range mini {
				m.FastForward(d)
			}
		},
	})
}

func TestConformancePipelinedRedis(t *testing.T) {
	tg := target{name: "redis", client: redistest.Client(t)}
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T, now func() time.Time) store.Store {
			s, _ := newStore(t, tg, append(clockOption(now), pipelined)...)
			return s
		},
		Elapse: time.Sleep,
	})
}

func TestConformancePipelinedCluster(t *testing.T) {
	tg := target{name: "cluster", client: redistest.ClusterClient(t), cluster: true}
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T, now func() time.Time) store.Store {
			s, _ := newStore(t, tg, append(clockOption(now), pipelined)...)
			return s
		},
		Elapse: time.Sleep,
	})
}

func TestPipeliningOptionIsChecked(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	t.Cleanup(func() { _ = client.Close(); _ = cluster.Close(); _ = ring.Close() })
	type scripterOnly struct{ redis.Scripter }
	for _, tc := range []struct {
		name   string
		client redis.Scripter
		max    int
		ok     bool
	}{
		{"off", client, 0, true},
		{"one call a pipeline", client, 1, true},
		{"client", client, redisstore.DefaultMaxBatch, true},
		{"cluster", cluster, 2, true},
		{"ring", ring, 1000, true},
		{"negative", client, -1, false},
		{"no pipeline", scripterOnly{client}, redisstore.DefaultMaxBatch, false},
		{"no pipeline, off", scripterOnly{client}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := redisstore.New(tc.client, redisstore.WithPipelining(tc.max))
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, store.ErrInvalidArgument)
			}
		})
	}
}

// tripCounter is a go-redis hook counting what a client sends: script
// calls sent by themselves, pipelines and the script calls in them, and
// NOSCRIPT replies within pipelines. It delays each of the next slowSingles
// script calls sent by themselves by 50ms before sending it.
type tripCounter struct {
	singles, pipelines, piped, noscripts atomic.Int64
	slowSingles                          atomic.Int64
}

func (h *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			h.singles.Add(1)
			if h.slowSingles.Add(-1) >= 0 {
				time.Sleep(50 * time.Millisecond)
			}
		}
		return next(ctx, cmd)
	}
}

func (h *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		scripts := 0
		for _, c := range cmds {
			if name := c.Name(); name == "evalsha" || name == "eval" {
				scripts++
			}
		}
		if scripts > 0 { // not a new connection's handshake
			h.pipelines.Add(1)
			h.piped.Add(int64(scripts))
		}
		err := next(ctx, cmds)
		for _, c := range cmds {
			if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
				h.noscripts.Add(1)
			}
		}
		return err
	}
}

// trips returns the round trips counted (script calls sent by themselves
// and pipelines) and resets the counters.
func (h *tripCounter) trips() (singles, pipelines, piped int64) {
	return h.singles.Swap(0), h.pipelines.Swap(0), h.piped.Swap(0)
}

// addHook adds h to a go-redis client.
func addHook(t *testing.T, c redis.UniversalClient, h redis.Hook) {
	t.Helper()
	c.AddHook(h)
}

// concurrently calls fn(0) .. fn(n-1), each in its own goroutine, all
// released at once, and waits for them.
func concurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// 200 concurrent hits on one key admit exactly the limit under every
// algorithm, and go out in far fewer round trips than calls.
func TestPipelinedExactCounting(t *testing.T) {
	const callers, limit = 200, 50
	forEachTarget(t, func(t *testing.T, tg target) {
		h := &tripCounter{}
		addHook(t, tg.client, h)
		s, _ := newStore(t, tg, pipelined)
		require.NoError(t, s.Preload(context.Background()))
		for _, alg := range []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA} {
			t.Run(alg.String(), func(t *testing.T) {
				rule := store.Rule{Name: "exact", Limit: limit, Window: time.Minute, Algorithm: alg}
				h.trips()
				var allowed atomic.Int64
				concurrently(callers, func(int) {
					r, err := s.Hit(context.Background(), "k", rule, 1)
					if assert.NoError(t, err) && r.Allowed {
						allowed.Add(1)
					}
				})
				assert.EqualValues(t, limit, allowed.Load(), "%d concurrent hits with limit %d", callers, limit)
				singles, pipelines, piped := h.trips()
				t.Logf("%d calls: %d sent by themselves, %d pipelines carrying %d", callers, singles, pipelines, piped)
				assert.EqualValues(t, callers, singles+piped, "every call is one script call")
				assert.LessOrEqual(t, singles+pipelines, int64(callers/4), "round trips")
			})
		}
	})
}

// A Ring's pipelines go to each shard concerned.
func TestPipelinedOnRing(t *testing.T) {
	m1, m2 := miniredis.RunT(t), miniredis.RunT(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": m1.Addr(), "b": m2.Addr()}})
	t.Cleanup(func() { _ = ring.Close() })
	h := &tripCounter{}
	ring.AddHook(h)
	s := must(redisstore.New(ring, pipelined))(t)
	require.NoError(t, s.Preload(context.Background()))
	rule := store.Rule{Limit: 5, Window: time.Minute}
	const keys, callers = 20, 200
	var allowed [keys]atomic.Int64
	concurrently(callers, func(i int) {
		r, err := s.Hit(context.Background(), "k"+strconv.Itoa(i%keys), rule, 1)
		if assert.NoError(t, err) && r.Allowed {
			allowed[i%keys].Add(1)
		}
	})
	for k := range allowed {
		assert.EqualValues(t, 5, allowed[k].Load(), "key %d", k)
	}
	assert.NotEmpty(t, m1.Keys(), "keys on shard a")
	assert.NotEmpty(t, m2.Keys(), "keys on shard b")
	singles, pipelines, piped := h.trips()
	assert.EqualValues(t, callers, singles+piped)
	assert.LessOrEqual(t, singles+pipelines, int64(callers/4), "round trips")
}

// infoInt reads an integer field of INFO section from c.
func infoInt(t *testing.T, c *redis.Client, section, field string) int64 {
	t.Helper()
	info := must(c.Info(context.Background(), section).Result())(t)
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return must(strconv.ParseInt(v, 10, 64))(t)
		}
	}
	t.Fatalf("INFO %s has no %s", section, field)
	return 0
}

// The server sees the batching: with pipelining, 200 concurrent decisions
// are 200 EVALSHA in a few read events (total_reads_processed, one per
// request or pipeline that reaches it); without, one read each.
func TestPipelinedRoundTripsOnServer(t *testing.T) {
	const callers = 200
	addr, _ := redistest.StartServer(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	rule := store.Rule{Limit: callers, Window: time.Minute}
	for _, tc := range []struct {
		name string
		opts []redisstore.Option
		want func(t *testing.T, reads int64)
	}{
		{"unpipelined", nil, func(t *testing.T, reads int64) {
			assert.GreaterOrEqual(t, reads, int64(callers), "one read per call")
		}},
		{"pipelined", []redisstore.Option{pipelined}, func(t *testing.T, reads int64) {
			assert.LessOrEqual(t, reads, int64(callers/4), "reads for %d calls", callers)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := must(redisstore.New(c, append(tc.opts, redisstore.WithPrefix(redistest.UniquePrefix("sluicetest")))...))(t)
			require.NoError(t, s.Preload(ctx))
			concurrently(callers, func(int) { // open the connections the run needs
				_, err := s.Hit(ctx, "warm", rule, 1)
				assert.NoError(t, err)
			})
			calls := commandCalls(t, c, "evalsha")
			reads := infoInt(t, c, "stats", "total_reads_processed")
			var allowed atomic.Int64
			concurrently(callers, func(int) {
				r, err := s.Hit(ctx, "k", rule, 1)
				if assert.NoError(t, err) && r.Allowed {
					allowed.Add(1)
				}
			})
			assert.EqualValues(t, callers, allowed.Load())
			reads = infoInt(t, c, "stats", "total_reads_processed") - reads - 1 // this INFO
			calls = commandCalls(t, c, "evalsha") - calls
			t.Logf("%d decisions: %d EVALSHA, %d read events on the server", callers, calls, reads)
			assert.EqualValues(t, callers, calls, "one EVALSHA per decision")
			tc.want(t, reads)
		})
	}
}

// stallProxy relays TCP connections to a Redis server and, once told to
// hold, holds what the clients send with EVALSHA in it until release: a
// network that delays script calls, for real (and lets new connections'
// handshakes through).
type stallProxy struct {
	addr string

	mu      sync.Mutex
	holding bool
	held    []heldChunk
}

type heldChunk struct {
	to   net.Conn
	data []byte
}

// newStallProxy starts a proxy to server, relaying at once until hold is
// called; everything is closed at t's cleanup.
func newStallProxy(t *testing.T, server string) *stallProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &stallProxy{addr: l.Addr().String()}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", server)
			if err != nil {
				_ = down.Close()
				continue
			}
			track(down)
			track(up)
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(down, up) }()
			go func() { defer wg.Done(); p.relay(down, up) }()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

// relay passes what from sends to to, or holds it.
func (p *stallProxy) relay(from, to net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if p.holding && bytes.Contains(bytes.ToLower(buf[:n]), []byte("evalsha")) {
				p.held = append(p.held, heldChunk{to, bytes.Clone(buf[:n])})
			} else {
				_, _ = to.Write(buf[:n])
			}
			p.mu.Unlock()
		}
		if err != nil {
			_ = to.Close()
			return
		}
	}
}

// hold makes the proxy hold the script calls clients send from now on.
func (p *stallProxy) hold() {
	p.mu.Lock()
	p.holding = true
	p.mu.Unlock()
}

// release passes on what the proxy holds; it holds what comes after.
func (p *stallProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.held {
		_, _ = c.to.Write(c.data)
	}
	p.held = nil
}

// open passes on what the proxy holds and stops holding.
func (p *stallProxy) open() {
	p.mu.Lock()
	p.holding = false
	p.mu.Unlock()
	p.release()
}

// heldCalls counts the script calls the proxy holds.
func (p *stallProxy) heldCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.held {
		n += bytes.Count(bytes.ToLower(c.data), []byte("evalsha"))
	}
	return n
}

// waitHeld waits until the proxy holds n script calls.
func (p *stallProxy) waitHeld(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.heldCalls() < n {
		require.True(t, time.Now().Before(deadline), "the proxy holds %d script calls, want %d", p.heldCalls(), n)
		time.Sleep(time.Millisecond)
	}
}

type outcome struct {
	res store.Result
	err error
}

// hitAsync starts a Hit and returns where its outcome will arrive.
func hitAsync(ctx context.Context, s *redisstore.Store, key string, rule store.Rule) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		r, err := s.Hit(ctx, key, rule, 1)
		ch <- outcome{r, err}
	}()
	return ch
}

// receive returns the outcome from ch, failing t after a bound.
func receive(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not return")
		return outcome{}
	}
}

// pending asserts that nothing arrived on ch yet.
func pending(t *testing.T, ch <-chan outcome, what string) {
	t.Helper()
	select {
	case o := <-ch:
		t.Fatalf("%s returned while its pipeline was held: %+v", what, o)
	default:
	}
}

// A caller whose context ends while its call is in a pipeline on the wire
// returns its own context error at once; the pipeline goes on, the other
// calls in it succeed, and the ended calls still count (Redis ran them).
func TestPipelinedCallInFlightEndsAlone(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"miniredis", func(t *testing.T) string { m, _ := newMiniredis(t); return m.Addr() }},
		{"redis", func(t *testing.T) string { return redistest.Addr(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr(t)
			proxy := newStallProxy(t, addr)
			c := redis.NewClient(&redis.Options{Addr: proxy.addr, ReadTimeout: 30 * time.Second, MaxRetries: -1})
			t.Cleanup(func() { _ = c.Close() })
			direct := redis.NewClient(&redis.Options{Addr: addr})
			t.Cleanup(func() { _ = direct.Close() })
			s := must(redisstore.New(c, pipelined, redisstore.WithPrefix(testPrefix(t, direct))))(t)
			bg := context.Background()
			rule := store.Rule{Limit: 10, Window: time.Minute}
			_, err := s.Hit(bg, "warm-up", rule, 1) // a connection, the script cached
			require.NoError(t, err)

			proxy.hold()
			// Two calls in flight, held: the next ones wait for a pipeline.
			first := []<-chan outcome{hitAsync(bg, s, "k", rule), hitAsync(bg, s, "k", rule)}
			proxy.waitHeld(t, 2)
			cancelled, cancel := context.WithCancel(bg)
			defer cancel()
			timed, cancelTimed := context.WithTimeout(bg, 2*time.Second)
			defer cancelTimed()
			calls := []<-chan outcome{
				hitAsync(cancelled, s, "k", rule),
				hitAsync(timed, s, "k", rule),
				hitAsync(bg, s, "k", rule),
				hitAsync(bg, s, "k", rule),
			}
			time.Sleep(100 * time.Millisecond) // the four wait in the queue
			proxy.release()                    // the first two go through ...
			for _, ch := range first {
				require.NoError(t, receive(t, ch).err)
			}
			proxy.waitHeld(t, 4) // ... and the four go out in one pipeline, held

			start := time.Now()
			cancel()
			o := receive(t, calls[0])
			assert.ErrorIs(t, o.err, context.Canceled)
			assert.Less(t, time.Since(start), time.Second, "the cancelled caller returns at once")
			o = receive(t, calls[1])
			assert.ErrorIs(t, o.err, context.DeadlineExceeded)
			pending(t, calls[2], "a neighbour")
			pending(t, calls[3], "a neighbour")

			proxy.release()
			remaining := map[int]bool{}
			for _, ch := range calls[2:] {
				o := receive(t, ch)
				require.NoError(t, o.err, "a neighbour of ended calls")
				assert.True(t, o.res.Allowed)
				remaining[o.res.Remaining] = true
			}
			assert.Len(t, remaining, 2, "two distinct hits")
			proxy.open()
			r, err := s.Hit(bg, "k", rule, 1)
			require.NoError(t, err)
			assert.Equal(t, 10-7, r.Remaining, "all six calls counted, and this one")
		})
	}
}

// A caller whose context ends while its call waits for the next pipeline,
// behind the two calls in flight that a paused server holds, returns its
// own context error at once, and its call is never sent; the other waiting
// calls succeed. A call in flight whose deadline passes fails alone too.
func TestPipelinedQueuedCallEndsAlone(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	admin := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = admin.Close() })
	for _, ctxTimeouts := range []bool{false, true} {
		t.Run("ContextTimeoutEnabled="+strconv.FormatBool(ctxTimeouts), func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: ctxTimeouts})
			t.Cleanup(func() { _ = c.Close() })
			bg := context.Background()
			rule := store.Rule{Limit: 10, Window: time.Minute}
			pause := func() time.Time {
				require.NoError(t, admin.Do(bg, "client", "pause", 1500, "all").Err())
				return time.Now()
			}

			t.Run("queued", func(t *testing.T) {
				s := must(redisstore.New(c, pipelined, redisstore.WithPrefix(redistest.UniquePrefix("sluicetest"))))(t)
				require.NoError(t, s.Preload(bg))
				paused := pause()
				first := []<-chan outcome{hitAsync(bg, s, "k", rule), hitAsync(bg, s, "k", rule)}
				time.Sleep(50 * time.Millisecond) // the first two calls are in flight
				timed, cancelTimed := context.WithTimeout(bg, 100*time.Millisecond)
				defer cancelTimed()
				cancelled, cancel := context.WithCancel(bg)
				ended := []<-chan outcome{hitAsync(timed, s, "k", rule), hitAsync(cancelled, s, "k", rule)}
				others := []<-chan outcome{hitAsync(bg, s, "k", rule), hitAsync(bg, s, "k", rule)}
				time.Sleep(50 * time.Millisecond)
				cancel()
				assert.ErrorIs(t, receive(t, ended[0]).err, context.DeadlineExceeded)
				assert.ErrorIs(t, receive(t, ended[1]).err, context.Canceled)
				assert.Less(t, time.Since(paused), time.Second, "the ended callers returned during the pause")
				for _, ch := range append(first, others...) {
					o := receive(t, ch)
					require.NoError(t, o.err)
					assert.True(t, o.res.Allowed)
				}
				r := must(s.Hit(bg, "k", rule, 1))(t)
				assert.Equal(t, 10-5, r.Remaining, "the ended calls were never sent")
			})

			t.Run("in flight", func(t *testing.T) {
				s := must(redisstore.New(c, pipelined, redisstore.WithPrefix(redistest.UniquePrefix("sluicetest"))))(t)
				require.NoError(t, s.Preload(bg))
				paused := pause()
				timed, cancelTimed := context.WithTimeout(bg, 100*time.Millisecond)
				defer cancelTimed()
				first := hitAsync(timed, s, "k", rule)
				second := hitAsync(bg, s, "k", rule)
				time.Sleep(50 * time.Millisecond) // the first two calls are in flight
				others := []<-chan outcome{second, hitAsync(bg, s, "k", rule), hitAsync(bg, s, "k", rule)}
				assert.ErrorIs(t, receive(t, first).err, context.DeadlineExceeded)
				assert.Less(t, time.Since(paused), time.Second, "the call in flight returned at its deadline")
				for _, ch := range others {
					o := receive(t, ch)
					require.NoError(t, o.err)
					assert.True(t, o.res.Allowed)
				}
			})
		})
	}
}

// On a server that never answers, each caller returns at its own deadline,
// not at the latest deadline of the calls it waits with.
func TestPipelinedHungServerHonoursEachDeadline(t *testing.T) {
	for _, ctxTimeouts := range []bool{false, true} {
		t.Run("ContextTimeoutEnabled="+strconv.FormatBool(ctxTimeouts), func(t *testing.T) {
			addr, received := redistest.HungListener(t)
			s := must(redisstore.New(hungClient(t, addr, ctxTimeouts), pipelined))(t)
			long, cancelLong := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancelLong()
			first := make(chan error, 1)
			go func() {
				_, err := s.Hit(long, "k", rule, 1)
				first <- err
			}()
			for received() == 0 {
				time.Sleep(time.Millisecond)
			}
			start := time.Now()
			errs := make([]error, len(ops))
			concurrently(len(ops), func(i int) {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				var granted bool
				granted, errs[i] = ops[i].call(ctx, s)
				assert.False(t, granted)
			})
			took := time.Since(start)
			for i, err := range errs {
				assert.ErrorIs(t, err, context.DeadlineExceeded, ops[i].name)
			}
			assert.Less(t, took, time.Second, "the short calls returned at their own deadline")
			assert.ErrorIs(t, <-first, context.DeadlineExceeded)
		})
	}
}

// After SCRIPT FLUSH, the calls of the next pipelines meet NOSCRIPT, are
// sent again, and succeed: no caller sees the error, and each call counts
// once.
func TestPipelinedScriptFlushRecovered(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		h := &tripCounter{}
		addHook(t, tg.client, h)
		clock := newFakeClock(time.Minute) // frozen: every algorithm counts exactly
		s, _ := newStore(t, tg, pipelined, redisstore.WithClock(clock.Now))
		ctx := context.Background()
		require.NoError(t, s.Preload(ctx))
		rules := []store.Rule{
			{Name: "log", Limit: 1000, Window: time.Minute},
			{Name: "counter", Limit: 1000, Window: time.Minute, Algorithm: store.SlidingCounter},
			{Name: "gcra", Limit: 1000, Window: time.Minute, Algorithm: store.GCRA},
		}
		const callers = 60
		round := func() {
			concurrently(callers, func(i int) {
				r, err := s.Hit(ctx, "k"+strconv.Itoa(i%7), rules[i%len(rules)], 1)
				if assert.NoError(t, err) {
					assert.True(t, r.Allowed)
				}
			})
		}
		round()
		for range 2 {
			redistest.FlushScripts(t, tg.client)
			// The two calls sent by themselves are slow: the others wait
			// for the next pipeline, which meets the empty script cache.
			h.slowSingles.Store(2)
			h.noscripts.Store(0)
			round()
			assert.Positive(t, h.noscripts.Load(), "NOSCRIPT met in a pipeline")
		}
		for _, rule := range rules {
			for k := range 7 {
				r := must(s.Hit(ctx, "k"+strconv.Itoa(k), rule, 1))(t)
				want := 1000 - 1
				for i := range callers {
					if i%7 == k && rules[i%len(rules)] == rule {
						want -= 3
					}
				}
				assert.Equal(t, want, r.Remaining, "%s k%d: every hit counted once", rule.Name, k)
			}
		}
	})
}

// Pipelined calls that fail as calls to a refused node fail still make a
// Cluster client reload its slot map, and the Store follows the slots to a
// live node.
func TestPipelinedClusterSlotsFollowedAfterRefusedNode(t *testing.T) {
	live := redistest.Addr(t)
	dead := redistest.ClosedAddr(t)
	var owner atomic.Value
	owner.Store(dead)
	var loads atomic.Int64
	client := redis.NewClusterClient(&redis.ClusterOptions{
		ClusterSlots: func(context.Context) ([]redis.ClusterSlot, error) {
			loads.Add(1)
			return []redis.ClusterSlot{{Start: 0, End: 16383, Nodes: []redis.ClusterNode{{Addr: owner.Load().(string)}}}}, nil
		},
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = client.Close() })
	h := &tripCounter{}
	client.AddHook(h)
	st := must(redisstore.New(client, pipelined, redisstore.WithPrefix(testPrefix(t, redistest.Client(t)))))(t)

	hits := func() error {
		errs := make([]error, 16)
		concurrently(len(errs), func(i int) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, errs[i] = st.Hit(ctx, "k"+strconv.Itoa(i), rule, 1)
		})
		return errors.Join(errs...)
	}
	require.Error(t, hits(), "every slot is on a node that refuses connections")

	owner.Store(live)
	moved := time.Now()
	for hits() != nil {
		require.Less(t, time.Since(moved), 5*time.Second, "the Store still fails 5 s after the slots moved")
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(moved)
	_, pipelines, _ := h.trips()
	t.Logf("decisions succeed %v after the slots moved (%d slot map loads, %d pipelines)", took.Round(time.Millisecond), loads.Load(), pipelines)
	assert.Positive(t, pipelines)
	assert.Less(t, took, 2*time.Second)
}

// Failures of pipelined calls ask a reload at most once per ReloadInterval.
func TestPipelinedSlotReloadOnNodeFailure(t *testing.T) {
	c := &reloadCounter{Client: redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1})}
	t.Cleanup(func() { _ = c.Close() })
	st := must(redisstore.New(c, pipelined))(t)
	start := time.Now()
	concurrently(64, func(int) {
		_, err := st.Hit(context.Background(), "k", rule, 1)
		assert.Error(t, err)
	})
	if time.Since(start) < redisstore.ReloadInterval {
		assert.EqualValues(t, 1, c.reloads.Load(), "64 failures within one interval ask one reload")
	} else {
		assert.Positive(t, c.reloads.Load())
	}
}

// On a Cluster each master has its own pipelines: a master that hangs
// delays only the calls for it, while calls for the others go on.
func TestPipelinedHungMasterDelaysOnlyItsCalls(t *testing.T) {
	live, _ := newMiniredis(t)
	hung, _ := redistest.HungListener(t)
	client := redis.NewClusterClient(&redis.ClusterOptions{
		ClusterSlots: func(context.Context) ([]redis.ClusterSlot, error) {
			return []redis.ClusterSlot{
				{Start: 0, End: 8191, Nodes: []redis.ClusterNode{{Addr: live.Addr()}}},
				{Start: 8192, End: 16383, Nodes: []redis.ClusterNode{{Addr: hung}}},
			}, nil
		},
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
	t.Cleanup(func() { _ = client.Close() })
	const prefix = "sluicetest:"
	st := must(redisstore.New(client, pipelined, redisstore.WithPrefix(prefix)))(t)
	ctx := context.Background()

	const keys = 64
	onHung := make([]bool, keys)
	var nHung int
	port := func(addr string) string { // go-redis writes 127.0.0.1:p as :p
		_, p, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		return p
	}
	for i := range keys {
		node := must(client.MasterForKey(ctx, stateKey(prefix, rule.Name, rule.Algorithm, "k"+strconv.Itoa(i))))(t)
		onHung[i] = port(node.Options().Addr) == port(hung)
		if onHung[i] {
			nHung++
		}
	}
	require.True(t, nHung > 0 && nHung < keys, "keys on both masters")

	for round := range 3 {
		errs := make([]error, keys)
		took := make([]time.Duration, keys)
		concurrently(keys, func(i int) {
			ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, errs[i] = st.Hit(ctx, "k"+strconv.Itoa(i), rule, 1)
			took[i] = time.Since(start)
		})
		for i, err := range errs {
			if onHung[i] {
				assert.ErrorIs(t, err, context.DeadlineExceeded, "round %d, key %d on the hung master", round, i)
			} else {
				assert.NoError(t, err, "round %d, key %d on the live master", round, i)
				assert.Less(t, took[i], 250*time.Millisecond, "round %d, key %d on the live master", round, i)
			}
		}
	}
}
