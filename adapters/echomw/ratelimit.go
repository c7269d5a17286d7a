package echomw

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sluicehq/sluice/limiter"
)

// RateLimit returns echo middleware that applies p to every request, keyed by
// p's own KeyFunc: requests over the limit get p's denial (429 by default)
// and never reach the handler; the others reach it with the quota headers set
// and the decision in the request's context (limiter.FromContext on
// c.Request().Context()).
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
func RateLimit(p *limiter.Policy) echo.MiddlewareFunc {
	return RateLimitBy(p, nil)
}

// RateLimitBy is RateLimit with requests keyed by key, a function of the
// echo.Context (for instance ParamKey). A nil key uses p's KeyFunc. An error
// or an empty key answers through p's request error handler (400 by
// default).
func RateLimitBy(p *limiter.Policy, key func(c echo.Context) (string, error)) echo.MiddlewareFunc {
	if p.Name() == "" {
		panic("echomw: RateLimit needs a Policy made by limiter.NewPolicy")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if p.Skips(r) {
				return next(c)
			}
			var k string
			var kerr error
			if key != nil {
				k, kerr = key(c)
			} else {
				k, kerr = p.Key(r)
			}
			res := c.Response()
			out := p.CheckKey(res, r, k, kerr)
			if !out.Proceed {
				return nil
			}
			if out.Request != r {
				c.SetRequest(out.Request)
			}
			if !p.NeedsStatus() {
				return next(c)
			}
			return rateLimitFinish(c, next, p, out)
		}
	}
}

func rateLimitFinish(c echo.Context, next echo.HandlerFunc, p *limiter.Policy, out limiter.Outcome) error {
	finished := false
	defer func() {
		if !finished { // the handler panicked
			p.Finish(out, http.StatusInternalServerError)
		}
	}()
	err := next(c)
	res := c.Response()
	if err != nil && !res.Committed {
		c.Error(err)
	}
	finished = true
	p.Finish(out, res.Status)
	return err
}

// ParamKey returns a key function that reads the route parameter name (":id"
// in the route "/users/:id"). A missing or empty parameter is an error
// wrapping limiter.ErrNoKey.
func ParamKey(name string) func(c echo.Context) (string, error) {
	return func(c echo.Context) (string, error) {
		if v := c.Param(name); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("%w: route parameter %q is empty", limiter.ErrNoKey, name)
	}
}
