#!/bin/bash
# Stops a cluster that tests/cluster/start.sh started and removes all of it: its processes (the
# dockerds first, politely, so they stop their containers), what is mounted under its state
# dir, its cgroups, namespaces, veths and bridge, and the state dir. Only names of that cluster's
# scheme (tests/cluster/lib.sh) are touched. Idempotent: a cluster that is gone already is fine.
#
# Usage: tests/cluster/stop.sh [STATE_DIR]   (/tmp/mscl-K; default $CLUSTER_STATE)
#        tests/cluster/stop.sh --all-stale   every cluster whose owner has died
# Exits 1, naming what is left, when something could not be removed.
set -u
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

usage() {
	sed -n '/^# Usage:/,/^# Exits/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[ "$(id -u)" = 0 ] || { cl_say "needs root"; exit 1; }
case ${1:-${CLUSTER_STATE:-}} in
--all-stale)
	cl_lock 8 "$CL_LOCK" || exit 1
	cl_sweep_stale
	exit
	;;
"" | -h | --help) usage ;;
esac
st=${1:-$CLUSTER_STATE}
k=$(cl_k_of "$st") || { cl_say "'$st' is not a cluster state dir (/tmp/mscl-K, K 1..250)"; exit 2; }
# An agent.sh (or the start itself) at work on it finishes first.
[ -d "$st" ] && { cl_lock 9 "$st/lock" || exit 1; }
start=$SECONDS
if ! cl_known | grep -qx "$k"; then
	cl_say "nothing of cluster $k is there"
elif cl_teardown "$k"; then
	cl_say "cluster $k stopped and removed in $((SECONDS - start)) s"
else
	cl_say "cluster $k: stopped, but something was left (above)"
	exit 1
fi
