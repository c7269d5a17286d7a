// Package limitertest is a black-box test suite for HTTP middleware built on
// limiter.Policy. It drives a real HTTP server (httptest.Server) through the
// behaviour a user relies on: the exact quota headers on allowed and denied
// responses, the 429 body and Retry-After, the window sliding with the clock,
// routes with independent policies, stacked policies (both in the IETF
// fields, the stricter one denying), counting only failed or only successful
// requests (the login pattern), the skip predicate, request costs, switching
// header families off, the decisions visible to the handler, key functions
// (spoofed X-Forwarded-For ignored by default and honoured behind trusted
// proxies, right-most untrusted address, IPv6 grouped by /64, a 32 KB API
// key, a key error answered 400, a route parameter), 40 concurrent requests
// against a limit of 5, fail-open and fail-closed when the store is down or
// hangs, and clients that half-close their connection never being served
// uncounted.
//
// Each adapter's tests call Run with a Mount for their framework and the
// backends to test against (Memory, Emulated, OwnRedis, Env). The suite's
// clock is injected into the stores, so no test sleeps to move time.
// The suite is internal: it drives sluice's own adapters, over memstore and
// Redis (go-redis, miniredis, throwaway servers), and is not part of the API.
package limitertest
