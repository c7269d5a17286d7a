# Makefile for github.com/sluicehq/sluice
#
#   make test    gofmt check, go vet, go test -race against throwaway Redis servers
#   make bench   benchmarks (root module, then bench/ if it has its own go.mod)
#                  make bench BENCH=Limiter BENCHTIME=2s
#   make run     go run ./examples/nethttp
#   make fmt     gofmt -w .
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

GO        ?= go
GOFMT     ?= gofmt
RACE      ?= -race
BENCH     ?= .
BENCHTIME ?=

# Invoked through bash so a lost executable bit does not matter.
WITH_REDIS := bash scripts/with-redis.sh
APT_INSTALL := bash scripts/apt-install.sh

BENCHFLAGS = -run '^$$' -bench '$(BENCH)' -benchmem $(if $(BENCHTIME),-benchtime=$(BENCHTIME))

# "yes" if the C compiler Go would use for cgo exists. -race needs cgo, and a
# fresh Debian has no gcc. (Recursive variable: re-evaluated on every use, so
# it sees a compiler installed by the race-deps target.)
have_cc = $(shell cc="$$($(GO) env CC)"; command -v "$${cc%% *}" >/dev/null 2>&1 && echo yes)

.PHONY: test fmt-check fmt vet race-deps bench bench-run run help

## test: gofmt check, go vet, then go test -race with Redis available
test: fmt-check vet race-deps
	$(WITH_REDIS) bash scripts/gotest.sh $(if $(have_cc),$(RACE)) -count=1 ./...

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

## vet: go vet ./...
vet:
	$(GO) vet ./...

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

# Benchmarks against whatever REDIS_* the environment holds (no Redis startup).
bench-run:
	$(GO) test $(BENCHFLAGS) ./...
	if [[ -f bench/go.mod ]]; then cd bench && $(GO) test $(BENCHFLAGS) ./...; fi

## run: run the net/http example
run:
	$(GO) run ./examples/nethttp

## help: list targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)
