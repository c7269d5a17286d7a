package redisstore_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

var paritySeed = flag.Uint64("parity.seed", 0, "seed of TestParity's random traffic (0: a new seed per run)")

// parityDecisions is the number of decisions TestParity compares per
// algorithm and target (a stack's parts count as one); -short runs a fifth.
const parityDecisions = 2000

// parityClock is the fake clock both stores of TestParity read.
type parityClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *parityClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *parityClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// parityRules are the rules of TestParity's traffic, per algorithm. Windows
// and token intervals are long (at least 10s and 1s) so that a real server,
// which expires keys on its own clock, keeps every state as long as the
// fake clock still counts it.
var parityRules = map[store.Algorithm][]store.Rule{
	store.SlidingLog: {
		{Name: "a", Limit: 5, Window: time.Minute},
		{Name: "b", Limit: 3, Window: 10 * time.Second},
		{Name: "c", Limit: 40, Window: time.Hour},
		// Resets beyond what a packed reply holds (reply.lua): the script
		// answers with the table.
		{Name: "d", Limit: 4, Window: 8 * 24 * time.Hour},
	},
	store.SlidingCounter: {
		{Name: "a", Limit: 5, Window: time.Minute, Algorithm: store.SlidingCounter},
		{Name: "b", Limit: 7, Window: 47 * time.Second, Algorithm: store.SlidingCounter},
		{Name: "c", Limit: 1000, Window: time.Hour, Algorithm: store.SlidingCounter},
		{Name: "d", Limit: 1, Window: 10 * time.Second, Algorithm: store.SlidingCounter},
		{Name: "e", Limit: store.MaxCounterLimit, Window: time.Minute, Algorithm: store.SlidingCounter},
	},
	store.GCRA: {
		{Name: "a", Limit: 5, Window: time.Minute, Algorithm: store.GCRA},
		{Name: "b", Limit: 7, Window: 47 * time.Second, Algorithm: store.GCRA, Burst: 3},
		{Name: "c", Limit: 4, Window: 10 * time.Second, Algorithm: store.GCRA, Burst: 9},
		{Name: "d", Limit: 3, Window: time.Hour, Algorithm: store.GCRA},
		{Name: "e", Limit: store.MaxCounterLimit, Window: store.MaxWindow, Algorithm: store.GCRA},
	},
}

// TestParity drives memstore and redisstore with the same random traffic on
// the same fake clock (random keys from a small set, random costs, random
// steps of the clock, many of them onto or next to the edges of fixed
// windows and retry times, random Undo of earlier receipts, and stacks) and
// wants every decision identical, field by field. Rerun a failure with
// -parity.seed.
func TestParity(t *testing.T) {
	seed := *paritySeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("TestParity seed %d: rerun with -run TestParity -parity.seed=%d", seed, seed)
		}
	})
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		for _, alg := range []store.Algorithm{store.SlidingLog, store.SlidingCounter, store.GCRA} {
			t.Run(alg.String(), func(t *testing.T) {
				clock := &parityClock{}
				mem, err := memstore.New(memstore.WithClock(clock.Now))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = mem.Close() })
				red, err := redisstore.New(tg.Client, redisstore.WithPrefix("sluicetest:"+tg.Token+":"), redisstore.WithClock(clock.Now))
				if err != nil {
					t.Fatal(err)
				}
				p := &parity{
					t: t, ctx: t.Context(), rng: rand.New(rand.NewPCG(seed, uint64(alg))),
					clock: clock, mem: mem, red: red, rules: parityRules[alg],
				}
				n := parityDecisions
				if testing.Short() {
					n /= 5
				}
				p.run(n)
			})
		}
	})
}

// parity is one run of TestParity: two stores, their clock and the traffic's
// state.
type parity struct {
	t        *testing.T
	ctx      context.Context
	rng      *rand.Rand
	clock    *parityClock
	mem, red store.Store
	rules    []store.Rule
	keys     [3]string

	receipts  []receiptPair  // receipts of allowed decisions not undone yet
	lastRetry time.Duration  // RetryAfter of the last denial
	stats     map[string]int // what the traffic did, for the log
}

