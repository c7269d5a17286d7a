package failovertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// How long Acquire waits for a replica under WithReplicaAck in these tests,
// and how long the replica lags before the master is killed.
const (
	ackTimeout = 100 * time.Millisecond
	lagFor     = 300 * time.Millisecond
	steadyFor  = 300 * time.Millisecond
)

// ackCase is a master to kill right after locks were taken on it.
type ackCase struct {
	topology  string
	newClient func() redis.UniversalClient
	victim    server
	heir      server               // the replica that takes over
	keys      func(n int) []string // n keys on the victim, different at each call
	announced *switchWatch         // the Sentinels' +switch-master, or nil
	restore   func(t *testing.T)
}

// With WithReplicaAck, a lock a handler holds when its Cluster master dies
// survives the failover: a second request for it after the promotion gets
// 409 from the Guard, and no acknowledged lock is lost. Without it, locks
// taken while the replica lagged are lost, and a second request gets the
// resource; rate-limit hits admitted meanwhile are admitted again.
func TestClusterLockAck(t *testing.T) {
	addrs := clusterBed(t)
	shards := waitClusterHealthy(t, addrs)
	sh := shards[1]
	victim := serverAt(t, sh.master)
	run := redistest.Token()[:8]
	next := 0
	runAck(t, ackCase{
		topology: "cluster",
		newClient: func() redis.UniversalClient {
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
		},
		victim: victim,
		heir:   serverAt(t, sh.replicas[0]),
		keys: func(n int) []string {
			next++
			on, _ := keysOn(t, shards, sh, fmt.Sprintf("lk%s:%d:", run, next), n, lockKey)
			return on
		},
		restore: func(t *testing.T) { victim.restart(t) },
	})
	waitClusterHealthy(t, addrs)
}

// The same through Sentinel.
func TestSentinelLockAck(t *testing.T) {
	sentinels, name := sentinelBed(t)
	view := waitSentinelHealthy(t, sentinels, name)
	announced := watchSwitches(t, sentinels, name)
	run := redistest.Token()[:8]
	next := 0
	victim := serverAt(t, view.master)
	runAck(t, ackCase{
		topology: "sentinel",
		newClient: func() redis.UniversalClient {
			return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: name, SentinelAddrs: sentinels, ContextTimeoutEnabled: true})
		},
		victim: victim,
		heir:   serverAt(t, view.replica),
		keys: func(n int) []string {
			next++
			var out []string
			for i := range n {
				out = append(out, fmt.Sprintf("lk%s:%d:%d", run, next, i))
			}
			return out
		},
		announced: announced,
		restore: func(t *testing.T) {
			host, port, _ := net.SplitHostPort(view.replica)
			victim.restart(t, "--replicaof", host, port)
		},
	})
	waitSentinelHealthy(t, sentinels, name)
}

// taken is a lock a bulk acquirer obtained.
type taken struct {
	key, token string
	lagging    bool // taken while the replica was stopped
}

// bulk acquires locks on fresh keys with one Store until stopped.
type bulk struct {
	st      *redisstore.Store
	mu      sync.Mutex
	taken   []taken
	refused map[bool]int // ErrNotReplicated, by lagging
	other   map[bool]int // other errors, by lagging
}

// Phases of a bulk run.
const (
	inSync     int32 = iota // the replica follows
	transition              // the replica is falling behind: results are not counted
	behind                  // the replica's link is full
)

func runBulk(st *redisstore.Store, keys []string, phase *atomic.Int32, stop <-chan struct{}, wg *sync.WaitGroup) *bulk {
	b := &bulk{st: st, refused: map[bool]int{}, other: map[bool]int{}}
	var next atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(next.Add(1)) - 1
				if i >= len(keys) {
					return
				}
				ph := phase.Load()
				tok := redistest.Token()
				ctx, cancel := context.WithTimeout(context.Background(), 2*ackTimeout+lockStoreTimeout)
				res, err := st.Acquire(ctx, keys[i], tok, time.Minute)
				cancel()
				select {
				case <-stop: // the master is dead: results from now on do not count
					return
				default:
				}
				if ph == transition || phase.Load() != ph {
					continue
				}
				lag := ph == behind
				b.mu.Lock()
				switch {
				case errors.Is(err, redisstore.ErrNotReplicated):
					b.refused[lag]++
				case err != nil:
					b.other[lag]++
				case res.Acquired:
					b.taken = append(b.taken, taken{keys[i], tok, lag})
				}
				b.mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return b
}

