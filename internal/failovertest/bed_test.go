package failovertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/lua"
)

// The variables scripts/failover-bed.sh exports.
const (
	envCluster   = "FAILOVER_CLUSTER_ADDRS"
	envSentinels = "FAILOVER_SENTINEL_ADDRS"
	envMaster    = "FAILOVER_SENTINEL_MASTER"
)

// quietLogger discards go-redis's log lines (a failed dial per attempt while
// a master is down would fill the test output).
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}

// list splits a comma-separated list.
func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// clusterBed returns the addresses of the bed's Cluster nodes, or skips t.
func clusterBed(t *testing.T) []string {
	t.Helper()
	addrs := list(os.Getenv(envCluster))
	if len(addrs) == 0 {
		t.Skip(envCluster + " is unset: the failover scenarios run under scripts/failover-bed.sh (make test-failover)")
	}
	return addrs
}

// sentinelBed returns the bed's Sentinel addresses and master name, or skips
// t.
func sentinelBed(t *testing.T) (sentinels []string, master string) {
	t.Helper()
	sentinels, master = list(os.Getenv(envSentinels)), os.Getenv(envMaster)
	if len(sentinels) == 0 || master == "" {
		t.Skip(envSentinels + " or " + envMaster + " is unset: the failover scenarios run under scripts/failover-bed.sh (make test-failover)")
	}
	return sentinels, master
}

// server is one redis-server process of the bed.
type server struct {
	addr   string
	pid    int
	config string // the config file it was started with
}

// serverAt asks the server at addr for its pid and config file.
func serverAt(t *testing.T, addr string) server {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		t.Fatalf("INFO server of %s: %v", addr, err)
	}
	s := server{addr: addr}
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "process_id":
			s.pid, _ = strconv.Atoi(v)
		case "config_file":
			s.config = v
		}
	}
	if s.pid == 0 || s.config == "" {
		t.Fatalf("INFO server of %s names no process_id or config_file", addr)
	}
	return s
}

// kill kills the server with SIGKILL, as a crash would, and waits until its
// port refuses connections.
func (s server) kill(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(s.pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d (%s): %v", s.pid, s.addr, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, 100*time.Millisecond)
		if err != nil {
			return
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections 5 s after kill -9", s.addr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// signal sends sig (SIGSTOP, SIGCONT) to the server.
func (s server) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(s.pid, sig); err != nil {
		t.Fatalf("kill -%v %d (%s): %v", sig, s.pid, s.addr, err)
	}
}

// restart starts the server again from its config file, with args added,
// and waits until it answers PING. The bed's teardown stops it.
func (s server) restart(t *testing.T, args ...string) server {
	t.Helper()
	cmd := exec.Command("redis-server", append([]string{s.config}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("restart %s: %v", s.addr, err)
	}
	go func() { _ = cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer 10 s after its restart", s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return serverAt(t, s.addr)
}

// eventually calls cond every 50 ms until it returns nil, and fails t with
// its last error after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// infoField returns field of an INFO section of the server at addr.
func infoField(ctx context.Context, c *redis.Client, section, field string) (string, error) {
	info, err := c.Info(ctx, section).Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == field {
			return v, nil
		}
	}
	return "", fmt.Errorf("INFO %s has no %s", section, field)
}

// watchMaster polls the server at addr every 5 ms until it reports the role
// master, and sends the time it first did on the returned channel; it gives
// up after timeout (closing the channel without a value).
func watchMaster(addr string, timeout time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		defer close(ch)
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond,
			ReadTimeout: 100 * time.Millisecond, PoolSize: 1})
		defer c.Close()
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			role, err := c.Do(ctx, "ROLE").Slice()
			cancel()
			if err == nil && len(role) > 0 && role[0] == "master" {
				ch <- time.Now()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return ch
}

// await receives from a channel of watchMaster, failing t if it closed
// without a time.
func await(t *testing.T, ch <-chan time.Time, what string) time.Time {
	t.Helper()
	at, ok := <-ch
	if !ok {
		t.Fatalf("%s did not happen", what)
	}
	return at
}

// --- Cluster ---------------------------------------------------------------

// shard is one master of the Cluster and its replicas.
type shard struct {
	master   string
	replicas []string
	slots    [][2]int64
}

// clusterShards reads the slot map from the first node of addrs that
// answers.
func clusterShards(ctx context.Context, addrs []string) ([]*shard, error) {
	var lastErr error
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		slots, err := c.ClusterSlots(ctx).Result()
		_ = c.Close()
		if err != nil {
			lastErr = err
			continue
		}
		byMaster := map[string]*shard{}
		var out []*shard
		for _, s := range slots {
			if len(s.Nodes) == 0 {
				continue
			}
			sh := byMaster[s.Nodes[0].Addr]
			if sh == nil {
				sh = &shard{master: s.Nodes[0].Addr}
				for _, n := range s.Nodes[1:] {
					sh.replicas = append(sh.replicas, n.Addr)
				}
				byMaster[sh.master] = sh
				out = append(out, sh)
			}
			sh.slots = append(sh.slots, [2]int64{int64(s.Start), int64(s.End)})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].master < out[j].master })
		return out, nil
	}
	return nil, lastErr
}

