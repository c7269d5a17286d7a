package storetest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

// hitAll calls HitAll, fails the test on error and checks the shape every
// outcome has: all parts allowed, each with a receipt of its own cost and
// rule and no RetryAfter, or none allowed, none with a receipt, and a
// RetryAfter on at least one; every Limit echoes its rule.
func (e *env) hitAll(hits []store.Hit) []store.Result {
	e.t.Helper()
	out := make([]store.Result, len(hits))
	if err := e.s.HitAll(e.ctx, hits, out); err != nil {
		e.t.Fatalf("HitAll(%d parts): %v", len(hits), err)
	}
	checkStack(e.t, hits, out)
	return out
}

// checkStack checks the shape of the outcome out of a HitAll of hits (see
// env.hitAll).
func checkStack(t *testing.T, hits []store.Hit, out []store.Result) {
	t.Helper()
	allowed, retry := 0, 0
	for i, r := range out {
		if r.Limit != hits[i].Rule.Limit {
			t.Errorf("part %d: Limit %d, want the rule's %d", i, r.Limit, hits[i].Rule.Limit)
		}
		if r.RetryAfter > 0 {
			retry++
		}
		if !r.Allowed {
			if !r.Receipt.IsZero() {
				t.Errorf("part %d: denied with receipt %+v, want the zero receipt", i, r.Receipt)
			}
			continue
		}
		allowed++
		if r.Receipt.ID == 0 || r.Receipt.Cost != hits[i].Cost || r.Receipt.Rule != hits[i].Rule {
			t.Errorf("part %d: allowed with receipt %+v, want one of cost %d under %+v", i, r.Receipt, hits[i].Cost, hits[i].Rule)
		}
	}
	switch {
	case allowed != 0 && allowed != len(out):
		t.Errorf("HitAll allowed %d of %d parts, want all or none", allowed, len(out))
	case allowed == len(out) && retry > 0:
		t.Errorf("HitAll allowed every part, yet %d carry a RetryAfter", retry)
	case allowed == 0 && retry == 0:
		t.Errorf("HitAll denied the stack, yet no part carries a RetryAfter")
	}
}

// checkAll compares each outcome of a stack with its wanted value.
func checkAll(t *testing.T, what string, out []store.Result, ws ...want) {
	t.Helper()
	if len(out) != len(ws) {
		t.Fatalf("%s: %d results, want %d", what, len(out), len(ws))
	}
	for i := range ws {
		check(t, what+", part "+strconv.Itoa(i), out[i], ws[i])
	}
}

// testStack checks WindowStore.HitAll: all or nothing, what a denied stack
// reports, receipts, bad input, and a denied stack counted nowhere under
// concurrency and across keys.
func (s suite) testStack(t *testing.T) {
	t.Run("AllOrNothing", s.testStackAllOrNothing)
	t.Run("MixedAlgorithms", s.testStackMixed)
	for _, alg := range algorithms {
		t.Run("OnePartEqualsHit/"+alg.String(), func(t *testing.T) { s.testStackOnePart(t, alg) })
	}
	t.Run("Receipts", s.testStackReceipts)
	t.Run("InvalidArgument", s.testStackInvalidArgument)
	for _, alg := range algorithms {
		t.Run("Concurrency/"+alg.String(), func(t *testing.T) { s.testStackConcurrency(t, alg, false) })
	}
	for _, alg := range algorithms {
		t.Run("DifferentKeys/"+alg.String(), func(t *testing.T) { s.testStackDifferentKeys(t, alg) })
		t.Run("DifferentKeysConcurrency/"+alg.String(), func(t *testing.T) { s.testStackConcurrency(t, alg, true) })
	}
	t.Run("Context", s.testStackContext)
}

