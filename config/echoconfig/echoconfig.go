// Package echoconfig mounts the routes of a sluice config file
// (github.com/sluicehq/sluice/config) on an echo instance.
//
//	f, err := config.Load("sluice.yaml")
//	...
//	routes, err := f.Build(st)
//	...
//	echoconfig.Mount(e, routes)
//	e.POST("/orders/:id/pay", pay)
//
// The file's patterns may be written in echo's syntax ("/orders/:id/pay")
// or ServeMux's ("/orders/{id}/pay"); either matches the echo route with
// the same path, and a pattern that ends with / matches every route below
// it (see config.Routes.Match). Policies and guards run as echomw.RateLimit and
// echomw.Guard would on that route. Context keys read the request's
// context: echo's c.Set values are not in it.
package echoconfig

import (
	"github.com/labstack/echo/v4"

	"github.com/sluicehq/sluice/adapters/echomw"
	"github.com/sluicehq/sluice/config"
)

// Mount adds one middleware to e (e.Use) that applies each route's policy,
// then its guard, to the requests echo routes to it; requests to other
// routes pass untouched. Routes registered before or after Mount are
// covered alike. opts go to every echomw.RateLimit and echomw.Guard it
// makes (WithDeny(echomw.HTTPError), for instance).
func Mount(e *echo.Echo, routes *config.Routes, opts ...echomw.Option) {
	type chain struct{ limit, guard echo.MiddlewareFunc }
	chains := make(map[*config.Route]chain)
	for _, r := range routes.Routes() {
		var c chain
		if r.Policy != nil {
			c.limit = echomw.RateLimit(r.Policy, opts...)
		}
		if r.Guard != nil {
			c.guard = echomw.Guard(r.Guard, opts...)
		}
		chains[r] = c
	}
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if _, ok := c.Get(echo.ContextKeyHeaderAllow).(string); ok {
				// Echo has the path but no handler for the method (a HEAD
				// to a GET-only route): it answers 405 itself, uncounted.
				return next(c)
			}
			r := routes.Match(c.Request().Method, c.Path())
			if r == nil {
				return next(c)
			}
			h := next
			ch := chains[r]
			if ch.guard != nil {
				h = ch.guard(h)
			}
			if ch.limit != nil {
				h = ch.limit(h)
			}
			return h(c)
		}
	})
}
