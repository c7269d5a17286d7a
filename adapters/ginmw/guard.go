package ginmw

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sluicehq/sluice/lockguard"
)

// Guard returns gin middleware that lets one request at a time work on the
// resource g's KeyFunc picks (see lockguard.Guard): a concurrent request for
// the same resource gets 409 Conflict with Retry-After and a JSON body (the
// chain is aborted), and the handler finds the lock with
// lockguard.FromContext(c.Request.Context()).
//
// Gin's route parameters are copied into the request's path values before the
// KeyFunc runs, so lockguard.PathValue("id", "order:") reads c.Param("id").
//
// The lock is released when the rest of the chain returns or panics (the
// panic goes on, to gin's Recovery middleware if it is mounted outside this
// one).
//
// Guard panics if g is nil.
func Guard(g *lockguard.Guard) gin.HandlerFunc {
	return guardHandler(g, nil)
}

// GuardBy is Guard with the resource picked by key from the gin.Context
// instead of by g's KeyFunc, for keys that need more than the request (a value
// an earlier middleware stored with c.Set, for instance). A key error or an
// empty key answers 400. GuardBy panics if g or key is nil.
func GuardBy(g *lockguard.Guard, key func(c *gin.Context) (string, error)) gin.HandlerFunc {
	if key == nil {
		panic("ginmw: GuardBy: nil key function")
	}
	return guardHandler(g, key)
}

func guardHandler(g *lockguard.Guard, key func(*gin.Context) (string, error)) gin.HandlerFunc {
	if g == nil {
		panic("ginmw: Guard: nil *lockguard.Guard")
	}
	return func(c *gin.Context) {
		r := c.Request
		var kf lockguard.KeyFunc
		if key != nil {
			kf = func(*http.Request) (string, error) { return key(c) }
		} else {
			r = guardPathValues(r, c.Params)
		}
		r, release, rj := g.Enter(r, kf)
		if rj != nil {
			rj.Write(c.Writer)
			c.Abort()
			return
		}
		defer release()
		c.Request = r
		c.Next()
	}
}

// guardPathValues returns a copy of r carrying gin's route parameters as path
// values, or r itself when there are none. The copy is a clone: a shallow
// copy (r.WithContext) shares r's path-value storage whenever r has some (a
// ServeMux pattern matched it, or something set a value on it), and setting
// values on it would overwrite the values of the caller's request.
func guardPathValues(r *http.Request, params gin.Params) *http.Request {
	if len(params) == 0 {
		return r
	}
	r = r.Clone(r.Context())
	for _, p := range params {
		r.SetPathValue(p.Key, p.Value)
	}
	return r
}
