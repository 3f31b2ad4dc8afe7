#!/bin/bash
# make demo: the whole microscaling story on one machine, loopback only.
#
#   upstream   Debian's docker-registry holding three images built offline (tests/demo/images.sh):
#              library/demo-web:1 and library/demo-batch:1 (small, on images/demo.list) and
#              library/demo-big:1 (100 MiB, not on the list)
#   link       tests/lib/slowlink.py in front of the upstream: DEMO_LINK_MBPS (20 MB/s), so that
#              the upstream is as far away as a remote registry
#   cache      microscale-registry prewarming images/demo.list; the demo waits until both are ready
#   Marathon   tests/lib/marathon_emu.py with the pull-time model: a new task stages for its
#              deploy time when the cache has its image, for bytes / DEMO_LINK_MBPS otherwise,
#              and reads ready images through the cache as a node's runtime would
#   scaler     microscale-scaler, capacity DEMO_CAPACITY: /demo/priority1 (random demand),
#              /demo/priority2 (the remainder) and /demo/big, whose demand (served from a file
#              by a small HTTP server) jumps from 0 to DEMO_BIG_DEMAND a third of the way in: the
#              gate holds it, the cache warms it, then it scales
#
# A live view (redrawn every second on a terminal, one plain line per second otherwise) runs for
# DEMO_SECONDS (60) or until Ctrl-C; then every process is stopped, checked gone, and a summary is
# printed. Exits 0 on success. Installs nothing: `make deps` does that.
#
# Usage: tests/demo/run.sh [BUILD_DIR]   (default build; MS_KEEP=1 keeps the logs)
set -u
MS_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MS_BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || MS_BUILD=$MS_ROOT/${1:-build}
export MS_ROOT MS_BUILD
DEMO_SECONDS=${DEMO_SECONDS:-60}
DEMO_CAPACITY=${DEMO_CAPACITY:-10}
DEMO_BIG_DEMAND=${DEMO_BIG_DEMAND:-4}
DEMO_LINK_MBPS=${DEMO_LINK_MBPS:-20}
# shellcheck source-path=SCRIPTDIR/../lib
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
# shellcheck source-path=SCRIPTDIR
. "$MS_ROOT/tests/demo/images.sh"
LAST=$T/last # the latest answers of every daemon, which the view and the summary read
JQ_LIB=$MS_ROOT/tests/demo # demo.jq: the view's and the summary's jq functions

say() { echo "demo: $*"; }
# fail MESSAGE: says why, keeps the logs for a look, exits 1 (the EXIT trap stops everything).
fail() {
	echo "demo: $*; logs kept in $T" >&2
	MS_KEEP=1
	exit 1
}

# --- setting up ------------------------------------------------------------------------------

# Everything the demo runs must be there already; it installs nothing.
demo_check_tools() {
	local b c
	for b in microscale-registry microscale-scaler; do
		[ -x "$MS_BUILD/$b" ] || fail "$MS_BUILD/$b is not built (run make)"
	done
	for c in docker-registry skopeo jq curl python3 openssl; do
		command -v "$c" >/dev/null || fail "$c is missing (run make deps)"
	done
	case $DEMO_SECONDS in '' | *[!0-9]*) fail "DEMO_SECONDS must be a whole number of seconds" ;; esac
	[ "$DEMO_SECONDS" -ge 3 ] || fail "DEMO_SECONDS must be at least 3"
}

# The upstream as a remote registry: behind a link of DEMO_LINK_MBPS. Sets REMOTE_URL.
demo_link_start() {
	upstream_remote_start "$DEMO_LINK_MBPS" || fail "the slow link did not start"
	say "the upstream seen through a $DEMO_LINK_MBPS MB/s link on $REMOTE_URL"
}

# The cache prewarms images/demo.list at start; the story starts once both images are ready.
demo_cache_start() {
	cache_start --upstream "$REMOTE_URL" --prewarm "$MS_ROOT/images/demo.list" ||
		fail "the cache did not start"
	say "cache on $CACHE_URL, prewarming images/demo.list"
	wait_for 60 demo_ready "$DEMO_WEB" "$DEMO_BATCH" || fail "images/demo.list never became ready"
}

