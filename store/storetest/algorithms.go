package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

// algorithms lists every algorithm the contract defines, for the rules that
// hold for each of them.
var algorithms = []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA}

// o1Algorithms lists the algorithms whose memory does not grow with the limit.
var o1Algorithms = []store.Algorithm{store.SlidingCounter, store.GCRA}

// µs is the precision of the store contract.
const µs = time.Microsecond

// align moves the fake clock forward to the next multiple of w since the Unix
// epoch (or leaves it there): the start of a fixed window of the
// sliding-window counter.
func (e *env) align(w time.Duration) {
	now := e.clock.Now().UnixMicro()
	if r := now % w.Microseconds(); r != 0 {
		e.advance(time.Duration(w.Microseconds()-r) * µs)
	}
}

// alignedEnv returns a fresh store whose fake clock stands at the start of a
// fixed window of length w.
func (s suite) alignedEnv(t *testing.T, w time.Duration) *env {
	t.Helper()
	e := s.env(t)
	e.align(w)
	return e
}

// undo calls Undo and fails the test on error.
func (e *env) undo(key string, r store.Receipt) {
	e.t.Helper()
	if err := e.s.Undo(e.ctx, key, r); err != nil {
		e.t.Fatalf("Undo(%q, %+v): %v", short(key), r, err)
	}
}

// countAllowed sends n simultaneous hits of cost 1 and returns how many were
// allowed, failing the test on any error or on an allowed result without a
// receipt of cost 1 under rule.
func countAllowed(t *testing.T, st store.Store, key string, rule store.Rule, n int) int {
	t.Helper()
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]store.Result, n)
		errs    = make([]error, n)
	)
	ctx := t.Context()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = st.Hit(ctx, key, rule, 1)
		}()
	}
	close(start)
	wg.Wait()
	allowed := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("hit %d: %v", i, errs[i])
		}
		if r.Allowed {
			allowed++
			if r.Receipt.ID == 0 || r.Receipt.Cost != 1 || r.Receipt.Rule != rule {
				t.Errorf("hit %d: allowed with receipt %+v, want a receipt of cost 1 under %+v", i, r.Receipt, rule)
			}
		}
	}
	return allowed
}

// testAlgorithms checks the rules of the store contract that hold for every
// algorithm, on the sliding-window counter and GCRA: bad input, exact
// counting under concurrency, independent keys, names and algorithms,
// context errors, Undo's receipt checks, and RetryAfter and ResetAfter
// exact to the microsecond.
func (s suite) testAlgorithms(t *testing.T) {
	t.Run("InvalidArgument", s.testAlgorithmInvalidArgument)
	t.Run("Bounds", s.testAlgorithmBounds)
	for _, alg := range o1Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			t.Run("Concurrency", func(t *testing.T) { s.testAlgorithmConcurrency(t, alg) })
			t.Run("Keys", func(t *testing.T) { s.testAlgorithmKeys(t, alg) })
			t.Run("Context", func(t *testing.T) { s.testAlgorithmContext(t, alg) })
			t.Run("UndoReceipts", func(t *testing.T) { s.testAlgorithmUndoReceipts(t, alg) })
		})
	}
	t.Run("AlgorithmsApart", s.testAlgorithmsApart)
	t.Run("Exactness", s.testExactness)
}

func (s suite) testAlgorithmInvalidArgument(t *testing.T) {
	ctr := func(limit, burst int) store.Rule {
		return store.Rule{Limit: limit, Window: window, Algorithm: store.SlidingCounter, Burst: burst}
	}
	gcra := func(limit, burst int) store.Rule {
		return store.Rule{Limit: limit, Window: window, Algorithm: store.GCRA, Burst: burst}
	}
	withWindow := func(r store.Rule, w time.Duration) store.Rule { r.Window = w; return r }
	cases := []struct {
		name string
		key  bool // use a real key (false: the empty key)
		rule store.Rule
		cost int
	}{
		{"counter/empty key", false, ctr(2, 0), 1},
		{"counter/zero limit", true, ctr(0, 0), 1},
		{"counter/negative limit", true, ctr(-1, 0), 1},
		{"counter/limit above MaxCounterLimit", true, ctr(store.MaxCounterLimit+1, 0), 1},
		{"counter/zero window", true, withWindow(ctr(2, 0), 0), 1},
		{"counter/window below 1ms", true, withWindow(ctr(2, 0), time.Millisecond-µs), 1},
		{"counter/window above MaxWindow", true, withWindow(ctr(2, 0), store.MaxWindow+µs), 1},
		{"counter/zero cost", true, ctr(2, 0), 0},
		{"counter/negative cost", true, ctr(2, 0), -1},
		{"counter/cost above limit", true, ctr(2, 0), 3},
		{"counter/burst", true, ctr(2, 2), 1},
		{"counter/negative burst", true, ctr(2, -1), 1},
		{"log/burst", true, store.Rule{Limit: 2, Window: window, Burst: 4}, 1},
		{"gcra/empty key", false, gcra(2, 0), 1},
		{"gcra/zero limit", true, gcra(0, 0), 1},
		{"gcra/negative limit", true, gcra(-1, 0), 1},
		{"gcra/limit above MaxCounterLimit", true, gcra(store.MaxCounterLimit+1, 0), 1},
		{"gcra/zero window", true, withWindow(gcra(2, 0), 0), 1},
		{"gcra/window below 1ms", true, withWindow(gcra(2, 0), time.Millisecond-µs), 1},
		{"gcra/window above MaxWindow", true, withWindow(gcra(2, 0), store.MaxWindow+µs), 1},
		{"gcra/zero cost", true, gcra(2, 0), 0},
		{"gcra/negative cost", true, gcra(2, 0), -1},
		{"gcra/cost above limit without burst", true, gcra(2, 0), 3},
		{"gcra/cost above burst below limit", true, gcra(10, 3), 4},
		{"gcra/cost above burst above limit", true, gcra(2, 4), 5},
		{"gcra/negative burst", true, gcra(2, -1), 1},
		{"gcra/burst above MaxCounterLimit", true, gcra(2, store.MaxCounterLimit+1), 1},
		{"unknown algorithm", true, store.Rule{Limit: 2, Window: window, Algorithm: store.GCRA + 1}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := s.env(t)
			key := ""
			if tc.key {
				key = e.key("k")
			}
			res, err := e.s.Hit(e.ctx, key, tc.rule, tc.cost)
			if !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("Hit(%+v, cost %d) error = %v, want store.ErrInvalidArgument", tc.rule, tc.cost, err)
			}
			if res.Allowed {
				t.Errorf("Hit with bad input reported allowed: %+v", res)
			}
			if !tc.key {
				return
			}
			// Nothing was recorded under any algorithm for the rule's name.
			for _, alg := range algorithms {
				valid := store.Rule{Name: tc.rule.Name, Limit: 2, Window: window, Algorithm: alg}
				if got := e.remaining(key, valid); got != 2 {
					t.Errorf("after a rejected Hit the key has %d of 2 left under %v; want nothing recorded", got, alg)
				}
			}
		})
	}
}

