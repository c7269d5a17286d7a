// Package echomw is sluice's middleware for echo (github.com/labstack/echo/v4):
// RateLimit turns a limiter.Policy into an echo.MiddlewareFunc,
// and the Guard middleware of this package turns a lockguard.Guard into one,
// so that one request at a time works on a resource and concurrent requests
// for it get 409 Conflict.
//
// Mount a policy per route or group, and several on one route to stack
// limits:
//
//	e.GET("/api/hello", hello, echomw.RateLimit(burst), echomw.RateLimit(daily))
//	e.POST("/users/:id/report", report, echomw.RateLimit(perUser, echomw.WithKey(echomw.ParamKey("id"))))
//
// Echo keeps route parameters in echo.Context, not in *http.Request: the
// middleware copies them into the request's path values for the policy's and
// guard's own functions, decoded as net/http's ServeMux decodes them (echo
// leaves a parameter escaped when the path holds an escape such as %2F or
// %41, so "/orders/%41" would otherwise be another order than "/orders/A"),
// and WithKey takes a key function of the echo.Context instead (ParamKey
// reads one parameter, decoded the same way). WithSkip and WithDeny take the
// echo.Context too; WithDeny(HTTPError) sends rejections through echo's
// HTTPErrorHandler. Do not key on echo.Context.RealIP unless echo's
// IPExtractor is configured: by default it believes X-Forwarded-For from
// anyone. Use limiter.TrustedProxyIP instead.
//
// Only this package imports echo; a net/http user of sluice never compiles it.
package echomw