func (s suite) testStackAllOrNothing(t *testing.T) {
	e := s.env(t)
	key := e.key("k")
	a := store.Rule{Name: "burst", Limit: 2, Window: window}
	b := store.Rule{Name: "daily", Limit: 5, Window: window}
	stack := []store.Hit{{Key: key, Rule: a, Cost: 1}, {Key: key, Rule: b, Cost: 1}}
	checkAll(t, "first", e.hitAll(stack), want{true, 2, 1, 0, window}, want{true, 5, 4, 0, window})
	checkAll(t, "second", e.hitAll(stack), want{true, 2, 0, 0, window}, want{true, 5, 3, 0, window})
	e.advance(time.Second)
	// a is full: neither records; b reports its state without this call.
	checkAll(t, "third", e.hitAll(stack),
		want{false, 2, 0, window - time.Second, window - time.Second}, want{false, 5, 3, 0, window - time.Second})
	check(t, "b after the denied stack", e.hit(key, b, 3), want{true, 5, 0, 0, window - time.Second})

	e.advance(window - time.Second) // the hits at 0s left; b holds 3 hits at 1s
	// b is full, a fits: a is empty and stays so.
	checkAll(t, "a fits, b does not", e.hitAll([]store.Hit{{Key: key, Rule: a, Cost: 2}, {Key: key, Rule: b, Cost: 3}}),
		want{false, 2, 2, 0, 0}, want{false, 5, 2, time.Second, time.Second})
	check(t, "a after the denied stack", e.hit(key, a, 2), want{true, 2, 0, 0, window})
}

// testStackMixed decides a stack of the three algorithms on one key, with
// values worked out by hand from their definitions.
func (s suite) testStackMixed(t *testing.T) {
	e := s.alignedEnv(t, window)
	key := e.key("k")
	logR := store.Rule{Name: "log", Limit: 3, Window: window}
	ctrR := store.Rule{Name: "counter", Limit: 5, Window: window, Algorithm: store.SlidingCounter}
	gcraR := store.Rule{Name: "gcra", Limit: 10, Window: window, Algorithm: store.GCRA, Burst: 4} // a token every 6s
	stack := func(log, ctr, gcra int) []store.Hit {
		return []store.Hit{{Key: key, Rule: logR, Cost: log}, {Key: key, Rule: ctrR, Cost: ctr}, {Key: key, Rule: gcraR, Cost: gcra}}
	}
	const sec = time.Second
	// counter: curr 2, at 1 once 2*(W-e')/W <= 1 in the next window (e' = 30s).
	checkAll(t, "1,2,2 at 0s", e.hitAll(stack(1, 2, 2)),
		want{true, 3, 2, 0, 60 * sec}, want{true, 5, 3, 0, 90 * sec}, want{true, 10, 2, 0, 12 * sec})
	// GCRA holds 2 tokens: 3 need another 6s.
	checkAll(t, "1,2,3 at 0s", e.hitAll(stack(1, 2, 3)),
		want{false, 3, 2, 0, 60 * sec}, want{false, 5, 3, 0, 90 * sec}, want{false, 10, 2, 6 * sec, 12 * sec})
	// counter: 2+4 = 6 waits for 2*(W-e')/W + 4 <= 5 in the next window.
	checkAll(t, "1,4,3 at 0s", e.hitAll(stack(1, 4, 3)),
		want{false, 3, 2, 0, 60 * sec}, want{false, 5, 3, 90 * sec, 90 * sec}, want{false, 10, 2, 6 * sec, 12 * sec})
	// log: 1+3 = 4 waits for the hit at 0s to leave.
	checkAll(t, "3,2,2 at 0s", e.hitAll(stack(3, 2, 2)),
		want{false, 3, 2, 60 * sec, 60 * sec}, want{false, 5, 3, 0, 90 * sec}, want{false, 10, 2, 0, 12 * sec})
	e.advance(6 * sec)
	// counter: curr 4, at 3 once 4*(W-e')/W <= 3 in the next window
	// (e' = 15s), 54s + 15s from now.
	checkAll(t, "1,2,3 at 6s", e.hitAll(stack(1, 2, 3)),
		want{true, 3, 1, 0, 54 * sec}, want{true, 5, 1, 0, 69 * sec}, want{true, 10, 0, 0, 24 * sec})
	// The denied stacks recorded nothing: each rule holds exactly the two
	// admitted stacks' hits.
	check(t, "log alone", e.hit(key, logR, 2), want{false, 3, 1, 54 * sec, 54 * sec})
	check(t, "counter alone", e.hit(key, ctrR, 2), want{false, 5, 1, 69 * sec, 69 * sec})
	check(t, "gcra alone", e.hit(key, gcraR, 1), want{false, 10, 0, 6 * sec, 24 * sec})
}

