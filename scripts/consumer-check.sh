#!/usr/bin/env bash
#
# consumer-check.sh — what a net/http user of sluice pays for (run by `make test`).
#
# Builds throwaway modules in a temp dir, with replace directives pointing at
# this checkout (GOWORK=off, GOFLAGS=-mod=mod, as a user's module would be):
# one that imports only adapters/httpmw, store/memstore and store/redisstore,
# and one that imports the config module (sluice.yaml on net/http). Fails if
#   - its module graph (`go list -m all`) names gin, echo, quic-go,
#     mongo-driver, a Prometheus module (client_golang and the rest of
#     github.com/prometheus) or OpenTelemetry: a net/http user must not pull
#     in a framework, nor the metrics libraries that only
#     metrics/prommetrics and metrics/otelmetrics (modules of their own) use;
#     nor, but for the config user, the YAML parser (go.yaml.in);
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

export GOWORK=off GOFLAGS=-mod=mod
[[ -z ${FLOOR_TOOLCHAIN:-} ]] || export GOTOOLCHAIN=$FLOOR_TOOLCHAIN

fail=0

# consumer NAME FORBIDDEN MODULE... -- PACKAGE...: builds a module that
# requires MODULEs (paths below github.com/sluicehq/sluice, "" for the root)
# and imports PACKAGEs, and checks its graph against FORBIDDEN (an ERE).
consumer() {
	local name=$1 forbidden=$2
	shift 2
	local mods=() pkgs=()
	while [[ $1 != -- ]]; do mods+=("$1"); shift; done
	shift
	pkgs=("$@")
	local d=$dir/$name
	mkdir -p "$d"
	{
		echo "module example.com/sluiceconsumer"
		echo
		echo "go $floor"
		echo
		for m in "${mods[@]}"; do echo "require github.com/sluicehq/sluice$m v0.0.0-00010101000000-000000000000"; done
		for m in "${mods[@]}"; do echo "replace github.com/sluicehq/sluice$m => $root$m"; done
	} >"$d/go.mod"
	{
		echo "// A $name user of sluice: the packages such a user imports, nothing else."
		echo "package main"
		echo
		echo "import ("
		for p in "${pkgs[@]}"; do echo "	_ \"github.com/sluicehq/sluice/$p\""; done
		echo ")"
		echo
		echo "func main() {}"
	} >"$d/main.go"
	(cd "$d" && go mod tidy && go build ./... && go vet ./...) || {
		log "$name: the consumer does not build"
		fail=1
		return
	}
	log "$name: $(cd "$d" && go version), $(cd "$d" && go list -m all | wc -l) modules in the graph"

	local found
	if found=$(cd "$d" && go list -m all | grep -E "$forbidden"); then
		log "the module graph of a $name user holds:"
		echo "$found" >&2
		fail=1
	fi
	local v
	v=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$d/go.mod")
	version_le "$v" "$floor" || { log "$name: go mod tidy raised the consumer's go directive to $v (floor: $floor)"; fail=1; }
	if grep -q '^toolchain ' "$d/go.mod"; then log "$name: go mod tidy added $(grep '^toolchain ' "$d/go.mod")"; fail=1; fi
	local path gover
	while read -r path gover; do
		[[ -z $gover ]] || version_le "$gover" "$floor" || { log "$name: $path needs go $gover (floor: $floor)"; fail=1; }
	done < <(cd "$d" && go list -m -f '{{.Path}}@{{.Version}} {{.GoVersion}}' all)
}

frameworks='(^|/)(gin-gonic/|labstack/echo|quic-go/|mongo-driver)|^github\.com/prometheus/|^go\.opentelemetry\.io/'

# A net/http user: no framework, no metrics library, no YAML parser of the
# config module.
consumer net/http "$frameworks|^go\.yaml\.in/" "" -- adapters/httpmw store/memstore store/redisstore
# A user of the config file on net/http: the YAML parser, still no framework
# or metrics library.
consumer config "$frameworks" "" /config -- config store/redisstore

((fail == 0)) || exit 1
log "ok: no gin, echo, quic-go, mongo-driver, Prometheus, OpenTelemetry (nor YAML for net/http); every module needs go $floor or lower"
