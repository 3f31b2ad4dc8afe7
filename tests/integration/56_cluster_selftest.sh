#!/bin/bash
# The cluster on one machine (tests/cluster/) itself: later tests trust that it is what it says.
# Scenario, on the cluster of $MS_CLUSTER_ENV when one is shared, else on one of our own:
#   - every agent's cache answers on its address, from the host and from inside its namespace;
#     every agent's dockerd answers; agents have no default route and cannot reach the remote
#     but through the uplink; the Mesos emulator lists every agent, active;
#   - a new agent joins (agent.sh add): Mesos lists it; `docker pull` of library/demo-web:1 on it
#     goes through its cache (its log and metrics) and the remote served each blob once; the
#     image runs for real (`docker run --network=host`, PORT0) and serves HTTP in the namespace;
#     deactivate, activate and remove are what Mesos shows; removed, nothing of it is left;
#   - a start that fails removes what it made and says why;
#   - a cluster whose owner was killed (-9) is removed by the next start, and stop.sh leaves
#     nothing of a cluster: no namespace, link, process, mount, cgroup or state dir.
# shellcheck source-path=SCRIPTDIR/../lib
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/cluster.sh"

start=$SECONDS
cluster_up 3 || { not_ok "a cluster of 3 agents is up"; exit 1; }
ok "a cluster of 3 agents is up: cluster $CLUSTER_K, agents $CLUSTER_AGENTS ($((SECONDS - start)) s)"

http_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1")" = 200 ]; }
no_default_route() { ! cluster_in "$1" ip route show default | grep -q .; }
# The remote listens on the host's 127.0.0.1: in a namespace that address is the agent's own.
remote_unreachable() { ! cluster_in "$1" curl -s -o /dev/null --max-time 2 "$REMOTE_URL/v2/"; }

# --- every agent -------------------------------------------------------------------------------
for i in $CLUSTER_AGENTS; do
	addr=$(cluster_agent_var "$i" ADDR) cache=$(cluster_agent_var "$i" CACHE)
	check "agent $i's cache answers on $addr:5000 from the host" http_ok "$cache/v2/"
	check "agent $i's cache answers from inside its namespace" cluster_in "$i" \
		curl -sf -o /dev/null --max-time 3 "$cache/v2/"
	check_eq "agent $i's dockerd answers, its data root in the agent dir" \
		"$(cluster_agent_var "$i" DIR)/docker/data" \
		"$(cluster_agent_docker "$i" info --format '{{.DockerRootDir}}' 2>&1)"
	check "agent $i has no default route" no_default_route "$i"
	check "agent $i reaches the uplink" cluster_in "$i" curl -sf -o /dev/null --max-time 3 \
		"$UPLINK_URL/v2/"
	check "agent $i cannot reach the remote but through the uplink" remote_unreachable "$i"
done
expected=$(for i in $CLUSTER_AGENTS; do
	echo "{\"hostname\":\"$(cluster_agent_var "$i" ADDR)\",\"active\":true,\"port\":5051}"
done | jq -sc 'sort_by(.hostname)')
check_eq "the Mesos emulator lists every agent, active, on port 5051" "$expected" \
	"$(cluster_mesos /master/slaves '[.slaves[] | {hostname, active, port}] | sort_by(.hostname)')"
check_eq "... with cpus and mem as configured, ports 31000-31999" \
	"${CLUSTER_AGENT_CPUS:-2} ${CLUSTER_AGENT_MEM:-1024} [31000-31999]" \
	"$(cluster_mesos_agent "${CLUSTER_AGENTS%% *}" '"\(.resources.cpus) \(.resources.mem) \(.resources.ports)"' | jq -r .)"
if [ -n "$MARATHON_URL" ]; then
	check "the Marathon emulator answers on $MARATHON_URL" http_ok "$MARATHON_URL/ping"
else
	ok "the Marathon emulator answers # SKIP started without it"
fi

