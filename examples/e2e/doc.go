// Package e2e holds the black-box test of sluice's example servers. It has no
// code of its own: its test builds examples/nethttp, examples/echo,
// examples/gin and examples/config (the same routes from sluice.yaml), runs
// each binary as a process on a free loopback port and checks the route
// contract they share over HTTP.
//
// On the in-memory store the test always runs (it skips under -short, because
// it builds the binaries). With REDIS_ADDR set (host:port of a redis-server) it
// also runs two instances of each example on one Redis and checks that they
// share one quota and one set of locks; with REDIS_CLUSTER_ADDRS set
// (comma-separated seeds of a Redis Cluster) it runs the contract on the
// Cluster. scripts/with-redis.sh provides both:
//
//	scripts/with-redis.sh go test -race -count=1 ./examples/...
package e2e
