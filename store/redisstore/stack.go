package redisstore

import (
	"context"
	"errors"

	"github.com/sluicehq/sluice/store"
)

// HitAll decides a stack of rules together. See store.WindowStore.
func (s *Store) HitAll(ctx context.Context, hits []store.Hit, out []store.Result) error {
	return errors.New("redisstore: HitAll: not implemented yet")
}
