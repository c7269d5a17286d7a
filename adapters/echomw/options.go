package echomw

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
)

// Option configures RateLimit and Guard with hooks that take the
// echo.Context.
type Option func(*options)

type options struct {
	key  func(c echo.Context) (string, error)
	skip func(c echo.Context) bool
	deny func(c echo.Context, err error) error
}

func newOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithKey picks the key (the client for RateLimit, the resource for Guard)
// with fn instead of the policy's or guard's KeyFunc, for keys that need the
// echo.Context: a route parameter (ParamKey), or a value an earlier
// middleware stored with c.Set. An error or an empty key is answered 400.
// The default, nil, uses the KeyFunc.
func WithKey(fn func(c echo.Context) (string, error)) Option {
	return func(o *options) { o.key = fn }
}

// WithSkip exempts the requests for which fn returns true: they go on
// uncounted (RateLimit) or unlocked (Guard), without quota headers. The
// policy's own skip predicate (limiter.WithSkip) still applies to the
// others. The default skips nothing.
func WithSkip(fn func(c echo.Context) bool) Option {
	return func(o *options) { o.skip = fn }
}

// WithDeny answers a rejected request with fn instead of the rejection's
// own Write, and the middleware returns what fn returns: err is the
// *limiter.Rejection or *lockguard.Rejection (its Status says why; the quota
// headers and Retry-After are already set on c.Response()).
// WithDeny(HTTPError) sends rejections through echo's HTTPErrorHandler. The
// default writes the rejection as JSON (429, 409, 400 or 503) and returns
// nil.
func WithDeny(fn func(c echo.Context, err error) error) Option {
	return func(o *options) { o.deny = fn }
}

// HTTPError is a WithDeny hook that hands a rejection to echo's
// HTTPErrorHandler: it returns an *echo.HTTPError with the rejection's status,
// the status text as its message, and the rejection as its internal error
// (for errors.As). The rejection's headers (quota headers, Retry-After) are
// already set on the response.
func HTTPError(_ echo.Context, err error) error {
	status := http.StatusInternalServerError
	var lr *limiter.Rejection
	var gr *lockguard.Rejection
	switch {
	case errors.As(err, &lr):
		status = lr.Status
	case errors.As(err, &gr):
		status = gr.Status
	}
	return echo.NewHTTPError(status, http.StatusText(status)).SetInternal(err)
}

// rejection is what both cores' rejections offer.
type rejection interface {
	error
	Write(w http.ResponseWriter)
}

// reject answers a rejected request.
func (o *options) reject(c echo.Context, rj rejection) error {
	if o.deny != nil {
		return o.deny(c, rj)
	}
	rj.Write(c.Response())
	return nil
}

// request returns the request for the core: c.Request() carrying echo's
// route parameters as path values, for the policy's or guard's own
// functions (skip predicate, cost, KeyFunc).
func (o *options) request(c echo.Context) *http.Request {
	return withRouteParams(c.Request(), c.ParamNames(), c.ParamValues())
}

// keyFunc returns the WithKey hook as a KeyFunc of c, or nil.
func (o *options) keyFunc(c echo.Context) func(*http.Request) (string, error) {
	if o.key == nil {
		return nil
	}
	return func(*http.Request) (string, error) { return o.key(c) }
}

// withRouteParams returns a clone of r carrying echo's route parameters as
// path values, decoded as net/http's ServeMux decodes them (see
// paramValue), or r itself when there are none. It clones rather than
// shallow-copies: a copy made by r.WithContext shares r's path-value
// storage, and SetPathValue on it would write into r.
func withRouteParams(r *http.Request, names, values []string) *http.Request {
	n := min(len(names), len(values))
	if n == 0 {
		return r
	}
	raw := r.URL.RawPath != ""
	r = r.Clone(r.Context())
	for i := 0; i < n; i++ {
		r.SetPathValue(names[i], decodeParam(values[i], raw))
	}
	return r
}

// paramValue returns the route parameter name of c, decoded: the value
// ServeMux's r.PathValue gives for the same path. Echo matches routes on
// the escaped path when the request has one (url.URL.RawPath, set when the
// path holds an escape that decoding would lose, such as %2F, or one that
// was not needed, such as %41) and leaves its parameters escaped then; so
// "/orders/%41" and "/orders/A" would otherwise name two orders, two locks
// and two quotas.
func paramValue(c echo.Context, name string) string {
	return decodeParam(c.Param(name), c.Request().URL.RawPath != "")
}

// decodeParam decodes v, a route parameter, if echo matched the escaped path
// (raw); a value that does not decode is kept as it is.
func decodeParam(v string, raw bool) string {
	if !raw || !strings.Contains(v, "%") {
		return v
	}
	if d, err := url.PathUnescape(v); err == nil {
		return d
	}
	return v
}

// ParamKey returns a key function for WithKey that reads the route parameter
// name (":id" in the route "/users/:id"), decoded as net/http decodes path
// values, so that "/users/%41" and "/users/A" share a key as they do under
// limiter.PathValueKey and ServeMux. The key is namespaced by the
// parameter's name, "param:id:<value>", so that a parameter value never
// shares a counter with a client address or a header key under the same
// policy. A missing or empty parameter is an error wrapping
// limiter.ErrNoKey.
func ParamKey(name string) func(c echo.Context) (string, error) {
	prefix := "param:" + name + ":"
	return func(c echo.Context) (string, error) {
		if v := paramValue(c, name); v != "" {
			return prefix + v, nil
		}
		return "", fmt.Errorf("%w: route parameter %q is empty", limiter.ErrNoKey, name)
	}
}
