package redisstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// clockOption passes the suite's clock, if any, to the store.
func clockOption(now func() time.Time) []redisstore.Option {
	if now == nil {
		return nil
	}
	return []redisstore.Option{redisstore.WithClock(now)}
}

func TestConformanceMiniredis(t *testing.T) {
	// Every store gets its own miniredis; Elapse moves the clocks of all of
	// them (the suite runs its subtests one after another).
	var (
		mu   sync.Mutex
		mini []*miniredis.Miniredis
	)
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T, now func() time.Time) store.Store {
			m, c := newMiniredis(t)
			mu.Lock()
			mini = append(mini, m)
			mu.Unlock()
			return must(redisstore.New(c, clockOption(now)...))(t)
		},
		Elapse: func(d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range mini {
				m.FastForward(d)
			}
		},
	})
}

func TestConformanceRedis(t *testing.T) {
	c := redistest.Client(t)
	tg := target{name: "redis", client: c}
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T, now func() time.Time) store.Store {
			s, _ := newStore(t, tg, clockOption(now)...)
			return s
		},
		Elapse: time.Sleep,
	})
}

func TestConformanceCluster(t *testing.T) {
	c := redistest.ClusterClient(t)
	tg := target{name: "cluster", client: c, cluster: true}
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T, now func() time.Time) store.Store {
			s, _ := newStore(t, tg, clockOption(now)...)
			return s
		},
		Elapse: time.Sleep,
	})
}
