package echomw

import (
	"github.com/labstack/echo/v4"

	"github.com/sluicehq/sluice/lockguard"
)

// Guard returns echo middleware that lets one request at a time work on the
// resource g's KeyFunc picks (see lockguard.Guard): a concurrent request for
// the same resource gets 409 Conflict with Retry-After and a JSON body, and
// the handler finds the lock with lockguard.FromContext(c.Request().Context()).
// opts add hooks that take the echo.Context (WithKey, WithSkip, WithDeny).
//
// Echo's route parameters are copied into the request's path values before
// the KeyFunc runs, so limiter.PathValueKey("id") reads c.Param("id"), as
// WithKey(ParamKey("id")) does.
//
// The lock is released when the handler returns or panics (the panic goes on,
// to echo's Recover middleware if it is mounted outside this one). An error
// the handler returns is passed on unchanged, so echo's HTTP error handler
// writes it as usual (after the lock has been released).
//
// Guard panics if g is nil.
func Guard(g *lockguard.Guard, opts ...Option) echo.MiddlewareFunc {
	if g == nil {
		panic("echomw: Guard: nil *lockguard.Guard")
	}
	o := newOptions(opts)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if o.skip != nil && o.skip(c) {
				return next(c)
			}
			r, done, rj := g.Admit(c.Response(), o.request(c), o.keyFunc(c))
			if rj != nil {
				return o.reject(c, rj)
			}
			if done != nil {
				defer done(0)
			}
			c.SetRequest(r)
			return next(c)
		}
	}
}
