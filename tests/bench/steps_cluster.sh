# Step 8: time to capacity on a cluster (tests/cluster/): real pulls by each agent's dockerd and
# real containers, the Marathon emulator in --mesos mode placing them, the scaler driving it.
# Sourced by tests/bench/run.sh after tests/lib/{scaler,cluster}.sh.
#
# One scale-up: app /bench/<name>, a fresh image (one layer of BENCH_CL_MIB MiB of random bytes
# with busybox in it, gzip -1, so that it shares no blob with anything pulled before), from 0 to
# 2 tasks per agent (MAX_PER hostname 2), the scaler's http demand stepping from 0 to 2N. Timed
# from the demand step until every task is TASK_RUNNING (the emulator's phases, not the poll).
# Set-ups, taking turns within each round:
#   remote               no cache: dockerd pulls UPLINK_HOST:PORT/library/<name>:1 itself, over
#                        the shared uplink; the scaler has no gate
#   central proxy cold   one Debian docker-registry in proxy mode (upstream: the uplink) on the
#                        host, behind its own LAN link (LAN_MBPS); dockerd pulls
#                        PROXY_HOST:PORT/library/<name>:1; empty; no gate
#   central proxy warm   the same, already holding the image (one pull through it first)
#   microscale store     every agent's cache prewarmed (POST prewarm, wait ready) with its
#                        runtime off, so the image is in the cache, not in Docker; the gate
#   microscale cold      the image on no list; the caches' runtime on; the gate holds the app
#                        while every cache warms it (through the tier) and puts it into Docker
#   microscale runtime   every agent's cache prewarmed with its runtime on: the image is in
#                        every agent's Docker before the step; the gate
# The cluster: start.sh --runtime --lan-mbps LAN_MBPS (the tier behind its own LAN link, as the
# proxy is), the uplink at LINK_MBPS, the agents' dockerd logging at debug (the pull's phases).
# The caches' runtime is switched per set-up (agent.sh runtime-on|off: a restart on the same
# store). First BENCH_CL_AGENTS agents with every set-up; then for each count in BENCH_CL_SCALE
# (agent.sh add/remove) the warm proxy and microscale runtime.
# Figures per round (record 8 "N agents: WHAT" SETUP): time to capacity, uplink bytes (GETs in
# the remote's access log from the set-up's start, prewarm and fill included), their ratio to the
# image's bytes (manifest, config, layer), task-seconds staged, and the critical task's phases
# (tests/bench/cluster_phases.py).
# shellcheck shell=bash

CL_SETUPS=(remote "central proxy cold" "central proxy warm" "microscale store" "microscale cold"
	"microscale runtime")
CL_SCALE_SETUPS=("central proxy warm" "microscale runtime")
# The phases cluster_phases.py reports, in the order of a task's life, and their labels.
CL_PHASES=(demand_put put_staged staged_pull manifest layer_fetch unpack pull_run start)
CL_PHASE_NAMES=("demand -> PUT" "PUT -> staged" "staged -> pull" manifest "layer fetch" unpack
	"pull -> run" "container start")

step_cluster() {
	local r n s
	_cl_up || bench_fail "starting the cluster"
	for ((r = 1; r <= ROUNDS; r++)); do
		for s in "${CL_SETUPS[@]}"; do
			_cl_once "$s" "$BENCH_CL_AGENTS" "$r" || bench_fail "cluster: $s, round $r"
		done
	done
	for n in $BENCH_CL_SCALE; do
		[ "$n" = "$BENCH_CL_AGENTS" ] && continue # measured already
		_cl_agents "$n" || bench_fail "cluster: going to $n agents"
		for ((r = 1; r <= ROUNDS; r++)); do
			for s in "${CL_SCALE_SETUPS[@]}"; do
				_cl_once "$s" "$n" "$r" || bench_fail "cluster: $s, $n agents, round $r"
			done
		done
	done
	cluster_down >&2
}