// lost counts the locks of b that the new master no longer holds, by
// whether they were taken while the replica lagged.
func (b *bulk) lost(t *testing.T, checker *redisstore.Store) (takenN, lostN map[bool]int) {
	t.Helper()
	takenN, lostN = map[bool]int{}, map[bool]int{}
	for _, tk := range b.taken {
		takenN[tk.lagging]++
		eventually(t, 30*time.Second, "TTL of "+tk.key, func(ctx context.Context) error {
			_, err := checker.TTL(ctx, tk.key, tk.token)
			if errors.Is(err, store.ErrNotHeld) {
				lostN[tk.lagging]++
				return nil
			}
			return err
		})
	}
	return takenN, lostN
}

func runAck(t *testing.T, ac ackCase) {
	prefix := "sluicefo:" + redistest.Token()[:8] + ":"
	acked := []redisstore.Option{redisstore.WithPrefix(prefix), redisstore.WithReplicaAck(1, ackTimeout)}
	plain := []redisstore.Option{redisstore.WithPrefix(prefix)}

	// a holds a lock (acknowledged) when the master dies; b asks for it
	// after the promotion. c takes one without acknowledgement while the
	// replica lags; d asks for it after the promotion.
	heldBy := make(chan int64, 2)
	release := make(chan struct{})
	blocking := appOptions{limit: 1, window: time.Second, onLocked: func(*http.Request) {
		heldBy <- 0
		<-release
	}}
	a := newApp(t, "a", ac.newClient(), withStore(blocking, acked))
	b := newApp(t, "b", ac.newClient(), withStore(appOptions{limit: 1, window: time.Second}, acked))
	c := newApp(t, "c", ac.newClient(), withStore(blocking, plain))
	d := newApp(t, "d", ac.newClient(), withStore(appOptions{limit: 1, window: time.Second}, plain))
	e := newApp(t, "e", ac.newClient(), withStore(appOptions{limit: 1, window: time.Second}, acked))
	guarded := ac.keys(3) // a's, c's, and e's resource

	// A rate limit on the victim: hits admitted while the replica follows
	// and while it lags; after the promotion, how many more it admits.
	rates := newLagRate(t, ac)
	rates.hit(t, lagRateInSync)

	stores := make([]*redisstore.Store, 2)
	for i, opts := range [][]redisstore.Option{plain, acked} {
		client := ac.newClient()
		t.Cleanup(func() { _ = client.Close() })
		st, err := redisstore.New(client, opts...)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = st
	}
	var phase atomic.Int32
	stopBulk := make(chan struct{})
	var wg sync.WaitGroup
	lockKeys := func(n int) []string {
		keys := ac.keys(n)
		for i, k := range keys {
			keys[i] = lockKey(k)
		}
		return keys
	}
	bulkPlain := runBulk(stores[0], lockKeys(3000), &phase, stopBulk, &wg)
	bulkAcked := runBulk(stores[1], lockKeys(3000), &phase, stopBulk, &wg)
	defer func() {
		select {
		case <-stopBulk:
		default:
			close(stopBulk)
		}
		wg.Wait()
	}()

	time.Sleep(steadyFor)
	aAnswer, cAnswer := make(chan kind, 1), make(chan kind, 1)
	go func() { aAnswer <- a.do(lockRoute, guarded[0]) }()
	select {
	case <-heldBy:
	case k := <-aAnswer:
		t.Fatalf("a did not get the lock: %s", k)
	case <-time.After(5 * time.Second):
		t.Fatal("a did not get the lock within 5 s")
	}

	// The replica falls behind: it stops reading (a stall) while the master
	// takes writes, until the link between them is full. Writes from now on
	// do not reach it.
	phase.Store(transition)
	ac.heir.signal(t, syscall.SIGSTOP)
	resumed := false
	defer func() {
		if !resumed {
			ac.heir.signal(t, syscall.SIGCONT)
		}
	}()
	filled := fillReplicaLink(t, ac.victim.addr, "{"+tag(lockKey(guarded[0]))+"}:"+prefix+"fill:")
	phase.Store(behind)
	go func() { cAnswer <- c.do(lockRoute, guarded[1]) }()
	select {
	case <-heldBy:
	case k := <-cAnswer:
		t.Fatalf("c did not get the lock: %s", k)
	case <-time.After(5 * time.Second):
		t.Fatal("c did not get the lock within 5 s")
	}
	eAnswer := e.do(lockRoute, guarded[2])
	rates.hit(t, lagRateBehind)
	time.Sleep(lagFor)

	promoted := watchMaster(ac.heir.addr, 60*time.Second)
	killAt := time.Now()
	ac.victim.kill(t)
	close(stopBulk)
	ac.heir.signal(t, syscall.SIGCONT)
	resumed = true
	wg.Wait()
	promoAt := await(t, promoted, "promotion of "+ac.heir.addr)
	visibleAt := promoAt
	if ac.announced != nil {
		_, visibleAt = ac.announced.await(t, 30*time.Second)
	}

	// After the promotion: the first answer other than 503 for a's resource
	// must be 409; for c's, the resource is free.
	firstAnswer := func(app *app, key string) (kind, int, time.Duration) {
		start, unavailable := time.Now(), 0
		for {
			k := app.do(lockRoute, key)
			if k != failed503 || time.Since(start) > 20*time.Second {
				return k, unavailable, time.Since(start)
			}
			unavailable++
			time.Sleep(20 * time.Millisecond)
		}
	}
	bKind, b503, bTook := firstAnswer(b, guarded[0])
	dKind, d503, _ := firstAnswer(d, guarded[1])

	close(release)
	aKind, cKind := <-aAnswer, <-cAnswer

	checkerClient := ac.newClient()
	t.Cleanup(func() { _ = checkerClient.Close() })
	checker, err := redisstore.New(checkerClient, plain...)
	if err != nil {
		t.Fatal(err)
	}
	rateAfter := rates.untilDenied(t)
	plainTaken, plainLost := bulkPlain.lost(t, checker)
	ackedTaken, ackedLost := bulkAcked.lost(t, checker)
	ac.restore(t)

	t.Logf("%s: the replica stopped, %d MB written until the master buffered 1 MB for it, kill -9 of %s %s later; %s promoted %s after the kill, known to clients %s after it",
		ac.topology, filled, ac.victim.addr, sec(lagFor), ac.heir.addr, sec(promoAt.Sub(killAt)), sec(visibleAt.Sub(killAt)))
	t.Logf("%s: with acknowledgement: the lock a handler held (taken before the replica stopped) refused a second request after the promotion: %s (after %d answers 503 in %s); its handler answered %s",
		ac.topology, bKind, b503, sec(bTook), aKind)
	t.Logf("%s: with acknowledgement: a request while the replica was stopped: %s", ac.topology, eAnswer)
	t.Logf("%s: without acknowledgement: a lock taken while the replica was stopped, asked for again after the promotion: %s (after %d answers 503)",
		ac.topology, dKind, d503)
	rate := func(lost, taken int) string {
		if taken == 0 {
			return "0 of 0"
		}
		return fmt.Sprintf("%d of %d (%.0f%%)", lost, taken, 100*float64(lost)/float64(taken))
	}
	t.Logf("%s: bulk acquires without acknowledgement: lost %s taken with the replica in sync, %s taken while it was stopped (other errors %d)",
		ac.topology, rate(plainLost[false], plainTaken[false]), rate(plainLost[true], plainTaken[true]), bulkPlain.other[false]+bulkPlain.other[true])
	t.Logf("%s: bulk acquires with acknowledgement: lost %s taken with the replica in sync, %s taken while it was stopped; refused (ErrNotReplicated) %d in sync, %d while stopped (other errors %d)",
		ac.topology, rate(ackedLost[false], ackedTaken[false]), rate(ackedLost[true], ackedTaken[true]),
		bulkAcked.refused[false], bulkAcked.refused[true], bulkAcked.other[false]+bulkAcked.other[true])

	if bKind != held {
		t.Errorf("a second request for an acknowledged lock after the failover got %s, want 409", bKind)
	}
	if aKind != served {
		t.Errorf("the handler holding the acknowledged lock answered %s, want 200", aKind)
	}
	if eAnswer != failed503 {
		t.Errorf("an acknowledged acquire while no replica could acknowledge got %s, want 503", eAnswer)
	}
	if n := ackedLost[false] + ackedLost[true]; n > 0 {
		t.Errorf("%d acknowledged locks were lost in the failover", n)
	}
	if ackedTaken[true] > 0 {
		t.Errorf("%d locks were acknowledged while the only replica was stopped", ackedTaken[true])
	}
	if ackedTaken[false] == 0 || plainTaken[false] == 0 || plainTaken[true] == 0 {
		t.Errorf("too few locks taken to measure: %v with acknowledgement, %v without", ackedTaken, plainTaken)
	}
	if cKind != served {
		t.Errorf("the handler holding the unacknowledged lock answered %s, want 200", cKind)
	}
	if dKind != served || plainLost[true] != plainTaken[true] {
		// The replica was stopped: nothing written meanwhile can be on it.
		t.Errorf("locks taken without acknowledgement while the replica was stopped survived the failover (second request: %s; lost %d of %d): the lag was not injected",
			dKind, plainLost[true], plainTaken[true])
	}
	rateExcess := lagRateInSync + lagRateBehind + rateAfter - lagRateLimit
	t.Logf("%s: rate limit of %d: %d hits admitted with the replica in sync, %d while it was stopped, %d after the promotion: %d admitted beyond the limit",
		ac.topology, lagRateLimit, lagRateInSync, lagRateBehind, rateAfter, rateExcess)
	if rateExcess != lagRateBehind {
		t.Errorf("the new master admitted %d beyond the limit, want the %d admitted while the replica was stopped", rateExcess, lagRateBehind)
	}
	t.Logf("SUMMARY %s rate limit: %d hits admitted while the replica was stopped were admitted again after the failover (%d beyond the limit of %d)",
		ac.topology, lagRateBehind, rateExcess, lagRateLimit)
	t.Logf("SUMMARY %s locks: with acknowledgement, second acquirer after the promotion got %s, acknowledged locks lost %s; without, lost %s with the replica in sync and %s with it stopped for %s",
		ac.topology, bKind, rate(ackedLost[false]+ackedLost[true], ackedTaken[false]+ackedTaken[true]),
		rate(plainLost[false], plainTaken[false]), rate(plainLost[true], plainTaken[true]), sec(lagFor))
}