// receiptPair is what each store returned for one allowed decision.
type receiptPair struct {
	key      string
	mem, red store.Receipt
}

func (p *parity) run(n int) {
	start := time.Unix(1_700_000_000+p.rng.Int64N(100_000_000), 0)
	p.clock.t = start.Add(time.Duration(p.rng.Int64N(int64(time.Second/time.Microsecond))) * time.Microsecond)
	for i := range p.keys {
		p.keys[i] = fmt.Sprintf("parity-%d", i)
	}
	p.stats = map[string]int{}
	for i := 0; i < n; {
		step := p.step()
		p.clock.Add(step)
		what := fmt.Sprintf("decision %d at %s (+%v)", i, p.clock.Now().UTC().Format(time.RFC3339Nano), step)
		switch r := p.rng.IntN(100); {
		case r < 10 && len(p.receipts) > 0:
			p.undo(what) // no decision
			continue
		case r < 22:
			p.stack(what)
		default:
			p.hit(what)
		}
		i++
	}
	p.t.Logf("%d decisions: %v", n, p.stats)
	if p.stats["hit allowed"] == 0 || p.stats["hit denied"] == 0 || p.stats["stack allowed"] == 0 || p.stats["stack denied"] == 0 {
		p.t.Errorf("the traffic lacks allowed or denied decisions: %v", p.stats)
	}
}

// step returns how far the clock moves before the next call.
func (p *parity) step() time.Duration {
	w := p.rules[p.rng.IntN(len(p.rules))].Window
	wu := w.Microseconds()
	switch r := p.rng.IntN(100); {
	case r < 35:
		return 0
	case r < 50:
		return time.Duration(1+p.rng.Int64N(999)) * time.Microsecond
	case r < 65:
		return time.Duration(1+p.rng.Int64N(wu/8)) * time.Microsecond
	case r < 75:
		// Onto the next edge of a fixed window, or a microsecond either side.
		p.stats["window edge"]++
		now := p.clock.Now().UnixMicro()
		to := wu - now%wu + p.rng.Int64N(3) - 1
		return time.Duration(max(to, 0)) * time.Microsecond
	case r < 85 && p.lastRetry > 0:
		// To the retry time of the last denial, or a microsecond before.
		p.stats["retry time"]++
		d := p.lastRetry - time.Duration(p.rng.IntN(2))*time.Microsecond
		p.lastRetry = 0
		return d
	case r < 95:
		return time.Duration(1+p.rng.Int64N(2*wu)) * time.Microsecond
	default:
		return time.Duration(1+p.rng.Int64N(4*wu)) * time.Microsecond
	}
}

// part picks a key, a rule and a cost.
func (p *parity) part() store.Hit {
	rule := p.rules[p.rng.IntN(len(p.rules))]
	c := rule.Capacity()
	cost := 1 + p.rng.IntN(min(c, 3))
	if p.rng.IntN(5) == 0 {
		cost = 1 + p.rng.IntN(c)
	}
	return store.Hit{Key: p.keys[p.rng.IntN(len(p.keys))], Rule: rule, Cost: cost}
}

func (p *parity) hit(what string) {
	h := p.part()
	m, errM := p.mem.Hit(p.ctx, h.Key, h.Rule, h.Cost)
	r, errR := p.red.Hit(p.ctx, h.Key, h.Rule, h.Cost)
	if errM != nil || errR != nil {
		p.t.Fatalf("%s: Hit(%s, %+v, %d): memstore error %v, redisstore error %v", what, h.Key, h.Rule, h.Cost, errM, errR)
	}
	p.compare(fmt.Sprintf("%s: Hit(%s, %+v, cost %d)", what, h.Key, h.Rule, h.Cost), h, m, r)
	p.record("hit", h.Key, m, r)
}

