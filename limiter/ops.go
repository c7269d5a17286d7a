package limiter

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/store"
)

// Peek reports key's usage without counting a hit, for operators: the
// Decision of a request of cost 1 under the limiter's own rule, which it
// does not record. Allowed reports whether such a request would be admitted
// now; Remaining is how many hits the key takes now (not reduced by the
// request not made); ResetAfter is when Remaining next grows; RetryAfter is,
// when the request would be denied, how long until it would fit. Cost is 1
// and the Decision carries no receipt (Undo ignores it). See
// store.WindowStore.Peek.
//
// Peek asks the store, never the deny cache, and tells the Observer nothing:
// it is not a decision. An empty key is an error wrapping
// store.ErrInvalidArgument, a call after Close is ErrClosed, and a store
// failure is returned as the store reported it.
func (l *Limiter) Peek(ctx context.Context, key string) (Decision, error) {
	if key == "" {
		return Decision{}, fmt.Errorf("limiter %q: %w: empty key", l.name, store.ErrInvalidArgument)
	}
	if l.closed.Load() {
		return Decision{}, ErrClosed
	}
	res, err := l.st.Peek(ctx, key, l.rule)
	if err != nil {
		return Decision{}, err
	}
	res.Receipt = store.Receipt{} // a Peek records nothing to undo
	var d Decision
	l.fill(&d, key, 1, &l.rule, &res)
	return d, nil
}

// Reset forgets key's usage, for operators (a client's quota given back, a
// key that was counted by mistake): the key's next request finds the whole
// limit. It deletes the key's state in the store, which every instance
// sharing the store sees at once, and forgets any denial of the key this
// Limiter's deny cache holds, also one it made in a Stack. The deny caches
// of other instances keep theirs until their retry-after passes (see
// WithDenyCache). Resetting a key that has no usage is not an error.
//
// An empty key is an error wrapping store.ErrInvalidArgument, a call after
// Close is ErrClosed, and a store failure is returned as the store reported
// it (the deny cache forgets the key either way).
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if key == "" {
		return fmt.Errorf("limiter %q: %w: empty key", l.name, store.ErrInvalidArgument)
	}
	if l.closed.Load() {
		return ErrClosed
	}
	err := l.st.Reset(ctx, key, l.rule)
	if l.deny != nil {
		// After the store call, so that a denial cached while it ran does
		// not outlive the reset here.
		l.deny.remove(digest(key))
	}
	return err
}