// testStackOnePart runs the same traffic through Hit on one key and through
// one-part HitAlls on another, and wants the same decisions.
func (s suite) testStackOnePart(t *testing.T, alg store.Algorithm) {
	e := s.env(t)
	rule := store.Rule{Name: "one", Limit: 5, Window: window, Algorithm: alg}
	if alg == store.GCRA {
		rule.Burst = 7
	}
	k1, k2 := e.key("hit"), e.key("stack")
	steps := []struct {
		advance time.Duration
		cost    int
		undo    bool // undo the previous allowed decision's hits first
	}{
		{0, 1, false}, {0, 3, false}, {0, 2, false}, {7 * time.Second, 1, false}, {0, 4, true},
		{13500 * time.Millisecond, 2, false}, {window - 20*time.Second, 3, false}, {µs, 5, false},
		{0, 1, true}, {2 * window, 1, false}, {0, 5, false},
	}
	var last1, last2 store.Receipt
	for i, st := range steps {
		e.advance(st.advance)
		if st.undo {
			e.undo(k1, last1)
			e.undo(k2, last2)
		}
		r1 := e.hit(k1, rule, st.cost)
		r2 := e.hitAll([]store.Hit{{Key: k2, Rule: rule, Cost: st.cost}})[0]
		w := want{r1.Allowed, r1.Limit, r1.Remaining, r1.RetryAfter, r1.ResetAfter}
		check(t, "step "+strconv.Itoa(i)+": HitAll against Hit", r2, w)
		if r1.Allowed {
			last1, last2 = r1.Receipt, r2.Receipt
		}
	}
}

// testStackReceipts checks that each part of an admitted stack gets a
// receipt that undoes that part.
func (s suite) testStackReceipts(t *testing.T) {
	e := s.env(t)
	k1, k2 := e.key("one"), e.key("two")
	stack := []store.Hit{
		{Key: k1, Rule: store.Rule{Name: "x", Limit: 2, Window: window}, Cost: 2},
		{Key: k1, Rule: store.Rule{Name: "x", Limit: 3, Window: window, Algorithm: store.SlidingCounter}, Cost: 3},
		{Key: k2, Rule: store.Rule{Name: "x", Limit: 4, Window: window, Algorithm: store.GCRA}, Cost: 4},
	}
	out := e.hitAll(stack)
	if !out[0].Allowed {
		t.Fatalf("stack on fresh keys denied: %+v", out)
	}
	if again := e.hitAll(stack); again[0].Allowed {
		t.Fatalf("full stack admitted again: %+v", again)
	}
	for i, h := range stack {
		e.undo(h.Key, out[i].Receipt)
		for j, h2 := range stack {
			res := e.hit(h2.Key, h2.Rule, h2.Cost)
			if want := j <= i; res.Allowed != want {
				t.Errorf("after undoing parts 0..%d, part %d alone: %+v, want allowed = %v", i, j, res, want)
			}
			if res.Allowed {
				e.undo(h2.Key, res.Receipt)
			}
		}
	}
	checkAll(t, "after undoing every part", e.hitAll(stack),
		want{true, 2, 0, 0, window}, want{true, 3, 0, 0, out[1].ResetAfter}, want{true, 4, 0, 0, window})
}