# The bench's own cluster (never a shared one: it needs --runtime and the LAN link), removed when
# the bench exits (cluster_up's trap) or at the end of the step.
_cl_up() {
	MS_CLUSTER_ENV="" CLUSTER_WAN_MBPS=$LINK_MBPS CLUSTER_DOCKERD_LOG_LEVEL=debug \
		cluster_up "$BENCH_CL_AGENTS" --runtime --lan-mbps "$LAN_MBPS" --images "$BENCH_IMAGES" \
		>&2 || return 1
	[ -n "${DEMAND_URL:-}" ] || demand_start
}

# _cl_agents N: agents added or removed (the highest first) until there are N.
_cl_agents() {
	while [ "$(wc -w <<<"$CLUSTER_AGENTS")" -gt "$1" ]; do
		cluster_agent remove "${CLUSTER_AGENTS##* }" >&2 || return 1
	done
	while [ "$(wc -w <<<"$CLUSTER_AGENTS")" -lt "$1" ]; do
		cluster_agent add >&2 || return 1
	done
}

# _cl_runtime 0|1: every agent's cache with its runtime off or on (restarting only those that
# differ).
_cl_runtime() {
	local i has
	for i in $CLUSTER_AGENTS; do
		has=$(jq -r 'if .runtime then 1 else 0 end' "$(cluster_agent_var "$i" DIR)/cache.json") ||
			return 1
		[ "$has" = "$1" ] && continue
		cluster_agent "runtime-$([ "$1" = 1 ] && echo on || echo off)" "$i" >&2 || return 1
	done
}

# _cl_once SETUP N ROUND: one scale-up of SETUP at N agents; its figures recorded.
_cl_once() {
	local setup=$1 n=$2 name ref img app gate=1 t0 mark i logs=() limit
	name=b8-$(tr ' ' - <<<"$setup")-n$n-r$3-$$
	step "8/8 cluster: $setup, $n agents, round $3"
	ref=$(cluster_new_image_alone "$name" "$CL_BYTES" -1) && _cl_image_bytes "$ref" || return 1
	mark=$(cluster_remote_mark) || return 1
	img=$ref
	case $setup in
	remote) img=${UPLINK_URL#http://}/$ref gate="" ;;
	"central proxy cold") _cl_proxy_start && img=$CL_PROXY/$ref gate="" ;;
	"central proxy warm") _cl_proxy_start && _cl_proxy_fill "$ref" && img=$CL_PROXY/$ref gate="" ;;
	"microscale store") _cl_runtime 0 && _cl_prewarm "$ref" ;;
	"microscale cold") _cl_runtime 1 ;;
	"microscale runtime") _cl_runtime 1 && _cl_prewarm "$ref" ;;
	esac || return 1
	app=/bench/$name
	curl -fsS -X POST "$MARATHON_URL/_emu/reset" >/dev/null &&
		cluster_marathon_app "$app" "$img" '.constraints = [["hostname", "MAX_PER", "2"]]' &&
		demand_set cl 0 && _cl_scaler_start "$app" "$n" "$gate" || return 1
	for i in $CLUSTER_AGENTS; do
		logs+=(--dockerd "$(cluster_agent_var "$i" ADDR)=$(cluster_agent_var "$i" DOCKER_LOG):$(
			wc -l <"$(cluster_agent_var "$i" DOCKER_LOG)")")
	done
	# Time enough for every agent to pull the image over the uplink, one after the other.
	limit=$((CL_BYTES * n * 3 / (LINK_MBPS * 1000000) + 60))
	t0=$(date +%s.%N)
	demand_set cl $((2 * n))
	_cl_wait "$limit" _cl_running "$app" $((2 * n)) || { _cl_explain "$app" "$t0"; return 1; }
	_cl_record "$setup" "$n" "$app" "$t0" "$mark" "${logs[@]}" || return 1
	scaler_stop
	_cl_clean "$app" "$img"
}

