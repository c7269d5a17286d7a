// Package ginconfig mounts the routes of a sluice config file
// (github.com/sluicehq/sluice/config) on a gin engine.
//
//	f, err := config.Load("sluice.yaml")
//	...
//	routes, err := f.Build(st)
//	...
//	if err := ginconfig.Mount(engine, routes); err != nil { ... }
//	engine.POST("/orders/:id/pay", pay)
//
// The file's patterns may be written in gin's syntax ("/orders/:id/pay")
// or ServeMux's ("/orders/{id}/pay"); either matches the gin route with
// the same path, and a pattern that ends with / matches every route below
// it (see config.Routes.Match). Policies and guards run as ginmw.RateLimit and
// ginmw.Guard would on that route; context keys also find values an
// earlier middleware stored with c.Set under the key's name.
package ginconfig

import (
	"errors"

	"github.com/gin-gonic/gin"

	"github.com/sluicehq/sluice/adapters/ginmw"
	"github.com/sluicehq/sluice/config"
)

// Mount adds two middleware to engine (engine.Use): one applies each
// route's policy, the next its guard, to the requests gin routes to it;
// requests to other routes pass untouched. gin gives middleware only to
// routes registered after it, and a group (engine.Group) keeps the
// middleware the engine had when the group was made: call Mount before
// registering routes and before making groups. Mount fails if engine has
// routes already; a group made earlier it cannot see, and that group's
// routes would go unlimited. opts go to every ginmw.RateLimit and
// ginmw.Guard it makes.
func Mount(engine *gin.Engine, routes *config.Routes, opts ...ginmw.Option) error {
	if len(engine.Routes()) > 0 {
		return errors.New("ginconfig: Mount before registering routes: gin does not give middleware to routes registered earlier")
	}
	limits := make(map[*config.Route]gin.HandlerFunc)
	guards := make(map[*config.Route]gin.HandlerFunc)
	for _, r := range routes.Routes() {
		if r.Policy != nil {
			limits[r] = ginmw.RateLimit(r.Policy, opts...)
		}
		if r.Guard != nil {
			guards[r] = ginmw.Guard(r.Guard, opts...)
		}
	}
	step := func(handlers map[*config.Route]gin.HandlerFunc) gin.HandlerFunc {
		return func(c *gin.Context) {
			if h := handlers[routes.Match(c.Request.Method, c.FullPath())]; h != nil {
				h(c)
			}
		}
	}
	engine.Use(step(limits), step(guards))
	return nil
}
