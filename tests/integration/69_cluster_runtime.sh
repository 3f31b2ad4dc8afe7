#!/bin/bash
# Prewarmed means runnable, on the cluster. Scenario, on the shared cluster: every agent's cache
# restarted with runtime.docker_socket (its own dockerd), an image no cache has seen prewarmed in
# each. Then:
#   - every agent's `docker images` has it before any task is launched, and each cache's ready
#     says runtime present;
#   - the scaler (its gate waiting for runtime present, the default when caches report one) raises
#     /c69/r to 3: tasks run on the agents, and no request reaches any agent's cache for the
#     image's blobs meanwhile (the runtime already had them).
# The cluster is left as it was found: app deleted, caches restarted without the runtime.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
. "$MS_ROOT/tests/lib/cluster.sh"

cluster_up 3 || exit 1
read -r a1 a2 a3 _ <<<"$CLUSTER_AGENTS"
agents="$a1 $a2 $a3"
restore() {
	curl -s -o /dev/null -X DELETE "$MARATHON_URL/v2/apps/c69/r?force=true"
	for i in $agents; do cluster_agent runtime-off "$i"; done
}
trap 'restore; cluster_down; ms_cleanup' EXIT
img=$(cluster_new_image "c69-r-$$") || exit 1
for i in $agents; do
	check "agent $i's cache restarted with the runtime on" cluster_agent runtime-on "$i"
done

runtime() { # I: the runtime field of agent I's ready answer for the image
	cluster_cache_curl "$1" "/_microscale/v1/ready?ref=$img" >/dev/null && jq -r .runtime "$T/cluster.body"
}
present() { [ "$(runtime "$1")" = present ]; }
for i in $agents; do
	code=$(cluster_cache_curl "$i" /_microscale/v1/prewarm -X POST -H 'Content-Type: application/json' \
		--data "{\"ref\": \"$img\", \"pin\": false}")
	check_eq "agent $i's cache takes the prewarm" 202 "$code"
done
for i in $agents; do
	check "agent $i: ready says runtime present" wait_for 60 present "$i"
	# Docker names a Docker Hub official image without its library/ prefix
	check "agent $i: its docker images has $img, before any task" \
		sh -c "docker -H '$(cluster_agent_var "$i" DOCKER)' images --format '{{.Repository}}:{{.Tag}}' | grep -qx '${img#library/}'"
done
check_eq "no task of /c69/r exists yet" 0 "$(curl -fsS "$MARATHON_URL/v2/tasks" | jq '[.tasks[] | select(.appId == "/c69/r")] | length')"

blob_reqs() { cluster_cache_metric "$1" 'microscale_cache_requests_total{kind="blob",result="hit"}'; }
declare -A before
for i in $agents; do before[$i]=$(blob_reqs "$i"); done
cluster_marathon_app /c69/r "$img" '.constraints = [["hostname", "UNIQUE"]]' || exit 1
scaler_port
cluster_scaler_conf "$T/scaler.json" "$SCALER_PORT" '.capacity = 6 | .apps = [
	{id: "/c69/r", demand: {type: "static", instances: 3}}]'
scaler_start "$T/scaler.json" || exit 1
running() { [ "$(app_field /c69/r .tasksRunning)" = 3 ]; }
check "the scaler raises /c69/r to 3, one task per agent, all running" wait_for 60 running
check "its gate waited for the runtime (every cache reported runtime present)" \
	log_has "event=gate_check app=/c69/r .*state=ready"
for i in $agents; do
	check_eq "agent $i: no request reached its cache for the image's blobs while the task started" \
		"${before[$i]}" "$(blob_reqs "$i")"
done
never_pulled() { ! curl -fsS "$MARATHON_URL/_emu/tasks" | jq -e '[.[] | select(.appId == "/c69/r") | .phases.pull_start] | any(. != null)' >/dev/null; }
check "no task of it had to pull (the emulator's phases)" never_pulled
scaler_stop
