# Makefile for github.com/sluicehq/sluice
#
#   make test        every check, on every module of go.work:
#                      gofmt, go vet, staticcheck, module layout (floor, tidy),
#                      the net/http consumer check, each module on its own with
#                      the oldest supported Go (FLOOR_TOOLCHAIN), then
#                      go test -race against throwaway Redis servers
#   make test-failover
#                    kill -9 Redis Cluster and Sentinel masters under load
#                    (internal/failovertest on scripts/failover-bed.sh) and
#                    print what each failover cost
#   make lint        staticcheck only
#   make bench       benchmarks of every module (make bench BENCH=Limiter BENCHTIME=2s)
#   make run         go run ./examples/nethttp
#   make fmt         gofmt -w .
#
# Modules: the root module, the adapters (adapters/echomw, adapters/ginmw), the
# metrics modules, the config modules (config, config/echoconfig,
# config/ginconfig), the examples and bench, joined by go.work. Targets read
# the module list from go.work (`go list -m`), so a module added there is
# tested everywhere.
#
# Redis: `test` and `bench` run under scripts/with-redis.sh, which starts a
# standalone redis-server and a 3-node Redis Cluster on free loopback ports and
# exports REDIS_ADDR / REDIS_CLUSTER_ADDRS (unless already set in the
# environment), then stops them again. See that script for details.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

# Use the standard Go install if `go` is not on PATH already.
export PATH := $(PATH):/usr/local/go/bin
# Always the workspace of this checkout, even if the environment says GOWORK=off.
export GOWORK := $(CURDIR)/go.work

GO        ?= go
GOFMT     ?= gofmt
RACE      ?= -race
BENCH     ?= .
BENCHTIME ?=

# The oldest Go that sluice supports: every go.mod says `go $(GO_FLOOR)` or lower.
GO_FLOOR        ?= 1.24
# The release each module is vetted and tested with on its own (from the Go
# module proxy, once); `make test FLOOR_TOOLCHAIN=` skips that step.
FLOOR_TOOLCHAIN ?= go1.24.0
export GO_FLOOR FLOOR_TOOLCHAIN

# staticcheck, pinned; installed into ./bin from the Go module proxy, outside
# every module's graph.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(CURDIR)/bin/staticcheck

# Invoked through bash so a lost executable bit does not matter.
WITH_REDIS := bash scripts/with-redis.sh
FAILOVER_BED := bash scripts/failover-bed.sh
APT_INSTALL := bash scripts/apt-install.sh

# Package patterns of every module of the workspace (./..., ./adapters/echomw/..., ...).
# Shell text, expanded when a recipe runs.
PKGS = $$($(GO) list -m -f '{{.Dir}}/...' | sed 's|^$(CURDIR)|.|')

BENCHFLAGS = -run '^$$' -bench '$(BENCH)' -benchmem $(if $(BENCHTIME),-benchtime=$(BENCHTIME))

# "yes" if the C compiler Go would use for cgo exists. -race needs cgo, and a
# fresh Debian has no gcc. (Recursive variable: re-evaluated on every use, so
# it sees a compiler installed by the race-deps target.)
have_cc = $(shell cc="$$($(GO) env CC)"; command -v "$${cc%% *}" >/dev/null 2>&1 && echo yes)

.PHONY: test test-failover fmt-check fmt modules vet lint staticcheck consumer-check race-deps bench bench-run run help

## test: gofmt, go vet, staticcheck, module checks, consumer check, then go test -race with Redis
test: fmt-check vet lint modules consumer-check race-deps
	$(WITH_REDIS) bash scripts/gotest.sh $(if $(have_cc),$(RACE)) -count=1 $(PKGS)

## test-failover: a Redis Cluster (3 masters, 3 replicas) and a Sentinel group on loopback; kill -9 their masters under load and print recovery time, errors, excess admissions, lost locks
test-failover: race-deps
	$(FAILOVER_BED) bash scripts/failover-test.sh $(if $(have_cc),$(RACE))

## fmt-check: fail if gofmt would change any file
fmt-check:
	@out="$$($(GOFMT) -l .)"; \
	if [[ -n "$$out" ]]; then \
		echo "gofmt: these files are not formatted (run 'make fmt'):" >&2; \
		echo "$$out" >&2; \
		exit 1; \
	fi

## fmt: format all Go files in place
fmt:
	$(GOFMT) -w .

## modules: every go.mod in go.work, go $(GO_FLOOR) or lower, tidy; each module vetted and tested (-short) on its own with $(FLOOR_TOOLCHAIN)
modules:
	bash scripts/check-modules.sh

## vet: go vet on every module
vet:
	$(GO) vet $(PKGS)

## lint: staticcheck (default checks) on every module; fails on any finding
lint: $(STATICCHECK)
	$(STATICCHECK) $(PKGS)

$(STATICCHECK): Makefile
	GOBIN=$(CURDIR)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: lint

## consumer-check: a net/http user's module graph holds no gin, echo, quic-go, mongo-driver, nothing newer than go $(GO_FLOOR)
consumer-check:
	bash scripts/consumer-check.sh

# Install gcc for -race when it is missing and we are root; otherwise warn
# (the test target then runs without -race).
race-deps:
ifneq ($(RACE),)
	@if [[ -z "$(have_cc)" ]]; then \
		if [[ $$(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then \
			echo "make: -race needs a C compiler (cgo); installing gcc" >&2; \
			$(APT_INSTALL) gcc libc6-dev; \
		else \
			echo "make: WARNING: no C compiler found; running tests WITHOUT -race" >&2; \
		fi; \
	fi
endif

## bench: run benchmarks with Redis available (BENCH=regex, BENCHTIME=1s|100x)
bench:
	$(WITH_REDIS) $(MAKE) --no-print-directory bench-run

# Benchmarks against whatever REDIS_* the environment holds (no Redis startup),
# one package at a time (-p 1), so that no two measure the same CPUs and Redis
# at once.
bench-run:
	$(GO) test -p 1 $(BENCHFLAGS) $(PKGS)

## run: run the net/http example
run:
	$(GO) run ./examples/nethttp

## help: list targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)
