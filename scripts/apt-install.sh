#!/usr/bin/env bash
#
# apt-install.sh PKG... — install Debian packages non-interactively.
#
# Used by scripts/with-redis.sh (redis-server, redis-tools), the Makefile
# (gcc for `go test -race`) and .ci/run (make, ca-certificates).
# Must run as root. If another apt/dpkg process is already running (e.g. an
# install started in the background, unattended-upgrades), it waits for it
# instead of failing on the dpkg/apt locks.

set -euo pipefail

log() { echo "apt-install: $*" >&2; }

(($# > 0)) || { echo "usage: $0 PKG..." >&2; exit 2; }
[[ $(id -u) == 0 ]] || { log "must be root to install: $*"; exit 1; }
command -v apt-get >/dev/null 2>&1 || { log "apt-get not found; cannot install: $*"; exit 1; }

# True while some apt/dpkg process runs (scans /proc, so procps is not needed).
apt_busy() {
	local f comm
	for f in /proc/[0-9]*/comm; do
		{ read -r comm <"$f"; } 2>/dev/null || continue
		case $comm in apt | apt-get | aptitude | dpkg | unattended-upgr*) return 0 ;; esac
	done
	return 1
}

wait_for_apt() {
	local waited=0
	while apt_busy; do
		((waited == 0)) && log "another apt/dpkg process is running; waiting for it (max 10 min)"
		((waited >= 600)) && { log "apt/dpkg still busy after 10 minutes"; exit 1; }
		sleep 2
		waited=$((waited + 2))
	done
}

log "installing: $*"
export DEBIAN_FRONTEND=noninteractive

# `apt-get update` does not honour DPkg::Lock::Timeout for the lists lock, so
# wait ourselves and retry a few times (also covers flaky mirrors).
for attempt in 1 2 3; do
	wait_for_apt
	apt-get -o DPkg::Lock::Timeout=300 update && break
	((attempt == 3)) && { log "apt-get update failed"; exit 1; }
	log "apt-get update failed (attempt $attempt/3); retrying in 5 s"
	sleep 5
done

wait_for_apt
# DPkg::Lock::Timeout makes apt wait for the dpkg lock rather than fail.
apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "$@"