// testAlgorithmBounds checks that the O(1) algorithms take limits and costs
// beyond the sliding log's bounds, up to MaxCounterLimit.
func (s suite) testAlgorithmBounds(t *testing.T) {
	t.Run("counter/above the log's bounds", func(t *testing.T) {
		e := s.alignedEnv(t, window)
		rule := store.Rule{Limit: 5000, Window: window, Algorithm: store.SlidingCounter}
		// count 300: Remaining 4700; the count falls to 299 once
		// 300*(W-e')/W <= 299 in the next fixed window, e' = W/300 = 200ms.
		check(t, "cost 300 of 5000", e.hit(e.key("k"), rule, 300), want{true, 5000, 4700, 0, window + 200*time.Millisecond})
	})
	t.Run("gcra/above the log's bounds", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 5000, Window: window, Algorithm: store.GCRA}
		// T = 12ms per token: 300 tokens take 3.6s to come back.
		check(t, "cost 300 of 5000", e.hit(e.key("k"), rule, 300), want{true, 5000, 4700, 0, 3600 * time.Millisecond})
	})
	t.Run("counter/MaxCounterLimit", func(t *testing.T) {
		e := s.alignedEnv(t, window)
		rule := store.Rule{Limit: store.MaxCounterLimit, Window: window, Algorithm: store.SlidingCounter}
		key := e.key("k")
		// The count first drops below 1e9 one microsecond into the next
		// fixed window.
		check(t, "cost MaxCounterLimit", e.hit(key, rule, store.MaxCounterLimit),
			want{true, store.MaxCounterLimit, 0, 0, window + µs})
		check(t, "one more", e.hit(key, rule, 1),
			want{false, store.MaxCounterLimit, 0, window + µs, window + µs})
	})
	t.Run("gcra/MaxCounterLimit", func(t *testing.T) {
		e := s.env(t)
		// The longest window keeps a token (W/L = 31.6224ms) far above
		// the clock's float resolution.
		rule := store.Rule{Limit: store.MaxCounterLimit, Window: store.MaxWindow, Algorithm: store.GCRA}
		key := e.key("k")
		res := e.hit(key, rule, store.MaxCounterLimit)
		if !res.Allowed || res.Remaining != 0 || res.Limit != store.MaxCounterLimit {
			t.Errorf("cost MaxCounterLimit on a full bucket: %+v, want allowed with 0 remaining", res)
		}
		res = e.hit(key, rule, 1)
		if res.Allowed || res.Remaining != 0 || res.RetryAfter <= 0 || res.RetryAfter > 32*time.Millisecond {
			t.Errorf("one more: %+v, want denied with 0 remaining and RetryAfter in (0, 32ms]", res)
		}
		burst := store.Rule{Limit: 1, Window: window, Algorithm: store.GCRA, Burst: store.MaxCounterLimit}
		res = e.hit(e.key("burst"), burst, store.MaxCounterLimit)
		if !res.Allowed || res.Remaining != 0 || res.Limit != 1 {
			t.Errorf("cost MaxCounterLimit under Burst MaxCounterLimit: %+v, want allowed with limit 1 and 0 remaining", res)
		}
	})
}

