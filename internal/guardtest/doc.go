// Package guardtest is a black-box test suite for HTTP middleware built on
// lockguard.Guard. It drives a real HTTP server (httptest.Server) through the
// behaviour a user relies on: one request at a time per resource (409 with
// Retry-After and a JSON body for the others), other resources in parallel,
// fencing tokens visible to the handler and increasing, the lock kept alive
// past its TTL while the handler runs, the handler's context cancelled when
// the lock is deleted behind its back or held too long, the lock released
// when the handler panics or the client hangs up, 503 or fail-open when the
// store fails, and 400 for a bad key.
//
// Each adapter's tests call Run with a Mount for their framework and the
// backends to test against (Memory, Redis, OwnRedis, Env). The suite is
// internal: it drives sluice's own adapters, over memstore and Redis
// (go-redis, miniredis, throwaway servers), and is not part of the API.
package guardtest
