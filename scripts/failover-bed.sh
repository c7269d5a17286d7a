#!/usr/bin/env bash
#
# failover-bed.sh — run a command with Redis deployments that can fail over.
#
# Usage:
#   scripts/failover-bed.sh CMD [ARGS...]
#
# Starts, from Debian's redis-server (a Sentinel is the same binary run with
# --sentinel), on loopback ports:
#   * a Redis Cluster of 3 masters with 1 replica each
#     (cluster-node-timeout $FAILOVER_NODE_TIMEOUT ms, default 1000), and
#   * a Sentinel group: 1 master, 1 replica and 3 Sentinels monitoring the
#     master as "mymaster" (quorum 2, down-after-milliseconds
#     $FAILOVER_DOWN_AFTER, default 1000),
# waits until both are healthy, exports
#   FAILOVER_CLUSTER_ADDRS    the 6 cluster nodes, comma-separated host:port
#   FAILOVER_SENTINEL_ADDRS   the 3 Sentinels, comma-separated host:port
#   FAILOVER_SENTINEL_MASTER  the master name, mymaster
#   FAILOVER_BED_DIR          the directory of every node's config and log
# and runs CMD. The tests of internal/failovertest kill nodes (kill -9) and
# start them again from the config file they report (INFO server); on exit,
# also on failure or interrupt, this script stops every server it started and
# every one started again from its directory, and removes the directory
# (FAILOVER_KEEP=1 keeps it, for reading the logs).
#
# Ports are taken from 6400-9999, below the range scripts/with-redis.sh uses
# (10000 and up), so that both can run at once; cluster bus ports
# (cluster-port, Redis 7) are taken from the same range. Nothing is
# persisted: `save ""`, `appendonly no`; a node started again comes back
# empty and rejoins as a replica.
#
# If redis-server/redis-cli are missing and we are root on a Debian-like
# system, they are installed with scripts/apt-install.sh (redis-server and
# redis-tools); otherwise CMD runs without the variables and the failover
# tests skip.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "failover-bed: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

