package httpmw

import (
	"net/http"

	"github.com/sluicehq/sluice/lockguard"
)

// Guard returns net/http middleware that lets one request at a time work on
// the resource g's KeyFunc picks (see lockguard.Guard): a concurrent request
// for the same resource gets 409 Conflict with Retry-After and a JSON body,
// and the handler finds the lock with lockguard.FromContext(r.Context()). The
// lock is released when the handler returns or panics; a panic goes on to the
// server (or a recovering middleware outside this one).
//
// To key on a route parameter with limiter.PathValueKey, wrap the route's
// handler rather than the ServeMux, so that the mux has matched the pattern
// and set the path values before the guard runs:
//
//	mux.Handle("POST /orders/{id}/pay", httpmw.Guard(g)(http.HandlerFunc(pay)))
//
// Guard panics if g is nil.
func Guard(g *lockguard.Guard) func(http.Handler) http.Handler {
	if g == nil {
		panic("httpmw: Guard: nil *lockguard.Guard")
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("httpmw: Guard of a nil handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r, done, rj := g.Admit(w, r, nil)
			if rj != nil {
				rj.Write(w)
				return
			}
			if done != nil {
				defer done(0)
			}
			next.ServeHTTP(w, r)
		})
	}
}
