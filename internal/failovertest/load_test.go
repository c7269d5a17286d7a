package failovertest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/redisstore"
)

// Deadlines of the instances' store calls. A decision must not take much
// longer than decisionTimeout; a guarded request not much longer than two
// lock store timeouts (an acquire that timed out is released again, see
// docs/locks.md) plus the release timeout.
const (
	decisionTimeout  = 300 * time.Millisecond
	lockStoreTimeout = 300 * time.Millisecond
	lockRelease      = 300 * time.Millisecond
	lockTTL          = 5 * time.Second
	slack            = 250 * time.Millisecond
)

// route is one of an instance's routes.
type route string

const (
	openRoute   route = "open"   // GET /open/{key}: a fail-open rate limit
	closedRoute route = "closed" // GET /closed/{key}: a fail-closed rate limit
	lockRoute   route = "lock"   // POST /lock/{key}: a fail-closed guard
)

// deadline is the longest a request of r may take.
func (r route) deadline() time.Duration {
	if r == lockRoute {
		return 2*lockStoreTimeout + lockRelease + slack
	}
	return decisionTimeout + slack
}

// guardName is the name of the instances' Guard: the lock of the resource
// key is "res:key" (see lockKey).
const guardName = "res"

// lockKey returns the store key of the lock of the resource key.
func lockKey(key string) string { return guardName + ":" + key }

// pathKey is the instances' key function: the route parameter as it is.
func pathKey(r *http.Request) (string, error) { return r.PathValue("key"), nil }

// fenceLog records the fences handlers saw, per key, in the order the
// handlers started.
type fenceLog struct {
	mu     sync.Mutex
	fences map[string][]fenceEntry
}

type fenceEntry struct {
	at    time.Time
	fence int64
}

func (l *fenceLog) add(key string, fence int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fences == nil {
		l.fences = map[string][]fenceEntry{}
	}
	l.fences[key] = append(l.fences[key], fenceEntry{time.Now(), fence})
}

// app is one application instance: its own go-redis client, Store,
// policies and guard, behind an http.ServeMux.
type app struct {
	name   string
	client redis.UniversalClient
	store  *redisstore.Store
	mux    *http.ServeMux
}

// appOptions configures newApp.
type appOptions struct {
	limit      int                   // of both rate limits, per window
	window     time.Duration         // of both rate limits
	storeOpts  []redisstore.Option   // for the instance's Store
	hold       time.Duration         // how long the guarded handler works
	fences     *fenceLog             // where the guarded handler records its fence
	onLocked   func(r *http.Request) // called by the guarded handler, if set
	policyName string                // of the rate limits; "" for "open" and "closed"
	timeout    time.Duration         // of every store call; 0: decisionTimeout and lockStoreTimeout
}

// newApp builds an instance on client (closed at t's cleanup).
func newApp(t *testing.T, name string, client redis.UniversalClient, o appOptions) *app {
	t.Helper()
	t.Cleanup(func() { _ = client.Close() })
	st, err := redisstore.New(client, o.storeOpts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.Preload(ctx); err != nil {
		t.Fatalf("%s: preload: %v", name, err)
	}
	a := &app{name: name, client: client, store: st, mux: http.NewServeMux()}
	decide, lockCall := decisionTimeout, lockStoreTimeout
	if o.timeout > 0 {
		decide, lockCall = o.timeout, o.timeout
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	for _, p := range []struct {
		route route
		mode  limiter.FailMode
	}{{openRoute, limiter.FailOpen}, {closedRoute, limiter.FailClosed}} {
		pol, err := limiter.NewPolicy(o.policyName+string(p.route), o.limit, o.window, st,
			limiter.WithKey(pathKey),
			limiter.WithFailMode(p.mode),
			limiter.WithTimeout(decide),
			limiter.WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pol.Close() })
		a.mux.Handle("GET /"+string(p.route)+"/{key}", httpmw.RateLimit(pol)(ok))
	}
	locker, err := lockguard.New(st, lockguard.WithStoreTimeout(lockCall), lockguard.WithReleaseTimeout(max(lockRelease, o.timeout)))
	if err != nil {
		t.Fatal(err)
	}
	guard, err := lockguard.NewGuard(guardName, locker, pathKey, lockTTL, lockguard.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	a.mux.Handle("POST /lock/{key}", httpmw.Guard(guard)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lock, held := lockguard.FromContext(r.Context())
		if !held {
			http.Error(w, "no lock", http.StatusInternalServerError)
			return
		}
		if o.fences != nil {
			o.fences.add(r.PathValue("key"), lock.Fence())
		}
		if o.onLocked != nil {
			o.onLocked(r)
		}
		if o.hold > 0 {
			time.Sleep(o.hold)
		}
		w.WriteHeader(http.StatusOK)
	})))
	return a
}

