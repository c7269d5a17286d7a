package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/store"
)

// Peek reports the state of key under rule without recording a hit, in one
// round trip: one EVALSHA of a script that reads the state and writes
// nothing (not even the pruning of a log's old hits). The time is Redis
// TIME, or the Store's clock under WithClock. See store.WindowStore.
func (s *Store) Peek(ctx context.Context, key string, rule store.Rule) (store.Result, error) {
	if err := store.ValidateHit(key, rule, 1); err != nil {
		return store.Result{}, err
	}
	var burst any = ""
	if rule.Algorithm == store.GCRA {
		burst = rule.Capacity()
	}
	reply, err := s.run(ctx, windowPeek, []string{s.windowKey(rule.Name, rule.Algorithm, key)},
		algorithmCodes[rule.Algorithm], rule.Limit, rule.Window.Microseconds(), burst, s.now())
	if err != nil {
		return store.Result{}, opError("peek", err)
	}
	var v [4]int64
	ok := int64s(reply, v[:])
	fits, remaining, retry, reset := v[0], v[1], v[2], v[3]
	if !ok || (fits != 0 && fits != 1) || retry < 0 || reset < 0 || (fits == 1 && retry != 0) {
		return store.Result{}, unexpected("peek", reply)
	}
	return store.Result{
		Allowed:    fits == 1,
		Limit:      rule.Limit,
		Remaining:  int(max(remaining, 0)),
		RetryAfter: time.Duration(retry) * time.Microsecond,
		ResetAfter: time.Duration(reset) * time.Microsecond,
	}, nil
}

// Reset forgets key's state under rule's name and algorithm, in one round
// trip: it deletes the state's Redis key. See store.WindowStore.
func (s *Store) Reset(ctx context.Context, key string, rule store.Rule) error {
	if err := store.ValidateHit(key, rule, 1); err != nil {
		return err
	}
	reply, err := s.run(ctx, del, []string{s.windowKey(rule.Name, rule.Algorithm, key)})
	if err != nil {
		return opError("reset", err)
	}
	if n, ok := reply.(int64); !ok || (n != 0 && n != 1) {
		return unexpected("reset", reply)
	}
	return nil
}

// Inspect reports whether key's lock is held, its remaining TTL (in whole
// milliseconds, on the Redis clock) and the last fence issued for key, in
// one round trip that writes nothing. The fence is 0 once the fence counter
// has expired (see WithFenceTTL). See store.LockStore.
func (s *Store) Inspect(ctx context.Context, key string) (store.LockInfo, error) {
	if key == "" {
		return store.LockInfo{}, fmt.Errorf("%w: empty lock key", store.ErrInvalidArgument)
	}
	lockKey := s.redisKey("l:{", key, "}")
	reply, err := s.run(ctx, lockInspect, []string{lockKey, lockKey + ":f"})
	if err != nil {
		return store.LockInfo{}, opError("inspect", err)
	}
	var v [3]int64
	ok := int64s(reply, v[:])
	held, ms, fence := v[0], v[1], v[2]
	if !ok || (held != 0 && held != 1) || ms < 0 || fence < 0 || (held == 0 && ms != 0) {
		return store.LockInfo{}, unexpected("inspect", reply)
	}
	return store.LockInfo{Held: held == 1, TTL: time.Duration(ms) * time.Millisecond, Fence: fence}, nil
}

// ForceRelease deletes key's lock whoever holds it, in one round trip,
// keeping its fence counter. It does not wait for replicas, even under
// WithReplicaAck. See store.LockStore for why this is dangerous.
func (s *Store) ForceRelease(ctx context.Context, key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty lock key", store.ErrInvalidArgument)
	}
	reply, err := s.run(ctx, del, []string{s.redisKey("l:{", key, "}")})
	if err != nil {
		return opError("force-release", err)
	}
	if n, ok := reply.(int64); !ok || (n != 0 && n != 1) {
		return unexpected("force-release", reply)
	}
	return nil
}