// withStore returns o with the Store options opts.
func withStore(o appOptions, opts []redisstore.Option) appOptions {
	o.storeOpts = opts
	return o
}

// fillReplicaLink writes 1 MB values under keys made of prefix to the master
// at addr until the master holds at least 1 MB for a replica that does not
// read (it is stopped): the kernel's socket buffers between them are full,
// so every write from now on waits in the master's memory and dies with it.
// It returns how many megabytes it wrote.
func fillReplicaLink(t *testing.T, addr, prefix string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	blob := strings.Repeat("x", 1<<20)
	for i := 1; i <= 128; i++ {
		if err := c.Set(ctx, fmt.Sprintf("%s%d", prefix, i), blob, time.Minute).Err(); err != nil {
			t.Fatalf("fill the replica link: %v", err)
		}
		if i%4 != 0 {
			continue
		}
		clients, err := c.ClientList(ctx).Result()
		if err != nil {
			t.Fatalf("CLIENT LIST: %v", err)
		}
		for _, line := range strings.Split(clients, "\n") {
			if !strings.Contains(line, "flags=S") {
				continue
			}
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "omem="); ok && len(v) >= 7 { // >= 1,000,000 bytes
					return i
				}
			}
		}
	}
	t.Fatal("the master holds no output for its stopped replica after 128 MB of writes")
	return 0
}

