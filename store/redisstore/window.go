package redisstore

import (
	"time"

	"github.com/sluicehq/sluice/store"
)

// partReplyLen is the length of the reply of a Hit script as an array
// (allowed, remaining, retry_after_us, reset_after_us, receipt_id), and of
// each part's share of stack.lua's reply; hitReply also reads the one
// integer that packs it.
const partReplyLen = 5

// undoArgsPerPart is how many ARGV values undo.lua takes per part.
const undoArgsPerPart = 5

// part is one rule's share of a decision: a Hit, or one element of HitAll.
type part struct {
	key    string // the Redis key of the state
	rule   store.Rule
	cost   int
	id     uint64 // the sliding log's hit id; 0 for the other algorithms
	member string // the sliding log's member: hitID(id)
	extra  any    // the scripts' per-algorithm argument: &member, burst or ""
}

// preparePart fills p for cost hits of key under rule, issuing a hit id for
// a sliding log.
func (s *Store) preparePart(p *part, key string, rule store.Rule, cost int) {
	p.key = s.windowKey(rule.Name, rule.Algorithm, key)
	p.rule, p.cost = rule, cost
	switch rule.Algorithm {
	case store.SlidingLog:
		p.id = s.seq.Add(1)
		p.member = s.hitID(p.id)
		p.extra = &p.member // go-redis writes the string; no copy of it in an interface
	case store.GCRA:
		p.extra = rule.Capacity()
	default:
		p.extra = ""
	}
}

// Bounds of a Hit reply packed into one integer (see reply.lua).
const (
	packedRemainingBits = 13 // remaining in bits 1 to 13
	packedResetShift    = 1 + packedRemainingBits
)

// hitReply reads the reply of alg's Hit script into v: the array of
// partReplyLen integers, or the one integer that packs it (reply.lua), and
// reports whether it is either.
func hitReply(reply any, alg store.Algorithm, v *[partReplyLen]int64) bool {
	n, ok := reply.(int64)
	if !ok {
		return int64s(reply, v[:])
	}
	if n < 0 || alg == store.SlidingCounter { // the counter's reply is never packed
		return false
	}
	allowed, reset := n&1, n>>packedResetShift
	v[0], v[1], v[2], v[3], v[4] = allowed, n>>1&(1<<packedRemainingBits-1), reset, reset, 0
	if allowed == 1 {
		v[2] = 0
	}
	if alg == store.GCRA {
		v[4] = 1
	}
	return true
}

// result decodes the reply of a Hit script (the first partReplyLen values
// of each part of stack.lua's reply) and reports whether it is well formed.
func (p *part) result(v []int64) (store.Result, bool) {
	allowed, remaining, retry, reset, id := v[0], v[1], v[2], v[3], v[4]
	if (allowed != 0 && allowed != 1) || retry < 0 || reset < 0 || id < 0 {
		return store.Result{}, false
	}
	res := store.Result{
		Allowed:    allowed == 1,
		Limit:      p.rule.Limit,
		Remaining:  int(max(remaining, 0)),
		ResetAfter: time.Duration(reset) * time.Microsecond,
	}
	if !res.Allowed {
		res.RetryAfter = time.Duration(retry) * time.Microsecond
		return res, true
	}
	receipt := uint64(id)
	if p.rule.Algorithm == store.SlidingLog {
		receipt = p.id
	}
	if receipt == 0 {
		return store.Result{}, false
	}
	res.Receipt = store.Receipt{ID: receipt, Cost: p.cost, Rule: p.rule}
	return res, true
}

// appendUndoArgs appends undo.lua's five values for receipt to args.
func (s *Store) appendUndoArgs(args []any, receipt store.Receipt) []any {
	var id any = ""
	switch receipt.Rule.Algorithm {
	case store.SlidingLog:
		id = s.hitID(receipt.ID)
	case store.SlidingCounter:
		id = receipt.ID
	}
	return append(args, algorithmCodes[receipt.Rule.Algorithm], receipt.Rule.Limit,
		receipt.Rule.Window.Microseconds(), receipt.Cost, id)
}

// now returns the scripts' time argument: the Store's clock in microseconds
// since the Unix epoch, or "" to let the script read Redis TIME.
func (s *Store) now() any {
	if s.clock == nil {
		return ""
	}
	return s.clock().UnixMicro()
}
