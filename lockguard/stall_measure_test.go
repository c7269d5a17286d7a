//go:build stallmeasure

package lockguard_test

// A measurement run by hand, not part of the suite (docs/locks.md, "What a
// Redis stall costs", quotes its figures):
//
//	go test -tags stallmeasure -run TestMeasureStall -v -count=1 ./lockguard/
//
// Each run starts a redis-server of its own (redis-server must be
// installed), with the DEBUG command enabled, so DEBUG SLEEP stalls no other
// test's server. STALL_RUNS sets the number of runs (3); STALL_FAULT=pause
// stalls Redis with CLIENT PAUSE 3000 WRITE instead of DEBUG SLEEP 3;
// STALL_PRELOAD=1 has Redis cache the release script before the stall, as a
// server that has served releases before has (the figures differ).

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/guardtest"
	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/redisstore"
)

const (
	measureRequests = 20
	measureTTL      = 5 * time.Second
	measureSleep    = 3 // seconds of DEBUG SLEEP
)

func measureRuns() int {
	if n, err := strconv.Atoi(os.Getenv("STALL_RUNS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// TestMeasureStall: 20 guarded requests (TTL 5 s, default Locker: 1 s store
// timeout, 2 s release timeout) during DEBUG SLEEP 3.
//
//   - held: all 20 hold their locks when Redis falls asleep; their handlers
//     return 0.1 s, 0.25 s, ... 2.95 s into the sleep.
//   - arriving: the requests arrive 0.1 s, 0.25 s, ... 2.95 s into the sleep
//     (their acquires time out; Obtain releases what they may have taken).
//
// One second after Redis answers again it counts the lock keys still there:
// each stays until its TTL runs out.
func TestMeasureStall(t *testing.T) {
	for _, scenario := range []string{"held", "arriving"} {
		for _, ctxTimeouts := range []bool{false, true} {
			name := fmt.Sprintf("%s/ContextTimeoutEnabled=%v", scenario, ctxTimeouts)
			t.Run(name, func(t *testing.T) {
				var counts []int
				total := 0
				for range measureRuns() {
					n := measureStall(t, scenario, ctxTimeouts)
					counts = append(counts, n)
					total += n
				}
				t.Logf("%s: locks left behind per run of %d: %v (total %d)", name, measureRequests, counts, total)
			})
		}
	}
}

func measureStall(t *testing.T, scenario string, ctxTimeouts bool) int {
	addr, stop := startDebugServer(t)
	defer stop()
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: ctxTimeouts})
	defer client.Close()
	ctl := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: 10 * time.Second})
	defer ctl.Close()
	prefix := redistest.UniquePrefix("stall")
	st, err := redisstore.New(client, redisstore.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("STALL_PRELOAD") != "" {
		// A release of a lock nobody holds loads the release script, as
		// any release before the stall would have.
		_ = st.Release(context.Background(), "warm", "token")
	}
	logs := &countingHandler{counts: map[string]int{}}
	locker, err := lockguard.New(st)
	if err != nil {
		t.Fatal(err)
	}
	guard, err := lockguard.NewGuard("order", locker, func(r *http.Request) (string, error) {
		return r.Header.Get("X-Key"), nil
	}, measureTTL, lockguard.WithLogger(slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}

	keys := make([]string, measureRequests)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	enter := func(i int) (func(), bool) {
		r := httptest.NewRequest("POST", "/orders/x/pay", nil)
		r.Header.Set("X-Key", keys[i])
		_, done, rej := guard.Admit(nil, r, nil)
		if rej != nil {
			return func() {}, false
		}
		return func() { done(0) }, true
	}

	var wg sync.WaitGroup
	releases := make([]func(), measureRequests)
	if scenario == "held" {
		for i := range keys {
			release, ok := enter(i)
			if !ok {
				t.Fatalf("request %d refused before the stall", i)
			}
			releases[i] = release
		}
	}
	slept := make(chan time.Time, 1)
	go func() {
		var err error
		if os.Getenv("STALL_FAULT") == "pause" {
			err = ctl.Do(context.Background(), "CLIENT", "PAUSE", strconv.Itoa(measureSleep*1000), "WRITE").Err()
			time.Sleep(measureSleep * time.Second)
		} else {
			err = ctl.Do(context.Background(), "DEBUG", "SLEEP", strconv.Itoa(measureSleep)).Err()
		}
		if err != nil {
			panic(err)
		}
		slept <- time.Now()
	}()
	time.Sleep(50 * time.Millisecond) // the fault has reached Redis
	start := time.Now()
	admitted := 0
	var mu sync.Mutex
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(start.Add(100*time.Millisecond + time.Duration(i)*150*time.Millisecond)))
			release := releases[i]
			if release == nil {
				var ok bool
				if release, ok = enter(i); !ok {
					return
				}
				mu.Lock()
				admitted++
				mu.Unlock()
			}
			release()
		}()
	}
	wg.Wait()
	woke := <-slept
	// The locks taken before the stall expire 5 s after they were taken,
	// about 2 s after the wake: count them 1 s after it.
	time.Sleep(time.Until(woke.Add(time.Second)))
	left := 0
	ctx := context.Background()
	for _, k := range keys {
		n, err := ctl.Exists(ctx, guardtest.LockKey(prefix, k)).Result()
		if err != nil {
			t.Fatal(err)
		}
		left += int(n)
	}
	t.Logf("admitted during the stall: %d; logged: %v", admitted, logs.snapshot())
	return left
}

// startDebugServer starts a redis-server on a free loopback port with the
// DEBUG command enabled and returns its address and a function that stops it.
func startDebugServer(t *testing.T) (string, func()) {
	addr := redistest.ClosedAddr(t)
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command("redis-server", "--port", port, "--bind", host, "--save", "",
		"--appendonly", "no", "--enable-debug-command", "yes", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Skipf("redis-server: %v", err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		if i == 100 {
			stop()
			t.Fatalf("redis-server on %s did not answer", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr, stop
}
