#!/usr/bin/env bash
#
# with-redis.sh — run a command with throwaway Redis servers available.
#
# Usage:
#   scripts/with-redis.sh CMD [ARGS...]
#
# Unless they are already set in the environment, this script
#   * starts a standalone redis-server on a free 127.0.0.1 port and exports
#       REDIS_ADDR=127.0.0.1:PORT
#   * starts a 3-master Redis Cluster (no replicas) on 3 free 127.0.0.1 ports
#     and exports
#       REDIS_CLUSTER_ADDRS=127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
# then runs CMD with that environment, stops every server it started (also
# when CMD fails or the script is interrupted) and exits with CMD's status.
#
# Setting a variable yourself — even to the empty string — skips starting that
# part, e.g. `REDIS_ADDR= REDIS_CLUSTER_ADDRS= scripts/with-redis.sh go test ./...`
# runs without any Redis (tests that need Redis are expected to skip then).
#
# If redis-server/redis-cli are missing and we are root on a Debian-like
# system, they are installed with scripts/apt-install.sh (packages redis-server
# and redis-tools). The Debian redis service is never used; we always run our
# own processes. If they are missing and we cannot install them (not root),
# CMD still runs, just without REDIS_* set, so real-Redis tests skip.
#
# Everything lives in one temp dir (config, logs, cluster nodes.conf) that is
# removed on exit. Nothing is persisted: `save ""`, `appendonly no`.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "with-redis: $*" >&2; }
die() { log "error: $*"; exit 1; }