# --- an agent joins, pulls, runs, and goes -------------------------------------------------------
mark=$(cluster_remote_mark)
cluster_agent add
j=${CLUSTER_ADDED:-}
check "agent.sh add: a new agent ($j) is in CLUSTER_AGENTS ($CLUSTER_AGENTS)" test -n "$j"
[ -n "$j" ] || exit 1
check_eq "the Mesos emulator lists agent $j, active" \
	"\"$(cluster_agent_var "$j" ADDR) true\"" "$(cluster_mesos_agent "$j" '"\(.hostname) \(.active)"')"

curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"$REMOTE_URL/v2/library/demo-web/manifests/1" >"$T/web.json"
read -ra blobs <<<"$(jq -r '[.config.digest, .layers[].digest] | join(" ")' "$T/web.json")"
layer_bytes=$(jq '[.layers[].size] | add' "$T/web.json")
quiet() { "$@" >/dev/null; }
check "agent $j: docker pull library/demo-web:1 succeeds" \
	quiet cluster_agent_docker "$j" pull -q library/demo-web:1
stored() {
	local d
	for d in "${blobs[@]}"; do
		grep -q "event=blob_stored digest=$d " "$(cluster_agent_var "$j" CACHE_LOG)" || return 1
	done
}
check "... through agent $j's cache: its log shows all ${#blobs[@]} blobs stored" stored
up=$(cluster_cache_metric "$j" 'microscale_bytes_total{source="upstream"}')
check "... and its metrics show the layers' $layer_bytes bytes fetched upstream ($up)" \
	test "${up:-0}" -ge "$layer_bytes"
cluster_remote_since "$mark" >"$T/remote.since"
once() {
	local d
	for d in "${blobs[@]}"; do
		[ "$(awk -v d="$d" '$1 == "GET" && $2 ~ d && $3 == 200' "$T/remote.since" | wc -l)" = 1 ] ||
			return 1
	done
}
check "the remote served each of them once, over the uplink" once
check_eq "the image's Cmd is busybox's httpd" '/bin/busybox' \
	"$(cluster_agent_docker "$j" image inspect --format '{{index .Config.Cmd 0}}' library/demo-web:1)"
cluster_agent_docker "$j" run -d --network=host -e PORT0=31001 --name selftest-web \
	library/demo-web:1 >/dev/null
