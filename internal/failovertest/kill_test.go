package failovertest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store/redisstore"
)

// recoveryGoal is how soon every decision must succeed again once every
// client can know the new master: after the promotion in a Cluster, after
// the last Sentinel announced it (+switch-master) through Sentinel.
const recoveryGoal = 2 * time.Second

// Figures of the scenarios under steady load.
const (
	instances  = 4
	rateLimit  = 150             // per key and window, for both rate limits
	rateWindow = 5 * time.Minute // longer than a run: no hit leaves the window
	pause      = 4 * time.Millisecond
	warmUp     = 1500 * time.Millisecond
	maxRun     = 20 * time.Second // after the promotion, at most
)

// killCase is a master to kill under load, and how to see the failover.
type killCase struct {
	topology  string                          // "cluster" or "sentinel"
	newClient func() redis.UniversalClient    // one per instance
	victim    server                          // the master to kill
	heir      string                          // the replica that takes over
	onVictim  func(key string) bool           // whether a key lives on the victim
	keys      map[route][]string              // the keys each route's workers use
	announced *switchWatch                    // the Sentinels' +switch-master, or nil
	bare      func(ctx context.Context) error // a plain go-redis call on the victim's slots, or nil
	restore   func(t *testing.T)              // brings the killed node back as a replica
}

// Killing a Cluster shard's master under load from 4 instances: decisions on
// the other shards go on, those on the dead master's slots fail by their
// policies' fail modes until a replica is promoted, and within recoveryGoal
// of the promotion every decision succeeds again, without restarting any
// instance. The promoted replica starts with an empty script cache, and a
// SCRIPT FLUSH on it costs nothing.
func TestClusterMasterKill(t *testing.T) {
	addrs := clusterBed(t)
	shards := waitClusterHealthy(t, addrs)
	sh := shards[0]
	victim := serverAt(t, sh.master)

	run := redistest.Token()[:8]
	// Where a rate key's counters live depends on how the store names
	// them; a lock's store key is its name (lockKey).
	var rate []string
	for i := range 12 {
		rate = append(rate, fmt.Sprintf("k%s:%d", run, i))
	}
	lockOn, lockOff := keysOn(t, shards, sh, "r"+run+":", 3, lockKey)
	on := map[string]bool{}
	for _, k := range lockOn {
		on[k] = true
	}
	bareKey := "{" + tag(lockKey(lockOn[0])) + "}:bare"

	newClient := func() redis.UniversalClient {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	}
	bare := newClient()
	t.Cleanup(func() { _ = bare.Close() })
	runKill(t, killCase{
		topology:  "cluster",
		newClient: newClient,
		victim:    victim,
		heir:      sh.replicas[0],
		onVictim:  func(k string) bool { return on[k] },
		keys: map[route][]string{
			openRoute:   rate,
			closedRoute: rate,
			lockRoute:   append(lockOn, lockOff...),
		},
		bare: func(ctx context.Context) error { return bare.Incr(ctx, bareKey).Err() },
		restore: func(t *testing.T) {
			victim.restart(t)
			waitClusterHealthy(t, addrs)
		},
	})
}

// Killing the master of a Sentinel group under load from 4 instances, each
// with go-redis's failover client: every decision fails by its policy's
// fail mode until the Sentinels promote the replica and announce it
// (+switch-master), and within recoveryGoal of the announcement every
// decision succeeds again.
func TestSentinelMasterKill(t *testing.T) {
	sentinels, name := sentinelBed(t)
	view := waitSentinelHealthy(t, sentinels, name)
	victim := serverAt(t, view.master)
	announced := watchSwitches(t, sentinels, name)

	run := redistest.Token()[:8]
	var rate, locks []string
	for i := range 12 {
		rate = append(rate, fmt.Sprintf("k%s:%d", run, i))
	}
	for i := range 6 {
		locks = append(locks, fmt.Sprintf("r%s:%d", run, i))
	}
	runKill(t, killCase{
		topology: "sentinel",
		newClient: func() redis.UniversalClient {
			return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: name, SentinelAddrs: sentinels, ContextTimeoutEnabled: true})
		},
		victim:    victim,
		heir:      view.replica,
		onVictim:  func(string) bool { return true },
		keys:      map[route][]string{openRoute: rate, closedRoute: rate, lockRoute: locks},
		announced: announced,
		restore: func(t *testing.T) {
			host, port, _ := net.SplitHostPort(view.replica)
			victim.restart(t, "--replicaof", host, port)
			waitSentinelHealthy(t, sentinels, name)
		},
	})
}