func (s suite) testAlgorithmConcurrency(t *testing.T, alg store.Algorithm) {
	const goroutines = 200
	t.Run("DefaultClock", func(t *testing.T) {
		st := s.b.New(t, nil)
		rule := store.Rule{Limit: 50, Window: 10 * window, Algorithm: alg}
		key := uniqueKey(t, "k")
		if n := countAllowed(t, st, key, rule, goroutines); n != 50 {
			t.Errorf("%d concurrent hits with limit 50 admitted %d, want exactly 50", goroutines, n)
		}
		res, err := st.Hit(t.Context(), key, rule, 1)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed || res.Remaining != 0 {
			t.Errorf("hit after the burst: %+v, want denied with 0 remaining", res)
		}
	})
	t.Run("FrozenClock", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 50, Window: window, Algorithm: alg}
		key := e.key("k")
		if n := countAllowed(t, e.s, key, rule, goroutines); n != 50 {
			t.Errorf("%d hits in one instant with limit 50 admitted %d, want exactly 50", goroutines, n)
		}
		if res := e.hit(key, rule, 1); res.Allowed || res.Remaining != 0 {
			t.Errorf("hit after the burst: %+v, want denied with 0 remaining", res)
		}
	})
	t.Run("FrozenClockHitsAreDistinct", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 300, Window: window, Algorithm: alg}
		key := e.key("k")
		if n := countAllowed(t, e.s, key, rule, goroutines); n != goroutines {
			t.Errorf("%d hits in one instant with limit 300 admitted %d, want all", goroutines, n)
		}
		if res := e.hit(key, rule, 1); !res.Allowed || res.Remaining != 300-goroutines-1 {
			t.Errorf("hit after the burst: %+v, want allowed with %d remaining", res, 300-goroutines-1)
		}
	})
	if alg == store.GCRA {
		t.Run("FrozenClockBurst", func(t *testing.T) {
			e := s.env(t)
			rule := store.Rule{Limit: 50, Window: window, Algorithm: alg, Burst: 80}
			if n := countAllowed(t, e.s, e.key("k"), rule, goroutines); n != 80 {
				t.Errorf("%d hits in one instant with burst 80 admitted %d, want exactly 80", goroutines, n)
			}
		})
	}
}

func (s suite) testAlgorithmKeys(t *testing.T, alg store.Algorithm) {
	rule := store.Rule{Limit: 1, Window: window, Algorithm: alg}
	denied := func(t *testing.T, what string, res store.Result) {
		t.Helper()
		if res.Allowed || res.Remaining != 0 || res.RetryAfter <= 0 {
			t.Errorf("%s: %+v, want denied with 0 remaining and a RetryAfter", what, res)
		}
	}
	t.Run("Independent", func(t *testing.T) {
		e := s.env(t)
		k1, k2 := e.key("a"), e.key("b")
		if res := e.hit(k1, rule, 1); !res.Allowed {
			t.Fatalf("k1: %+v, want allowed", res)
		}
		denied(t, "k1 again", e.hit(k1, rule, 1))
		if res := e.hit(k2, rule, 1); !res.Allowed || res.Remaining != 0 {
			t.Errorf("k2: %+v, want allowed with 0 remaining", res)
		}
	})
	t.Run("Names", func(t *testing.T) {
		e := s.env(t)
		k := e.key("k")
		pairs := []struct{ name, key string }{
			{"", k}, {"a", k}, {"b", k}, {"a:b", k + "c"}, {"a", ":b" + k + "c"},
			{"ab", k}, {"a", "b" + k}, {"{tag}", k},
		}
		for _, p := range pairs {
			r := rule
			r.Name = p.name
			if res := e.hit(p.key, r, 1); !res.Allowed {
				t.Errorf("first under %q: %+v, want allowed", p.name, res)
			}
		}
		for _, p := range pairs {
			r := rule
			r.Name = p.name
			denied(t, "again under "+p.name, e.hit(p.key, r, 1))
		}
		// Undo finds the state through the receipt's name.
		r := rule
		r.Name = "undo"
		res := e.hit(k, r, 1)
		if res.Receipt.Rule != r {
			t.Fatalf("receipt rule = %+v, want %+v", res.Receipt.Rule, r)
		}
		e.undo(k, res.Receipt)
		if res := e.hit(k, r, 1); !res.Allowed {
			t.Errorf("after undo: %+v, want allowed", res)
		}
		r.Name = "a"
		denied(t, "other names untouched", e.hit(k, r, 1))
	})
	t.Run("LongKeyAndBraces", func(t *testing.T) {
		e := s.env(t)
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = 'a' + byte(i%26)
		}
		base := e.key("")
		long := base + string(buf)
		buf[len(buf)-1] = '#'
		keys := []string{
			long, base + string(buf), // differ in the last byte only
			base + "{", base + "}", base + "{}", base + "{user:1}", base + "{user:1}x", "{" + base + "}",
		}
		for _, k := range keys {
			if res := e.hit(k, rule, 1); !res.Allowed {
				t.Errorf("first hit on %q: %+v, want allowed", short(k), res)
			}
		}
		for _, k := range keys { // each is its own state
			denied(t, "again on "+short(k), e.hit(k, rule, 1))
		}
	})
}

