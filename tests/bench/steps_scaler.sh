# Steps 6-7: the scaler against the Marathon emulator (tests/lib/marathon_emu.py). Sourced by
# tests/bench/run.sh after tests/lib/{marathon,scaler}.sh.
# shellcheck shell=bash

# bench_apps FILE IMAGE: one app, /bench/app, running 1 instance of IMAGE (none when empty); its
# label gives the emulator the image's size for a node that pulls it from the remote registry.
bench_apps() {
	jq -n --arg img "$2" --arg bytes "$BENCH_BIG_BYTES" '[{id: "/bench/app", instances: 1,
		cpus: 0.1, mem: 32, labels: {MICROSCALE_IMAGE_BYTES: $bytes}} +
		if $img == "" then {} else {container: {type: "DOCKER", docker: {image: $img}}} end]' >"$1"
}

# bench_scaler_start CACHES_JSON: the scaler with capacity 10 and /bench/app (1..10) on the http
# demand in $T/demand/app, the default tick (100 ms); waits until it has read the app.
bench_scaler_start() {
	scaler_port
	jq -n --arg m "$MARATHON_URL" --argjson c "$1" --arg l "127.0.0.1:$SCALER_PORT" \
		--arg d "$DEMAND_URL/app" '{marathon: {url: $m}, caches: $c, capacity: 10, listen: $l,
		apps: [{id: "/bench/app", min: 1, max: 10, demand: {type: "http", url: $d}}]}' \
		>"$T/scaler.json" || return 1
	scaler_start "$T/scaler.json" && wait_for 10 _scaler_knows_app
}
_scaler_knows_app() {
	[ "$(scaler_get /status 2>/dev/null |
		jq '.apps[0] | .marathon.instances == 1 and .demand == 1')" = true ]
}

# 6. From a demand change (the file the http source reads, written at a random moment of the
# tick) to the emulator receiving the PUT; and the part inside the scaler, from the demand read
# to the PUT sent (its log's latency_ms). DEMAND_CHANGES changes, 1 <-> 5 instances.
step_scaler_latency() {
	local i before t0 want put
	SCALER_LOG=$T/scaler.latency.log
	bench_apps "$T/apps.json" "" && marathon_start --deploy-seconds 0.05 --apps "$T/apps.json" ||
		bench_fail "the emulator did not start"
	demand_set app 1
	bench_scaler_start '[]' || bench_fail "the scaler did not start"
	: >"$T/latency.ms"
	for ((i = 1; i <= DEMAND_CHANGES; i++)); do
		want=$((i % 2 ? 5 : 1))
		before=$(puts /bench/app length)
		sleep "0.$((RANDOM % 10))"
		t0=$(date +%s.%N)
		demand_set app $want
		wait_for 5 _puts_above "$before" || bench_fail "no PUT after demand $want"
		put=$(puts /bench/app ".[$before]")
		[ "$(jq .body.instances <<<"$put")" = $want ] || bench_fail "PUT $put for demand $want"
		jq -r --arg t0 "$t0" '(.t - ($t0 | tonumber)) * 1000' <<<"$put" >>"$T/latency.ms"
		marathon_wait_deployments 5 || bench_fail "a deployment never ended"
	done
	_record_percentiles 6 "demand change -> PUT received" <"$T/latency.ms"
	grep -o 'latency_ms=[0-9.]*' "$SCALER_LOG" | cut -d= -f2 |
		_record_percentiles 6 "demand read -> PUT sent (in the scaler)"
	scaler_stop
	marathon_stop
}
_puts_above() {
	[ "$(puts /bench/app length)" -gt "$1" ]
}

# _record_percentiles STEP WHAT < MS_VALUES: the median and p99 of the values, as microscale's.
_record_percentiles() {
	local p50 p99
	read -r p50 p99 < <(stats 50 99)
	[ -n "$p99" ] || bench_fail "no samples for $2"
	record "$1" "$2: p50" microscale "$p50" ms
	record "$1" "$2: p99" microscale "$p99" ms
}

# 7. Time to capacity: /bench/app (the big image) from 1 to 10 instances, from the demand change
# until all 10 run, with the emulator's pull-time model: a node whose cache does not hold the
# image stages a new task for image bytes / LINK_MBPS, one whose cache holds it starts it at once
# (START_S, the emulator's deployment time). Set-ups, taking turns within each round:
#   no node cache     nodes pull from the remote registry (the model's cache is unreachable) and
#                     the scaler has no gate
#   microscale cold   an empty cache behind the LINK_MBPS link ($REMOTE_URL) and the gate: the
#                     scaler asks the cache to warm the image and holds the scale-up until it has
#   microscale        the same cache prewarmed (what the appliance does at boot), and the gate
step_time_to_capacity() {
	local r setup
	SCALER_LOG=$T/scaler.capacity.log
	echo "$BENCH_BIG" >"$T/prewarm.list"
	for ((r = 1; r <= ROUNDS; r++)); do
		for setup in "no node cache" "microscale cold" microscale; do
			_ttc_once "$setup" || bench_fail "time to capacity, $setup"
		done
	done
}

_ttc_once() {
	local cache caches='[]' t0 limit
	case $1 in
	"no node cache") cache=http://127.0.0.1:$(free_port) ;; # nothing listens there
	"microscale cold") ms_start "$T/ttc" "$REMOTE_URL" || return 1 ;;
	microscale)
		ms_start "$T/ttc" "$REMOTE_URL" --prewarm "$T/prewarm.list" &&
			wait_for $((LINK_WAIT_S * 2)) _cache_ready "$ADDR" || return 1
		;;
	esac
	[ "$1" = "no node cache" ] || { cache=http://$ADDR caches="[\"$cache\"]"; }
	demand_set app 1
	bench_apps "$T/apps.json" "$BENCH_BIG" &&
		marathon_start --deploy-seconds "$START_S" --cache "$cache" --link-mbps "$LINK_MBPS" \
			--apps "$T/apps.json" && bench_scaler_start "$caches" || return 1
	t0=$(date +%s.%N)
	demand_set app 10
	limit=$((LINK_WAIT_S * 3 + 30))
	marathon_wait_instances /bench/app 10 $limit || return 1
	record 7 "1 -> 10 instances running: s" "$1" "$(marathon_history "map(select(
		.apps[\"/bench/app\"].tasksRunning == 10)) | first | .t - $t0")" s
	scaler_stop
	marathon_stop
	[ "$1" = "no node cache" ] || { stop_pid "$PID" && rm -rf "$T/ttc"; }
}

_cache_ready() {
	[ "$(curl -fsS -G --data-urlencode "ref=$BENCH_BIG" "http://$1/_microscale/v1/ready" |
		jq .ready)" = true ]
}
