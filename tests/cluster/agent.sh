#!/bin/bash
# Changes a running cluster (tests/cluster/start.sh) the way a real one changes: an agent joins,
# is deactivated or reactivated in Mesos, is removed, or its cache stops, starts or is killed.
# cluster.env is rewritten (CLUSTER_AGENTS, AGENT_<i>_*) and its path printed as the last line.
#
# Usage: tests/cluster/agent.sh STATE_DIR ACTION [N]
#   add [N]        a new agent N (default: the lowest free index, 1..8): namespace, cache,
#                  dockerd, registered with the Mesos emulator under a new id
#   deactivate N   the Mesos emulator lists it active:false; everything on it keeps running
#   activate N     active:true again
#   remove N       deregistered from Mesos, then taken down entirely (containers, dockerd, cache,
#                  namespace); its logs are kept in STATE_DIR/removed/<addr>.<time>/
#   stop-cache N   SIGTERM to its cache (it drains and exits 0)
#   start-cache N  starts its cache again, on the same store
#   kill-cache N   SIGKILL to its cache (as a crash)
#   runtime-on N   its cache restarted (same store) with runtime.docker_socket = its dockerd's
#                  socket: what it warms goes into that dockerd too (start.sh --runtime)
#   runtime-off N  its cache restarted without it
set -u
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

usage() {
	sed -n '/^# Usage:/,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}
die() {
	cl_say "agent.sh: $*"
	exit 1
}

# present N: agent N is part of the cluster.
present() {
	[ -f "$(cl_agent_dir "$K" "$1")/agent.env" ]
}

mesos_post() {
	curl --noproxy '*' -fsS --max-time 5 -X "$1" "$MESOS_URL/_emu/agents/$2" >/dev/null ||
		die "the Mesos emulator refused $1 /_emu/agents/$2"
}

agent_add() {
	local i=${1:-} dir
	if [ -z "$i" ]; then
		for ((i = 1; i <= CL_MAX_AGENTS; i++)); do present "$i" || break; done
	fi
	[[ $i =~ ^[1-8]$ ]] || die "no free agent index (1..$CL_MAX_AGENTS)"
	present "$i" && die "agent $i is there already"
	dir=$(cl_agent_dir "$K" "$i")
	cl_agent_teardown "$K" "$i" 2>/dev/null # the remains of a failed add, if any
	rm -rf "$dir" && mkdir -p "$dir" || die "mkdir $dir"
	if ! cl_agent_up "$K" "$i" >"$dir/setup.log" 2>&1; then
		sed 's/^/  /' "$dir/setup.log" >&2
		cl_agent_teardown "$K" "$i"
		rm -rf "$dir"
		die "agent $i did not start (its setup log is above)"
	fi
	cl_say "agent $i added: $(cl_addr "$K" "$i"), Mesos id $(cat "$dir/mesos.id")"
}

agent_remove() {
	local dir keep
	dir=$(cl_agent_dir "$K" "$1")
	mesos_post DELETE "$(cat "$dir/mesos.id")"
	rm -f "$dir/agent.env" # gone from cluster.env even if the rest fails
	cl_agent_teardown "$K" "$1" || die "agent $1 could not be removed completely"
	keep=$CL_STATE/removed/$(cl_addr "$K" "$1").$(date +%s.%N)
	mkdir -p "$keep" && mv "$dir"/*.log "$dir/mesos.id" "$keep/" 2>/dev/null
	rm -rf "$dir"
	cl_say "agent $1 removed (logs in $keep)"
}

cache_running() {
	local pid
	pid=$(cat "$(cl_agent_dir "$K" "$1")/pids/cache.pid" 2>/dev/null) && cl_is_ours "$pid" "$K"
}

main() {
	[ $# -ge 2 ] || usage
	[ "$(id -u)" = 0 ] || die "needs root"
	K=$(cl_k_of "$1") && [ -f "$1/cluster.env" ] || die "'$1' is not a running cluster's state dir"
	CL_STATE=$(cl_state "$K")
	# shellcheck source=/dev/null
	. "$CL_STATE/cluster.env"
	cl_lock 9 "$CL_STATE/lock" || exit 1
	local action=$2 n=${3:-}
	if [ "$action" != add ]; then
		[[ $n =~ ^[0-9]+$ ]] || usage
		present "$n" || die "there is no agent $n (agents: $(cl_agents "$K" | tr '\n' ' '))"
	fi
	local dir
	dir=$(cl_agent_dir "$K" "${n:-0}")
	case $action in
	add) agent_add "$n" ;;
	deactivate | activate) mesos_post POST "$(cat "$dir/mesos.id")/$action" ;;
	remove) agent_remove "$n" ;;
	stop-cache) cl_pidfile_stop "$dir/pids/cache.pid" "$K" 5 TERM || die "stop-cache $n" ;;
	kill-cache) cl_pidfile_stop "$dir/pids/cache.pid" "$K" 5 KILL || die "kill-cache $n" ;;
	runtime-on | runtime-off)
		cl_pidfile_stop "$dir/pids/cache.pid" "$K" 5 TERM &&
			cl_agent_cache_config "$K" "$n" "$([ "$action" = runtime-on ] && echo 1)" &&
			cl_cache_start "$K" "$n" || die "$action $n"
		;;
	start-cache)
		if cache_running "$n"; then
			cl_say "agent $n's cache runs already"
		else
			cl_cache_start "$K" "$n" || die "agent $n's cache did not start"
		fi
		;;
	*) usage ;;
	esac
	cl_write_env "$K" || die "writing $CL_STATE/cluster.env"
	[ "$action" = add ] || cl_say "agent $n: $action done"
	echo "$CL_STATE/cluster.env"
}

main "$@"
