#!/bin/bash
# make demo: the whole microscaling story on a real cluster on this machine (tests/cluster/).
#
#   cluster    tests/cluster/start.sh -n DEMO_AGENTS (3), owned by this process: each agent in a
#              network namespace with a microscale cache on AGENT_ADDR:5000 and a dockerd of its
#              own whose mirror is that cache, offering 2 cpus and 1024 MB to the Mesos master
#              emulator; the Marathon emulator runs tasks as real containers on the agents; the
#              remote registry (Debian's docker-registry with the demo images, tests/demo/images.sh)
#              behind one uplink of CLUSTER_WAN_MBPS (20) MB/s, and in front of it the cluster's
#              tier, the agents' caches' upstream (CLUSTER_NO_TIER=1: none, every cache uses the
#              uplink)
#   caches     each prewarms images/demo.list (demo-web, demo-batch; pinned) before the story
#              begins; library/demo-big:1 (~106 MB) is on no list
#   Marathon   /demo/priority1 (demo-web), /demo/priority2 (demo-batch), /demo/big (demo-big),
#              created through its API, tasks of 0.5 cpus / 256 MB: 4 per agent
#   scaler     microscale-scaler: the fleet from the Mesos master (every 500 ms), the capacity from
#              its resources, the gate over every agent's cache (unreachable grace 3 s);
#              priority1's demand a random walk, priority2 the remainder, big's from a file
#              served by a small HTTP server (0 until it jumps)
#
# The story, on DEMO_SECONDS (60) s of the clock: at 1/4 /demo/big's demand jumps from 0 to
# DEMO_BIG_DEMAND (4): the gate holds it while every agent's cache warms its image, then it
# scales; at 1/3 an agent joins (tests/cluster/agent.sh add; the scaler has its cache warm the
# apps' images before it counts; the capacity grows); at 2/3 one agent's cache is killed
# (agent.sh kill-cache; the gate leaves it out after the grace). A live view is redrawn every
# second on a terminal (one plain line a second otherwise) until the end or Ctrl-C; then the
# final state is read, everything is stopped, the cluster removed and checked gone, and a
# summary is printed. Exits 0 on success. Needs root; installs nothing (`make deps` does that).
#
# Usage: tests/demo/run.sh [BUILD_DIR]   (default build; MS_KEEP=1 keeps the logs, the cluster's
#        too). Killed outright (SIGKILL), it leaves its cluster to the next start's sweep.
set -u
MS_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MS_BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || MS_BUILD=$MS_ROOT/${1:-build}
export MS_ROOT MS_BUILD
DEMO_SECONDS=${DEMO_SECONDS:-60}
DEMO_AGENTS=${DEMO_AGENTS:-3}
DEMO_BIG_DEMAND=${DEMO_BIG_DEMAND:-4}
DEMO_GRACE_MS=3000 # gate.unreachable_grace_ms: short, so that the story shows it
# shellcheck source-path=SCRIPTDIR/../lib
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
. "$MS_ROOT/tests/lib/cluster.sh" # also tests/demo/images.sh and tests/cluster/lib.sh
LAST=$T/last # the latest answers of every daemon, which the view and the summary read
JQ_LIB=$MS_ROOT/tests/demo # demo.jq: the view's and the summary's jq functions
CLUSTER_OWNED="" # the state dir of the cluster this demo started, until it is removed

say() { echo "demo: $*"; }
# fail MESSAGE: says why, keeps the logs for a look, exits 1 (the EXIT trap removes the rest).
fail() {
	echo "demo: $*; logs kept in $T" >&2
	MS_KEEP=1
	exit 1
}

# --- setting up ------------------------------------------------------------------------------

# Everything the demo runs must be there already; it installs nothing.
demo_check_tools() {
	local b c
	[ "$(id -u)" = 0 ] || fail "needs root: the cluster is network namespaces, a bridge and dockerds"
	for b in microscale-registry microscale-scaler; do
		[ -x "$MS_BUILD/$b" ] || fail "$MS_BUILD/$b is not built (run make)"
	done
	for c in docker dockerd docker-registry skopeo jq curl python3 openssl; do
		command -v "$c" >/dev/null || fail "$c is missing (run make deps)"
	done
	_demo_whole DEMO_SECONDS 12 || fail "DEMO_SECONDS must be a whole number, at least 12"
	_demo_whole DEMO_BIG_DEMAND 1 || fail "DEMO_BIG_DEMAND must be a whole number, at least 1"
	[[ $DEMO_AGENTS =~ ^[1-7]$ ]] || fail "DEMO_AGENTS must be 1..7 (the story adds one; a cluster has 8 at most)"
}
_demo_whole() { [[ ${!1} =~ ^[0-9]+$ ]] && [ "${!1}" -ge "$2" ]; }