// The rate limit of the lag scenario.
const (
	lagRateLimit  = 50
	lagRateInSync = 20 // hits before the replica stops
	lagRateBehind = 20 // hits while it is stopped
)

// lagRate is a rate-limited key whose window lives on the victim.
type lagRate struct {
	st   *redisstore.Store
	key  string
	rule store.Rule
	made int // hits made before the next call of hit counts them
}

// newLagRate finds a key whose window the store keeps on the victim: it
// tries keys, each under a prefix of its own, until the victim holds the
// key's only Redis key (wherever the store's key layout puts it).
func newLagRate(t *testing.T, ac ackCase) *lagRate {
	t.Helper()
	client := ac.newClient()
	t.Cleanup(func() { _ = client.Close() })
	victim := redis.NewClient(&redis.Options{Addr: ac.victim.addr})
	defer victim.Close()
	ctx := context.Background()
	rule := store.Rule{Name: "lag", Limit: lagRateLimit, Window: 5 * time.Minute}
	for i := range 64 {
		prefix := "sluicefo:" + redistest.Token()[:8] + ":"
		st, err := redisstore.New(client, redisstore.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("rate%d", i)
		res, err := st.Hit(ctx, key, rule, 1)
		if err != nil || !res.Allowed {
			t.Fatalf("first hit: %+v %v", res, err)
		}
		keys, err := victim.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 1 {
			return &lagRate{st: st, key: key, rule: rule, made: 1}
		}
	}
	t.Fatal("no rate key on the victim in 64 tries")
	return nil
}

// hit makes n hits in all (counting those newLagRate made), each of which
// must be admitted.
func (r *lagRate) hit(t *testing.T, n int) {
	t.Helper()
	n, r.made = n-r.made, 0
	for range n {
		res, err := r.st.Hit(context.Background(), r.key, r.rule, 1)
		if err != nil || !res.Allowed {
			t.Fatalf("hit: %+v %v", res, err)
		}
	}
}

// untilDenied hits the key until a hit is denied, retrying store errors for
// up to 30 s, and returns how many were admitted.
func (r *lagRate) untilDenied(t *testing.T) int {
	t.Helper()
	admitted := 0
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, err := r.st.Hit(ctx, r.key, r.rule, 1)
		cancel()
		switch {
		case err != nil:
			time.Sleep(20 * time.Millisecond)
		case res.Allowed:
			admitted++
		default:
			return admitted
		}
	}
	t.Fatal("the rate key was not denied within 30 s")
	return 0
}