// testAlgorithmsApart checks that the same key and name under two algorithms
// are two states.
func (s suite) testAlgorithmsApart(t *testing.T) {
	e := s.env(t)
	key := e.key("k")
	rules := map[store.Algorithm]store.Rule{}
	receipts := map[store.Algorithm]store.Receipt{}
	for _, alg := range algorithms {
		rules[alg] = store.Rule{Name: "same", Limit: 2, Window: window, Algorithm: alg}
		res := e.hit(key, rules[alg], 2)
		if !res.Allowed || res.Remaining != 0 {
			t.Fatalf("cost 2 of 2 under %v after the other algorithms took theirs: %+v, want allowed with 0 remaining", alg, res)
		}
		receipts[alg] = res.Receipt
	}
	for _, alg := range algorithms {
		if res := e.hit(key, rules[alg], 1); res.Allowed {
			t.Errorf("%v is full, yet a hit was allowed: %+v", alg, res)
		}
	}
	// Undoing one algorithm's hits frees that algorithm's state only.
	for _, undone := range []store.Algorithm{store.GCRA, store.SlidingCounter} {
		e.undo(key, receipts[undone])
		for _, alg := range algorithms {
			cost := 1
			if alg == undone {
				cost = 2
			}
			res := e.hit(key, rules[alg], cost)
			if want := alg == undone; res.Allowed != want {
				t.Errorf("after undoing the %v hits, cost %d under %v: %+v, want allowed = %v", undone, cost, alg, res, want)
			}
		}
	}
}

func (s suite) testAlgorithmContext(t *testing.T, alg store.Algorithm) {
	rule := store.Rule{Limit: 3, Window: window, Algorithm: alg}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	t.Run("Hit", func(t *testing.T) {
		e := s.env(t)
		key := e.key("k")
		if _, err := e.s.Hit(cancelled, key, rule, 1); !errors.Is(err, context.Canceled) {
			t.Errorf("Hit with a cancelled context = %v, want context.Canceled", err)
		}
		if _, err := e.s.Hit(expired, key, rule, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Hit past its deadline = %v, want context.DeadlineExceeded", err)
		}
		if got := e.remaining(key, rule); got != rule.Limit {
			t.Errorf("after failed hits the key has %d of %d left; want nothing recorded", got, rule.Limit)
		}
	})
	t.Run("Undo", func(t *testing.T) {
		e := s.env(t)
		key := e.key("k")
		res := e.hit(key, rule, 1)
		if err := e.s.Undo(cancelled, key, res.Receipt); !errors.Is(err, context.Canceled) {
			t.Errorf("Undo with a cancelled context = %v, want context.Canceled", err)
		}
		if got := e.remaining(key, rule); got != rule.Limit-1 {
			t.Errorf("after a failed undo the key has %d of %d left; want the hit kept", got, rule.Limit)
		}
	})
}

func (s suite) testAlgorithmUndoReceipts(t *testing.T, alg store.Algorithm) {
	rule := store.Rule{Limit: 2, Window: window, Algorithm: alg}
	t.Run("ZeroReceipt", func(t *testing.T) {
		e := s.env(t)
		key := e.key("k")
		e.hit(key, rule, 1)
		e.undo(key, store.Receipt{})
		if res := e.hit(key, rule, 1); !res.Allowed || res.Remaining != 0 {
			t.Errorf("after a zero undo: %+v, want the first hit kept (allowed, 0 remaining)", res)
		}
		e.undo(e.key("never-hit"), store.Receipt{})
	})
	t.Run("MalformedReceipt", func(t *testing.T) {
		e := s.env(t)
		key := e.key("k")
		res := e.hit(key, rule, 1)
		r := res.Receipt
		for _, bad := range []store.Receipt{
			{ID: r.ID, Rule: rule}, {Cost: r.Cost, Rule: rule},
			{ID: r.ID, Cost: -1, Rule: rule}, {Cost: -1, Rule: rule},
		} {
			if err := e.s.Undo(e.ctx, key, bad); !errors.Is(err, store.ErrInvalidArgument) {
				t.Errorf("Undo(%+v) = %v, want store.ErrInvalidArgument", bad, err)
			}
		}
		if res := e.hit(key, rule, 1); !res.Allowed || res.Remaining != 0 {
			t.Errorf("after malformed undos: %+v, want the first hit kept (allowed, 0 remaining)", res)
		}
	})
	t.Run("AfterHitsLeft", func(t *testing.T) {
		e := s.env(t)
		key := e.key("k")
		res := e.hit(key, rule, 2)
		e.advance(3 * window) // past any state the hit left
		e.undo(key, res.Receipt)
		if got := e.hit(key, rule, 1); !got.Allowed || got.Remaining != 1 {
			t.Errorf("hit after undoing hits that left: %+v, want allowed with 1 remaining", got)
		}
	})
}

// step is one move of a replayed history: advance the clock, then hit with
// cost (no hit when cost is 0).
type step struct {
	advance time.Duration
	cost    int
}

// exactCase is a state built by a history, from which RetryAfter and
// ResetAfter are checked against the store's own later decisions.
type exactCase struct {
	name    string
	rule    store.Rule
	history []step // replayed from the start of a fixed window of the rule
	costs   []int  // the costs probed; nil: every cost up to the capacity
}

