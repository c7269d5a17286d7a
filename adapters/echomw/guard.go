package echomw

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sluicehq/sluice/lockguard"
)

// Guard returns echo middleware that lets one request at a time work on the
// resource g's KeyFunc picks (see lockguard.Guard): a concurrent request for
// the same resource gets 409 Conflict with Retry-After and a JSON body, and
// the handler finds the lock with lockguard.FromContext(c.Request().Context()).
//
// Echo's route parameters are copied into the request's path values before
// the KeyFunc runs, so lockguard.PathValue("id", "order:") reads c.Param("id").
//
// The lock is released when the handler returns or panics (the panic goes on,
// to echo's Recover middleware if it is mounted outside this one). An error
// the handler returns is passed on unchanged, so echo's HTTP error handler
// writes it as usual (after the lock has been released). Rejections are
// written directly, as httpmw writes them, and never reach the error handler.
//
// Guard panics if g is nil.
func Guard(g *lockguard.Guard) echo.MiddlewareFunc {
	return guardMiddleware(g, nil)
}

// GuardBy is Guard with the resource picked by key from the echo.Context
// instead of by g's KeyFunc, for keys that need more than the request (a value
// an earlier middleware stored with c.Set, for instance). A key error or an
// empty key answers 400. GuardBy panics if g or key is nil.
func GuardBy(g *lockguard.Guard, key func(c echo.Context) (string, error)) echo.MiddlewareFunc {
	if key == nil {
		panic("echomw: GuardBy: nil key function")
	}
	return guardMiddleware(g, key)
}

func guardMiddleware(g *lockguard.Guard, key func(echo.Context) (string, error)) echo.MiddlewareFunc {
	if g == nil {
		panic("echomw: Guard: nil *lockguard.Guard")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			var kf lockguard.KeyFunc
			if key != nil {
				kf = func(*http.Request) (string, error) { return key(c) }
			} else {
				r = guardPathValues(r, c.ParamNames(), c.ParamValues())
			}
			r, release, rj := g.Enter(r, kf)
			if rj != nil {
				rj.Write(c.Response())
				return nil
			}
			defer release()
			c.SetRequest(r)
			return next(c)
		}
	}
}

// guardPathValues returns a copy of r carrying echo's route parameters as
// path values, or r itself when there are none. The copy is a clone: a
// shallow copy (r.WithContext) shares r's path-value storage whenever r has
// some (a ServeMux pattern matched it, or something set a value on it), and
// setting values on it would overwrite the values of the caller's request.
func guardPathValues(r *http.Request, names, values []string) *http.Request {
	if len(names) == 0 {
		return r
	}
	r = r.Clone(r.Context())
	for i, name := range names {
		if i < len(values) {
			r.SetPathValue(name, values[i])
		}
	}
	return r
}
