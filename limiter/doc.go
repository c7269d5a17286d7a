// Package limiter is sluice's framework-neutral rate limiter: a named rate
// rule over a store, and the HTTP policy around it.
//
// # Limiter
//
// A Limiter allows at most Limit hits per key in any window of length
// Window, counted in a store.WindowStore (store/memstore for one process,
// store/redisstore for every instance of an application sharing one Redis)
// by the exact sliding log, or by the sliding-window counter or GCRA for
// large quotas (WithAlgorithm):
//
//	st, _ := memstore.New()
//	l, err := limiter.New("api", 100, time.Minute, st)
//	d, err := l.Allow(ctx, "user:42")
//	if err == nil && !d.Allowed {
//		// wait d.RetryAfter
//	}
//
// The store hashes the limiter's name with each key, so limiters with
// different names never mix their counts; a second live limiter with the same name over
// the same store is a configuration error (ErrNameInUse). Bad input is an
// error, never a panic and never a silent allow.
//
// # Policy
//
// A Policy decides HTTP requests with a Limiter. It picks a key per request
// (ClientIP by default; ValidatedHeaderKey, ContextKey and TrustedProxyIP
// for API keys, users and clients behind reverse proxies), a cost, which requests to
// skip, and whether to count only failed (WithSkipSuccessful) or successful
// (WithSkipFailed) requests. On every response of a limited route it sets
//
//	X-RateLimit-Limit: 5
//	X-RateLimit-Remaining: 4
//	X-RateLimit-Reset: 1767225610
//	RateLimit-Policy: "api";q=5;w=10
//	RateLimit: "api";r=4;t=10
//
// and denies with 429 Too Many Requests, Retry-After and a JSON body. Stack
// decides several policies on one route together (a request one denies is
// counted by none); each adds its own member to RateLimit-Policy and
// RateLimit, and the X-RateLimit-* fields show the most restrictive one.
// WithLimitFunc picks a limit per request (plans). Over a remote store a
// deny cache answers a client just denied in process until its retry-after
// has passed, and WithObserver reports every decision for metrics. When the
// store fails or does not answer within the policy's timeout the Policy fails
// open or closed, as configured. The handler finds the decisions with
// FromContext or DecisionFor.
//
// NewPolicy makes a route's Policy in one call (name, limit, window, store,
// options). A Policy works on net/http types only; the middleware lives in
// adapters/httpmw, adapters/echomw and adapters/ginmw, which call Admit
// before the handler (and the function it returns after it), as they do
// for a lockguard.Guard. docs/ratelimit.md describes every option.
package limiter