if (($# == 0)); then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

# Which parts do we need to start? (Set-but-empty counts as "set".)
need_single=0
need_cluster=0
[[ -z ${REDIS_ADDR+set} ]] && need_single=1
[[ -z ${REDIS_CLUSTER_ADDRS+set} ]] && need_cluster=1

if ((need_single == 0 && need_cluster == 0)); then
	log "tests use REDIS_ADDR=${REDIS_ADDR} REDIS_CLUSTER_ADDRS=${REDIS_CLUSTER_ADDRS} (from environment)"
	exec "$@"
fi

# ---------------------------------------------------------------------------
# Make sure redis-server and redis-cli exist (install them if we can).
# ---------------------------------------------------------------------------

have_redis() { command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; }

if ! have_redis; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "redis-server/redis-cli not found; installing them"
		bash "$SCRIPT_DIR/apt-install.sh" redis-server redis-tools
		have_redis || die "redis-server/redis-cli still missing after apt-get install"
	else
		log "redis-server/redis-cli not installed and cannot install them (not root or no apt-get);"
		log "real-Redis tests will be SKIPPED. Install with: sudo apt-get install redis-server redis-tools"
		exec "$@"
	fi
fi

# ---------------------------------------------------------------------------
# Cleanup: stop every redis-server we started, remove the temp dir, keep the
# exit status. Runs on normal exit, on errors (set -e) and on INT/TERM.
# ---------------------------------------------------------------------------

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-redis.XXXXXX")
PIDS=() # pids of the redis-server processes we started

stop_pids() {
	local pid i
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	# Give them up to 5 s to shut down, then SIGKILL whatever is left.
	for ((i = 0; i < 50; i++)); do
		local alive=0
		for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for pid in "$@"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true # reap our child
	done
}

# shellcheck disable=SC2317 # invoked via trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	((${#PIDS[@]})) && stop_pids "${PIDS[@]}"
	rm -rf "$WORKDIR"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Free port selection.
# ---------------------------------------------------------------------------

declare -A RESERVED=() # ports already handed out by this script (incl. bus ports)

port_in_use() {
	local p=$1
	# Anything accepting connections on loopback (also catches 0.0.0.0/:: listeners)?
	if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null; then
		return 0
	fi
	# ss additionally sees listeners bound to other local addresses.
	if command -v ss >/dev/null 2>&1 && [[ -n $(ss -Hltn "sport = :$p" 2>/dev/null) ]]; then
		return 0
	fi
	return 1
}

# Ports come from below the kernel's ephemeral range (outgoing connections
# take their local port from it), bus ports (port+10000) included: a port that
# no one listens on can still be held by a client connection, and redis-server
# then fails to bind its cluster bus.
PORT_LO=10000
PORT_HI=22767
if read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && ((eph_lo - 10001 >= PORT_LO + 1000)); then
	PORT_HI=$((eph_lo - 10001))
fi

# pick_port NEED_BUS: sets PICKED to a random free port in PORT_LO-PORT_HI.
# With NEED_BUS=1 (cluster node) port+10000, the cluster bus port, must be free too.
pick_port() {
	local need_bus=$1 p try
	for ((try = 0; try < 500; try++)); do
		p=$((PORT_LO + (RANDOM * 32768 + RANDOM) % (PORT_HI - PORT_LO + 1)))
		[[ -n ${RESERVED[$p]:-} ]] && continue
		((need_bus)) && [[ -n ${RESERVED[$((p + 10000))]:-} ]] && continue
		port_in_use "$p" && continue
		((need_bus)) && port_in_use $((p + 10000)) && continue
		RESERVED[$p]=1
		((need_bus)) && RESERVED[$((p + 10000))]=1
		PICKED=$p
		return 0
	done
	die "could not find a free port in $PORT_LO-$PORT_HI"
}

# ---------------------------------------------------------------------------
# Starting servers.
# ---------------------------------------------------------------------------

# wait_ready PORT PID: wait (max 10 s) until the redis-server with that PID
# answers on PORT. Checking process_id guards against a foreign server that
# grabbed the port between our check and our bind.
wait_ready() {
	local port=$1 pid=$2 i info
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 1 # it died (e.g. port taken)
		# (capture first: `redis-cli | grep -q` can hit SIGPIPE under pipefail)
		info=$(redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null) || info=
		if grep -q "^process_id:$pid" <<<"$info"; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# start_node NAME CLUSTER(0|1): start one redis-server on a free port, retrying
# with another port if startup fails. Sets STARTED_PORT.
start_node() {
	local name=$1 cluster=$2 attempt port dir pid
	for attempt in 1 2 3 4 5; do
		pick_port "$cluster"
		port=$PICKED
		dir="$WORKDIR/$name-$port"
		mkdir -p "$dir"
		{
			echo "bind 127.0.0.1"
			echo "port $port"
			echo "dir \"$dir\""
			echo "logfile \"$dir/redis.log\""
			echo "pidfile \"$dir/redis.pid\""
			echo "daemonize no" # we background it ourselves and keep its pid
			echo 'save ""'
			echo "appendonly no"
			if ((cluster)); then
				echo "cluster-enabled yes"
				echo "cluster-config-file \"$dir/nodes.conf\""
				echo "cluster-node-timeout 5000"
			fi
		} >"$dir/redis.conf"

		redis-server "$dir/redis.conf" >"$dir/stdout.log" 2>&1 </dev/null &
		pid=$!
		PIDS+=("$pid")
		if wait_ready "$port" "$pid"; then
			STARTED_PORT=$port
			return 0
		fi
		log "redis-server ($name) did not start on port $port (attempt $attempt/5):"
		tail -n 5 "$dir/redis.log" "$dir/stdout.log" >&2 2>/dev/null || true
		stop_pids "$pid"
		unset 'PIDS[-1]' # forget it, so cleanup never signals a reused pid
	done
	die "could not start redis-server ($name)"
}

cluster_ready() {
	local port info
	for port in "$@"; do
		info=$(redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null) || return 1
		grep -q '^cluster_state:ok' <<<"$info" || return 1
		grep -q "^cluster_known_nodes:$#" <<<"$info" || return 1
	done
}

if ((need_single)); then
	start_node single 0
	export REDIS_ADDR="127.0.0.1:$STARTED_PORT"
fi

if ((need_cluster)); then
	ports=()
	for n in 1 2 3; do
		start_node "cluster$n" 1
		ports+=("$STARTED_PORT")
	done
	addrs=("${ports[@]/#/127.0.0.1:}")

	# Assign all slots to the 3 masters.
	if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
		>"$WORKDIR/cluster-create.log" 2>&1; then
		cat "$WORKDIR/cluster-create.log" >&2
		die "redis-cli --cluster create failed"
	fi

	# Wait until every node sees the whole cluster as healthy.
	deadline=$((SECONDS + 30))
	until cluster_ready "${ports[@]}"; do
		if ((SECONDS >= deadline)); then
			for p in "${ports[@]}"; do
				log "node 127.0.0.1:$p: $(redis-cli -p "$p" cluster info 2>&1 | grep -E '^cluster_(state|known_nodes|slots_assigned)' | tr -d '\r' | tr '\n' ' ')"
			done
			die "Redis Cluster did not reach cluster_state:ok on all nodes within 30 s"
		fi
		sleep 0.2
	done

	REDIS_CLUSTER_ADDRS=$(IFS=,; echo "${addrs[*]}")
	export REDIS_CLUSTER_ADDRS
fi

log "tests use REDIS_ADDR=${REDIS_ADDR} REDIS_CLUSTER_ADDRS=${REDIS_CLUSTER_ADDRS}"

# ---------------------------------------------------------------------------
# Run the command; cleanup runs from the EXIT trap and keeps its status.
# ---------------------------------------------------------------------------

set +e
"$@"
rc=$?
set -e
exit "$rc"
