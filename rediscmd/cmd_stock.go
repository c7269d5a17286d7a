package rediscmd

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Item is one line of a Reserve or Restock call: a stock counter and a
// quantity.
type Item struct {
	// Key is the stock counter: a string key holding a decimal integer (as SET
	// or INCRBY write it); a missing key holds 0. Build it with StockKey.
	Key string
	// Quantity is the number of units, in [1, MaxInt].
	Quantity int64
}

// ShortageError reports the item a Reserve call could not take: the first
// item, in call order, whose counter holds less than its quantity. Nothing was
// reserved. errors.Is(err, ErrShortage) matches it and errors.As extracts it.
type ShortageError struct {
	// Item is the stock counter's key, as passed in Item.Key.
	Item string
	// Index is the item's position in the Reserve call's items.
	Index int
	// Available is what the counter held (0 for a missing key).
	Available int64
	// Requested is the quantity asked for.
	Requested int64
}

// Error says which item is short and by how much.
func (e *ShortageError) Error() string {
	return fmt.Sprintf("rediscmd: insufficient stock: %s has %d, %d requested", e.Item, e.Available, e.Requested)
}

// Is reports whether target is ErrShortage.
func (e *ShortageError) Is(target error) bool { return target == ErrShortage }

// Reserve takes every item's quantity from its stock counter, all or nothing,
// in one atomic script (reserve.lua), and returns what each counter holds
// afterwards, in the order of items. If any counter holds less than its
// quantity nothing changes and the error is a *ShortageError naming the first
// such item. Stock never goes negative, however many callers reserve at once.
// Counters are decremented with DECRBY and keep their expiry.
//
// items must hold 1 to MaxKeys lines with distinct non-empty keys and
// quantities in [1, MaxInt]. A counter holding anything but an integer in
// [-MaxInt, MaxInt] written as INCRBY writes one is an ErrWrongValue error.
// On Redis Cluster all keys must share a {hash tag}: build them with
// StockKey(tag, item). A *redis.ClusterClient is checked before sending; a
// CROSSSLOT answer from any other client becomes ErrCrossSlot.
//
// Run a reservation on a context detached from the request
// (context.WithoutCancel plus a timeout of its own), so that a client hanging
// up cannot cancel it half-way, and act on its outcome: record the order, or
// hand the stock back with Restock. docs/commands.md shows the pattern.
func Reserve(ctx context.Context, client redis.Scripter, items []Item) ([]int64, error) {
	keys, args, err := stockArgs("Reserve", client, items)
	if err != nil {
		return nil, err
	}
	v, err := runScript(ctx, client, reserve, keys, args...)
	if err != nil {
		return nil, err
	}
	name := reserve.Name()
	r, err := replySlice(name, v, 1)
	if err != nil {
		return nil, err
	}
	ok, err := replyInt(name, r[0])
	if err != nil {
		return nil, err
	}
	if ok == 0 {
		return nil, shortage(name, items, r)
	}
	return replyInts(name, r[1:], len(items))
}

// Restock adds every item's quantity to its stock counter, all or nothing, in
// one atomic script (restock.lua), and returns what each counter holds
// afterwards: the way to hand back a reservation whose order failed, or to add
// new stock. A missing counter is created without an expiry; existing ones
// keep theirs. A counter that would pass MaxInt is an ErrOutOfRange error and
// changes nothing. items follow Reserve's rules.
func Restock(ctx context.Context, client redis.Scripter, items []Item) ([]int64, error) {
	keys, args, err := stockArgs("Restock", client, items)
	if err != nil {
		return nil, err
	}
	v, err := runScript(ctx, client, restock, keys, args...)
	if err != nil {
		return nil, err
	}
	name := restock.Name()
	r, err := replySlice(name, v, len(items))
	if err != nil {
		return nil, err
	}
	return replyInts(name, r, len(items))
}

// stockArgs validates items and splits them into KEYS and ARGV.
func stockArgs(fn string, client redis.Scripter, items []Item) ([]string, []any, error) {
	keys := make([]string, len(items))
	args := make([]any, len(items))
	seen := make(map[string]int, len(items))
	for i, it := range items {
		if j, dup := seen[it.Key]; dup {
			return nil, nil, fmt.Errorf("%w: %s: items %d and %d both name %q; add their quantities", ErrInvalidArgument, fn, j, i, it.Key)
		}
		seen[it.Key] = i
		if err := checkInt(fn, fmt.Sprintf("quantity of %q", it.Key), it.Quantity, 1, MaxInt); err != nil {
			return nil, nil, err
		}
		keys[i] = it.Key
		args[i] = formatInt(it.Quantity)
	}
	if err := checkKeys(fn, keys); err != nil {
		return nil, nil, err
	}
	if err := checkSlots(fn, client, keys); err != nil {
		return nil, nil, err
	}
	return keys, args, nil
}

// shortage decodes {0, i, available, requested}.
func shortage(name string, items []Item, r []any) error {
	if len(r) < 4 {
		return fmt.Errorf("rediscmd: %s: unexpected reply %#v", name, r)
	}
	var n [3]int64
	for j := range n {
		v, err := replyInt(name, r[j+1])
		if err != nil {
			return err
		}
		n[j] = v
	}
	i := n[0] - 1
	if i < 0 || i >= int64(len(items)) {
		return fmt.Errorf("rediscmd: %s: reply names item %d of %d", name, n[0], len(items))
	}
	return &ShortageError{Item: items[i].Key, Index: int(i), Available: n[1], Requested: n[2]}
}

func replyInts(name string, r []any, n int) ([]int64, error) {
	if len(r) != n {
		return nil, fmt.Errorf("rediscmd: %s: %d values in reply, want %d", name, len(r), n)
	}
	out := make([]int64, n)
	for i, v := range r {
		x, err := replyInt(name, v)
		if err != nil {
			return nil, err
		}
		out[i] = x
	}
	return out, nil
}