# The cluster, owned by this process: should the demo die without its EXIT trap, the cluster is
# stale and the next start removes it. Coexists with any other (tests/run.sh's shared one): each
# start claims a free index k, and k is in every name and address it uses.
demo_cluster_start() {
	local envf
	envf=$(CLUSTER_NO_MARATHON="" "$MS_ROOT/tests/cluster/start.sh" -n "$DEMO_AGENTS" \
		--owner "$$" --build "$MS_BUILD" 2>"$T/cluster.start.err" | tail -1)
	[ -f "$envf" ] || { cat "$T/cluster.start.err" >&2; fail "the cluster did not start"; }
	CLUSTER_OWNED=$(dirname "$envf")
	cluster_env_load "$envf" || fail "cannot read $envf"
	DEMO_REFS="{\"web\": \"$DEMO_WEB\", \"batch\": \"$DEMO_BATCH\", \"big\": \"$DEMO_BIG\"}"
	demo_cluster_print
}

# What was started, before anything else happens.
demo_cluster_print() {
	local i
	say "cluster $CLUSTER_K ($(sed -n 's/^cluster: cluster [0-9]* up in \(.*\): agents.*/\1/p' \
		"$T/cluster.start.err"), state in $CLUSTER_STATE):"
	say "  Mesos master emulator $MESOS_URL, Marathon emulator $MARATHON_URL"
	say "  remote registry $REMOTE_URL, behind one ${UPLINK_MBPS} MB/s uplink $UPLINK_URL"
	if [ -n "${TIER_URL:-}" ]; then
		say "  tier $TIER_URL: the only client of the uplink, the upstream of every agent's cache"
	else
		say "  no tier: every agent's cache fetches over the uplink"
	fi
	for i in $CLUSTER_AGENTS; do
		say "  agent $i: $(cluster_agent_var "$i" ADDR) (namespace $(cluster_agent_var "$i" NS))," \
			"cache $(cluster_agent_var "$i" CACHE), dockerd $(cluster_agent_var "$i" DOCKER)"
	done
}

# Every agent's cache prewarms images/demo.list (pinned); the story starts once all are ready.
demo_prewarm() {
	local ref i code
	mapfile -t DEMO_LIST < <(sed 's/#.*//' "$MS_ROOT/images/demo.list" | awk 'NF { print $1 }')
	[ "${#DEMO_LIST[@]}" -gt 0 ] || fail "images/demo.list names no image"
	for i in $CLUSTER_AGENTS; do
		for ref in "${DEMO_LIST[@]}"; do
			code=$(cluster_cache_curl "$i" /_microscale/v1/prewarm -X POST \
				-H 'Content-Type: application/json' --data-binary "{\"ref\": \"$ref\", \"pin\": true}")
			[ "$code" = 202 ] || fail "agent $i's cache answered $code to prewarming $ref"
		done
	done
	say "every agent's cache prewarms images/demo.list: ${DEMO_LIST[*]}"
	wait_for 60 demo_list_ready || fail "images/demo.list never became ready everywhere"
}

# demo_list_ready: every image of the list is ready in every agent's cache; says how far each is
# whenever that changes.
demo_list_ready() {
	local ref i line all=0
	for i in $CLUSTER_AGENTS; do
		for ref in "${DEMO_LIST[@]}"; do
			line="agent $i $(cluster_cache_curl "$i" "/_microscale/v1/ready?ref=$ref" >/dev/null &&
				jq -r '"\(.ref) \(.state) layers \(.layers_present)/\(.layers_total)" +
					" bytes \(.bytes_present)/\(.bytes_total) ready=\(.ready)"' "$T/cluster.body" ||
				echo "$ref: no answer")"
			if ! grep -qxF "$line" "$T/ready.seen" 2>/dev/null; then
				say "  $line"
				echo "$line" >>"$T/ready.seen"
			fi
			[[ $line == *ready=true ]] || all=1
		done
	done
	return $all
}

