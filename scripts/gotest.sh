#!/usr/bin/env bash
# Runs `go test -v` with the given flags and packages, keeps the verbose log
# in a file, and prints a summary instead of every line:
#   - which tests ran against a real Redis server or Cluster (so a log shows
#     they ran and were not skipped),
#   - every skipped test with its reason,
#   - on failure, the whole verbose log,
#   - go test's package lines (ok / FAIL / no test files),
#   - one closing line: "N passed, N failed, N skipped" (subtests included).
# The exit code is go test's.
#
#   scripts/gotest.sh -race -count=1 ./... ./adapters/echomw/... ./adapters/ginmw/...
#
# With several modules, run it in a workspace (go.work) and pass one pattern
# per module: one go test run, one summary.
set -uo pipefail

log=$(mktemp "${TMPDIR:-/tmp}/sluice-gotest.XXXXXX")
trap 'rm -f "$log"' EXIT

go test -v "$@" >"$log" 2>&1
status=$?

# Top-level tests and first-level subtests whose names say they ran on a real
# server ("redis", "cluster", "shared"; miniredis is not a real server).
real=$(grep -E '^(    )?--- PASS: [^ ]*([Rr]edis|[Cc]luster|Shared)' "$log" |
	grep -vi 'miniredis' | sed -E 's/^ *--- PASS: /  /' | sort -u)
if [[ -n "$real" ]]; then
	echo "Tests that ran against a real Redis server or Cluster ($(wc -l <<<"$real")):"
	echo "$real"
else
	echo "No test ran against a real Redis server or Cluster (REDIS_ADDR / REDIS_CLUSTER_ADDRS unset?)."
fi

# go test -v prints a test's log lines (file.go:N: why) after its "=== RUN"
# (or "=== CONT") line and its "--- SKIP" later, grouped under its parent:
# remember the last log line of each test and print it beside the skip.
skips=$(awk '
	/^=== (RUN|CONT|NAME) / { current = $3; next }
	/^ +[A-Za-z0-9_]+\.go:[0-9]+: / { line = $0; sub(/^ +/, "", line); msg[current] = line; next }
	/^ *--- SKIP: / { name = $3; print "  " name "  " msg[name] }
' "$log" | sort -u)
if [[ -n "$skips" ]]; then
	echo
	echo "Skipped tests and why:"
	echo "$skips"
fi

if ((status != 0)); then
	echo
	echo "go test failed; the full log follows."
	cat "$log"
fi

echo
grep -E '^(ok|FAIL|\?) ' "$log"

passed=$(grep -cE '^ *--- PASS:' "$log")
failed=$(grep -cE '^ *--- FAIL:' "$log")
skipped=$(grep -cE '^ *--- SKIP:' "$log")
echo
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