// kind is what a request's answer says about the store.
type kind int

const (
	admitted  kind = iota // 200 with quota headers: the store counted it
	denied                // 429
	served                // 200 from the guard (it held the lock)
	held                  // 409: another request holds the lock
	failOpen              // 200 without quota headers: the store failed, served anyway
	failed503             // 503: the store failed, fail-closed
	otherKind
)

func (k kind) String() string {
	return [...]string{"admitted", "denied", "served", "held", "fail-open", "503", "other"}[k]
}

func (k kind) isError() bool { return k == failOpen || k == failed503 || k == otherKind }

// outcome is one request's result.
type outcome struct {
	start time.Time
	took  time.Duration
	app   int
	route route
	key   string
	kind  kind
}

// do sends one request to a and classifies its answer.
func (a *app) do(r route, key string) kind {
	k, _ := a.doHeaders(r, key)
	return k
}

// doHeaders sends one request to a and returns the kind of its answer and
// the answer's headers.
func (a *app) doHeaders(r route, key string) (kind, http.Header) {
	method := http.MethodGet
	if r == lockRoute {
		method = http.MethodPost
	}
	req := httptest.NewRequest(method, "/"+string(r)+"/"+key, nil)
	rec := httptest.NewRecorder()
	a.mux.ServeHTTP(rec, req)
	return classify(r, rec), rec.Header()
}

func classify(r route, rec *httptest.ResponseRecorder) kind {
	switch code := rec.Code; {
	case code == http.StatusOK && r == lockRoute:
		return served
	case code == http.StatusOK && rec.Header().Get("X-RateLimit-Limit") != "":
		return admitted
	case code == http.StatusOK:
		return failOpen
	case code == http.StatusTooManyRequests:
		return denied
	case code == http.StatusConflict:
		return held
	case code == http.StatusServiceUnavailable:
		return failed503
	default:
		return otherKind
	}
}

// load drives requests at instances: per instance and route, one worker
// that sends requests for its keys in turn, pausing between two.
type load struct {
	apps  []*app
	keys  map[route][]string
	pause time.Duration

	mu       sync.Mutex
	outcomes []outcome
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(apps []*app, keys map[route][]string, pause time.Duration) *load {
	l := &load{apps: apps, keys: keys, pause: pause, stop: make(chan struct{})}
	for i, a := range apps {
		for r, ks := range keys {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				for n := i; ; n++ { // instances start at different keys
					select {
					case <-l.stop:
						return
					default:
					}
					key := ks[n%len(ks)]
					start := time.Now()
					k := a.do(r, key)
					l.mu.Lock()
					l.outcomes = append(l.outcomes, outcome{start, time.Since(start), i, r, key, k})
					l.mu.Unlock()
					time.Sleep(l.pause)
				}
			}()
		}
	}
	return l
}

// finish stops the workers and returns every outcome, by start time.
func (l *load) finish() []outcome {
	close(l.stop)
	l.wg.Wait()
	sort.Slice(l.outcomes, func(i, j int) bool { return l.outcomes[i].start.Before(l.outcomes[j].start) })
	return l.outcomes
}

// snapshot returns the outcomes so far, for watching a run while it goes on.
func (l *load) snapshot() []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]outcome(nil), l.outcomes...)
}

// counts tallies outcomes by kind.
func counts(outs []outcome, keep func(outcome) bool) map[kind]int {
	m := map[kind]int{}
	for _, o := range outs {
		if keep == nil || keep(o) {
			m[o.kind]++
		}
	}
	return m
}

func formatCounts(m map[kind]int) string {
	var parts []string
	for k := admitted; k <= otherKind; k++ {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// sec formats a duration in seconds with 2 decimals.
func sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
