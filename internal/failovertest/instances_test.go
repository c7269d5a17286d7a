package failovertest

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store/redisstore"
)

// 4 instances, each with its own Cluster client, and 32 concurrent clients
// per instance, all on one key: the instances admit exactly the limit per
// window between them, and a Guard lets exactly one request at a time hold a
// resource across all of them.
func TestManyInstances(t *testing.T) {
	addrs := clusterBed(t)
	waitClusterHealthy(t, addrs)
	const (
		clients = 32
		limit   = 100
		window  = 2 * time.Second
		perTry  = 4 // requests per client and burst
	)
	prefix := "sluicefo:" + redistest.Token()[:8] + ":"

	var inside [4]atomic.Int32 // handlers holding each resource right now
	var overlaps atomic.Int32
	fences := &fenceLog{}
	apps := make([]*app, instances)
	for i := range apps {
		client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
		apps[i] = newApp(t, fmt.Sprintf("app%d", i), client, appOptions{
			limit: limit, window: window, fences: fences,
			timeout:   5 * time.Second, // 128 clients on 2 CPUs: no failover here, a slow answer is not an error
			storeOpts: []redisstore.Option{redisstore.WithPrefix(prefix)},
			onLocked: func(r *http.Request) {
				n, _ := strconv.Atoi(r.PathValue("key")[len("res"):])
				if inside[n].Add(1) > 1 {
					overlaps.Add(1)
				}
				time.Sleep(time.Millisecond)
				inside[n].Add(-1)
			},
		})
	}

	// Rate: bursts of instances × clients × perTry requests on one fresh key,
	// one window apart.
	burst := func() (byKind map[kind]int, remaining []int) {
		byKind = map[kind]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, a := range apps {
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for range perTry {
						k, h := a.doHeaders(closedRoute, "one")
						mu.Lock()
						byKind[k]++
						if k == admitted {
							n, _ := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
							remaining = append(remaining, n)
						}
						mu.Unlock()
					}
				}()
			}
		}
		close(start)
		wg.Wait()
		sort.Ints(remaining)
		return byKind, remaining
	}
	for round := 1; round <= 2; round++ {
		began := time.Now()
		byKind, remaining := burst()
		took := time.Since(began)
		t.Logf("rate, window %d: %d requests from %d instances x %d clients in %s: %s",
			round, instances*clients*perTry, instances, clients, sec(took), formatCounts(byKind))
		if byKind[admitted] != limit || byKind[denied] != instances*clients*perTry-limit {
			t.Errorf("window %d: %s, want %d admitted and the rest denied", round, formatCounts(byKind), limit)
		}
		for i, n := range remaining {
			if n != i {
				t.Errorf("window %d: the admitted requests' X-RateLimit-Remaining are %v, want each of 0..%d once", round, remaining, limit-1)
				break
			}
		}
		if round == 1 {
			time.Sleep(window + 200*time.Millisecond) // every hit of this window has left it
		}
	}

	// Locks: every client asks for one of 4 resources in turn for a while.
	const lockFor = 1500 * time.Millisecond
	var mu sync.Mutex
	byKind := map[kind]int{}
	var wg sync.WaitGroup
	stop := time.Now().Add(lockFor)
	for i, a := range apps {
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := i + c; time.Now().Before(stop); n++ {
					k := a.do(lockRoute, "res"+strconv.Itoa(n%len(inside)))
					mu.Lock()
					byKind[k]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("locks: %d instances x %d clients on %d resources for %s: %s; handlers overlapping on a resource: %d",
		instances, clients, len(inside), sec(lockFor), formatCounts(byKind), overlaps.Load())
	if overlaps.Load() != 0 {
		t.Errorf("%d times two handlers held one resource at once", overlaps.Load())
	}
	total := 0
	for _, n := range byKind {
		total += n
	}
	if byKind[served] == 0 || byKind[held] == 0 || byKind[served]+byKind[held] != total {
		t.Errorf("want only 200 and 409 answers, both: %s", formatCounts(byKind))
	}
	fences.mu.Lock()
	for key, fs := range fences.fences {
		for i := 1; i < len(fs); i++ {
			if fs[i].fence <= fs[i-1].fence {
				t.Errorf("resource %s: fence %d after %d", key, fs[i].fence, fs[i-1].fence)
			}
		}
	}
	fences.mu.Unlock()
	t.Logf("SUMMARY many instances: %d instances x %d clients on one key admitted exactly %d per window in 2 windows; %d guarded requests served one at a time per resource (%d got 409), fences increasing",
		instances, clients, limit, byKind[served], byKind[held])
}
