package echomw_test

import (
	"net/http"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/labstack/echo/v4"

	"github.com/sluicehq/sluice/adapters/echomw"
	"github.com/sluicehq/sluice/internal/limitertest"
)

// rateLimitMount serves the suite's routes on an echo instance, each through
// its stacked rate-limit middlewares (the first outermost).
func rateLimitMount(routes []limitertest.Route) http.Handler {
	e := echo.New()
	for _, rt := range routes {
		var mws []echo.MiddlewareFunc
		for _, p := range rt.Policies {
			if rt.Param != "" {
				mws = append(mws, echomw.RateLimit(p, echomw.WithKey(echomw.ParamKey(rt.Param))))
			} else {
				mws = append(mws, echomw.RateLimit(p))
			}
		}
		e.Add(rt.Method, limitertest.ColonPath(rt.Path), echo.WrapHandler(rt.Handler), mws...)
	}
	return e
}

func TestRateLimit(t *testing.T) {
	mini := limitertest.Emulated("miniredis", func(t *testing.T) limitertest.EmulatedServer { return miniredis.RunT(t) })
	limitertest.Run(t, rateLimitMount, append([]limitertest.Backend{limitertest.Memory(), mini}, limitertest.Env()...)...)
}