func (s suite) testStackInvalidArgument(t *testing.T) {
	rule := func(name string, alg store.Algorithm) store.Rule {
		return store.Rule{Name: name, Limit: 3, Window: window, Algorithm: alg}
	}
	type tc struct {
		name  string
		extra []store.Hit // appended to the valid parts; nil entries of keys filled in
		out   int         // len(out) minus len(hits)
		none  bool        // no parts at all
	}
	cases := []tc{
		{name: "out shorter", out: -1},
		{name: "out longer", out: 1},
		{name: "empty stack", none: true},
		{name: "duplicate part", extra: []store.Hit{{Key: "k1", Rule: rule("a", store.SlidingLog), Cost: 1}}},
		{name: "duplicate part with another limit", extra: []store.Hit{{Key: "k1", Rule: store.Rule{Name: "b", Limit: 9, Window: time.Hour, Algorithm: store.SlidingCounter}, Cost: 1}}},
		{name: "zero cost", extra: []store.Hit{{Key: "k3", Rule: rule("d", store.SlidingCounter), Cost: 0}}},
		{name: "empty key", extra: []store.Hit{{Key: "", Rule: rule("d", store.GCRA), Cost: 1}}},
		{name: "burst on a log", extra: []store.Hit{{Key: "k3", Rule: store.Rule{Name: "d", Limit: 3, Window: window, Burst: 3}, Cost: 1}}},
		{name: "cost above burst", extra: []store.Hit{{Key: "k3", Rule: store.Rule{Name: "d", Limit: 9, Window: window, Algorithm: store.GCRA, Burst: 2}, Cost: 3}}},
		{name: "limit above MaxCounterLimit", extra: []store.Hit{{Key: "k3", Rule: rule("d", store.GCRA), Cost: 1}}},
	}
	cases[len(cases)-1].extra[0].Rule.Limit = store.MaxCounterLimit + 1
	var tooMany []store.Hit
	for i := range store.MaxStack + 1 - 3 {
		tooMany = append(tooMany, store.Hit{Key: "k3", Rule: rule("n"+strconv.Itoa(i), store.SlidingLog), Cost: 1})
	}
	cases = append(cases, tc{name: "more than 16 parts", extra: tooMany})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := s.env(t)
			keys := map[string]string{"k1": e.key("k1"), "k2": e.key("k2"), "k3": e.key("k3"), "": ""}
			valid := []store.Hit{
				{Key: keys["k1"], Rule: rule("a", store.SlidingLog), Cost: 1},
				{Key: keys["k1"], Rule: rule("b", store.SlidingCounter), Cost: 1},
				{Key: keys["k2"], Rule: rule("c", store.GCRA), Cost: 1},
			}
			var hits []store.Hit
			if !c.none {
				hits = append(hits, valid...)
				for _, h := range c.extra {
					h.Key = keys[h.Key]
					hits = append(hits, h)
				}
			}
			out := make([]store.Result, len(hits)+c.out)
			if err := e.s.HitAll(e.ctx, hits, out); !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("HitAll = %v, want store.ErrInvalidArgument", err)
			}
			for i, r := range out {
				if r.Allowed {
					t.Errorf("out[%d] reports allowed after a rejected HitAll: %+v", i, r)
				}
			}
			if c.none {
				if err := e.s.HitAll(e.ctx, []store.Hit{}, []store.Result{}); !errors.Is(err, store.ErrInvalidArgument) {
					t.Fatalf("HitAll of an empty slice = %v, want store.ErrInvalidArgument", err)
				}
			}
			// Each valid part, once per state, still has its whole limit.
			type state struct {
				key, name string
				alg       store.Algorithm
			}
			probed := map[state]bool{}
			for _, h := range hits {
				st := state{h.Key, h.Rule.Name, h.Rule.Algorithm}
				if probed[st] || store.ValidateHit(h.Key, h.Rule, h.Cost) != nil {
					continue
				}
				probed[st] = true
				if got := e.remaining(h.Key, h.Rule); got != h.Rule.Limit {
					t.Errorf("after a rejected HitAll, %+v has %d of %d left; want nothing recorded", h.Rule, got, h.Rule.Limit)
				}
			}
		})
	}

	t.Run("Distinct parts", func(t *testing.T) {
		// The same name under another algorithm or key, and 16 parts,
		// are valid.
		e := s.env(t)
		k, k2 := e.key("k"), e.key("k2")
		var hits []store.Hit
		for _, alg := range algorithms {
			hits = append(hits, store.Hit{Key: k, Rule: rule("x", alg), Cost: 1}, store.Hit{Key: k2, Rule: rule("x", alg), Cost: 1})
		}
		for i := len(hits); i < store.MaxStack; i++ {
			hits = append(hits, store.Hit{Key: k, Rule: rule("n"+strconv.Itoa(i), algorithms[i%len(algorithms)]), Cost: 1})
		}
		for i, r := range e.hitAll(hits) {
			if !r.Allowed || r.Remaining != 2 {
				t.Errorf("part %d: %+v, want allowed with 2 remaining", i, r)
			}
		}
	})
}

