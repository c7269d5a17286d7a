#!/usr/bin/env bash
#
# consumer-check.sh — what a net/http user of sluice pays for (run by `make test`).
#
# Builds a throwaway module in a temp dir that imports only adapters/httpmw,
# store/memstore and store/redisstore, with a replace directive pointing at
# this checkout (GOWORK=off, GOFLAGS=-mod=mod, as a user's module would be),
# and fails if
#   - its module graph (`go list -m all`) names gin, echo, quic-go,
#     mongo-driver, a Prometheus module (client_golang and the rest of
#     github.com/prometheus) or OpenTelemetry: a net/http user must not pull
#     in a framework, nor the metrics libraries that only
#     metrics/prommetrics and metrics/otelmetrics (modules of their own) use;
#   - any module in that graph, or the consumer's go.mod after `go mod tidy`,
#     needs a Go newer than GO_FLOOR (default 1.24), or tidy adds a toolchain
#     line;
#   - the consumer does not build and vet.
# With FLOOR_TOOLCHAIN set (e.g. go1.24.0) every go command runs with that Go
# release, fetched from the Go module proxy on first use.
#
# Usage: scripts/consumer-check.sh

set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
floor=${GO_FLOOR:-1.24}

log() { echo "consumer-check: $*" >&2; }

norm() { [[ $1 == *.*.* ]] && echo "$1" || echo "$1.0"; }
version_le() { [[ $(printf '%s\n' "$(norm "$1")" "$(norm "$2")" | sort -V | tail -n 1) == "$(norm "$2")" ]]; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-consumer.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"

export GOWORK=off GOFLAGS=-mod=mod
[[ -z ${FLOOR_TOOLCHAIN:-} ]] || export GOTOOLCHAIN=$FLOOR_TOOLCHAIN

cat >go.mod <<EOM
module example.com/sluiceconsumer

go $floor

require github.com/sluicehq/sluice v0.0.0-00010101000000-000000000000

replace github.com/sluicehq/sluice => $root
EOM

cat >main.go <<'EOM'
// A net/http user of sluice: the packages such a user imports, nothing else.
package main

import (
	_ "github.com/sluicehq/sluice/adapters/httpmw"
	_ "github.com/sluicehq/sluice/store/memstore"
	_ "github.com/sluicehq/sluice/store/redisstore"
)

func main() {}
EOM

go mod tidy
go build ./...
go vet ./...
log "$(go version), $(go list -m all | wc -l) modules in the graph"

fail=0
if forbidden=$(go list -m all | grep -E '(^|/)(gin-gonic/|labstack/echo|quic-go/|mongo-driver)|^github\.com/prometheus/|^go\.opentelemetry\.io/'); then
	log "the module graph of a net/http user holds:"
	echo "$forbidden" >&2
	fail=1
fi

v=$(sed -n 's/^go \([0-9.]*\).*/\1/p' go.mod)
version_le "$v" "$floor" || { log "go mod tidy raised the consumer's go directive to $v (floor: $floor)"; fail=1; }
if grep -q '^toolchain ' go.mod; then log "go mod tidy added $(grep '^toolchain ' go.mod)"; fail=1; fi

while read -r path gover; do
	[[ -z $gover ]] || version_le "$gover" "$floor" || { log "$path needs go $gover (floor: $floor)"; fail=1; }
done < <(go list -m -f '{{.Path}}@{{.Version}} {{.GoVersion}}' all)

((fail == 0)) || exit 1
log "ok: no gin, echo, quic-go, mongo-driver, Prometheus or OpenTelemetry; every module needs go $floor or lower"
