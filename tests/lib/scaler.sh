# The scaler under test, a demand server the test steers, and polling. Sourced after
# tests/lib/common.sh and tests/lib/marathon.sh.
# shellcheck shell=bash

SCALER_BIN=$MS_BUILD/microscale-scaler

# demand_start: a static file server over $T/demand (python's http.server) on a free port;
# sets DEMAND_URL. demand_set NAME VALUE writes $T/demand/NAME atomically.
demand_start() {
	mkdir -p "$T/demand"
	DEMAND_PORT=$(free_port)
	DEMAND_URL=http://127.0.0.1:$DEMAND_PORT
	spawn "$T/demand.log" python3 -m http.server --bind 127.0.0.1 --directory "$T/demand" \
		"$DEMAND_PORT"
	DEMAND_PID=$SPAWNED
	wait_port "$DEMAND_PORT" "$DEMAND_PID"
}
demand_set() {
	echo "$2" >"$T/demand/$1.tmp" && mv "$T/demand/$1.tmp" "$T/demand/$1"
}

# scaler_start CONFIG [FLAGS…]: starts the scaler in the foreground with CONFIG, whose "listen"
# must be 127.0.0.1:$SCALER_PORT (pick it with scaler_port first); waits until it listens.
# Sets SCALER_PID and SCALER_LOG (appended to, so a restarted scaler keeps one log).
scaler_port() {
	SCALER_PORT=$(free_port)
}
scaler_start() {
	local conf=$1
	shift
	SCALER_LOG=${SCALER_LOG:-$T/scaler.log}
	"$SCALER_BIN" -d -c "$conf" "$@" >>"$SCALER_LOG" 2>&1 &
	SCALER_PID=$!
	MS_PIDS+=("$SCALER_PID")
	wait_port "$SCALER_PORT" "$SCALER_PID" 10 || { tail -20 "$SCALER_LOG" >&2; return 1; }
}
scaler_stop() {
	stop_pid "$SCALER_PID"
}
scaler_get() {
	curl -fsS "http://127.0.0.1:$SCALER_PORT$1"
}

# puts ID [JQ]: the PUTs the emulator got for app ID ([{t, query, body, status}]), through JQ.
puts() {
	marathon_requests "[.[] | select(.method == \"PUT\" and .path == \"/v2/apps$1\")] | ${2:-.}"
}
# app_field ID JQ: a field of the app as the emulator has it.
app_field() {
	marathon_app "$1" | jq -r "$2"
}
# max_tasks "ID…": the largest sum of tasksRunning + tasksStaged over the history.
max_tasks() {
	local ids
	ids=$(tr ' ' '\n' <<<"$1" | grep . | jq -R . | jq -sc .)
	marathon_history | jq --argjson ids "$ids" \
		'map([.apps[$ids[]] | (.tasksRunning // 0) + (.tasksStaged // 0)] | add // 0) | max // 0'
}
# jtrue EXPR: jq's verdict on a numeric comparison ("1.5 > 1").
jtrue() {
	jq -en "$1" >/dev/null
}
# log_has ERE: the scaler's log holds a line matching ERE.
log_has() {
	grep -qE "$1" "$SCALER_LOG"
}