var exactCases = []exactCase{
	{"log/uneven", store.Rule{Limit: 4, Window: window}, []step{
		{0, 1}, {7300 * time.Millisecond, 1}, {6400 * time.Millisecond, 2}, {6400 * time.Millisecond, 0},
	}, nil},
	{"log/microseconds", store.Rule{Limit: 3, Window: window}, []step{
		{777 * µs, 2}, {3333333 * µs, 1}, {window - 3333334*µs, 0},
	}, nil},
	{"counter/current window", store.Rule{Limit: 7, Window: window, Algorithm: store.SlidingCounter}, []step{
		{13100 * time.Millisecond, 5}, {41234567 * µs, 2},
	}, nil},
	{"counter/both windows", store.Rule{Limit: 7, Window: window, Algorithm: store.SlidingCounter}, []step{
		{13100 * time.Millisecond, 5}, {window, 1}, {3 * µs, 0},
	}, nil},
	{"counter/previous window", store.Rule{Limit: 10, Window: 90 * time.Second, Algorithm: store.SlidingCounter}, []step{
		{µs, 7}, {90 * time.Second, 0}, {17 * time.Second, 0},
	}, nil},
	{"counter/at the edge", store.Rule{Limit: 3, Window: 70 * time.Second, Algorithm: store.SlidingCounter}, []step{
		{0, 3}, {70*time.Second - µs, 0},
	}, nil},
	// Counts near a billion: the sum of the weighted count and curr is
	// rounded to 1.2e-7, so the closed form of the wait is off by a few
	// microseconds and the wait comes from the admission test itself.
	{"counter/large counts", store.Rule{Limit: 999999933, Window: window, Algorithm: store.SlidingCounter}, []step{
		{0, 3}, {window, 999999930}, {26609851 * µs, 0},
	}, []int{1, 2, 3, 7, 30}},
	{"counter/large counts at the limit", store.Rule{Limit: store.MaxCounterLimit, Window: window, Algorithm: store.SlidingCounter}, []step{
		{0, 1}, {window, 999999999}, {7 * µs, 0},
	}, []int{1, 2, 1000}},
	{"gcra/fractional token", store.Rule{Limit: 7, Window: window, Algorithm: store.GCRA, Burst: 5}, []step{
		{0, 5}, {9 * time.Second, 1},
	}, nil},
	{"gcra/burst above limit", store.Rule{Limit: 10, Window: window, Algorithm: store.GCRA, Burst: 20}, []step{
		{0, 20}, {18300 * time.Millisecond, 3},
	}, nil},
	{"gcra/one token per 23.3s", store.Rule{Limit: 3, Window: 70 * time.Second, Algorithm: store.GCRA}, []step{
		{0, 3}, {11 * time.Second, 0},
	}, nil},
}

// testExactness checks, on states built by uneven histories, that every
// denial's RetryAfter is the least wait: the same request is denied one
// microsecond earlier and allowed at it; and that ResetAfter is exact too:
// one microsecond earlier Remaining has not grown (GCRA: the bucket is not
// full), at it Remaining has grown (GCRA: the bucket is full).
func (s suite) testExactness(t *testing.T) {
	for _, tc := range exactCases {
		t.Run(tc.name, func(t *testing.T) {
			capacity := tc.rule.Capacity()
			replay := func(t *testing.T) (*env, string) {
				e := s.alignedEnv(t, tc.rule.Window)
				key := e.key("k")
				for _, st := range tc.history {
					e.advance(st.advance)
					if st.cost > 0 {
						if res := e.hit(key, tc.rule, st.cost); !res.Allowed {
							t.Fatalf("history hit of cost %d denied: %+v", st.cost, res)
						}
					}
				}
				return e, key
			}
			costs := tc.costs
			if costs == nil {
				for c := 1; c <= capacity; c++ {
					costs = append(costs, c)
				}
			}
			denials := 0
			for _, cost := range costs {
				e, key := replay(t)
				res := e.hit(key, tc.rule, cost)
				if res.Allowed {
					continue
				}
				denials++
				d := res.RetryAfter
				if d < µs || d != d.Truncate(µs) {
					t.Errorf("cost %d: denied with RetryAfter %v, want a whole number of microseconds, at least 1", cost, d)
					continue
				}
				if d > µs {
					e.advance(d - µs)
					if r := e.hit(key, tc.rule, cost); r.Allowed || r.RetryAfter != µs {
						t.Errorf("cost %d: %v after a denial with RetryAfter %v: %+v, want denied with RetryAfter 1µs", cost, d-µs, d, r)
					}
					e.advance(µs)
				} else {
					e.advance(d)
				}
				if r := e.hit(key, tc.rule, cost); !r.Allowed {
					t.Errorf("cost %d: %v after a denial with RetryAfter %v: %+v, want allowed", cost, d, d, r)
				}
			}
			if denials == 0 {
				t.Fatalf("no cost was denied: the history does not test RetryAfter")
			}

			// ResetAfter, read from a denial of the whole capacity.
			e, key := replay(t)
			p := e.hit(key, tc.rule, capacity)
			if p.Allowed || p.ResetAfter <= 0 {
				t.Fatalf("cost %d after the history: %+v, want denied with a ResetAfter", capacity, p)
			}
			d := p.ResetAfter
			if d > µs {
				e.advance(d - µs)
				q := e.hit(key, tc.rule, capacity)
				switch {
				case q.Allowed || q.ResetAfter != µs:
					t.Errorf("%v after ResetAfter %v: %+v, want denied with ResetAfter 1µs", d-µs, d, q)
				case tc.rule.Algorithm == store.GCRA && q.Remaining != capacity-1:
					t.Errorf("%v after ResetAfter %v: Remaining %d, want %d (not full yet)", d-µs, d, q.Remaining, capacity-1)
				case tc.rule.Algorithm != store.GCRA && q.Remaining != p.Remaining:
					t.Errorf("%v after ResetAfter %v: Remaining %d, want still %d", d-µs, d, q.Remaining, p.Remaining)
				}
				e.advance(µs)
			} else {
				e.advance(d)
			}
			q := e.hit(key, tc.rule, capacity)
			switch {
			case tc.rule.Algorithm == store.GCRA && !q.Allowed:
				t.Errorf("at ResetAfter %v: cost %d = %+v, want allowed on a full bucket", d, capacity, q)
			case !q.Allowed && q.Remaining <= p.Remaining:
				t.Errorf("at ResetAfter %v: Remaining %d, want above %d", d, q.Remaining, p.Remaining)
			}
		})
	}
}

