// Package ginmw is sluice's middleware for gin (github.com/gin-gonic/gin):
// RateLimit turns a limiter.Policy into a gin.HandlerFunc, and
// the Guard middleware of this package turns a lockguard.Guard into one, so
// that one request at a time works on a resource and concurrent requests for
// it get 409 Conflict.
//
// Mount a policy per route or group, and several on one route to stack
// limits:
//
//	r.GET("/api/hello", ginmw.RateLimit(burst), ginmw.RateLimit(daily), hello)
//	r.POST("/users/:id/report", ginmw.RateLimit(perUser, ginmw.WithKey(ginmw.ParamKey("id"))), report)
//
// Gin keeps route parameters and the values of c.Set in *gin.Context, not in
// *http.Request: the middleware copies the parameters into the request's path
// values and gives the request a context that answers c.Set's string keys
// (both only when there are some; the context reads the values live, so one
// stored after the middleware ran is found too, and keeps a copy once the
// request is over), for the policy's and guard's own functions:
// limiter.PathValueKey("id") reads ":id", limiter.ContextKey("user", nil) the
// user an authentication middleware stored with c.Set("user", ...). WithKey
// takes a key function of the *gin.Context instead (ParamKey reads one
// parameter). WithSkip and WithDeny take the
// *gin.Context too. Do not key on gin.Context.ClientIP unless the engine's
// trusted proxies are configured (SetTrustedProxies): by default gin believes
// X-Forwarded-For from anyone. Use limiter.TrustedProxyIP instead.
//
// Only this package imports gin; a net/http user of sluice never compiles it.
package ginmw
