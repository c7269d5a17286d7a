package lockguard_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/lockguard/guardtest"
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