// testSlidingCounter checks the sliding-window counter's arithmetic on cases
// worked out by hand from its definition (store.SlidingCounter), on a clock
// set to the start of a fixed window.
func (s suite) testSlidingCounter(t *testing.T) {
	ctr := func(limit int) store.Rule {
		return store.Rule{Limit: limit, Window: window, Algorithm: store.SlidingCounter}
	}
	const sec = time.Second

	t.Run("FixedWindowEdges", func(t *testing.T) {
		e := s.alignedEnv(t, window)
		rule := ctr(10)
		key := e.key("k")
		// e=0: curr 4. The count drops to 3 once 4*(W-e')/W <= 3 in the
		// next window: e' = 15s, 75s from now.
		check(t, "cost 4 at 0s", e.hit(key, rule, 4), want{true, 10, 6, 0, 75 * sec})
		e.advance(30 * sec)
		// curr 10; the count drops to 9 at e' = 6s of the next window.
		check(t, "cost 6 at 30s", e.hit(key, rule, 6), want{true, 10, 0, 0, 36 * sec})
		check(t, "cost 1 at 30s", e.hit(key, rule, 1), want{false, 10, 0, 36 * sec, 36 * sec})
		e.advance(30*sec - µs)
		check(t, "cost 1 at the window's last microsecond", e.hit(key, rule, 1), want{false, 10, 0, 6*sec + µs, 6*sec + µs})
		e.advance(µs)
		// Next window, e=0: the previous window weighs in fully.
		check(t, "cost 1 at the next window's start", e.hit(key, rule, 1), want{false, 10, 0, 6 * sec, 6 * sec})
		e.advance(6*sec - µs)
		check(t, "cost 1 at 5.999999s", e.hit(key, rule, 1), want{false, 10, 0, µs, µs})
		e.advance(µs)
		// e=6s: 10*54/60 = 9, plus 1 fits; curr 1, count 10, which drops
		// to 9 when 10*(W-e')/W + 1 <= 9: e' = 12s.
		check(t, "cost 1 at 6s", e.hit(key, rule, 1), want{true, 10, 0, 0, 6 * sec})
		e.advance(24 * sec)
		// e=30s: 10*30/60 + 1 = 6; curr 5 after; 9 again at e' = 36s.
		check(t, "cost 4 at 30s", e.hit(key, rule, 4), want{true, 10, 0, 0, 6 * sec})
		// curr+5 = 10 fits only once the previous window is gone: at the
		// next window's start, 5 + 5 = 10.
		check(t, "cost 5 at 30s", e.hit(key, rule, 5), want{false, 10, 0, 30 * sec, 6 * sec})
		// curr+6 = 11 waits into the next window for 5*(W-e')/W + 6 <= 10:
		// e' = 12s, 42s from now.
		check(t, "cost 6 at 30s", e.hit(key, rule, 6), want{false, 10, 0, 42 * sec, 6 * sec})
		e.advance(30 * sec)
		// e=0: prev 5, curr 5 after; 9 once 5*(W-e')/W + 5 <= 9: e' = 12s.
		check(t, "cost 5 at the next window's start", e.hit(key, rule, 5), want{true, 10, 0, 0, 12 * sec})
		e.advance(2 * window)
		// Two fixed windows later nothing counts; curr 1 drops to 0 only
		// when the window after next starts.
		check(t, "cost 1 two windows later", e.hit(key, rule, 1), want{true, 10, 9, 0, 2 * window})
	})

	t.Run("Weighting", func(t *testing.T) {
		e := s.alignedEnv(t, window)
		rule := ctr(10)
		key := e.key("k")
		// curr 7; 6 once 7*(W-e')/W <= 6 in the next window: e' = W/7,
		// rounded up to 8571429µs.
		check(t, "cost 7 at 0s", e.hit(key, rule, 7), want{true, 10, 3, 0, window + 8571429*µs})
		e.advance(window)
		// e=0: prev 7 counts fully; 7*(W-e')/W + 4 <= 10 at e' = W/7.
		check(t, "cost 4 at the next window's start", e.hit(key, rule, 4), want{false, 10, 3, 8571429 * µs, 8571429 * µs})
		e.advance(20 * sec)
		// e=20s: 7*40/60 = 4.67 (Remaining 10-5 = 5); plus 3 is 7.67
		// (Remaining 2), which drops to 7 when 7*(W-e')/W + 3 <= 7:
		// e' = 3W/7 = 25714285.7µs, rounded up to 5714286µs from now.
		check(t, "cost 3 at 20s", e.hit(key, rule, 3), want{true, 10, 2, 0, 5714286 * µs})
		// 7*(W-e')/W + 3 + 3 <= 10 at the same e'.
		check(t, "cost 3 at 20s", e.hit(key, rule, 3), want{false, 10, 2, 5714286 * µs, 5714286 * µs})
		// 9.67, Remaining 0; drops to 9 when 7*(W-e')/W + 5 <= 9: same e'.
		check(t, "cost 2 at 20s", e.hit(key, rule, 2), want{true, 10, 0, 0, 5714286 * µs})
		// 7*(W-e')/W + 5 + 4 <= 10 at e' = 6W/7 = 51428571.4µs.
		check(t, "cost 4 at 20s", e.hit(key, rule, 4), want{false, 10, 0, 31428572 * µs, 5714286 * µs})
		// curr+6 = 11: into the next window, 5*(W-e')/W + 6 <= 10 at
		// e' = 12s: 40s + 12s from now.
		check(t, "cost 6 at 20s", e.hit(key, rule, 6), want{false, 10, 0, 52 * sec, 5714286 * µs})
	})

	t.Run("Undo", func(t *testing.T) {
		e := s.alignedEnv(t, window)
		rule := ctr(10)
		key := e.key("k")
		r1 := e.hit(key, rule, 3)
		e.advance(window)
		// prev 3, curr 2: 5; 4 once 3*(W-e')/W + 2 <= 4: e' = 20s.
		r2 := e.hit(key, rule, 2)
		check(t, "cost 2 in the next window", r2, want{true, 10, 5, 0, 20 * sec})
		e.undo(key, r1.Receipt) // a hit of the previous fixed window
		// prev 0, curr 3; 2 once 3*(W-e')/W <= 2 in the next window.
		check(t, "cost 1 after undoing the previous window's hit", e.hit(key, rule, 1), want{true, 10, 7, 0, window + 20*sec})
		e.undo(key, r2.Receipt) // curr 3 - 2 = 1
		check(t, "cost 1 after undoing this window's hit", e.hit(key, rule, 1), want{true, 10, 8, 0, window + 30*sec})
		e.undo(key, r2.Receipt) // curr 2 - 2 = 0
		e.undo(key, r2.Receipt) // never below 0
		check(t, "cost 10 after undoing too much", e.hit(key, rule, 10), want{true, 10, 0, 0, window + 6*sec})
		e.advance(2 * window)
		r3 := e.hit(key, rule, 4)
		e.undo(key, r2.Receipt) // two windows back: counts nowhere any more
		check(t, "cost 6 after undoing an old hit", e.hit(key, rule, 6), want{true, 10, 0, 0, window + 6*sec})
		e.undo(key, r3.Receipt)
		// curr 6: 5 more wait until 6*(W-e')/W + 5 <= 10 in the next window,
		// e' = 10s; the count drops to 5 at the same time.
		check(t, "cost 5 after undoing cost 4", e.hit(key, rule, 5), want{false, 10, 4, window + 10*sec, window + 10*sec})
	})
}