// testStackConcurrency sends 200 simultaneous HitAlls of a stack of 5 per
// minute (a sliding log) and 20 per hour (under alg), on one key or, with
// apart, on two keys (which a Cluster keeps in different slots). Once every
// call returned, both rules hold exactly the admitted requests' hits; on one
// key exactly 5 are admitted.
func (s suite) testStackConcurrency(t *testing.T, alg store.Algorithm, apart bool) {
	const goroutines = 200
	e := s.env(t)
	minute := store.Rule{Name: "per-minute", Limit: 5, Window: time.Minute}
	hour := store.Rule{Name: "per-hour", Limit: 20, Window: time.Hour, Algorithm: alg}
	k1, k2 := e.key("user"), e.key("ip")
	if !apart {
		k2 = k1
	}
	stack := []store.Hit{{Key: k1, Rule: minute, Cost: 1}, {Key: k2, Rule: hour, Cost: 1}}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		outs  = make([][]store.Result, goroutines)
		errs  = make([]error, goroutines)
	)
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			outs[i] = make([]store.Result, len(stack))
			errs[i] = e.s.HitAll(e.ctx, stack, outs[i])
		}()
	}
	close(start)
	wg.Wait()
	admitted := 0
	for i, out := range outs {
		if errs[i] != nil {
			t.Fatalf("HitAll %d: %v", i, errs[i])
		}
		checkStack(t, stack, out)
		if out[0].Allowed {
			admitted++
		}
	}
	switch {
	case !apart && admitted != 5:
		t.Errorf("%d simultaneous stacks on one key admitted %d, want exactly 5", goroutines, admitted)
	case admitted < 1 || admitted > 5:
		t.Errorf("%d simultaneous stacks admitted %d, want between 1 and 5", goroutines, admitted)
	case admitted < 5:
		t.Logf("%d simultaneous stacks on keys apart admitted %d of 5", goroutines, admitted)
	}
	// Each rule holds the admitted requests' hits and nothing else.
	if left := minute.Limit - admitted; left > 0 {
		check(t, "per-minute after the burst", e.hit(k1, minute, left), want{true, 5, 0, 0, time.Minute})
	}
	if res := e.hit(k1, minute, 1); res.Allowed {
		t.Errorf("per-minute after the burst and a top-up: %+v, want denied", res)
	}
	if res := e.hit(k2, hour, 1); !res.Allowed || res.Remaining != hour.Limit-admitted-1 {
		t.Errorf("per-hour after %d admitted stacks: %+v, want allowed with %d remaining", admitted, res, hour.Limit-admitted-1)
	}
}

// testStackDifferentKeys checks that a stack whose parts are keyed by
// different identities, denied by one part, leaves the other untouched,
// whichever part comes first.
func (s suite) testStackDifferentKeys(t *testing.T, alg store.Algorithm) {
	e := s.alignedEnv(t, window)
	user, ip := e.key("user"), e.key("ip")
	a := store.Rule{Name: "user", Limit: 5, Window: window}
	b := store.Rule{Name: "ip", Limit: 1, Window: window, Algorithm: alg}
	e.hit(ip, b, 1)
	// b's denial at the start of a fixed window: the log and GCRA wait a
	// window; the counter waits for the next window to pass.
	wantB := want{false, 1, 0, window, window}
	if alg == store.SlidingCounter {
		wantB = want{false, 1, 0, 2 * window, 2 * window}
	}
	checkAll(t, "a then b", e.hitAll([]store.Hit{{Key: user, Rule: a, Cost: 1}, {Key: ip, Rule: b, Cost: 1}}),
		want{false, 5, 5, 0, 0}, wantB)
	checkAll(t, "b then a", e.hitAll([]store.Hit{{Key: ip, Rule: b, Cost: 1}, {Key: user, Rule: a, Cost: 2}}),
		wantB, want{false, 5, 5, 0, 0})
	check(t, "a alone", e.hit(user, a, 5), want{true, 5, 0, 0, window})
}

func (s suite) testStackContext(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	e := s.env(t)
	k1, k2 := e.key("a"), e.key("b")
	stack := []store.Hit{
		{Key: k1, Rule: store.Rule{Limit: 3, Window: window}, Cost: 1},
		{Key: k1, Rule: store.Rule{Limit: 3, Window: window, Algorithm: store.SlidingCounter}, Cost: 1},
		{Key: k2, Rule: store.Rule{Limit: 3, Window: window, Algorithm: store.GCRA}, Cost: 1},
	}
	out := make([]store.Result, len(stack))
	if err := e.s.HitAll(cancelled, stack, out); !errors.Is(err, context.Canceled) {
		t.Errorf("HitAll with a cancelled context = %v, want context.Canceled", err)
	}
	for _, h := range stack {
		if got := e.remaining(h.Key, h.Rule); got != 3 {
			t.Errorf("after a failed HitAll, %+v has %d of 3 left; want nothing recorded", h.Rule, got)
		}
	}
}
