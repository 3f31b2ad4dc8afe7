#!/bin/bash
# The scaler on a real cluster (tests/cluster/): it learns the agents from the Mesos master,
# gates each scale-up on every agent's cache, and its tasks are real containers. Scenario, on the
# shared cluster (3 agents), with two images no cache has seen:
#   /c65/web (priority 1, demand from a file: 3)   /c65/two (constraint: hostname LIKE agents 1|2,
#   demand 2). Then:
#   - discovery: /status lists the three agents, the gate their caches;
#   - the gate: both apps held until every cache that may run them says ready; each such cache
#     asked to prewarm; no PUT before the last ready; agent 3 never asked about /c65/two's image;
#   - real tasks: each agent's docker shows the containers Marathon placed there, each pulled
#     through its own cache (blob hits there); the tier fetched each blob for all of them, so the
#     remote served each blob of the image once, over the uplink;
#   - no 409 from Marathon;
#   - an agent joins: followed within refresh_ms, its cache asked at once to prewarm both images;
#     deactivated, activated, removed: followed too;
#   - agent 1's cache killed, then /c65/late (a third new image, demand 0 so far) wants 2: held
#     while the cache may come back, left out after the grace (one warning, the metric), the
#     scale-up goes; the cache back, /c65/late wants 3: one line, and it counts again (the rise
#     waits until that cache has warmed the image too).
# The cluster is left as it was found: apps deleted, the added agent removed, agent 1's cache up.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
. "$MS_ROOT/tests/lib/cluster.sh"

cluster_up 3 || exit 1
read -r a1 a2 a3 _ <<<"$CLUSTER_AGENTS"
addr() { cluster_agent_var "$1" ADDR; }
cache() { cluster_agent_var "$1" CACHE; }
web=$(cluster_new_image "c65-web-$$") && two=$(cluster_new_image "c65-two-$$") &&
	late=$(cluster_new_image "c65-late-$$") || exit 1
dots() { sed 's/[.]/[.]/g'; } # an address as a regular expression
like="$(addr "$a1" | dots)|$(addr "$a2" | dots)"
cluster_marathon_app /c65/web "$web" || exit 1
cluster_marathon_app /c65/two "$two" ".constraints = [[\"hostname\", \"LIKE\", \"$like\"]]" || exit 1
cluster_marathon_app /c65/late "$late" || exit 1
restore() { # the shared cluster as it was
	curl -s -o /dev/null -X DELETE "$MARATHON_URL/v2/apps/c65/web?force=true"
	curl -s -o /dev/null -X DELETE "$MARATHON_URL/v2/apps/c65/two?force=true"
	curl -s -o /dev/null -X DELETE "$MARATHON_URL/v2/apps/c65/late?force=true"
	[ -z "${added:-}" ] || cluster_agent remove "$added"
	cluster_agent start-cache "$a1" 2>/dev/null
	added=""
}
trap 'restore; cluster_down; ms_cleanup' EXIT