serves() { cluster_in "$j" curl -sf --max-time 2 http://127.0.0.1:31001/hello | grep -q 'hello from'; }
check "docker run --network=host -e PORT0=31001: it serves HTTP inside agent $j's namespace" \
	wait_for 10 serves
check "... on the agent's address, from the host" \
	http_ok "http://$(cluster_agent_var "$j" ADDR):31001/hello"
check "docker stop ends it at once (it exits on SIGTERM)" \
	quiet timeout 5 docker -H "$(cluster_agent_var "$j" DOCKER)" stop -t 4 selftest-web

cluster_agent deactivate "$j"
check_eq "agent.sh deactivate: Mesos lists agent $j active:false" false \
	"$(cluster_mesos_agent "$j" .active)"
cluster_agent activate "$j"
check_eq "agent.sh activate: active:true again" true "$(cluster_mesos_agent "$j" .active)"
id=$(cluster_agent_var "$j" ID) ns=$(cluster_agent_var "$j" NS)
cluster_agent remove "$j"
check_eq "agent.sh remove: gone from /master/slaves" 0 \
	"$(cluster_mesos /master/slaves "[.slaves[] | select(.id == \"$id\")] | length")"
unlisted() { [[ " $CLUSTER_AGENTS " != *" $1 "* ]]; }
check "... and from CLUSTER_AGENTS ($CLUSTER_AGENTS)" unlisted "$j"
check "... its namespace, processes and mounts are gone" \
	test -z "$(ip netns pids "$ns" 2>/dev/null; ip netns list | grep -w "$ns";
		grep " /tmp/mscl-$CLUSTER_K/agents/$CL_NET.$CLUSTER_K.$((10 + j))/" /proc/mounts)"

# --- a failed start ----------------------------------------------------------------------------
mkdir -p "$T/badbuild"
printf '#!/bin/sh\necho "fake registry: refusing to start" >&2\nexit 1\n' >"$T/badbuild/microscale-registry"
chmod +x "$T/badbuild/microscale-registry"
"$MS_ROOT/tests/cluster/start.sh" -n 1 --no-marathon --no-tier --build "$T/badbuild" --owner $$ \
	>"$T/bad.out" 2>"$T/bad.err"
rc=$?
sed 's/^/# bad start: /' "$T/bad.err"
check_eq "a start whose cache cannot start exits 1" 1 "$rc"
check "... saying what failed" grep -q "start failed: agents 1 did not start" "$T/bad.err"
check "... and showing the cache's own words" grep -q "fake registry: refusing to start" "$T/bad.err"
bad_k=$(sed -n 's/^cluster: cluster \([0-9]*\) in .*/\1/p' "$T/bad.err")
check_eq "... and nothing of its cluster ${bad_k:-?} is left" "" \
	"$([ -n "$bad_k" ] && cluster_leftovers "$bad_k" || echo 'no cluster index')"

# --- stale clusters and stop.sh ------------------------------------------------------------------
sleep 600 &
doomed=$!
b_env=$("$MS_ROOT/tests/cluster/start.sh" -n 1 --no-marathon --owner "$doomed" 2>"$T/b.err" | tail -1)
b_k=$(sed -n 's/^CLUSTER_K=//p' "$b_env" 2>/dev/null)
check "a second cluster (${b_k:-none}) owned by pid $doomed starts beside ours" test -n "$b_k"
# Its processes as "PID STARTTIME": the next start may reuse its index (and so its names), but
# never these processes.
b_procs=$([ -n "$b_k" ] && for p in $(cl_pids "$b_k"); do echo "$p $(cl_starttime "$p")"; done)
check "... and runs processes (${#b_procs} bytes of them)" test -n "$b_procs"
alive() {
	local p t
	while read -r p t; do
		[ -n "$p" ] && [ "$(cl_starttime "$p")" = "$t" ] && cl_running "$p" && echo "$p"
	done <<<"$b_procs"
}
kill -9 "$doomed"
wait "$doomed" 2>/dev/null
c_env=$("$MS_ROOT/tests/cluster/start.sh" -n 1 --no-marathon --owner $$ 2>"$T/c.err" | tail -1)
sed 's/^/# third start: /' "$T/c.err"
c_k=$(sed -n 's/^CLUSTER_K=//p' "$c_env" 2>/dev/null)
check "a third cluster (${c_k:-none}) starts after the second's owner was killed -9" test -n "$c_k"
check "... and that start removed the stale one" grep -q "removing stale cluster $b_k " "$T/c.err"
check_eq "... with all its processes" "" "$(alive)"
if [ "$c_k" != "$b_k" ]; then
	check_eq "... and all else of it" "" "$([ -n "$b_k" ] && cluster_leftovers "$b_k")"
fi # else the stop of the third below checks that nothing is left under that index
if [ -n "$c_k" ]; then
	# A container running, so the stop has overlay mounts and a shim to deal with.
	docker -H "unix://$(cl_agent_dir "$c_k" 1)/docker.sock" run -d --network=host \
		-e PORT0=31002 library/demo-web:1 >/dev/null 2>"$T/c.run.err" || sed 's/^/# /' "$T/c.run.err"
	check "the third cluster runs a container" test -n \
		"$(docker -H "unix://$(cl_agent_dir "$c_k" 1)/docker.sock" ps -q 2>/dev/null)"
	t0=$SECONDS
	"$MS_ROOT/tests/cluster/stop.sh" "$(cl_state "$c_k")" 2>&1 | sed 's/^/# stop: /'
	check_eq "stop.sh leaves nothing of it ($((SECONDS - t0)) s)" "" "$(cluster_leftovers "$c_k")"
	check "stop.sh again is fine (idempotent)" \
		quiet "$MS_ROOT/tests/cluster/stop.sh" "$(cl_state "$c_k")" 2>/dev/null
fi
for i in $CLUSTER_AGENTS; do
	check "our cluster's agent $i still answers after all that" \
		http_ok "$(cluster_agent_var "$i" CACHE)/v2/"
done
echo "# took $((SECONDS - start)) s"
