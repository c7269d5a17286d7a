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
// Echo's route parameters are copied into the request's path values, so p's
// functions (KeyFunc, skip predicate, cost function) read ":id" with
// r.PathValue("id") as they would under net/http's ServeMux. The copy goes
// into a clone of the request (http.Request.Clone) that the handler then
// receives; the caller's request is not written to. Routes without
// parameters cost no clone.
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
// echo.Context (for instance ParamKey), which reads the route parameters
// itself: the request is then passed on as it is, without path values. A nil
// key is RateLimit. An error or an empty key answers through p's request
// error handler (400 by default).
func RateLimitBy(p *limiter.Policy, key func(c echo.Context) (string, error)) echo.MiddlewareFunc {
	if p.Name() == "" {
		panic("echomw: RateLimit needs a Policy made by limiter.NewPolicy")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			orig := c.Request()
			r := orig
			if key == nil {
				r = withRouteParams(r, c.ParamNames(), c.ParamValues())
			}
			if p.Skips(r) {
				if r != orig {
					c.SetRequest(r)
				}
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
			if out.Request != orig {
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

// withRouteParams returns a clone of r carrying echo's route parameters as
// path values, or r itself when there are none. It clones rather than
// shallow-copies: a copy made by r.WithContext shares r's path-value storage,
// and SetPathValue on it would write into r.
func withRouteParams(r *http.Request, names, values []string) *http.Request {
	n := min(len(names), len(values))
	if n == 0 {
		return r
	}
	r = r.Clone(r.Context())
	for i := 0; i < n; i++ {
		r.SetPathValue(names[i], values[i])
	}
	return r
}

// ParamKey returns a key function that reads the route parameter name (":id"
// in the route "/users/:id"). The key is namespaced by the parameter's name,
// "param:id:<value>", so that a parameter value never shares a counter with
// a client address or a header key under the same policy: a client posting
// to /users/203.0.113.7/report does not use up the quota of the client at
// 203.0.113.7. A missing or empty parameter is an error wrapping
// limiter.ErrNoKey.
func ParamKey(name string) func(c echo.Context) (string, error) {
	prefix := "param:" + name + ":"
	return func(c echo.Context) (string, error) {
		if v := c.Param(name); v != "" {
			return prefix + v, nil
		}
		return "", fmt.Errorf("%w: route parameter %q is empty", limiter.ErrNoKey, name)
	}
}
