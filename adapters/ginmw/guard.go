package ginmw

import (
	"github.com/gin-gonic/gin"

	"github.com/sluicehq/sluice/lockguard"
)

// Guard returns gin middleware that lets one request at a time work on the
// resource g's KeyFunc picks (see lockguard.Guard): a concurrent request for
// the same resource gets 409 Conflict with Retry-After and a JSON body (the
// chain is aborted), and the handler finds the lock with
// lockguard.FromContext(c.Request.Context()). opts add hooks that take the
// *gin.Context (WithKey, WithSkip, WithDeny).
//
// Gin's route parameters are copied into the request's path values before the
// KeyFunc runs, so limiter.PathValueKey("id") reads c.Param("id"), as
// WithKey(ParamKey("id")) does.
//
// The lock is released when the rest of the chain returns or panics (the
// panic goes on, to gin's Recovery middleware if it is mounted outside this
// one).
//
// Guard panics if g is nil.
func Guard(g *lockguard.Guard, opts ...Option) gin.HandlerFunc {
	if g == nil {
		panic("ginmw: Guard: nil *lockguard.Guard")
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
		r, done, rj := g.Admit(c.Writer, r, o.keyFunc(c))
		if rj != nil {
			o.reject(c, rj)
			return
		}
		if done != nil {
			defer done(0)
		}
		c.Request = r
		c.Next()
	}
}
