package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const startLinePrefix = "sluice shop example: store=miniredis (in-process; set REDIS_URL to use Redis) listening on "

// readLine reads one line from r, failing the test if none comes within a
// generous bound (a start-up that hangs).
func readLine(t *testing.T, r io.Reader) string {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		return s
	case <-time.After(60 * time.Second):
		t.Fatal("no start-up line")
		return ""
	}
}

// listenAddr returns the address the start-up line names.
func listenAddr(t *testing.T, line string) string {
	t.Helper()
	require.True(t, strings.HasPrefix(line, startLinePrefix), "start-up line %q", line)
	addr := strings.TrimSpace(strings.TrimPrefix(line, startLinePrefix))
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, "start-up line %q", line)
	require.NotEqual(t, "0", port, "the line names the bound port")
	return addr
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, env(map[string]string{"ADDR": "127.0.0.1:0"}), pw) }()

	base := "http://" + listenAddr(t, readLine(t, pr))
	r := do(t, http.MethodGet, base+"/healthz", "", "")
	assert.Equal(t, http.StatusOK, r.status)
	r = do(t, http.MethodGet, base+"/stock", "", "")
	assert.JSONEq(t, `{"stock":{"apple":10,"fig":2,"pear":5}}`, string(r.body))
	r = do(t, http.MethodPost, base+"/carts/c1/checkout", "u1", `{"items":{"apple":2}}`)
	assert.Equal(t, http.StatusOK, r.status, "body %s", r.body)

	cancel()
	require.NoError(t, <-done, "graceful shutdown")
}

// CHECKOUT_DELAY holds the cart's lock for a while: of two checkouts of one
// cart, one waits out the delay and the other gets 409 meanwhile.
func TestRunCheckoutDelay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, env(map[string]string{"ADDR": "127.0.0.1:0", "CHECKOUT_DELAY": "1h"}), pw)
	}()
	base := "http://" + listenAddr(t, readLine(t, pr))

	type result struct {
		r   reply
		err error
	}
	clients, abandon := context.WithCancel(context.Background())
	results := make(chan result, 2)
	for _, user := range []string{"u1", "u2"} {
		go func() {
			r, err := doErr(clients, http.MethodPost, base+"/carts/c1/checkout", user, `{"items":{"apple":2}}`)
			results <- result{r, err}
		}()
	}
	first := <-results // the one that did not get the lock
	require.NoError(t, first.err)
	require.Equal(t, http.StatusConflict, first.r.status, "body %s", first.r.body)
	assert.Equal(t, "resource is locked", first.r.errorMsg(t))

	abandon() // the other one's client gives up; its handler ends
	require.ErrorIs(t, (<-results).err, context.Canceled)
	cancel()
	require.NoError(t, <-done)
}

func TestRunRejectsBadConfig(t *testing.T) {
	// A port nothing listens on: take a free one and close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())

	tests := []struct {
		name  string
		vars  map[string]string
		error string
	}{
		{"REDIS_URL not a URL", map[string]string{"REDIS_URL": "http://localhost"}, "REDIS_URL: want redis://host:port/db"},
		{"REDIS_URL unreachable", map[string]string{"REDIS_URL": "redis://" + closed + "/0"}, "ping redis (" + closed + " db 0)"},
		{"CHECKOUT_DELAY not a duration", map[string]string{"CHECKOUT_DELAY": "soon"}, `CHECKOUT_DELAY "soon": want a duration such as 2s`},
		{"CHECKOUT_DELAY negative", map[string]string{"CHECKOUT_DELAY": "-1s"}, `CHECKOUT_DELAY "-1s": want a duration such as 2s`},
		{"ADDR invalid", map[string]string{"ADDR": "256.0.0.1:0"}, "listen tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := run(context.Background(), env(tt.vars), &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.error)
			assert.Empty(t, out.String(), "no start-up line when start-up fails")
		})
	}
}

// The built binary starts on a bare machine: no REDIS_URL, an in-process
// miniredis, one start-up line, and a graceful exit on SIGINT.
func TestBinaryStartsWithMiniredis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary: skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "shop")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	cmd := exec.Command(bin)
	cmd.Env = []string{"ADDR=127.0.0.1:0"} // and no REDIS_URL / REDIS_CLUSTER
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	base := "http://" + listenAddr(t, readLine(t, stdout))
	r := do(t, http.MethodGet, base+"/healthz", "", "")
	assert.Equal(t, http.StatusOK, r.status)
	r = do(t, http.MethodGet, base+"/stock", "", "")
	assert.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"stock":{"apple":10,"fig":2,"pear":5}}`, string(r.body))

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		require.NoError(t, err, "exit after SIGINT; stderr: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGINT; stderr: %s", stderr.String())
	}
	assert.Empty(t, stderr.String())
}
