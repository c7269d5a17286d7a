package limiter_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/memstore"
)

// BenchmarkAllow measures Limiter.Allow over memstore on the store's own
// clock: on a hot key and over 10,000 keys, with a rule that allows (the
// most generous one, store.MaxLimit per millisecond) and one that denies
// every hit after the first, serially and in parallel. Names read
// Allow/<keys>/<rule>/<mode>.
func BenchmarkAllow(b *testing.B) {
	for _, nkeys := range []int{1, 10_000} {
		keys := make([]string, nkeys)
		for i := range keys {
			keys[i] = "203.0.113." + strconv.Itoa(i)
		}
		name := "HotKey"
		if nkeys > 1 {
			name = strconv.Itoa(nkeys/1000) + "kKeys"
		}
		for _, rule := range []struct {
			name   string
			limit  int
			window time.Duration
		}{
			{"Allowed", store.MaxLimit, time.Millisecond},
			{"Denied", 1, time.Hour},
		} {
			for _, parallel := range []bool{false, true} {
				mode := "Serial"
				if parallel {
					mode = "Parallel"
				}
				b.Run(name+"/"+rule.name+"/"+mode, func(b *testing.B) {
					st, err := memstore.New()
					if err != nil {
						b.Fatal(err)
					}
					defer st.Close()
					l, err := limiter.New("api", rule.limit, rule.window, st)
					if err != nil {
						b.Fatal(err)
					}
					defer l.Close()
					benchAllow(b, l, keys, parallel)
				})
			}
		}
	}
}

func benchAllow(b *testing.B, l *limiter.Limiter, keys []string, parallel bool) {
	ctx := context.Background()
	for _, k := range keys {
		if _, err := l.Allow(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		for i := 0; b.Loop(); i++ {
			if _, err := l.Allow(ctx, keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(keys))
		for pb.Next() {
			if i++; i == len(keys) {
				i = 0
			}
			if _, err := l.Allow(ctx, keys[i]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// remoteStore hides the store.InProcess of the store it wraps, so that a
// Limiter over it behaves as over a remote store (a deny cache, a deadline
// per decision) without the network.
type remoteStore struct{ store.WindowStore }

// BenchmarkStackRemote measures a request through a Stack of two policies
// over a store that does not answer in-process (memstore behind
// remoteStore), on one client: with rules that allow it, and with rules
// that deny it, answered from the deny cache after the first denial.
func BenchmarkStackRemote(b *testing.B) {
	for _, rule := range []struct {
		name   string
		limit  int
		window time.Duration
	}{
		{"Allowed", store.MaxLimit, time.Millisecond},
		{"Denied", 1, time.Hour},
	} {
		b.Run(rule.name, func(b *testing.B) {
			mem, err := memstore.New()
			if err != nil {
				b.Fatal(err)
			}
			defer mem.Close()
			st := remoteStore{mem}
			burst, err := limiter.NewPolicy("burst", rule.limit, rule.window, st)
			if err != nil {
				b.Fatal(err)
			}
			hourly, err := limiter.NewPolicy("hourly", rule.limit, rule.window, st)
			if err != nil {
				b.Fatal(err)
			}
			s, err := limiter.Stack(burst, hourly)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			r := httptest.NewRequest("GET", "/", nil)
			w := benchWriter{h: make(http.Header)}
			s.Admit(w, r, nil)
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				s.Admit(w, r, nil)
			}
		})
	}
}

// benchWriter is a ResponseWriter that keeps headers only.
type benchWriter struct{ h http.Header }

func (w benchWriter) Header() http.Header       { return w.h }
func (benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (benchWriter) WriteHeader(int)             {}
