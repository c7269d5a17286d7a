package ginmw_test

import (
	"net/http"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"

	"github.com/sluicehq/sluice/adapters/ginmw"
	"github.com/sluicehq/sluice/internal/limitertest"
)

func init() { gin.SetMode(gin.TestMode) }

// rateLimitMount serves the suite's routes on a gin engine, each through its
// stacked rate-limit middlewares (the first outermost).
func rateLimitMount(routes []limitertest.Route) http.Handler {
	r := gin.New()
	for _, rt := range routes {
		var hs []gin.HandlerFunc
		for _, p := range rt.Policies {
			if rt.Param != "" {
				hs = append(hs, ginmw.RateLimit(p, ginmw.WithKey(ginmw.ParamKey(rt.Param))))
			} else {
				hs = append(hs, ginmw.RateLimit(p))
			}
		}
		r.Handle(rt.Method, limitertest.ColonPath(rt.Path), append(hs, gin.WrapH(rt.Handler))...)
	}
	return r
}

func TestRateLimit(t *testing.T) {
	mini := limitertest.Emulated("miniredis", func(t *testing.T) limitertest.EmulatedServer { return miniredis.RunT(t) })
	limitertest.Run(t, rateLimitMount, append([]limitertest.Backend{limitertest.Memory(), mini}, limitertest.Env()...)...)
}
