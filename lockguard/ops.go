package lockguard

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/store"
)

// Inspect reports the state of the lock on key, for operators: whether some
// owner holds it, its remaining TTL, and the last fence issued for key
// (store.LockInfo). It changes nothing and never reveals the holder's token.
// The lock of a Guard is keyed by the Guard's name, a colon and the
// request's key: "orders:42" for the Guard "orders" on order 42.
//
// The call is bounded by the store timeout (WithStoreTimeout). The error
// wraps store.ErrInvalidArgument for an empty key, ctx.Err() if ctx ended,
// and ErrStore with the store's error if the store failed or did not answer
// in time.
func (l *Locker) Inspect(ctx context.Context, key string) (store.LockInfo, error) {
	if key == "" {
		return store.LockInfo{}, fmt.Errorf("lockguard: inspect: %w: empty lock key", store.ErrInvalidArgument)
	}
	sctx, cancel := l.storeContext(ctx)
	defer cancel()
	info, err := l.store.Inspect(sctx, key)
	if err != nil {
		return store.LockInfo{}, wrapErr(ctx.Err(), "inspect", key, err)
	}
	return info, nil
}

// ForceRelease deletes the lock on key whoever holds it, for an operator
// freeing a resource whose holder is stuck (a Guard's lock is keyed as
// Inspect says). A lock that is not held is not an error.
//
// It is dangerous. The holder is not told: its work goes on, believing it
// holds the lock, while a new owner may take the key at once. A keep-alive
// (Lock.KeepAlive, Locker.Do, a Guard) notices at its next extend, up to a
// third of the TTL later, and cancels the work's context with cause
// ErrLockLost; work without one finds out only when its Extend or Release
// fails with ErrNotHeld. Until then two owners run, and only fencing (see
// Lock.Fence) keeps the old owner's writes out of the resource: the fence
// counter is kept, so the new owner's fence is above the old one's. Prefer
// waiting for the TTL; force a release only for a holder known to be gone
// or stuck, on a resource that checks fences or that can take the overlap.
//
// The call is bounded by the store timeout (WithStoreTimeout). The error
// wraps store.ErrInvalidArgument for an empty key, ctx.Err() if ctx ended,
// and ErrStore with the store's error if the store failed or did not answer
// in time: then the lock may or may not have been deleted.
func (l *Locker) ForceRelease(ctx context.Context, key string) error {
	if key == "" {
		return fmt.Errorf("lockguard: force-release: %w: empty lock key", store.ErrInvalidArgument)
	}
	sctx, cancel := l.storeContext(ctx)
	defer cancel()
	if err := l.store.ForceRelease(sctx, key); err != nil {
		return wrapErr(ctx.Err(), "force-release", key, err)
	}
	return nil
}
