package ginmw

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sluicehq/sluice/limiter"
)

// RateLimit returns gin middleware that applies p to every request:
// requests over the limit get p's denial (429 by default) and the chain is
// aborted; the others go on with the quota headers set and the decision in
// the request's context (limiter.FromContext on c.Request.Context()). opts
// add hooks that take the *gin.Context (WithKey, WithSkip, WithDeny).
//
// Gin's route parameters are copied into the request's path values, so p's
// functions (KeyFunc, skip predicate, cost function) read ":id" with
// r.PathValue("id") (limiter.PathValueKey) as they would under net/http's
// ServeMux. The copy goes into a clone of the request (http.Request.Clone)
// that the rest of the chain then receives in c.Request; the caller's
// request is not written to. Routes without parameters cost no clone.
//
// When p counts only failed or only successful requests, the status is read
// from c.Writer.Status() once the rest of the chain has run (c.Next). A
// handler that panics counts as status 500.
//
// RateLimit panics if p was not made by limiter.NewPolicy: that is a wiring
// mistake, found at start-up.
func RateLimit(p *limiter.Policy, opts ...Option) gin.HandlerFunc {
	if p.Name() == "" {
		panic("ginmw: RateLimit needs a Policy made by limiter.NewPolicy")
	}
	o := newOptions(opts)
	return func(c *gin.Context) {
		if o.skip != nil && o.skip(c) {
			return
		}
		r, kc := o.request(c)
		if kc != nil {
			defer kc.detach()
		}
		r, done, rj := p.Admit(c.Writer, r, o.keyFunc(c))
		if rj != nil {
			o.reject(c, rj)
			return
		}
		c.Request = r
		if done == nil {
			c.Next() // so that kc is detached once the chain is over
			return
		}
		finished := false
		defer func() {
			if !finished { // a handler panicked
				done(http.StatusInternalServerError)
			}
		}()
		c.Next()
		finished = true
		done(c.Writer.Status())
	}
}
