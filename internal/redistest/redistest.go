// Package redistest gives sluice's tests the Redis servers they run against
// and the faults they inject into them, written once: a throwaway
// redis-server of the test's own (StartServer, StartServerAt), clients of the
// shared server at REDIS_ADDR and the Redis Cluster at REDIS_CLUSTER_ADDRS
// that skip the test when the variable is unset (Client, ClusterClient),
// key prefixes unique to a test, and the listing and deletion of their keys
// on every master (UniquePrefix, Token, ForEachMaster, Keys, DeleteKeys,
// CleanupKeys), and addresses that fail for real (ClosedAddr, HungListener).
//
// It uses the standard library testing package only, so that the non-test
// suites built on it (limitertest, guardtest) stay free of testify.
//
//	func TestSomething(t *testing.T) {
//		c := redistest.Client(t) // skips when REDIS_ADDR is unset
//		prefix := redistest.UniquePrefix("sluicetest")
//		redistest.CleanupKeys(t, c, prefix+"*")
//		// ... use keys under prefix ...
//	}
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bounds on the waits of this package, so that a broken server fails the test
// instead of hanging it.
const (
	// readyTimeout bounds the wait for a started server to answer PING.
	readyTimeout = 10 * time.Second
	// cleanupTimeout bounds DeleteKeys.
	cleanupTimeout = 10 * time.Second
	// startAttempts is how many free ports StartServer tries.
	startAttempts = 5
)

// StartServer starts a throwaway redis-server on a free loopback port, with
// no persistence and its working directory in t.TempDir(), and waits until it
// answers PING. It returns the server's host:port and a function that kills
// the server, as a crash would, and waits for it to exit; the function is
// safe to call more than once and is also called at t's cleanup. StartServer
// skips t when redis-server is not installed and fails t when no server
// answers.
func StartServer(t testing.TB) (addr string, stop func()) {
	t.Helper()
	bin := serverBinary(t)
	for range startAttempts {
		// Another process may take the port between ClosedAddr and the start
		// of the server: the server then exits and another port is tried.
		addr := ClosedAddr(t)
		if stop, ok := startAt(t, bin, addr); ok {
			return addr, stop
		}
	}
	t.Fatalf("redistest: no redis-server answered after %d attempts on free ports", startAttempts)
	return "", nil
}

// StartServerAt starts a throwaway redis-server as StartServer does, on addr
// (a loopback host:port, such as that of a server StartServer started and a
// test stopped, to bring it back empty). It returns the function that kills
// the server. It skips t when redis-server is not installed and fails t when
// the server does not answer on addr.
func StartServerAt(t testing.TB, addr string) (stop func()) {
	t.Helper()
	stop, ok := startAt(t, serverBinary(t), addr)
	if !ok {
		t.Fatalf("redistest: redis-server did not answer on %s", addr)
	}
	return stop
}

// serverBinary returns the path of redis-server or skips t.
func serverBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed: skipping tests that start their own server")
	}
	return bin
}

// startAt starts bin on addr and reports whether it answered PING; the
// returned stop is registered with t.Cleanup either way.
func startAt(t testing.TB, bin, addr string) (stop func(), ok bool) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("redistest: server address %q: %v", addr, err)
	}
	cmd := exec.Command(bin, "--port", port, "--bind", host,
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("redistest: start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
	}
	t.Cleanup(stop)
	if !waitReady(addr, exited) {
		stop()
		return nil, false
	}
	return stop, true
}

// waitReady waits until the server at addr answers PING, for at most
// readyTimeout; it gives up at once when the process exits.
func waitReady(addr string, exited <-chan struct{}) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Addr returns REDIS_ADDR, the host:port of a redis-server shared by the
// tests, or skips t when it is unset.
func Addr(t testing.TB) string {
	t.Helper()
	addr := strings.TrimSpace(os.Getenv("REDIS_ADDR"))
	if addr == "" {
		t.Skip("REDIS_ADDR not set: skipping real-Redis tests")
	}
	return addr
}