if (($# == 0)); then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

NODE_TIMEOUT=${FAILOVER_NODE_TIMEOUT:-1000}
DOWN_AFTER=${FAILOVER_DOWN_AFTER:-1000}
MASTER_NAME=mymaster

have_redis() { command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; }
if ! have_redis; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "redis-server/redis-cli not found; installing them"
		bash "$SCRIPT_DIR/apt-install.sh" redis-server redis-tools
		have_redis || die "redis-server/redis-cli still missing after apt-get install"
	else
		log "redis-server/redis-cli not installed and cannot install them; no bed to run on"
		exec "$@"
	fi
fi

# Redis 7 sets the cluster bus port with cluster-port; older servers use
# port+10000.
redis_major=$(redis-server --version | sed -n 's/.*v=\([0-9]*\)\..*/\1/p')
((redis_major >= 5)) || die "redis-server ${redis_major:-?}.x is too old (need 5 or newer)"

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-failover.XXXXXX")
PIDS=() # processes this script started

# pids_of_dir: pids from the pidfiles under WORKDIR whose process still runs
# in that node's directory (a node a test started again writes its pid there
# too; the check on the working directory keeps a reused pid safe).
pids_of_dir() {
	local f pid dir
	for f in "$WORKDIR"/*/*.pid; do
		[[ -e $f ]] || continue
		pid=$(<"$f") || continue
		dir=$(dirname "$f")
		[[ $pid =~ ^[0-9]+$ ]] || continue
		[[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$dir" ]] && echo "$pid"
	done
}

stop_all() {
	local pids=("$@") pid i alive
	((${#pids[@]})) || return 0
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for ((i = 0; i < 50; i++)); do
		alive=0
		for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

# shellcheck disable=SC2317 # invoked via trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local all
	mapfile -t all < <({
		((${#PIDS[@]})) && printf '%s\n' "${PIDS[@]}"
		pids_of_dir
	} | sort -u)
	stop_all "${all[@]}"
	if [[ ${FAILOVER_KEEP:-} == 1 ]]; then
		log "logs kept in $WORKDIR"
	else
		rm -rf "$WORKDIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------

PORT_LO=6400
PORT_HI=9999
declare -A RESERVED=()

# A port is in use if anything listens on it or any socket (a client
# connection, TIME-WAIT) has it as its local port.
port_in_use() {
	local p=$1
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Htan "sport = :$p" 2>/dev/null) ]]
	else
		timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null
	fi
}

# pick_port: sets PICKED to a free port of PORT_LO-PORT_HI not handed out yet.
pick_port() {
	local p try
	for ((try = 0; try < 500; try++)); do
		p=$((PORT_LO + RANDOM % (PORT_HI - PORT_LO + 1)))
		[[ -n ${RESERVED[$p]:-} ]] && continue
		port_in_use "$p" && continue
		RESERVED[$p]=1
		PICKED=$p
		return 0
	done
	die "no free port in $PORT_LO-$PORT_HI"
}

# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

ready() { # PORT PID: the server with that pid answers on that port
	local info
	info=$(redis-cli -h 127.0.0.1 -p "$1" info server 2>/dev/null) || return 1
	grep -q "^process_id:$2" <<<"$info"
}

# launch KIND NAME [EXTRA CONFIG LINES...]: start a server of KIND (cluster,
# data or sentinel) on a free port, in the background, without waiting for
# it. Records its port, pid and arguments under NAME.
declare -A PORT=() PID=() ARGS=()
launch() {
	local kind=$1 name=$2 port bus dir conf line
	shift 2
	pick_port
	port=$PICKED
	# Before Redis 7 the cluster bus listens on port+10000.
	while [[ $kind == cluster ]] && ((redis_major < 7)) && port_in_use $((port + 10000)); do
		pick_port
		port=$PICKED
	done
	dir="$WORKDIR/$name"
	rm -rf "$dir"
	mkdir -p "$dir"
	conf="$dir/$kind.conf"
	{
		echo "bind 127.0.0.1"
		echo "port $port"
		echo "dir \"$dir\""
		echo "logfile \"$dir/$kind.log\""
		echo "pidfile \"$dir/$kind.pid\""
		echo "daemonize no"
		if [[ $kind != sentinel ]]; then
			echo 'save ""'
			echo "appendonly no"
			echo "repl-diskless-sync-delay 0" # a replica syncs at once
		fi
		if [[ $kind == cluster ]]; then
			echo "cluster-enabled yes"
			echo "cluster-config-file \"$dir/nodes.conf\""
			echo "cluster-node-timeout $NODE_TIMEOUT"
			if ((redis_major >= 7)); then
				pick_port
				bus=$PICKED
				echo "cluster-port $bus"
			fi
		fi
		for line in "$@"; do echo "$line"; done
	} >"$conf"
	if [[ $kind == sentinel ]]; then
		redis-server "$conf" --sentinel >"$dir/stdout.log" 2>&1 </dev/null &
	else
		redis-server "$conf" >"$dir/stdout.log" 2>&1 </dev/null &
	fi
	PIDS+=("$!")
	PORT[$name]=$port
	PID[$name]=$!
	disown "$!" # no "Killed" line when a test kills it; bash still reaps it
	ARGS[$name]="$(printf '%q ' "$kind" "$name" "$@")"
}

# await NAME...: wait until each named server answers (10 s at most); a
# server that died (its port was taken after all) is launched again on
# another port, up to 5 times.
await() {
	local name i attempt
	for name in "$@"; do
		for ((attempt = 1; ; attempt++)); do
			for ((i = 0; i < 100; i++)); do
				ready "${PORT[$name]}" "${PID[$name]}" && break
				kill -0 "${PID[$name]}" 2>/dev/null || break
				sleep 0.1
			done
			ready "${PORT[$name]}" "${PID[$name]}" && break
			log "$name did not start on port ${PORT[$name]} (attempt $attempt/5):"
			tail -n 5 "$WORKDIR/$name"/*.log >&2 2>/dev/null || true
			kill -KILL "${PID[$name]}" 2>/dev/null || true
			((attempt < 5)) || die "could not start $name"
			eval "launch ${ARGS[$name]}"
		done
	done
}

# until_ok SECONDS WHAT CMD...: run CMD every 0.1 s until it succeeds.
until_ok() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + secs))
	until "$@"; do
		((SECONDS < deadline)) || die "$what not reached within $secs s"
		sleep 0.1
	done
}

t0=$SECONDS

# Every server at once: a Cluster of 6 nodes, a Sentinel group's master and
# replica, 3 Sentinels.
for n in 1 2 3 4 5 6; do launch cluster "cluster$n"; done
launch data sentinel-master
await sentinel-master # its port goes into the others' configs
master_port=${PORT[sentinel-master]}
launch data sentinel-replica "replicaof 127.0.0.1 $master_port"
replica_port=${PORT[sentinel-replica]}
for n in 1 2 3; do
	launch sentinel "sentinel$n" \
		"sentinel monitor $MASTER_NAME 127.0.0.1 $master_port 2" \
		"sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER" \
		"sentinel failover-timeout $MASTER_NAME 3000" \
		"sentinel parallel-syncs $MASTER_NAME 1"
done
await sentinel-replica sentinel1 sentinel2 sentinel3 cluster1 cluster2 cluster3 cluster4 cluster5 cluster6
cluster_ports=()
for n in 1 2 3 4 5 6; do cluster_ports+=("${PORT[cluster$n]}"); done
sentinel_ports=()
for n in 1 2 3; do sentinel_ports+=("${PORT[sentinel$n]}"); done

cluster_addrs=("${cluster_ports[@]/#/127.0.0.1:}")
if ! redis-cli --cluster create "${cluster_addrs[@]}" --cluster-replicas 1 --cluster-yes \
	>"$WORKDIR/cluster-create.log" 2>&1; then
	cat "$WORKDIR/cluster-create.log" >&2
	die "redis-cli --cluster create failed"
fi

cluster_healthy() {
	local port info masters=0 replicas=0
	for port in "${cluster_ports[@]}"; do
		info=$(redis-cli -p "$port" cluster info 2>/dev/null) || return 1
		grep -q '^cluster_state:ok' <<<"$info" || return 1
		grep -q '^cluster_known_nodes:6' <<<"$info" || return 1
		info=$(redis-cli -p "$port" info replication 2>/dev/null) || return 1
		if grep -q '^role:master' <<<"$info"; then
			grep -q '^connected_slaves:1' <<<"$info" || return 1
			masters=$((masters + 1))
		else
			grep -q '^master_link_status:up' <<<"$info" || return 1
			replicas=$((replicas + 1))
		fi
	done
	((masters == 3 && replicas == 3))
}

sentinels_healthy() {
	local port out
	out=$(redis-cli -p "$replica_port" info replication 2>/dev/null) || return 1
	grep -q '^master_link_status:up' <<<"$out" || return 1
	for port in "${sentinel_ports[@]}"; do
		out=$(redis-cli -p "$port" sentinel master "$MASTER_NAME" 2>/dev/null | paste - -) || return 1
		grep -qx $'num-slaves\t1' <<<"$out" || return 1
		grep -qx $'num-other-sentinels\t2' <<<"$out" || return 1
		grep -qx $'flags\tmaster' <<<"$out" || return 1
	done
}

until_ok 30 "Redis Cluster with 3 masters and 3 replicas in sync" cluster_healthy
until_ok 30 "Sentinels that know each other and the replica" sentinels_healthy

FAILOVER_CLUSTER_ADDRS=$(IFS=,; echo "${cluster_addrs[*]}")
sentinel_addrs=("${sentinel_ports[@]/#/127.0.0.1:}")
FAILOVER_SENTINEL_ADDRS=$(IFS=,; echo "${sentinel_addrs[*]}")
export FAILOVER_CLUSTER_ADDRS FAILOVER_SENTINEL_ADDRS
export FAILOVER_SENTINEL_MASTER=$MASTER_NAME
export FAILOVER_BED_DIR=$WORKDIR
log "ready in $((SECONDS - t0)) s: FAILOVER_CLUSTER_ADDRS=$FAILOVER_CLUSTER_ADDRS FAILOVER_SENTINEL_ADDRS=$FAILOVER_SENTINEL_ADDRS (master $MASTER_NAME at 127.0.0.1:$master_port, replica 127.0.0.1:$replica_port)"

set +e
"$@"
rc=$?
set -e
exit "$rc"