// waitClusterHealthy waits until every node answers with cluster_state:ok
// and the slot map shows 3 masters, each with a replica whose link is up.
func waitClusterHealthy(t *testing.T, addrs []string) []*shard {
	t.Helper()
	var shards []*shard
	eventually(t, 60*time.Second, "Cluster of 3 masters with a replica each", func(ctx context.Context) error {
		for _, addr := range addrs {
			c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = fmt.Errorf("%s: cluster_state not ok", addr)
			}
			if err == nil {
				var role string
				if role, err = infoField(ctx, c, "replication", "role"); err == nil && role == "slave" {
					var link string
					if link, err = infoField(ctx, c, "replication", "master_link_status"); err == nil && link != "up" {
						err = fmt.Errorf("%s: replica link %s", addr, link)
					}
				}
			}
			_ = c.Close()
			if err != nil {
				return err
			}
		}
		var err error
		if shards, err = clusterShards(ctx, addrs); err != nil {
			return err
		}
		if len(shards) != 3 {
			return fmt.Errorf("%d masters", len(shards))
		}
		for _, sh := range shards {
			if len(sh.replicas) == 0 {
				return fmt.Errorf("master %s has no replica", sh.master)
			}
		}
		return nil
	})
	return shards
}

// tag returns the Cluster hash tag of a sluice key: redisstore names a key's
// Redis keys by the first 16 bytes of its SHA-256 digest, in hex, in braces.
func tag(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// slotOf returns the Cluster slot of a sluice key: that of its hash tag.
func slotOf(key string) int64 { return int64(lua.Slot("{" + tag(key) + "}")) }

// owner returns the shard whose slots hold slot.
func owner(shards []*shard, slot int64) *shard {
	for _, sh := range shards {
		for _, r := range sh.slots {
			if slot >= r[0] && slot <= r[1] {
				return sh
			}
		}
	}
	return nil
}

// keysOn returns n keys made of prefix and a number whose store keys
// (storeKey(key)) have their slots on sh, and n keys whose store keys do
// not.
func keysOn(t *testing.T, shards []*shard, sh *shard, prefix string, n int, storeKey func(string) string) (on, off []string) {
	t.Helper()
	for i := 0; len(on) < n || len(off) < n; i++ {
		key := prefix + strconv.Itoa(i)
		if owner(shards, slotOf(storeKey(key))) == sh {
			if len(on) < n {
				on = append(on, key)
			}
		} else if len(off) < n {
			off = append(off, key)
		}
		if i > 100*n {
			t.Fatalf("no %d keys on shard %s", n, sh.master)
		}
	}
	return on, off
}

// --- Sentinel --------------------------------------------------------------

// sentinelView is what the Sentinels agree on.
type sentinelView struct {
	master  string
	replica string
}

// waitSentinelHealthy waits until every Sentinel names the same master, sees
// the 2 other Sentinels and a replica that is up and linked, and the replica
// reports its link to the master up.
func waitSentinelHealthy(t *testing.T, sentinels []string, name string) sentinelView {
	t.Helper()
	var view sentinelView
	eventually(t, 60*time.Second, "Sentinel group with a master and a replica", func(ctx context.Context) error {
		var first sentinelView
		for i, addr := range sentinels {
			s := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1})
			v, err := sentinelState(ctx, s, name)
			_ = s.Close()
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", addr, err)
			}
			if i == 0 {
				first = v
			} else if v != first {
				return fmt.Errorf("sentinels disagree: %+v and %+v", first, v)
			}
		}
		c := redis.NewClient(&redis.Options{Addr: first.replica, MaxRetries: -1})
		defer c.Close()
		if link, err := infoField(ctx, c, "replication", "master_link_status"); err != nil || link != "up" {
			return fmt.Errorf("replica %s link %q: %v", first.replica, link, err)
		}
		view = first
		return nil
	})
	return view
}