# _cl_image_bytes REF: CL_IMAGE_BYTES, what a pull of REF moves: manifest, config and layers.
_cl_image_bytes() {
	local f=$T/cl.manifest
	curl -fsS -H "Accept: $FIX_MT_OCI_MANIFEST" -o "$f" \
		"$REMOTE_URL/v2/${1%:*}/manifests/${1##*:}" || return 1
	CL_IMAGE_BYTES=$(jq --argjson m "$(stat -c %s "$f")" '$m + .config.size +
		([.layers[].size] | add)' "$f")
}

# _cl_scaler_start APP N GATE: the scaler with capacity 2N and APP (0..2N) on the http demand
# $DEMAND_URL/cl; with GATE, the gate over every agent's cache (the Mesos master's agents), else
# none. Waits until it has read the app (and, gated, knows every agent's cache).
_cl_scaler_start() {
	local max=$(($2 * 2)) conf=$T/scaler.cluster.json
	SCALER_LOG=$T/scaler.cluster.log
	scaler_port
	cluster_scaler_conf "$conf" "$SCALER_PORT" ".capacity = $max | .apps = [{id: \"$1\",
		min: 0, max: $max, demand: {type: \"http\", url: \"$DEMAND_URL/cl\"}}] |
		if \"$3\" == \"\" then del(.mesos, .gate) else . end" &&
		scaler_start "$conf" && wait_for 15 _cl_scaler_knows "$2" "$3"
}
_cl_scaler_knows() {
	[ "$(scaler_get /status 2>/dev/null | jq --argjson n "$1" --arg gate "$2" '.apps[0] |
		.marathon.instances == 0 and .demand == 0 and
		($gate == "" or (.gate.caches | length) == $n)')" = true ]
}

# _cl_wait SECONDS CMD…: CMD every 250 ms until it succeeds (polling the emulator more often
# would take CPU from what is measured), at most SECONDS.
_cl_wait() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.25
	done
}
# _cl_running APP K: K of APP's tasks are TASK_RUNNING.
_cl_running() {
	[ "$(curl -fsS "$MARATHON_URL/_emu/tasks" | jq --arg a "$1" \
		'[.[] | select(.appId == $a and .state == "TASK_RUNNING")] | length')" = "$2" ]
}

# _cl_record SETUP N APP T0 MARK --dockerd …: the round's figures.
_cl_record() {
	local setup=$1 n=$2 app=$3 t0=$4 mark=$5 up i
	shift 5
	curl -fsS "$MARATHON_URL/_emu/tasks" >"$T/cl.tasks" &&
		curl -fsS "$MARATHON_URL/_emu/requests" >"$T/cl.requests" || return 1
	python3 "$MS_ROOT/tests/bench/cluster_phases.py" --t0 "$t0" --app "$app" \
		--tasks "$T/cl.tasks" --requests "$T/cl.requests" "$@" >"$T/cl.phases" || return 1
	up=$(cluster_remote_since "$mark" | awk '$1 == "GET" && $3 ~ /^2/ { n += $4 } END { print n + 0 }')
	record 8 "$n agents: time to capacity" "$setup" "$(_cl_phase capacity)" s
	record 8 "$n agents: uplink bytes" "$setup" "$up" B
	record 8 "$n agents: uplink / image" "$setup" "$(ratio "$up" "$CL_IMAGE_BYTES")" x
	record 8 "$n agents: staged task-seconds" "$setup" "$(_cl_phase staged)" s
	for i in "${!CL_PHASES[@]}"; do
		record 8 "$n agents: phase ${CL_PHASE_NAMES[i]}" "$setup" "$(_cl_phase "${CL_PHASES[i]}")" s
	done
	step "  $(_cl_phase capacity) s to capacity, $up uplink bytes ($(ratio "$up" "$CL_IMAGE_BYTES")x the image), $(_cl_phase staged) task-s staged"
}
_cl_phase() {
	awk -v k="$1" '$1 == k { print $2 }' "$T/cl.phases"
}

# _cl_explain APP T0: what the tasks of an app that never reached capacity were doing.
_cl_explain() {
	echo "bench: $1 did not reach capacity; its tasks:" >&2
	curl -fsS "$MARATHON_URL/_emu/tasks" | jq -c --arg a "$1" --argjson t0 "$2" '.[] |
		select(.appId == $a) | {host, state, phases: (.phases | map_values(. - $t0))}' >&2
	tail -5 "$SCALER_LOG" >&2
}

# _cl_clean APP IMAGE: the app deleted, its containers gone, the image out of every agent's
# Docker (under each name it may have there), the proxy stopped: the next set-up starts from
# the same state.
_cl_clean() {
	local i d
	curl -fsS -o /dev/null -X DELETE "$MARATHON_URL/v2/apps$1?force=true" || return 1
	_cl_wait 60 _cl_gone "$1" || { echo "bench: the tasks of $1 never went" >&2; return 1; }
	for i in $CLUSTER_AGENTS; do
		d=$(cluster_agent_var "$i" DOCKER)
		docker -H "$d" rmi -f "$2" "docker.io/$2" >/dev/null 2>&1
		docker -H "$d" image prune -f >/dev/null 2>&1
	done
	_cl_proxy_stop
}
_cl_gone() {
	[ "$(curl -fsS "$MARATHON_URL/_emu/tasks" | jq --arg a "$1" \
		'[.[] | select(.appId == $a)] | length')" = 0 ]
}

# _cl_prewarm REF: every agent's cache asked to prewarm REF (the admin token); waits until each
# says ready and, where its runtime is on, that the image is in its Docker.
_cl_prewarm() {
	local i code limit
	for i in $CLUSTER_AGENTS; do
		code=$(cluster_cache_curl "$i" /_microscale/v1/prewarm -X POST \
			-H 'Content-Type: application/json' -d "{\"ref\": \"$1\", \"pin\": false}") || return 1
		[ "$code" = 202 ] || { echo "bench: prewarm on agent $i: $code" >&2; return 1; }
	done
	limit=$((CL_BYTES * 3 / (LINK_MBPS * 1000000) + 60))
	for i in $CLUSTER_AGENTS; do
		_cl_wait "$limit" _cl_prewarmed "$i" "$1" || {
			echo "bench: agent $i never got $1 ready: $(cat "$T/cluster.body")" >&2
			return 1
		}
	done
}
_cl_prewarmed() {
	[ "$(cluster_cache_curl "$1" "/_microscale/v1/ready?ref=$2")" = 200 ] &&
		jq -e '.ready and (.runtime == "present" or .runtime == "off" or .runtime == null)' \
			"$T/cluster.body" >/dev/null
}

# --- the central proxy -------------------------------------------------------------------------

# _cl_proxy_start: a fresh docker-registry proxy of the uplink (lib.sh's peer_start: loopback,
# empty storage) behind its LAN link on the bridge address; CL_PROXY is the link's HOST:PORT.
_cl_proxy_start() {
	local pf=$T/cl-proxy-link.port
	rm -rf "$T/cl-proxy" "$pf"
	peer_start "$T/cl-proxy" "$UPLINK_URL" || return 1
	CL_PROXY_PIDS=$PID CL_PROXY_ADDR=$ADDR
	spawn "$T/cl-proxy-link.log" python3 "$MS_ROOT/tests/lib/slowlink.py" --listen "$CLUSTER_HOST" \
		--target "$ADDR" --mbps "$LAN_MBPS" --port-file "$pf"
	CL_PROXY_PIDS+=" $SPAWNED"
	wait_for 10 test -s "$pf" || return 1
	CL_PROXY=$CLUSTER_HOST:$(cat "$pf")
	wait_for 10 cl_http_200 "http://$CL_PROXY/v2/"
}

# _cl_proxy_fill REF: one pull of REF through the proxy (from the host, not over its LAN link),
# then waits until the proxy has stored the layer (it writes it as it streams it).
_cl_proxy_fill() {
	local blob
	rm -rf "$T/cl-fill"
	skopeo copy -q --src-tls-verify=false "docker://$CL_PROXY_ADDR/$1" "dir:$T/cl-fill" || return 1
	rm -rf "$T/cl-fill"
	blob=$(jq -r '.layers[0].digest' "$T/cl.manifest")
	blob=$T/cl-proxy/storage/docker/registry/v2/blobs/sha256/${blob:7:2}/${blob:7}/data
	wait_for 30 test -s "$blob"
}

_cl_proxy_stop() {
	local p
	for p in ${CL_PROXY_PIDS:-}; do stop_pid "$p"; done
	CL_PROXY_PIDS=""
	rm -rf "$T/cl-proxy"
}