demand_start || exit 1
demand_set web 3
demand_set late 0
scaler_port
cluster_scaler_conf "$T/scaler.json" "$SCALER_PORT" "
	.capacity = 12 | .gate.unreachable_grace_ms = 2000 | .apps = [
	{id: \"/c65/web\", priority: 1, demand: {type: \"http\", url: \"$DEMAND_URL/web\"}},
	{id: \"/c65/two\", priority: 2, demand: {type: \"static\", instances: 2}},
	{id: \"/c65/late\", priority: 1, demand: {type: \"http\", url: \"$DEMAND_URL/late\"}}]"
scaler_start "$T/scaler.json" || exit 1

# --- discovery and the gate --------------------------------------------------------------------
status() { scaler_get /status | jq -r "$1"; }
check "discovery: /status lists the 3 agents, active" wait_for 5 \
	sh -c "[ \"\$(curl -fsS http://127.0.0.1:$SCALER_PORT/status | jq '[.mesos.agents[] | select(.active)] | length')\" = 3 ]"
check_eq "discovery: the gate asks the 3 agents' caches about /c65/web" \
	"$(for i in $a1 $a2 $a3; do cache "$i"; done | sort | tr '\n' ' ')" \
	"$(status '[.apps[0].gate.caches[].url] | sort | join(" ")') "
running() { [ "$(app_field "$1" .tasksRunning)" = "$2" ]; }
check "/c65/web: 3 tasks running" wait_for 60 running /c65/web 3
check "/c65/two: 2 tasks running" wait_for 60 running /c65/two 2
check "/c65/web was held by the gate first" log_has 'event=decision app=/c65/web .*action=hold gated=yes'
for i in $a1 $a2 $a3; do
	check "agent $i's cache was asked to prewarm $web" log_has "event=gate_prewarm app=/c65/web cache=$(cache "$i") ref=$web status=20"
done
# ready_t APP CACHE: when the scaler first heard CACHE say APP's image is ready (epoch seconds).
ready_t() {
	date -d "$(grep "event=gate_check app=$1 cache=$2 .*state=ready" "$SCALER_LOG" | head -1 |
		sed 's/^ts=\([^ ]*\).*/\1/')" +%s.%N
}
first_put() { puts "$1" 'map(select(.status == 200)) | .[0].t'; }
last_ready=$(for i in $a1 $a2 $a3; do ready_t /c65/web "$(cache "$i")"; done | sort -n | tail -1)
check "the first PUT of /c65/web came after every agent's cache said ready" \
	jtrue "$(first_put /c65/web) >= $last_ready"
last_ready=$(for i in $a1 $a2; do ready_t /c65/two "$(cache "$i")"; done | sort -n | tail -1)
check "constraints: the first PUT of /c65/two came after agents $a1 and $a2 said ready" \
	jtrue "$(first_put /c65/two) >= $last_ready"
check "constraints: agent $a3's cache was never asked about /c65/two's image" \
	sh -c "! grep -q 'app=/c65/two cache=$(cache "$a3")' '$SCALER_LOG'"
check_eq "constraints: /status shows agent $a3 excluded for /c65/two" excluded \
	"$(status ".apps[1].gate.caches[] | select(.url == \"$(cache "$a3")\") | .agent")"
check_eq "/metrics: /c65/web ready on 3 agents" 3 "$(scaler_get /metrics |
	awk '/^microscale_scaler_gate_agents\{app="\/c65\/web",state="ready"\}/ {print $2}')"

# --- real tasks --------------------------------------------------------------------------------
on_agents() { # APP: "ADDR COUNT" per agent the emulator placed its tasks on
	curl -fsS "$MARATHON_URL/v2/apps$1/tasks" | jq -r '.tasks | group_by(.host)[] | "\(.[0].host) \(length)"'
}
containers() { # I APP: running containers of APP in agent I's docker
	cluster_agent_docker "$1" ps -q --filter "label=microscale.app=$2" | wc -l
}
for app in /c65/web /c65/two; do
	while read -r host n; do
		for i in $CLUSTER_AGENTS; do [ "$(addr "$i")" = "$host" ] && break; done
		check_eq "$app: agent $i's docker runs the $n container(s) placed there" "$n" "$(containers "$i" "$app")"
		check "$app: agent $i's cache served its blobs (hits)" \
			test "$(cluster_cache_metric "$i" 'microscale_cache_requests_total{kind="blob",result="hit"}')" -ge 2
	done < <(on_agents "$app")
done
check "constraints: no /c65/two task on agent $a3" sh -c "! curl -fsS '$MARATHON_URL/v2/apps/c65/two/tasks' | jq -r '.tasks[].host' | grep -qx '$(addr "$a3")'"
for blob in $(curl -fsS -H "Accept: $FIX_MT_OCI_MANIFEST" "$REMOTE_URL/v2/${web%:1}/manifests/1" |
	jq -r '.config.digest, .layers[].digest'); do
	# at most: the busybox layer may have come with another image before
	check "the remote served blob ${blob:7:12} of /c65/web at most once for 3 agents (the tier)" \
		test "$(cluster_remote_count_gets "/v2/.*/blobs/$blob")" -le 1
done
check_eq "no PUT was answered 409" 0 "$(marathon_requests '[.[] | select(.method == "PUT" and .status == 409)] | length')"

# --- the fleet changes -------------------------------------------------------------------------
cluster_agent add || exit 1
added=$CLUSTER_ADDED added_id=$(cluster_agent_var "$added" ID)
check "an agent joins: followed within refresh_ms (500 ms)" \
	wait_for 2 log_has "event=fleet_agent_joined agent=$added_id hostname=$(addr "$added")"
check "... its cache is asked at once to prewarm /c65/web's image" \
	wait_for 5 log_has "event=gate_prewarm app=/c65/web cache=$(cache "$added") ref=$web"
check "... and /c65/late's, though nothing of it rises yet" \
	wait_for 5 log_has "event=gate_prewarm app=/c65/late cache=$(cache "$added") ref=$late"
check "... but not /c65/two's: its constraint rules the agent out" \
	sh -c "! grep -q 'app=/c65/two cache=$(cache "$added")' '$SCALER_LOG'"
added_cache=$(cache "$added")
cluster_agent deactivate "$added"
check "deactivated: its cache leaves the gate" wait_for 2 log_has "event=gate_cache_removed cache=$added_cache"
cluster_agent activate "$added"
check "activated: its cache is back" \
	wait_for 2 sh -c "[ \$(grep -c 'event=gate_cache_added cache=$added_cache' '$SCALER_LOG') -ge 2 ]"
cluster_agent remove "$added" && added=""
check "removed: followed" wait_for 2 log_has "event=fleet_agent_gone agent=$added_id"

# --- a cache dies ------------------------------------------------------------------------------
instances() { [ "$(app_field "$1" .instances)" = "$2" ]; }
c1=$(cache "$a1")
cluster_agent kill-cache "$a1"
demand_set late 2
check "agent $a1's cache killed, /c65/late wants 2: held while the cache may come back" \
	wait_for 5 log_has 'event=decision app=/c65/late demand=2 .*action=hold gated=yes reason=".*unreachable'
check "after the grace (2 s) it is left out, with a warning" \
	wait_for 10 log_has "event=gate_cache_unreachable cache=$c1"
check "... and the scale-up to 2 goes out" wait_for 10 instances /c65/late 2
check_eq "/metrics: one agent unreachable for /c65/late" 1 "$(scaler_get /metrics |
	awk '/^microscale_scaler_gate_agents\{app="\/c65\/late",state="unreachable"\}/ {print $2}')"
check_eq "one warning for the episode" 1 "$(grep -c "event=gate_cache_unreachable cache=$c1" "$SCALER_LOG")"
cluster_agent start-cache "$a1"
demand_set late 3
check "the cache back: one line" wait_for 10 log_has "event=gate_cache_back cache=$c1"
check "it counts again: asked about the image it missed, and answering" \
	wait_for 10 log_has "event=gate_check app=/c65/late cache=$c1 ref=$late state=(ready|not_ready) status=200"
check "... and the rise to 3 goes once it is ready there" wait_for 20 instances /c65/late 3
check "the PUT to 3 came after that cache said ready" \
	jtrue "$(puts /c65/late 'map(select(.status == 200 and .body.instances == 3)) | .[0].t') >= $(ready_t /c65/late "$c1")"
check "/metrics: no agent unreachable" jtrue "$(scaler_get /metrics |
	awk '/^microscale_scaler_gate_agents\{app="\/c65\/late",state="unreachable"\}/ {print $2}') == 0"
scaler_stop
check_eq "SIGTERM exits 0" 0 "$?"
check "no error in the scaler's log" sh -c "! grep -q 'level=error' '$SCALER_LOG'"