func (p *parity) stack(what string) {
	n := 2 + p.rng.IntN(2)
	var hits []store.Hit
	seen := map[[2]string]bool{}
	for len(hits) < n {
		h := p.part()
		if k := [2]string{h.Key, h.Rule.Name}; !seen[k] {
			seen[k] = true
			hits = append(hits, h)
		}
	}
	m, r := make([]store.Result, n), make([]store.Result, n)
	errM := p.mem.HitAll(p.ctx, hits, m)
	errR := p.red.HitAll(p.ctx, hits, r)
	if errM != nil || errR != nil {
		p.t.Fatalf("%s: HitAll(%+v): memstore error %v, redisstore error %v", what, hits, errM, errR)
	}
	for i, h := range hits {
		p.compare(fmt.Sprintf("%s: HitAll(%+v), part %d", what, hits, i), h, m[i], r[i])
	}
	for i, h := range hits {
		p.record("stack", h.Key, m[i], r[i])
	}
}

func (p *parity) undo(what string) {
	// Mostly an earlier receipt of the state the last decision touched,
	// which may be from the fixed window before; else a recent one, whose
	// hits still count; else any.
	i := p.rng.IntN(len(p.receipts))
	switch r := p.rng.IntN(4); {
	case r < 2:
		last := p.receipts[len(p.receipts)-1]
		for j := len(p.receipts) - 2; j >= 0; j-- {
			if u := p.receipts[j]; u.key == last.key && u.mem.Rule == last.mem.Rule {
				i = j
				break
			}
		}
	case r < 3:
		i = len(p.receipts) - 1 - p.rng.IntN(min(len(p.receipts), 4))
	}
	u := p.receipts[i]
	p.receipts = append(p.receipts[:i], p.receipts[i+1:]...)
	errM := p.mem.Undo(p.ctx, u.key, u.mem)
	errR := p.red.Undo(p.ctx, u.key, u.red)
	if errM != nil || errR != nil {
		p.t.Fatalf("%s: Undo(%s, %+v): memstore error %v, redisstore error %v", what, u.key, u.mem, errM, errR)
	}
	p.stats["undo"]++
}

// record counts a decision and keeps its receipts for a later Undo.
func (p *parity) record(kind, key string, m, r store.Result) {
	if m.Allowed {
		p.stats[kind+" allowed"]++
		p.receipts = append(p.receipts, receiptPair{key, m.Receipt, r.Receipt})
		return
	}
	p.stats[kind+" denied"]++
	if m.RetryAfter > 0 {
		p.lastRetry = m.RetryAfter
	}
}

// compare fails the test unless both stores decided h alike: every Result
// field, and receipts of the same cost and rule (and the same ID for the
// algorithms whose IDs the definitions fix).
func (p *parity) compare(what string, h store.Hit, m, r store.Result) {
	p.t.Helper()
	type fields struct {
		Allowed                bool
		Limit, Remaining       int
		RetryAfter, ResetAfter time.Duration
	}
	fm := fields{m.Allowed, m.Limit, m.Remaining, m.RetryAfter, m.ResetAfter}
	fr := fields{r.Allowed, r.Limit, r.Remaining, r.RetryAfter, r.ResetAfter}
	if fm != fr {
		p.t.Fatalf("%s:\n\tmemstore   %+v\n\tredisstore %+v", what, fm, fr)
	}
	if m.Receipt.Cost != r.Receipt.Cost || m.Receipt.Rule != r.Receipt.Rule ||
		(m.Receipt.ID == 0) != (r.Receipt.ID == 0) ||
		(h.Rule.Algorithm != store.SlidingLog && m.Receipt.ID != r.Receipt.ID) {
		p.t.Fatalf("%s: receipts differ:\n\tmemstore   %+v\n\tredisstore %+v", what, m.Receipt, r.Receipt)
	}
}