# The three apps, created through Marathon's API with no instances (the scaler raises them).
# The emulator's request log and history are then cleared: the summary counts the scaler's calls.
demo_apps() {
	local task='.cpus = 0.5 | .mem = 256'
	cluster_marathon_app /demo/priority1 "$DEMO_WEB" "$task" || fail "creating /demo/priority1 failed"
	cluster_marathon_app /demo/priority2 "$DEMO_BATCH" "$task" || fail "creating /demo/priority2 failed"
	cluster_marathon_app /demo/big "$DEMO_BIG" "$task" || fail "creating /demo/big failed"
	curl -fsS -X POST "$MARATHON_URL/_emu/reset" >/dev/null || fail "the emulator refused a reset"
	say "Marathon: /demo/priority1 ($DEMO_WEB), /demo/priority2 ($DEMO_BATCH), /demo/big" \
		"($DEMO_BIG, $DEMO_BIG_BYTES bytes), tasks of 0.5 cpus / 256 MB"
}

# The scaler, with /demo/big's demand read from $T/demand/big (0 until the jump).
demo_scaler_start() {
	demand_start || fail "the demand server did not start"
	demand_set big 0
	[ -n "${SCALER_PORT:-}" ] || scaler_port
	cluster_scaler_conf "$T/scaler.json" "$SCALER_PORT" "
		.gate.unreachable_grace_ms = $DEMO_GRACE_MS | .capacity = {task: {cpus: 0.5, mem: 256}} |
		.apps = [
		{id: \"/demo/priority1\", priority: 1, min: 1, max: 8,
		 demand: {type: \"random\", seed: 42, step: 2, period_ms: 3000}},
		{id: \"/demo/priority2\", priority: 2, min: 0, max: 32, demand: {type: \"remainder\"}},
		{id: \"/demo/big\", priority: 1, min: 0, max: 32,
		 demand: {type: \"http\", url: \"$DEMAND_URL/big\"}}]" || fail "writing scaler.json"
	scaler_start "$T/scaler.json" || fail "the scaler did not start"
	say "scaler on 127.0.0.1:$SCALER_PORT: fleet from $MESOS_URL every 500 ms, capacity from its" \
		"resources (tasks of 0.5 cpus / 256 MB), gate grace $((DEMO_GRACE_MS / 1000)) s"
}

# --- the story ---------------------------------------------------------------------------------

# demo_event NAME [JSON]: when something of the story happened, for the view and the summary.
demo_event() {
	local more=${2:-'{}'}
	jq -nc --arg e "$1" --argjson t "$EPOCHREALTIME" --argjson more "$more" \
		'{event: $e, t: $t} + $more' >>"$T/events.jsonl"
}
_demo_done() { grep -q "\"event\":\"$1\"" "$T/events.jsonl" 2>/dev/null; }

# demo_story FRAME: the story's steps that are due; each happens once.
demo_story() {
	if [ "$1" -ge "$JUMP_AT" ] && ! _demo_done jump; then
		demand_set big "$DEMO_BIG_DEMAND"
		demo_event jump "{\"demand\": $DEMO_BIG_DEMAND}"
		_demo_note "t=$1s /demo/big's demand jumps from 0 to $DEMO_BIG_DEMAND"
	fi
	if [ "$1" -ge "$JOIN_AT" ] && ! _demo_done join_start; then
		demo_join_start
		_demo_note "t=$1s a new agent joins the cluster (tests/cluster/agent.sh add)"
	fi
	demo_join_poll "$1"
	if [ "$1" -ge "$KILL_AT" ] && ! _demo_done kill; then
		demo_kill_cache "$1"
	fi
}
# A line of the story: printed in the plain output (a terminal's view shows the story itself).
_demo_note() { [ -t 1 ] || say "$*"; }

# The join runs in the background (an agent takes a second or two to start): the clock goes on.
demo_join_start() {
	"$MS_ROOT/tests/cluster/agent.sh" "$CLUSTER_STATE" add >"$T/join.out" 2>"$T/join.err" &
	JOIN_PID=$!
	demo_event join_start
}

# demo_join_poll FRAME: once the join is done, the new agent's variables are read.
demo_join_poll() {
	local before=" $CLUSTER_AGENTS " i added=""
	[ -n "${JOIN_PID:-}" ] && ! kill -0 "$JOIN_PID" 2>/dev/null || return 0
	wait "$JOIN_PID" || { cat "$T/join.err" >&2; fail "agent.sh add failed"; }
	JOIN_PID=""
	cluster_env_load "$CLUSTER_ENV" || fail "cannot read $CLUSTER_ENV"
	for i in $CLUSTER_AGENTS; do [[ $before == *" $i "* ]] || added=$i; done
	[ -n "$added" ] || fail "agent.sh add added no agent"
	demo_event join "{\"agent\": $added, \"addr\": \"$(cluster_agent_var "$added" ADDR)\"}"
	_demo_note "t=$1s agent $added ($(cluster_agent_var "$added" ADDR)) is up and registered with the Mesos master"
}

# demo_kill_cache FRAME: SIGKILL to one agent's cache. The victim is the agent whose dockerd has
# the most of the demo images already (the lowest index among equals): its containers keep
# running without the cache, and a task placed there later needs no pull that would fail.
demo_kill_cache() {
	local i n best="" most=-1
	for i in $CLUSTER_AGENTS; do
		n=$(cluster_agent_docker "$i" image inspect --format . "$DEMO_WEB" "$DEMO_BATCH" "$DEMO_BIG" \
			2>/dev/null | wc -l)
		[ "$n" -gt "$most" ] && most=$n best=$i
	done
	"$MS_ROOT/tests/cluster/agent.sh" "$CLUSTER_STATE" kill-cache "$best" >/dev/null 2>"$T/kill.err" ||
		{ cat "$T/kill.err" >&2; fail "agent.sh kill-cache $best failed"; }
	demo_event kill "{\"agent\": $best, \"addr\": \"$(cluster_agent_var "$best" ADDR)\", \"images_in_docker\": $most}"
	_demo_note "t=$1s agent $best's cache is killed (SIGKILL; $most of the 3 demo images in its dockerd)"
}

# --- sampling and the live view --------------------------------------------------------------

# demo_sample: the latest answers of the scaler, the emulator and every agent's cache into
# $LAST/, fetched at once. A file is replaced only by a good answer, so that the summary has the
# last state seen of a daemon that stopped (the scaler after Ctrl-C, a killed cache); a cache
# that does not answer is marked down.
demo_sample() {
	local i jobs=()
	_demo_fetch status.json "http://127.0.0.1:$SCALER_PORT/status" & jobs+=($!)
	_demo_fetch apps.json "$MARATHON_URL/_emu/apps" & jobs+=($!)
	_demo_fetch requests.json "$MARATHON_URL/_emu/requests" & jobs+=($!)
	_demo_fetch tasks.json "$MARATHON_URL/_emu/tasks" & jobs+=($!)
	for i in $CLUSTER_AGENTS; do
		_demo_cache_sample "$i" & jobs+=($!)
	done
	[ -z "${TIER_URL:-}" ] || { _demo_fetch metrics.tier.txt "$TIER_URL/metrics" & jobs+=($!); }
	wait "${jobs[@]}" # only these: the scaler and the demand server are children too
	# Tasks leave /_emu/tasks once their container is gone: the summary reads them all from here.
	[ ! -f "$LAST/tasks.json" ] || jq -c '.[]' "$LAST/tasks.json" >>"$T/tasks.jsonl"
	demo_note_ready
}

_demo_fetch() {
	curl -fsS --max-time 2 -o "$LAST/$1.tmp" "$2" 2>/dev/null && mv "$LAST/$1.tmp" "$LAST/$1"
}
# _demo_cache_sample I: agent I's counters and images ($LAST/metrics.I.txt, images.I.json) and
# whether it answered ($LAST/reach.I: up or down).
_demo_cache_sample() {
	local base
	base=$(cluster_agent_var "$1" CACHE) || return 0
	if _demo_fetch "metrics.$1.txt" "$base/metrics" &&
		curl -fsS --max-time 2 -H @"$T/cluster.auth" -o "$LAST/images.$1.json.tmp" \
			"$base/_microscale/v1/images" 2>/dev/null; then
		mv "$LAST/images.$1.json.tmp" "$LAST/images.$1.json"
		echo up >"$LAST/reach.$1"
	else
		echo down >"$LAST/reach.$1"
	fi
}

# demo_note_ready: the first second each demo image is seen ready in each agent's cache, as a
# "ready" event (the summary says when the new agent's cache had warmed them).
declare -A DEMO_READY=()
demo_note_ready() {
	local i name
	# shellcheck disable=SC2016 # jq's variables
	while read -r i name; do
		[ -z "${DEMO_READY[$i $name]:-}" ] || continue
		DEMO_READY[$i $name]=1
		demo_event ready "{\"agent\": $i, \"image\": \"$name\"}"
	done < <(jq -r --argjson refs "$DEMO_REFS" '
		(input_filename | capture("images\\.(?<i>[0-9]+)\\.json$").i) as $i |
		.images[] | select(.ready) | .ref as $r |
		$refs | to_entries[] | select($r == .value or $r == "docker.io/" + .value) | "\($i) \(.key)"' \
		"$LAST"/images.*.json 2>/dev/null)
}

# _demo_jq ARGS… PROGRAM: jq over what $LAST/ holds: $status, $emu, $requests, $tasks, $agents
# (per agent: index, address, cache URL, whether it answered, its metrics text and images), the
# story's $events, $start (when the story began) and the images' references.
_demo_jq() {
	local i args=() agents="" up
	for i in $CLUSTER_AGENTS; do
		up=false && [ "$(cat "$LAST/reach.$i" 2>/dev/null)" = up ] && up=true
		agents+="${agents:+,}{\"i\": $i, \"addr\": \"$(cluster_agent_var "$i" ADDR)\", \"up\": $up,"
		agents+=" \"cache\": \"$(cluster_agent_var "$i" CACHE)\"}"
		[ -f "$LAST/metrics.$i.txt" ] && args+=(--rawfile "metrics_$i" "$LAST/metrics.$i.txt")
		[ -f "$LAST/images.$i.json" ] && args+=(--slurpfile "images_$i" "$LAST/images.$i.json")
	done
	[ -f "$LAST/metrics.tier.txt" ] && args+=(--rawfile metrics_tier "$LAST/metrics.tier.txt")
	for i in status apps requests tasks; do
		[ -f "$LAST/$i.json" ] || echo null >"$LAST/$i.json"
	done
	touch "$T/events.jsonl"
	jq -L "$JQ_LIB" -n "${args[@]}" --slurpfile status "$LAST/status.json" \
		--slurpfile emu "$LAST/apps.json" --slurpfile requests "$LAST/requests.json" \
		--slurpfile tasks "$LAST/tasks.json" --slurpfile events "$T/events.jsonl" \
		--argjson agents "[$agents]" --argjson start "$STORY_START" --argjson k "$CLUSTER_K" \
		--argjson refs "$DEMO_REFS" --arg tier "${TIER_URL:-}" "$@"
}

# demo_view FRAME: the live view, redrawn on a terminal, one line otherwise.
# shellcheck disable=SC2016 # $f, $n, $at are jq's
demo_view() {
	if [ -t 1 ]; then
		printf '\033[H\033[J'
		_demo_jq -r --argjson f "$1" --argjson n "$DEMO_SECONDS" \
			--argjson at "[$JUMP_AT, $JOIN_AT, $KILL_AT]" 'include "demo"; state | screen($f; $n; $at)'
	else
		_demo_jq -r --argjson f "$1" 'include "demo"; state | line($f)'
	fi
}

# The story's clock: frame N is drawn at N seconds (a slow frame is not carried into the next
# one): /demo/big's demand jumps at 1/4, an agent joins at 1/3, a cache is killed at 2/3.
demo_run() {
	local start_us frame=0
	JUMP_AT=$((DEMO_SECONDS / 4)) JOIN_AT=$((DEMO_SECONDS / 3)) KILL_AT=$((DEMO_SECONDS * 2 / 3))
	start_us=$(_demo_now_us)
	STORY_START=$EPOCHREALTIME
	demo_event start
	interrupted=0
	trap 'interrupted=1' INT
	while [ "$frame" -lt "$DEMO_SECONDS" ] && [ "$interrupted" = 0 ]; do
		demo_story "$frame"
		demo_sample
		demo_view "$frame"
		frame=$(((($(_demo_now_us) - start_us) / 1000000) + 1))
		_demo_sleep_until_us $((start_us + frame * 1000000))
	done
	ran_s=$(((($(_demo_now_us) - start_us) + 500000) / 1000000))
	trap 'fail "interrupted"' INT
	# A join still under way is let finish (the teardown would wait for its lock anyway).
	[ -z "${JOIN_PID:-}" ] || { wait "$JOIN_PID"; demo_join_poll "$frame"; }
	demo_sample # the final state, while the cluster still runs
	_demo_fetch history.json "$MARATHON_URL/_emu/history"
	demo_event end
}

_demo_now_us() { echo "${EPOCHREALTIME/./}"; }
_demo_sleep_until_us() {
	local left=$(($1 - $(_demo_now_us)))
	[ "$left" -le 0 ] || sleep "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))"
}

# --- stopping and the summary ----------------------------------------------------------------

# demo_stop_all: stops every process the demo started (TERM, then KILL), then the cluster, and
# checks that nothing is left: neither a process naming the work dir nor anything of cluster k
# (namespace, link, process, mount, cgroup, state dir). Also the EXIT trap's first step.
demo_stop_all() {
	local p left=()
	for p in "${MS_PIDS[@]}"; do stop_pid "$p"; done
	for p in "${MS_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
	MS_PIDS=()
	mapfile -t -O "${#left[@]}" left < <(pgrep -f -- "$T/" || true)
	demo_cluster_stop
	[ "${#left[@]}" = 0 ] || fail "processes left behind: ${left[*]}"
	say "stopped every process it started (none left)"
}

# demo_cluster_stop: removes the demo's cluster (its logs copied to $T first if they are kept).
demo_cluster_stop() {
	local st=$CLUSTER_OWNED k left
	[ -n "$st" ] || return 0
	CLUSTER_OWNED=""
	k=$(cl_k_of "$st")
	if [ -n "${MS_KEEP:-}" ] && [ -d "$st" ]; then
		mkdir -p "$T/cluster" && (cd "$st" && find . \( -name '*.log' -o -name '*.out' -o \
			-name '*.json' -o -name '*.env' \) ! -name cache.json -exec cp --parents {} "$T/cluster/" \;)
	fi
	"$MS_ROOT/tests/cluster/stop.sh" "$st" >"$T/cluster.stop.log" 2>&1
	left=$(cluster_leftovers "$k")
	[ -z "$left" ] || fail "cluster $k left behind: $(tr '\n' ';' <<<"$left")"
	say "cluster $k removed: no namespace, link, process, mount or cgroup of it left"
}

# The EXIT trap: whatever is still running goes, the cluster too (also after a failure or Ctrl-C).
demo_exit() {
	local rc=$?
	trap - INT
	[ -z "${JOIN_PID:-}" ] || wait "$JOIN_PID" 2>/dev/null
	# A failure in there exits at once, keeping $T (fail sets MS_KEEP).
	if [ ${#MS_PIDS[@]} -gt 0 ] || [ -n "$CLUSTER_OWNED" ]; then demo_stop_all; fi
	ms_cleanup
	exit "$rc"
}

# demo_log_json: the scaler's log lines that the summary reads, as JSON.
demo_log_json() {
	grep -E 'event=(decision|gate_released|gate_cache_unreachable|gate_cache_back|gate_prewarm|gate_check|fleet_agent_joined|capacity) ' \
		"$SCALER_LOG" | jq -R -L "$JQ_LIB" -c 'include "demo"; logline' | jq -sc . >"$LAST/log.json"
}

# The summary, from what $LAST/ and the scaler's log hold once everything has stopped.
demo_summary() {
	local how=""
	[ "$interrupted" = 0 ] || how=", stopped by Ctrl-C"
	demo_log_json || return 1
	[ -f "$LAST/history.json" ] || echo '[]' >"$LAST/history.json"
	touch "$T/tasks.jsonl"
	_demo_jq -r --slurpfile log "$LAST/log.json" --slurpfile history "$LAST/history.json" \
		--slurpfile alltasks "$T/tasks.jsonl" --argjson secs "$ran_s" --arg how "$how" \
		--argjson n0 "$DEMO_AGENTS" --argjson grace "$DEMO_GRACE_MS" \
		--argjson big_bytes "$DEMO_BIG_BYTES" --argjson mbps "$UPLINK_MBPS" \
		'include "demo"; summary'
}

main() {
	demo_check_tools
	mkdir -p "$LAST"
	trap demo_exit EXIT
	trap 'fail "interrupted"' INT TERM
	scaler_port # first, so that the dashboard's address is the first thing said
	say "dashboard: http://127.0.0.1:$SCALER_PORT/ (live once the scaler starts)"
	say "work dir $T (logs; removed at the end unless MS_KEEP=1)"
	demo_cluster_start
	demo_prewarm
	demo_apps
	demo_scaler_start
	say "running for $DEMO_SECONDS s: /demo/big's demand jumps to $DEMO_BIG_DEMAND at $((DEMO_SECONDS / 4)) s," \
		"an agent joins at $((DEMO_SECONDS / 3)) s, a cache is killed at $((DEMO_SECONDS * 2 / 3)) s"
	demo_run
	demo_stop_all
	demo_summary || fail "the summary could not be made"
}

main
