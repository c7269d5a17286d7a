package httpmw_test

import (
	"net/http"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter/limitertest"
)

// rateLimitMount serves the suite's routes on an http.ServeMux, each through
// its stacked RateLimit middlewares (the first outermost).
func rateLimitMount(routes []limitertest.Route) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		h := rt.Handler
		for i := len(rt.Policies) - 1; i >= 0; i-- {
			h = httpmw.RateLimit(rt.Policies[i])(h)
		}
		mux.Handle(rt.Method+" "+rt.Path, h)
	}
	return mux
}

func rateLimitBackends() []limitertest.Backend {
	mini := limitertest.Emulated("miniredis", func(t *testing.T) limitertest.EmulatedServer { return miniredis.RunT(t) })
	return append([]limitertest.Backend{limitertest.Memory(), mini, limitertest.OwnRedis()}, limitertest.Env()...)
}

func TestRateLimit(t *testing.T) {
	limitertest.Run(t, rateLimitMount, rateLimitBackends()...)
}
