// Package httpmw is sluice's net/http middleware: RateLimit turns a
// limiter.Policy into a func(http.Handler) http.Handler, and the Guard
// middleware of this package turns a lockguard.Guard into one, so that one
// request at a time works on a resource and concurrent requests for it get
// 409 Conflict.
//
// It works with any router that takes http.Handler middleware (http.ServeMux,
// chi, gorilla/mux): wrap each route or route group with its own policy, and
// stack several to combine limits:
//
//	burst, _ := limiter.NewPolicy("burst", 5, time.Second, st)
//	daily, _ := limiter.NewPolicy("daily", 1000, 24*time.Hour, st)
//	mux.Handle("GET /api/hello", httpmw.RateLimit(burst)(httpmw.RateLimit(daily)(hello)))
//
// Key functions read *http.Request, so r.PathValue gives a route parameter of
// http.ServeMux patterns. This package imports neither echo nor gin.
package httpmw
