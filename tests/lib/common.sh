# Sourced by every integration test: temp dir, free ports, spawn-and-poll, TAP-style results.
# shellcheck shell=bash
set -u
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MS_BUILD=${MS_BUILD:-$MS_ROOT/build}
T=$(mktemp -d /tmp/ms-it.XXXXXX)
MS_PIDS=()
# Nothing a test starts may reach beyond loopback.
export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
export https_proxy=$HTTPS_PROXY http_proxy=$HTTP_PROXY no_proxy=$NO_PROXY

ms_cleanup() {
	local p
	for p in "${MS_PIDS[@]}"; do stop_pid "$p"; done
	[ -n "${MS_KEEP:-}" ] || rm -rf "$T"
}
trap ms_cleanup EXIT

# A TCP port nobody listens on now (the kernel picks it).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [PID] [SECONDS]: polls until PORT accepts; fails early if PID died.
wait_port() {
	local port=$1 pid=${2:-} limit=${3:-30} i
	for ((i = 0; i < limit * 20; i++)); do
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			echo "wait_port: pid $pid died before port $port opened" >&2
			return 1
		fi
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "wait_port: port $port not open after ${limit}s" >&2
	return 1
}

# wait_for SECONDS CMD…: runs CMD every 50 ms until it succeeds; after SECONDS, once more, and
# returns what that last try returns. For conditions a daemon reaches a moment later.
wait_for() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	"$@"
}

# stop_pid PID: TERM, then KILL after 5 s. Returns the exit status when it was our child.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# spawn LOGFILE CMD…: runs CMD in the background, records it for cleanup, sets $SPAWNED.
spawn() {
	local logf=$1
	shift
	"$@" >"$logf" 2>&1 &
	SPAWNED=$!
	MS_PIDS+=("$SPAWNED")
}

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; }
# check NAME CMD…: ok when CMD succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
# check_eq NAME EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi
}
