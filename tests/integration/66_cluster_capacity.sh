#!/bin/bash
# Capacity from the fleet. Scenario, on the shared cluster plus one agent of this test's own
# (every agent offers 2 cpus and 1024 MB; a task takes 0.5 cpus and 256 MB, so 4 per agent):
#   /c66/p1 (priority 1, wants 6) and /c66/p2 (priority 2, the remainder); the scaler's capacity is
#   {"task": {"cpus": 0.5, "mem": 256}}.
#   - 4 agents: capacity 16, p1 6 and p2 10, all running in real containers;
#   - the test's agent is removed: capacity 12; p2 gives way first (to 6), p1 keeps its 6, and
#     from the scaler's first call after the change, the apps' instances never add up above 12;
#   - two more agents deactivated: capacity 4; p2 goes to 0, p1 keeps what the room allows (4)
#     and is never asked for less;
#   - they are activated again: the room grows back, p1 to 6 first, then p2.
# The cluster is left as it was found.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
. "$MS_ROOT/tests/lib/cluster.sh"

cluster_up 3 || exit 1
read -r a1 a2 a3 _ <<<"$CLUSTER_AGENTS"
cluster_agent add || exit 1
added=$CLUSTER_ADDED
restore() {
	curl -s -o /dev/null -X DELETE "$MARATHON_URL/v2/apps/c66/p1?force=true"
	curl -s -o /dev/null -X DELETE "$MARATHON_URL/v2/apps/c66/p2?force=true"
	cluster_agent activate "$a2" 2>/dev/null
	cluster_agent activate "$a3" 2>/dev/null
	[ -z "$added" ] || cluster_agent remove "$added"
}
trap 'restore; cluster_down; ms_cleanup' EXIT
task='.cpus = 0.5 | .mem = 256'
cluster_marathon_app /c66/p1 "$DEMO_WEB" "$task" && cluster_marathon_app /c66/p2 "$DEMO_BATCH" "$task" ||
	exit 1

scaler_port
cluster_scaler_conf "$T/scaler.json" "$SCALER_PORT" '
	.capacity = {task: {cpus: 0.5, mem: 256}} | .apps = [
	{id: "/c66/p1", priority: 1, demand: {type: "static", instances: 6}},
	{id: "/c66/p2", priority: 2, demand: {type: "remainder"}}]'
scaler_start "$T/scaler.json" || exit 1

capacity() { [ "$(scaler_get /status | jq .capacity)" = "$1" ]; }
# at P1 P2: Marathon's instances and running tasks are P1 and P2.
at() {
	[ "$(curl -fsS "$MARATHON_URL/_emu/apps" | jq -r '[.apps[] | select(.id | startswith("/c66/")) |
		"\(.instances)/\(.tasksRunning)"] | join(" ")')" = "$1/$1 $2/$2" ]
}
check "4 agents: capacity 16" wait_for 5 capacity 16
check "p1 6 and p2 10, all running" wait_for 90 at 6 10

mark=$(date +%s.%N)
cluster_agent remove "$added" && added=""
check "the test's agent removed: capacity 12" wait_for 3 capacity 12
check "the capacity change was logged" log_has 'event=capacity capacity=12 was=16'
check "p2 gives way (to 6), p1 keeps its 6" wait_for 60 at 6 6
# The largest sum of the apps' instances from time T on: the state then (the last snapshot before
# T, which the call logged at T made) and every snapshot after.
max_sum() {
	marathon_history | jq --argjson t "$1" '([.[] | select(.t < $t)][-1:] + [.[] | select(.t >= $t)]) |
		map((.apps["/c66/p1"].instances // 0) + (.apps["/c66/p2"].instances // 0)) | max'
}
first=$(puts /c66/p2 "map(select(.t > $mark and .status == 200)) | .[0].t")
check_eq "from the scaler's first call after it, the instances never add up above 12" 12 "$(max_sum "$first")"
check_eq "p1 was never scaled down" 0 "$(puts /c66/p1 "map(select(.t > $mark)) | length")"

mark=$(date +%s.%N)
cluster_agent deactivate "$a2" && cluster_agent deactivate "$a3"
check "two agents deactivated: capacity 4" wait_for 3 capacity 4
check "p2 goes to 0, p1 keeps what the room allows: 4" wait_for 60 at 4 0
first_p1=$(puts /c66/p1 "map(select(.t > $mark)) | .[0].t")
first_p2=$(puts /c66/p2 "map(select(.t > $mark)) | .[0].t")
# The two agents may go in one read of the fleet or in two; either way p1 is never asked for
# less than the 4 the final room leaves it.
check_eq "priority 1 was never asked below what the room allows (4)" 0 \
	"$(puts /c66/p1 "map(select(.t > $mark and .body.instances < 4)) | length")"
check_eq "... the instances never add up above 4 once both calls went" 4 \
	"$(max_sum "$(jq -n "[$first_p1, $first_p2] | max")")"

cluster_agent activate "$a2" && cluster_agent activate "$a3"
check "activated again: capacity 12" wait_for 3 capacity 12
check "p1 back to 6, p2 to 6" wait_for 60 at 6 6
scaler_stop
check_eq "SIGTERM exits 0" 0 "$?"
check "no error in the scaler's log" sh -c "! grep -q 'level=error' '$SCALER_LOG'"
