package echomw

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sluicehq/sluice/limiter"
)

// RateLimit returns echo middleware that applies p to every request:
// requests over the limit get p's denial (429 by default) and never reach
// the handler; the others reach it with the quota headers set and the
// decision in the request's context (limiter.FromContext on
// c.Request().Context()). opts add hooks that take the echo.Context (WithKey,
// WithSkip, WithDeny; WithDeny(HTTPError) sends denials through echo's
// HTTPErrorHandler).
//
// Echo's route parameters are copied into the request's path values, so p's
// functions (KeyFunc, skip predicate, cost function) read ":id" with
// r.PathValue("id") (limiter.PathValueKey) as they would under net/http's
// ServeMux. The copy goes into a clone of the request (http.Request.Clone)
// that the handler then receives; the caller's request is not written to.
// Routes without parameters cost no clone.
//
// When p counts only failed or only successful requests, the status is read
// from c.Response() after the handler returns. If the handler returns an
// error and has not written a response, the middleware calls c.Error(err) so
// that echo's HTTPErrorHandler sets the status first, then returns err as
// echo's own middleware does (echo's default error handler ignores an
// already committed response). A handler that panics counts as status 500.
//
// RateLimit panics if p was not made by limiter.NewPolicy: that is a wiring
// mistake, found at start-up.
func RateLimit(p *limiter.Policy, opts ...Option) echo.MiddlewareFunc {
	if p.Name() == "" {
		panic("echomw: RateLimit needs a Policy made by limiter.NewPolicy")
	}
	o := newOptions(opts)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if o.skip != nil && o.skip(c) {
				return next(c)
			}
			orig := c.Request()
			r, done, rj := p.Admit(c.Response(), o.request(c), o.keyFunc(c))
			if rj != nil {
				return o.reject(c, rj)
			}
			if r != orig {
				c.SetRequest(r)
			}
			if done == nil {
				return next(c)
			}
			finished := false
			defer func() {
				if !finished { // the handler panicked
					done(http.StatusInternalServerError)
				}
			}()
			err := next(c)
			res := c.Response()
			if err != nil && !res.Committed {
				c.Error(err)
			}
			finished = true
			done(res.Status)
			return err
		}
	}
}
