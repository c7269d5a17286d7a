#!/usr/bin/env bash
#
# check-modules.sh — check sluice's module layout (run by `make test`).
#
#   1. every go.mod in the tree is a module of go.work, so `make test`, which
#      tests the modules of go.work, tests every module;
#   2. go.work and every go.mod say `go 1.24` or lower (GO_FLOOR, default
#      1.24) and have no toolchain line;
#   3. each module's go.mod and go.sum are tidy on their own (GOWORK=off).
#
# With FLOOR_TOOLCHAIN set (e.g. go1.24.0; the Makefile sets it), it also
#   4. vets each module on its own (GOWORK=off: its own minimum requirements,
#      not the workspace's) with that Go release and runs its tests with
#      -short (no end-to-end builds). The go command fetches that release from
#      the Go module proxy (module golang.org/toolchain) on first use.
#
# Usage: scripts/check-modules.sh   (from anywhere; works on the checkout it is in)

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
floor=${GO_FLOOR:-1.24}
toolchain=${FLOOR_TOOLCHAIN:-}

log() { echo "check-modules: $*" >&2; }
fail=0
bad() { log "$*"; fail=1; }

# version_le A B: Go versions, "1.24" read as "1.24.0".
norm() { [[ $1 == *.*.* ]] && echo "$1" || echo "$1.0"; }
version_le() { [[ $(printf '%s\n' "$(norm "$1")" "$(norm "$2")" | sort -V | tail -n 1) == "$(norm "$2")" ]]; }

# Modules of the workspace, as directories relative to the root.
mapfile -t modules < <(GOWORK="$root/go.work" go list -m -f '{{.Dir}}' | sed "s|^$root|.|; s|^\./||")

# 1. Every go.mod belongs to the workspace.
while IFS= read -r gomod; do
	dir=$(dirname "$gomod")
	dir=${dir#./}
	found=0
	for m in "${modules[@]}"; do [[ $m == "$dir" ]] && found=1; done
	((found)) || bad "$gomod is not in go.work: add it with 'go work use $dir'"
done < <(find . -name go.mod -not -path './.git/*' -not -path './bin/*' | sort)

# 2. Go floor, no toolchain line.
for f in go.work $(for m in "${modules[@]}"; do echo "$m/go.mod"; done); do
	f=${f#./}
	v=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$f")
	[[ -n $v ]] || bad "$f: no go directive"
	[[ -z $v ]] || version_le "$v" "$floor" || bad "$f: go $v is newer than the floor, go $floor"
	if grep -q '^toolchain ' "$f"; then bad "$f: has a toolchain line ($(grep '^toolchain ' "$f"))"; fi
done

# 3. Tidy, each module on its own.
for m in "${modules[@]}"; do
	if ! out=$(cd "$m" && GOWORK=off go mod tidy -diff 2>&1); then
		bad "$m: go.mod/go.sum not tidy (run 'cd $m && GOWORK=off go mod tidy'):"
		echo "$out" >&2
	fi
done

((fail == 0)) || exit 1
log "${#modules[@]} modules, all in go.work, go $floor or lower, tidy"

# 4. Each module on its own with the oldest supported Go.
[[ -n $toolchain ]] || exit 0
GOTOOLCHAIN=$toolchain GOWORK=off go version
for m in "${modules[@]}"; do
	log "$m: go vet and go test -short with $toolchain, GOWORK=off"
	(cd "$m" && GOTOOLCHAIN=$toolchain GOWORK=off go vet ./... &&
		GOTOOLCHAIN=$toolchain GOWORK=off go test -short -count=1 ./...) || bad "$m: fails with $toolchain"
done
((fail == 0)) || exit 1