// bareProbe calls fn every 20 ms, from before the kill until it succeeds
// after the promotion or until stop, and reports when it last failed.
type bareProbe struct {
	lastErr time.Time
	lastOK  time.Time
	done    chan struct{}
}

func startBare(fn func(ctx context.Context) error, promoted <-chan struct{}, stop <-chan struct{}) *bareProbe {
	b := &bareProbe{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		isPromoted := false
		for {
			select {
			case <-stop:
				return
			case <-promoted:
				isPromoted, promoted = true, nil
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), decisionTimeout)
			err := fn(ctx)
			cancel()
			if err != nil {
				b.lastErr = time.Now()
			} else {
				b.lastOK = time.Now()
				if isPromoted && !b.lastErr.IsZero() {
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return b
}

func runKill(t *testing.T, kc killCase) {
	fences := &fenceLog{}
	prefix := "sluicefo:" + redistest.Token()[:8] + ":"
	apps := make([]*app, instances)
	for i := range apps {
		apps[i] = newApp(t, fmt.Sprintf("app%d", i), kc.newClient(), appOptions{
			limit: rateLimit, window: rateWindow, hold: 2 * time.Millisecond, fences: fences,
			storeOpts: []redisstore.Option{redisstore.WithPrefix(prefix)},
		})
	}
	heir := redis.NewClient(&redis.Options{Addr: kc.heir, MaxRetries: -1})
	t.Cleanup(func() { _ = heir.Close() })

	l := startLoad(apps, kc.keys, pause)
	stopped := false
	defer func() {
		if !stopped {
			l.finish()
		}
	}()
	time.Sleep(warmUp)

	// The replica that takes over starts without sluice's scripts.
	if err := heir.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH on the replica %s: %v", kc.heir, err)
	}
	promotedCh := watchMaster(kc.heir, 60*time.Second)
	promotedSig, stopBare := make(chan struct{}), make(chan struct{})
	var bare *bareProbe
	if kc.bare != nil {
		bare = startBare(kc.bare, promotedSig, stopBare)
	}
	killAt := time.Now()
	kc.victim.kill(t)
	promoAt := await(t, promotedCh, "promotion of "+kc.heir)
	close(promotedSig)
	// When every client can learn of the new master: at once in a Cluster
	// (any node names it); through Sentinel, once the Sentinel a client
	// asks knows it (its +switch-master), which each Sentinel learns from
	// the leader within its hello period of 2 s.
	visibleAt, firstAnnounced := promoAt, time.Time{}
	if kc.announced != nil {
		firstAnnounced, visibleAt = kc.announced.await(t, 30*time.Second)
	}

	// Wait until every request for a second has succeeded, then empty the
	// new master's script cache and wait again; then go on until every rate
	// key has been denied since the promotion (so that admissions in excess
	// of the limit show) or maxRun has passed.
	quiet := func(d time.Duration) bool {
		outs := l.snapshot()
		cut := time.Now().Add(-d)
		for _, o := range outs {
			if o.kind.isError() && o.start.Add(o.took).After(cut) {
				return false
			}
		}
		return true
	}
	saturated := func() bool {
		seen := map[string]bool{}
		for _, o := range l.snapshot() {
			if o.kind == denied && o.start.After(promoAt) {
				seen[string(o.route)+o.key] = true
			}
		}
		for _, r := range []route{openRoute, closedRoute} {
			for _, k := range kc.keys[r] {
				if !seen[string(r)+k] {
					return false
				}
			}
		}
		return true
	}
	limit := promoAt.Add(maxRun)
	for !(time.Since(promoAt) > time.Second && quiet(time.Second)) && time.Now().Before(limit) {
		time.Sleep(50 * time.Millisecond)
	}
	flushAt := time.Now()
	if err := heir.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH on the new master %s: %v", kc.heir, err)
	}
	time.Sleep(time.Second)
	for !saturated() && time.Now().Before(limit) {
		time.Sleep(100 * time.Millisecond)
	}
	outs := l.finish()
	stopped = true

	var bareRecovery string
	if bare != nil {
		select {
		case <-bare.done:
		case <-time.After(time.Until(promoAt.Add(12 * time.Second))):
		}
		close(stopBare)
		<-bare.done
		switch {
		case bare.lastErr.IsZero():
			bareRecovery = "no error"
		case bare.lastOK.After(bare.lastErr):
			bareRecovery = sec(bare.lastErr.Sub(promoAt)) + " after the promotion"
		default:
			bareRecovery = "not within " + sec(time.Since(promoAt)) + " of the promotion"
		}
	}
	kc.restore(t)

	report(t, kc, outs, fences, killAt, promoAt, firstAnnounced, visibleAt, flushAt, bareRecovery)
}

// report states and checks what a run cost.
func report(t *testing.T, kc killCase, outs []outcome, fences *fenceLog, killAt, promoAt, firstAnnounced, visibleAt, flushAt time.Time, bareRecovery string) {
	t.Helper()
	t.Logf("%s: %d requests from %d instances; kill -9 of %s; %s promoted %s after the kill", kc.topology,
		len(outs), instances, kc.victim.addr, kc.heir, sec(promoAt.Sub(killAt)))
	if !firstAnnounced.IsZero() {
		t.Logf("%s: +switch-master announced by the first Sentinel %s after the kill, by the last %s after it",
			kc.topology, sec(firstAnnounced.Sub(killAt)), sec(visibleAt.Sub(killAt)))
	}

	// Errors: none before the kill; after it, by fail mode, until the last.
	var firstErr, lastErr, lastErrStart time.Time
	appLastErr := make([]time.Time, instances)
	for _, o := range outs {
		if !o.kind.isError() {
			continue
		}
		if o.start.Add(o.took).Before(killAt) {
			t.Errorf("%s %s failed before the kill (%s)", o.route, o.key, o.kind)
		}
		end := o.start.Add(o.took)
		if firstErr.IsZero() {
			firstErr = end
		}
		if end.After(lastErr) {
			lastErr = end
		}
		if o.start.After(lastErrStart) {
			lastErrStart = o.start
		}
		if end.After(appLastErr[o.app]) {
			appLastErr[o.app] = end
		}
	}
	for _, r := range []route{openRoute, closedRoute, lockRoute} {
		all := counts(outs, func(o outcome) bool { return o.route == r && o.kind.isError() })
		if r == lockRoute && kc.topology == "cluster" {
			on := counts(outs, func(o outcome) bool { return o.route == r && o.kind.isError() && kc.onVictim(o.key) })
			off := counts(outs, func(o outcome) bool { return o.route == r && o.kind.isError() && !kc.onVictim(o.key) })
			t.Logf("%s: errors on %-6s route: %s (keys on the dead master: %s; other keys: %s)", kc.topology, r,
				formatCounts(all), formatCounts(on), formatCounts(off))
		} else {
			t.Logf("%s: errors on %-6s route: %s", kc.topology, r, formatCounts(all))
		}
		if n := all[otherKind]; n > 0 {
			t.Errorf("%s route: %d answers that are neither a decision nor the fail mode's", r, n)
		}
	}
	if kc.topology == "cluster" {
		// Keys of the other masters fail only while the Cluster reports
		// CLUSTERDOWN (between the master's failure and the promotion).
		var first, last time.Time
		for _, o := range outs {
			if o.route == lockRoute && o.kind.isError() && !kc.onVictim(o.key) {
				if first.IsZero() {
					first = o.start
				}
				last = o.start.Add(o.took)
			}
		}
		if !first.IsZero() {
			t.Logf("%s: locks on the other masters failed from %s to %s after the kill", kc.topology, sec(first.Sub(killAt)), sec(last.Sub(killAt)))
		}
	}
	// Decisions succeed again from the start of the last request that
	// failed: every request that started later succeeded.
	recovered := lastErrStart.Sub(visibleAt) // after every client could know the new master
	if lastErr.IsZero() {
		t.Logf("%s: no request failed", kc.topology)
		recovered = 0
	} else {
		t.Logf("%s: requests failed from %s to %s after the kill; the last request that failed started %s after the promotion and ended %s after it",
			kc.topology, sec(firstErr.Sub(killAt)), sec(lastErr.Sub(killAt)), sec(lastErrStart.Sub(promoAt)), sec(lastErr.Sub(promoAt)))
	}
	if recovered > recoveryGoal {
		t.Errorf("a request that started %s after the new master was known failed, want none after %v", sec(recovered), recoveryGoal)
	}

	// Every instance recovered by itself.
	for i := range instances {
		ok := 0
		for _, o := range outs {
			if o.app == i && !o.kind.isError() && o.start.After(appLastErr[i]) {
				ok++
			}
		}
		if ok < 50 {
			t.Errorf("app%d: only %d successful requests after its last failure", i, ok)
		}
	}

	// Nothing hangs past its deadline.
	maxTook := map[route]time.Duration{}
	for _, o := range outs {
		maxTook[o.route] = max(maxTook[o.route], o.took)
	}
	for _, r := range []route{openRoute, closedRoute, lockRoute} {
		t.Logf("%s: slowest %s request %s (bound %s)", kc.topology, r, sec(maxTook[r]), sec(r.deadline()))
		if maxTook[r] > r.deadline() {
			t.Errorf("a %s request took %v, past its deadline %v", r, maxTook[r], r.deadline())
		}
	}

	// SCRIPT FLUSH on the new master: no error afterwards.
	afterFlush := counts(outs, func(o outcome) bool { return o.start.After(flushAt) })
	t.Logf("%s: after SCRIPT FLUSH on the new master: %s", kc.topology, formatCounts(afterFlush))
	if n := afterFlush[failOpen] + afterFlush[failed503] + afterFlush[otherKind]; n > 0 {
		t.Errorf("%d requests failed after SCRIPT FLUSH on the new master", n)
	}

	// Admissions beyond the limit: every key was denied after the promotion,
	// so each admitted exactly rateLimit unless writes were lost.
	excess, excessKeys, saturated, short, unsaturated := 0, 0, 0, 0, []string{}
	for _, r := range []route{openRoute, closedRoute} {
		for _, k := range kc.keys[r] {
			n, sat := 0, false
			for _, o := range outs {
				if o.route == r && o.key == k {
					n += map[bool]int{true: 1}[o.kind == admitted]
					sat = sat || (o.kind == denied && o.start.After(promoAt))
				}
			}
			if !sat {
				unsaturated = append(unsaturated, string(r)+"/"+k)
				continue
			}
			saturated++
			if n > rateLimit {
				excess += n - rateLimit
				excessKeys++
			}
			if n < rateLimit {
				short += rateLimit - n // counted by Redis, but the answer was lost
			}
		}
	}
	t.Logf("%s: admitted beyond the limit of %d: %d hits on %d of %d keys; hits counted whose answers were lost: %d; keys not saturated by the end: %v",
		kc.topology, rateLimit, excess, excessKeys, saturated, short, unsaturated)

	// Fences: increasing per key, in the order the handlers ran, across the
	// failover.
	fences.mu.Lock()
	defer fences.mu.Unlock()
	crossed := 0
	for key, fs := range fences.fences {
		before, after := int64(0), int64(0)
		for i, f := range fs {
			if i > 0 && f.fence <= fs[i-1].fence {
				t.Errorf("lock %s: fence %d after %d", key, f.fence, fs[i-1].fence)
			}
			if f.at.Before(killAt) {
				before = max(before, f.fence)
			} else if f.at.After(promoAt) && after == 0 {
				after = f.fence
			}
		}
		if before > 0 && after > 0 {
			crossed++
		}
	}
	t.Logf("%s: fences increased on all %d lock keys; %d of them were taken both before the kill and after the promotion",
		kc.topology, len(fences.fences), crossed)
	if crossed == 0 {
		t.Error("no lock key was taken both before the kill and after the promotion")
	}

	summary := []string{
		fmt.Sprintf("promoted %s after kill -9", sec(promoAt.Sub(killAt))),
		fmt.Sprintf("decisions succeed again %s after the promotion (the last failed request started then, ended %s after it)",
			sec(max(lastErrStart.Sub(promoAt), 0)), sec(max(lastErr.Sub(promoAt), 0))),
		fmt.Sprintf("errors: %d fail-open serves, %d fail-closed 503s, %d guard 503s",
			counts(outs, nil)[failOpen],
			counts(outs, func(o outcome) bool { return o.route == closedRoute && o.kind == failed503 })[failed503],
			counts(outs, func(o outcome) bool { return o.route == lockRoute && o.kind == failed503 })[failed503]),
		fmt.Sprintf("excess admissions %d", excess),
		"fences increasing",
	}
	if bareRecovery != "" {
		summary = append(summary, "plain go-redis v"+redis.Version()+" ClusterClient recovered "+bareRecovery)
	}
	t.Logf("SUMMARY %s master kill: %s", kc.topology, strings.Join(summary, "; "))
}
