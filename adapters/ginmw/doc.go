// Package ginmw is sluice's middleware for gin (github.com/gin-gonic/gin):
// RateLimit and RateLimitBy turn a limiter.Policy into a gin.HandlerFunc, and
// the Guard middleware of this package turns a lockguard.Guard into one, so
// that one request at a time works on a resource and concurrent requests for
// it get 409 Conflict.
//
// Mount a policy per route or group, and several on one route to stack
// limits:
//
//	r.GET("/api/hello", ginmw.RateLimit(burst), ginmw.RateLimit(daily), hello)
//	r.POST("/users/:id/report", ginmw.RateLimitBy(perUser, ginmw.ParamKey("id")), report)
//
// Gin keeps route parameters in *gin.Context, not in *http.Request, so
// RateLimitBy takes a key function of the *gin.Context (ParamKey reads one
// parameter); the policy's own KeyFunc serves RateLimit. Do not key on
// gin.Context.ClientIP unless the engine's trusted proxies are configured
// (SetTrustedProxies): by default gin believes X-Forwarded-For from anyone.
// Use limiter.TrustedProxyIP instead.
//
// Only this package imports gin; a net/http user of sluice never compiles it.
package ginmw
