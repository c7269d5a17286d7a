#!/usr/bin/env bash
#
# failover-test.sh — run the failover scenarios of internal/failovertest.
#
# Run it under scripts/failover-bed.sh (make test-failover does), which
# starts the Redis Cluster and Sentinel group the scenarios kill masters of.
# It runs the scenarios with the go-redis version of go.mod, then the Cluster
# master kill again with a newer go-redis ($FAILOVER_GOREDIS, default v9.23.0,
# fetched from the Go module proxy into a copy of go.mod; set it empty to
# skip), whose periodic reload of the slot map is a minute. Extra arguments go
# to the first go test (e.g. -race). It prints every figure the scenarios log,
# and exits non-zero if any run fails.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Without the bed every scenario would skip and this run would test nothing.
if [[ -z ${FAILOVER_CLUSTER_ADDRS:-} || -z ${FAILOVER_SENTINEL_ADDRS:-} ]]; then
	echo "failover-test: FAILOVER_CLUSTER_ADDRS and FAILOVER_SENTINEL_ADDRS are unset: run under scripts/failover-bed.sh (make test-failover), on a machine with redis-server or root and apt-get" >&2
	exit 1
fi

GOREDIS=${FAILOVER_GOREDIS-v9.23.0}
PKG=./internal/failovertest

# Keep the figures (t.Logf lines) and results, drop the === RUN noise. With
# pipefail, a pipeline fails if go test does.
show() { grep -v -E '^=== (RUN|PAUSE|CONT)' || true; }

echo "failover-test: scenarios with the go-redis of go.mod"
status=0
go test -count=1 -v "$@" "$PKG" 2>&1 | show || status=1

if [[ -n $GOREDIS ]]; then
	echo "failover-test: Cluster master kill with go-redis $GOREDIS"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-goredis.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	cp go.mod go.sum "$tmp/"
	export GOWORK=off GOFLAGS=-mod=mod
	go get -modfile="$tmp/go.mod" "github.com/redis/go-redis/v9@$GOREDIS"
	go test -modfile="$tmp/go.mod" -count=1 -v -run '^TestClusterMasterKill$' "$PKG" 2>&1 | show || status=1
fi
exit "$status"