// sentinelState reads one Sentinel's view of the master name.
func sentinelState(ctx context.Context, s *redis.SentinelClient, name string) (sentinelView, error) {
	m, err := s.Master(ctx, name).Result()
	if err != nil {
		return sentinelView{}, err
	}
	if m["flags"] != "master" || m["num-other-sentinels"] != "2" {
		return sentinelView{}, fmt.Errorf("master flags %q, %s other sentinels", m["flags"], m["num-other-sentinels"])
	}
	view := sentinelView{master: net.JoinHostPort(m["ip"], m["port"])}
	replicas, err := s.Replicas(ctx, name).Result()
	if err != nil {
		return sentinelView{}, err
	}
	for _, r := range replicas {
		if r["flags"] == "slave" && r["master-link-status"] == "ok" {
			if view.replica != "" {
				return sentinelView{}, errors.New("more than one replica")
			}
			view.replica = net.JoinHostPort(r["ip"], r["port"])
		}
	}
	if view.replica == "" {
		return sentinelView{}, errors.New("no replica up and linked")
	}
	return view, nil
}

// watchSwitch subscribes to +switch-master on a Sentinel and sends the time
// of the first announcement for name on the returned channel; stop ends the
// subscription.
func watchSwitch(t *testing.T, sentinel, name string) (ch <-chan time.Time, stop func()) {
	t.Helper()
	s := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
	sub := s.Subscribe(context.Background(), "+switch-master")
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatalf("subscribe to +switch-master on %s: %v", sentinel, err)
	}
	out := make(chan time.Time, 1)
	go func() {
		defer close(out)
		for msg := range sub.Channel() {
			if strings.HasPrefix(msg.Payload, name+" ") {
				out <- time.Now()
				return
			}
		}
	}()
	return out, func() { _ = sub.Close(); _ = s.Close() }
}

// switchWatch follows the +switch-master announcements of every Sentinel.
type switchWatch struct {
	chans []<-chan time.Time
}

// watchSwitches subscribes to +switch-master on every Sentinel, until t ends.
func watchSwitches(t *testing.T, sentinels []string, name string) *switchWatch {
	t.Helper()
	w := &switchWatch{}
	for _, addr := range sentinels {
		ch, stop := watchSwitch(t, addr, name)
		t.Cleanup(stop)
		w.chans = append(w.chans, ch)
	}
	return w
}

// await returns when the first and the last Sentinel announced the new
// master, failing t if one did not within timeout.
func (w *switchWatch) await(t *testing.T, timeout time.Duration) (first, last time.Time) {
	t.Helper()
	deadline := time.After(timeout)
	for _, ch := range w.chans {
		select {
		case at, ok := <-ch:
			if !ok {
				t.Fatal("+switch-master subscription ended")
			}
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		case <-deadline:
			t.Fatalf("not every Sentinel announced +switch-master within %v", timeout)
		}
	}
	return first, last
}