// testGCRA checks GCRA's arithmetic on cases worked out by hand from its
// definition (store.GCRA), with whole-microsecond token intervals.
func (s suite) testGCRA(t *testing.T) {
	gcra := func(limit, burst int) store.Rule {
		return store.Rule{Limit: limit, Window: window, Algorithm: store.GCRA, Burst: burst}
	}
	const sec = time.Second

	t.Run("Refill", func(t *testing.T) {
		e := s.env(t)
		rule := gcra(10, 0) // one token every 6s
		key := e.key("k")
		check(t, "cost 1 on a full bucket", e.hit(key, rule, 1), want{true, 10, 9, 0, 6 * sec})
		check(t, "cost 9", e.hit(key, rule, 9), want{true, 10, 0, 0, 60 * sec})
		check(t, "cost 1 on an empty bucket", e.hit(key, rule, 1), want{false, 10, 0, 6 * sec, 60 * sec})
		e.advance(6*sec - µs)
		check(t, "cost 1 at 5.999999s", e.hit(key, rule, 1), want{false, 10, 0, µs, 54*sec + µs})
		e.advance(µs)
		check(t, "cost 1 at 6s", e.hit(key, rule, 1), want{true, 10, 0, 0, 60 * sec})
		e.advance(30 * sec)
		// Five tokens came back; six need one more.
		check(t, "cost 6 at 36s", e.hit(key, rule, 6), want{false, 10, 5, 6 * sec, 30 * sec})
		check(t, "cost 5 at 36s", e.hit(key, rule, 5), want{true, 10, 0, 0, 60 * sec})
	})

	t.Run("RemainingIsWholeTokens", func(t *testing.T) {
		e := s.env(t)
		rule := gcra(10, 0)
		key := e.key("k")
		check(t, "cost 1", e.hit(key, rule, 1), want{true, 10, 9, 0, 6 * sec})
		e.advance(sec)
		// 9 + 1/6 tokens before, 8 + 1/6 after.
		check(t, "cost 1 at 1s", e.hit(key, rule, 1), want{true, 10, 8, 0, 11 * sec})
		e.advance(5 * sec)
		check(t, "cost 1 at 6s", e.hit(key, rule, 1), want{true, 10, 8, 0, 12 * sec})
	})

	t.Run("ResetUntilFull", func(t *testing.T) {
		e := s.env(t)
		rule := gcra(10, 0)
		key := e.key("k")
		check(t, "cost 10", e.hit(key, rule, 10), want{true, 10, 0, 0, 60 * sec})
		e.advance(59 * sec)
		// 9 + 5/6 tokens: 9 whole ones; full in 1s.
		check(t, "cost 10 at 59s", e.hit(key, rule, 10), want{false, 10, 9, sec, sec})
		e.advance(sec)
		check(t, "cost 10 at 60s", e.hit(key, rule, 10), want{true, 10, 0, 0, 60 * sec})
		e.advance(2 * window)
		// The bucket holds no more than its capacity after a long rest.
		check(t, "cost 1 after a long rest", e.hit(key, rule, 1), want{true, 10, 9, 0, 6 * sec})
		check(t, "cost 10 after it", e.hit(key, rule, 10), want{false, 10, 9, 6 * sec, 6 * sec})
	})

	t.Run("BurstAboveLimit", func(t *testing.T) {
		e := s.env(t)
		rule := gcra(10, 20) // 20 tokens, one back every 6s
		key := e.key("k")
		check(t, "cost 15 above the limit", e.hit(key, rule, 15), want{true, 10, 5, 0, 90 * sec})
		check(t, "cost 5", e.hit(key, rule, 5), want{true, 10, 0, 0, 120 * sec})
		check(t, "cost 1 on an empty bucket", e.hit(key, rule, 1), want{false, 10, 0, 6 * sec, 120 * sec})
		e.advance(window)
		// The limit per window comes back: 10 tokens.
		check(t, "cost 11 a window later", e.hit(key, rule, 11), want{false, 10, 10, 6 * sec, 60 * sec})
		check(t, "cost 10 a window later", e.hit(key, rule, 10), want{true, 10, 0, 0, 120 * sec})
	})

	t.Run("BurstBelowLimit", func(t *testing.T) {
		e := s.env(t)
		rule := gcra(10, 3) // 3 tokens, one back every 6s
		key := e.key("k")
		check(t, "cost 3", e.hit(key, rule, 3), want{true, 10, 0, 0, 18 * sec})
		check(t, "cost 1 on an empty bucket", e.hit(key, rule, 1), want{false, 10, 0, 6 * sec, 18 * sec})
		e.advance(12 * sec)
		check(t, "cost 2 at 12s", e.hit(key, rule, 2), want{true, 10, 0, 0, 18 * sec})
		e.advance(10 * window)
		check(t, "cost 1 after a long rest", e.hit(key, rule, 1), want{true, 10, 2, 0, 6 * sec})
	})

	t.Run("Undo", func(t *testing.T) {
		e := s.env(t)
		rule := gcra(10, 0)
		key := e.key("k")
		r1 := e.hit(key, rule, 4)
		check(t, "cost 4", r1, want{true, 10, 6, 0, 24 * sec})
		r2 := e.hit(key, rule, 6)
		check(t, "cost 6", r2, want{true, 10, 0, 0, 60 * sec})
		check(t, "cost 1 on an empty bucket", e.hit(key, rule, 1), want{false, 10, 0, 6 * sec, 60 * sec})
		e.undo(key, r1.Receipt) // four tokens back
		check(t, "cost 4 after the refund", e.hit(key, rule, 4), want{true, 10, 0, 0, 60 * sec})
		check(t, "cost 1 after it", e.hit(key, rule, 1), want{false, 10, 0, 6 * sec, 60 * sec})
		e.advance(30 * sec)
		e.undo(key, r2.Receipt) // six back: the bucket is full, not fuller
		check(t, "cost 1 after a refund past full", e.hit(key, rule, 1), want{true, 10, 9, 0, 6 * sec})
		check(t, "cost 10 after it", e.hit(key, rule, 10), want{false, 10, 9, 6 * sec, 6 * sec})

		other := e.key("other")
		r := e.hit(other, rule, 2)
		e.undo(other, r.Receipt)
		e.undo(other, r.Receipt) // a second refund finds the bucket full
		check(t, "cost 10 after refunding twice", e.hit(other, rule, 10), want{true, 10, 0, 0, 60 * sec})
	})

	t.Run("WholeTokensOfAFractionalInterval", func(t *testing.T) {
		// 9 per minute: a token every 6666666.7µs. Each hit on a full
		// bucket leaves exactly one token less, however the float times
		// round.
		e := s.env(t)
		rule := store.Rule{Limit: 9, Window: time.Minute, Algorithm: store.GCRA}
		key := e.key("k")
		for i := 1; i <= 9; i++ {
			if res := e.hit(key, rule, 1); !res.Allowed || res.Remaining != 9-i {
				t.Fatalf("hit %d: %+v, want allowed with %d remaining", i, res, 9-i)
			}
		}
	})

	t.Run("FractionalTokens", func(t *testing.T) {
		e := s.env(t)
		rule := store.Rule{Limit: 3, Window: 70 * time.Second, Algorithm: store.GCRA} // a token every 23.3s
		key := e.key("k")
		res := e.hit(key, rule, 3)
		if !res.Allowed || res.Remaining != 0 || res.ResetAfter < 70*sec-µs || res.ResetAfter > 70*sec+µs {
			t.Errorf("cost 3 of 3: %+v, want allowed with 0 remaining and ResetAfter 70s (within float rounding)", res)
		}
		e.advance(23 * sec)
		// 23/23.33 of a token: none whole yet. The token is there after
		// 333333.3µs: GCRA's times are rounded to the nearest microsecond.
		res = e.hit(key, rule, 1)
		if res.Allowed || res.Remaining != 0 || res.RetryAfter != 333333*µs {
			t.Errorf("cost 1 at 23s: %+v, want denied with 0 remaining and RetryAfter 333333µs", res)
		}
		e.advance(333333 * µs)
		if res := e.hit(key, rule, 1); !res.Allowed || res.Remaining != 0 {
			t.Errorf("cost 1 at 23.333333s: %+v, want allowed with 0 remaining", res)
		}
	})
}