// ClusterAddrs returns the seeds listed in REDIS_CLUSTER_ADDRS
// (comma-separated host:port of a Redis Cluster shared by the tests), or
// skips t when it is unset.
func ClusterAddrs(t testing.TB) []string {
	t.Helper()
	var addrs []string
	for _, a := range strings.Split(os.Getenv("REDIS_CLUSTER_ADDRS"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		t.Skip("REDIS_CLUSTER_ADDRS not set: skipping Redis Cluster tests")
	}
	return addrs
}

// Client returns a client of the server at REDIS_ADDR, closed at t's
// cleanup, having checked that the server answers PING. It skips t when
// REDIS_ADDR is unset and fails t when the server does not answer. The
// client has go-redis's default options unless configure, called in order
// with Addr already set, changes them.
func Client(t testing.TB, configure ...func(*redis.Options)) *redis.Client {
	t.Helper()
	opts := &redis.Options{Addr: Addr(t)}
	for _, f := range configure {
		f(opts)
	}
	c := redis.NewClient(opts)
	closeAndPing(t, c, "REDIS_ADDR="+opts.Addr)
	return c
}

// ClusterClient returns a client of the Redis Cluster at
// REDIS_CLUSTER_ADDRS, closed at t's cleanup, having checked that every
// master answers PING. It skips t when REDIS_CLUSTER_ADDRS is unset and fails
// t when a master does not answer. The client has go-redis's default options
// unless configure, called in order with Addrs already set, changes them.
func ClusterClient(t testing.TB, configure ...func(*redis.ClusterOptions)) *redis.ClusterClient {
	t.Helper()
	opts := &redis.ClusterOptions{Addrs: ClusterAddrs(t)}
	for _, f := range configure {
		f(opts)
	}
	c := redis.NewClusterClient(opts)
	closeAndPing(t, c, "REDIS_CLUSTER_ADDRS="+strings.Join(opts.Addrs, ","))
	return c
}

// closeAndPing registers the closing of c with t.Cleanup and fails t, naming
// the server by where, unless every master of c answers PING.
func closeAndPing(t testing.TB, c redis.UniversalClient, where string) {
	t.Helper()
	t.Cleanup(func() { _ = c.Close() })
	if err := ForEachMaster(context.Background(), c, func(ctx context.Context, n *redis.Client) error {
		return n.Ping(ctx).Err()
	}); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

// Token returns 16 random hex digits, for keys, prefixes and hash tags no
// other test uses.
func Token() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand.Read crashes instead)
	return hex.EncodeToString(b[:])
}

// UniquePrefix returns a key prefix unique to this call: name, a colon, a
// Token and a colon, such as "sluicetest:0123456789abcdef:".
func UniquePrefix(name string) string {
	return name + ":" + Token() + ":"
}

// ForEachMaster calls fn on every server of client that holds keys: each
// master of a *redis.ClusterClient (concurrently), each shard of a
// *redis.Ring (concurrently), or the one server of a *redis.Client. It
// returns the first error, or an error for any other client type.
func ForEachMaster(ctx context.Context, client redis.UniversalClient, fn func(ctx context.Context, node *redis.Client) error) error {
	switch c := client.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Ring:
		return c.ForEachShard(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	}
	return fmt.Errorf("redistest: unsupported client type %T", client)
}

// Keys lists, with SCAN, the keys matching pattern (a SCAN MATCH glob such as
// prefix+"*") on every server of client, in no particular order.
func Keys(ctx context.Context, client redis.UniversalClient, pattern string) ([]string, error) {
	var (
		mu   sync.Mutex // ForEachMaster calls fn concurrently
		keys []string
	)
	err := ForEachMaster(ctx, client, func(ctx context.Context, node *redis.Client) error {
		k, err := nodeKeys(ctx, node, pattern)
		mu.Lock()
		keys = append(keys, k...)
		mu.Unlock()
		return err
	})
	return keys, err
}

// nodeKeys lists the keys matching pattern on one server.
func nodeKeys(ctx context.Context, node *redis.Client, pattern string) ([]string, error) {
	var keys []string
	iter := node.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// DeleteKeys deletes every key matching pattern (a SCAN MATCH glob such as
// prefix+"*") on every server of client, within 10 seconds. It returns the
// first error, for instance when the server is stopped or the client closed.
func DeleteKeys(client redis.UniversalClient, pattern string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	return ForEachMaster(ctx, client, func(ctx context.Context, node *redis.Client) error {
		keys, err := nodeKeys(ctx, node, pattern)
		if err != nil || len(keys) == 0 {
			return err
		}
		// One DEL per key: the keys of a Cluster master live in many slots.
		_, err = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Del(ctx, k)
			}
			return nil
		})
		return err
	})
}

// CleanupKeys registers with t.Cleanup the deletion of every key matching
// pattern on every server of client (DeleteKeys); a failure fails t. Register
// it after the cleanup that closes client, so that it runs first.
func CleanupKeys(t testing.TB, client redis.UniversalClient, pattern string) {
	t.Helper()
	t.Cleanup(func() {
		if err := DeleteKeys(client, pattern); err != nil {
			t.Errorf("cleanup of keys %s: %v", pattern, err)
		}
	})
}

// ClosedAddr returns a loopback host:port on which nothing listens any more,
// so that a connection to it is refused: a port the system handed out and
// that was closed at once.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("redistest: close listener: %v", err)
	}
	return addr
}

// HungListener starts a loopback TCP listener that accepts connections,
// reads what clients send and never answers, as a hung Redis would; the
// listener and its connections are closed at t's cleanup. It returns the
// listener's host:port and a function reporting how many bytes it has
// received in all.
func HungListener(t testing.TB) (addr string, received func() int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: listen: %v", err)
	}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
		n      atomic.Int64
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				_ = c.Close()
				return
			}
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 4096)
				for {
					k, err := c.Read(buf)
					n.Add(int64(k))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String(), n.Load
}
