package ginmw

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sluicehq/sluice/limiter"
)

// RateLimit returns gin middleware that applies p to every request, keyed by
// p's own KeyFunc: requests over the limit get p's denial (429 by default)
// and the chain is aborted; the others go on with the quota headers set and
// the decision in the request's context (limiter.FromContext on
// c.Request.Context()).
//
// Gin's route parameters are copied into the request's path values, so p's
// functions (KeyFunc, skip predicate, cost function) read ":id" with
// r.PathValue("id") as they would under net/http's ServeMux. The copy goes
// into a clone of the request (http.Request.Clone) that the rest of the chain
// then receives in c.Request; the caller's request is not written to. Routes
// without parameters cost no clone.
//
// When p counts only failed or only successful requests, the status is read
// from c.Writer.Status() once the rest of the chain has run (c.Next). A
// handler that panics counts as status 500.
//
// RateLimit panics if p was not made by limiter.NewPolicy: that is a wiring
// mistake, found at start-up.
func RateLimit(p *limiter.Policy) gin.HandlerFunc {
	return RateLimitBy(p, nil)
}

// RateLimitBy is RateLimit with requests keyed by key, a function of the
// *gin.Context (for instance ParamKey), which reads the route parameters
// itself: the request is then passed on as it is, without path values. A nil
// key is RateLimit. An error or an empty key answers through p's request
// error handler (400 by default).
func RateLimitBy(p *limiter.Policy, key func(c *gin.Context) (string, error)) gin.HandlerFunc {
	if p.Name() == "" {
		panic("ginmw: RateLimit needs a Policy made by limiter.NewPolicy")
	}
	return func(c *gin.Context) {
		r := c.Request
		if key == nil {
			r = withRouteParams(r, c.Params)
		}
		if p.Skips(r) {
			c.Request = r
			return
		}
		var k string
		var kerr error
		if key != nil {
			k, kerr = key(c)
		} else {
			k, kerr = p.Key(r)
		}
		out := p.CheckKey(c.Writer, r, k, kerr)
		if !out.Proceed {
			c.Abort()
			return
		}
		c.Request = out.Request
		if !p.NeedsStatus() {
			return
		}
		finished := false
		defer func() {
			if !finished { // a handler panicked
				p.Finish(out, http.StatusInternalServerError)
			}
		}()
		c.Next()
		finished = true
		p.Finish(out, c.Writer.Status())
	}
}

// withRouteParams returns a clone of r carrying gin's route parameters as
// path values, or r itself when there are none. It clones rather than
// shallow-copies: a copy made by r.WithContext shares r's path-value storage,
// and SetPathValue on it would write into r.
func withRouteParams(r *http.Request, params gin.Params) *http.Request {
	if len(params) == 0 {
		return r
	}
	r = r.Clone(r.Context())
	for _, p := range params {
		r.SetPathValue(p.Key, p.Value)
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
func ParamKey(name string) func(c *gin.Context) (string, error) {
	prefix := "param:" + name + ":"
	return func(c *gin.Context) (string, error) {
		if v := c.Param(name); v != "" {
			return prefix + v, nil
		}
		return "", fmt.Errorf("%w: route parameter %q is empty", limiter.ErrNoKey, name)
	}
}