# demo_ready REF…: every REF is ready in the cache; prints each one's progress when it changes.
demo_ready() {
	local ref line all=0
	for ref in "$@"; do
		line=$(curl -fsS -G --data-urlencode "ref=$ref" "$CACHE_URL/_microscale/v1/ready" |
			jq -r '"\(.ref) \(.state) layers \(.layers_present)/\(.layers_total)" +
				" bytes \(.bytes_present)/\(.bytes_total) ready=\(.ready)"') ||
			line="$ref: no answer"
		if ! grep -qxF "$line" "$T/ready.seen" 2>/dev/null; then
			say "  $line"
			echo "$line" >>"$T/ready.seen"
		fi
		[[ $line == *ready=true ]] || all=1
	done
	return $all
}

# The Marathon emulator with the three apps, their images and sizes (the label is what the
# pull-time model uses when the cache does not know an image's size yet).
demo_marathon_start() {
	jq -n --arg web "$DEMO_WEB" --arg batch "$DEMO_BATCH" --arg big "$DEMO_BIG" \
		--arg wb "$DEMO_WEB_BYTES" --arg bb "$DEMO_BATCH_BYTES" --arg gb "$DEMO_BIG_BYTES" '
		def app($id; $n; $img; $bytes): {id: $id, instances: $n, cpus: 0.1, mem: 32,
			labels: {MICROSCALE_IMAGE_BYTES: $bytes},
			container: {type: "DOCKER", docker: {image: $img}}};
		[app("/demo/priority1"; 1; $web; $wb), app("/demo/priority2"; 0; $batch; $bb),
		 app("/demo/big"; 0; $big; $gb)]' >"$T/apps.json" || fail "writing apps.json"
	marathon_start --deploy-seconds 1 --cache "$CACHE_URL" --link-mbps "$DEMO_LINK_MBPS" \
		--pull-from-cache --apps "$T/apps.json" || fail "the Marathon emulator did not start"
	say "Marathon emulator on $MARATHON_URL (pull link ${DEMO_LINK_MBPS} MB/s when not cached)"
}

# The scaler, with /demo/big's demand read from $T/demand/big (0 until the jump).
demo_scaler_start() {
	demand_start || fail "the demand server did not start"
	demand_set big 0
	scaler_port
	jq -n --arg m "$MARATHON_URL" --arg c "$CACHE_URL" --arg l "127.0.0.1:$SCALER_PORT" \
		--arg d "$DEMAND_URL/big" --argjson cap "$DEMO_CAPACITY" '
		{marathon: {url: $m}, caches: [$c], capacity: $cap, interval_ms: 100, listen: $l,
		 apps: [
			{id: "/demo/priority1", priority: 1, min: 1, max: $cap,
			 demand: {type: "random", seed: 42, step: 2, period_ms: 1000}},
			{id: "/demo/priority2", priority: 2, min: 0, max: $cap, demand: {type: "remainder"}},
			{id: "/demo/big", priority: 1, min: 0, max: $cap,
			 demand: {type: "http", url: $d}}]}' >"$T/scaler.json" || fail "writing scaler.json"
	scaler_start "$T/scaler.json" || fail "the scaler did not start"
	say "scaler on 127.0.0.1:$SCALER_PORT, capacity $DEMO_CAPACITY"
}

# --- sampling and the live view --------------------------------------------------------------

# demo_sample: the latest answers of the scaler, the emulator and the cache into $LAST/. A file
# is replaced only by a good answer, so after Ctrl-C (which the daemons get too) the summary
# still has the last second's state.
demo_sample() {
	_demo_fetch status.json "http://127.0.0.1:$SCALER_PORT/status"
	_demo_fetch apps.json "$MARATHON_URL/_emu/apps"
	_demo_fetch requests.json "$MARATHON_URL/_emu/requests"
	_demo_fetch history.json "$MARATHON_URL/_emu/history"
	_demo_fetch metrics.txt "$CACHE_URL/metrics"
}
_demo_fetch() {
	curl -fsS --max-time 2 -o "$LAST/$1.tmp" "$2" 2>/dev/null && mv "$LAST/$1.tmp" "$LAST/$1"
}

# demo_state: one JSON document of what the view shows, from $LAST/.
demo_state() {
	_demo_cache_json >"$LAST/cache.json" &&
		jq -n --slurpfile s "$LAST/status.json" --slurpfile a "$LAST/apps.json" \
			--slurpfile r "$LAST/requests.json" --slurpfile c "$LAST/cache.json" '
		($a[0].apps | map({(.id): .}) | add) as $emu |
		{cache: $c[0], puts: ([$r[0][] | select(.method == "PUT")] | length),
		 apps: [$s[0].apps[] | {id, priority, demand, target, gate: .gate,
			requested: $emu[.id].instances, running: $emu[.id].tasksRunning,
			staged: $emu[.id].tasksStaged}]}'
}

# The cache's counters that the demo shows, from its Prometheus text.
_demo_cache_json() {
	awk '
		/^microscale_cache_requests_total\{/ { if (/result="hit"/) hit += $2; else miss += $2 }
		/^microscale_bytes_total\{.*source="upstream"/ { up = $2 }
		/^microscale_bytes_total\{.*source="store"/ { local = $2 }
		END { printf "{\"hits\": %d, \"misses\": %d, \"upstream_bytes\": %d, \"local_bytes\": %d}\n",
			hit, miss, up, local }' "$LAST/metrics.txt"
}

# demo_view ELAPSED: the live view, redrawn on a terminal, one line otherwise.
demo_view() {
	local state
	state=$(demo_state) || return 0 # a daemon did not answer this second: skip a frame
	if [ -t 1 ]; then
		printf '\033[H\033[J'
		jq -L "$JQ_LIB" -r --arg t "$1" --arg n "$DEMO_SECONDS" --arg j "$surge_at" \
			'include "demo"; screen($t; $n; $j)' <<<"$state"
	else
		jq -L "$JQ_LIB" -r --arg t "$1" 'include "demo"; line($t)' <<<"$state"
	fi
}

# The story's clock: frame N is drawn at N seconds (a slow frame is not carried into the next
# one); /demo/big's demand jumps at a third of the run.
demo_run() {
	local start_us frame=0
	start_us=$(_demo_now_us)
	surge_at=$((DEMO_SECONDS / 3))
	interrupted=0
	trap 'interrupted=1' INT
	while [ "$frame" -lt "$DEMO_SECONDS" ] && [ "$interrupted" = 0 ]; do
		if [ "$frame" -ge "$surge_at" ] && [ ! -f "$T/surge.t" ]; then
			demand_set big "$DEMO_BIG_DEMAND"
			date +%s.%N >"$T/surge.t"
		fi
		demo_sample
		demo_view "$frame"
		frame=$(((($(_demo_now_us) - start_us) / 1000000) + 1))
		_demo_sleep_until_us $((start_us + frame * 1000000))
	done
	ran_s=$(((($(_demo_now_us) - start_us) + 500000) / 1000000))
	[ "$interrupted" = 1 ] || demo_sample # the final state, while everything still runs
	trap - INT
}

_demo_now_us() { echo "${EPOCHREALTIME/./}"; }
_demo_sleep_until_us() {
	local left=$(($1 - $(_demo_now_us)))
	[ "$left" -le 0 ] || sleep "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))"
}

# --- stopping and the summary ----------------------------------------------------------------

# Stops every process the demo started (TERM, then KILL) and checks that none is left: neither
# the pids it recorded nor anything else whose command line names its temp dir.
demo_stop_all() {
	local p left=()
	for p in "${MS_PIDS[@]}"; do stop_pid "$p"; done
	for p in "${MS_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
	MS_PIDS=()
	mapfile -t -O "${#left[@]}" left < <(pgrep -f -- "$T/" || true)
	[ "${#left[@]}" = 0 ] || fail "processes left behind: ${left[*]}"
	say "stopped every process it started (none left)"
}

# The summary, from the last answers in $LAST/.
demo_summary() {
	local surge how=""
	surge=$(cat "$T/surge.t" 2>/dev/null || echo null)
	[ "$interrupted" = 0 ] || how=", stopped by Ctrl-C"
	_demo_cache_json >"$LAST/cache.json" || fail "no cache metrics to summarise"
	jq -L "$JQ_LIB" -rn --slurpfile s "$LAST/status.json" --slurpfile r "$LAST/requests.json" \
		--slurpfile h "$LAST/history.json" --slurpfile c "$LAST/cache.json" \
		--argjson surge "$surge" --argjson secs "$ran_s" --arg how "$how" \
		--argjson link "$DEMO_LINK_MBPS" --argjson big_bytes "$DEMO_BIG_BYTES" '
		include "demo";
		summary($s[0]; $r[0]; $h[0]; $c[0])'
}

main() {
	demo_check_tools
	mkdir -p "$LAST"
	say "work dir $T (logs; removed at the end unless MS_KEEP=1)"
	demo_images_ready || fail "the demo images could not be built"
	demo_upstream_start "$T/upstream" || fail "the upstream registry did not start"
	say "upstream registry on $UPSTREAM_URL: $DEMO_WEB, $DEMO_BATCH, $DEMO_BIG ($DEMO_BIG_BYTES bytes)"
	demo_link_start
	demo_cache_start
	demo_marathon_start
	demo_scaler_start
	say "running for $DEMO_SECONDS s; /demo/big's demand jumps to $DEMO_BIG_DEMAND at $((DEMO_SECONDS / 3)) s"
	demo_run
	demo_stop_all
	demo_summary || fail "the summary could not be made"
}

main
