# Helpers for tests against tests/lib/marathon_emu.py, a Marathon REST emulator. Sourced after
# tests/lib/common.sh. One emulator per test script at a time.
# shellcheck shell=bash

# marathon_start [EMULATOR ARGS…]: starts the emulator on a port of its choosing (or --listen's)
# and waits until /ping answers (200, or 401 when --basic/--token is given). Exports MARATHON_URL
# (on --listen's address, 127.0.0.1 for 0.0.0.0), MARATHON_PID, MARATHON_PORT, MARATHON_LOG (one
# JSON line per API request) and MARATHON_AUTH (curl arguments carrying the credentials given by
# --basic/--token). The readiness /ping is cleared from the request log. MARATHON_PREFIX, when
# set, is a command the emulator runs under (e.g. "nsenter --net=/run/netns/master").
marathon_start() {
	local pf=$T/marathon.port a i code host=127.0.0.1 prefix=()
	MARATHON_AUTH=()
	for ((i = 1; i <= $#; i++)); do
		a=${!i}
		case $a in
		--basic) i=$((i + 1)) && MARATHON_AUTH=(-u "${!i}") ;;
		--token) i=$((i + 1)) && MARATHON_AUTH=(-H "Authorization: token=${!i}") ;;
		--listen) i=$((i + 1)) && host=${!i%:*} ;;
		esac
	done
	case $host in "" | 0.0.0.0) host=127.0.0.1 ;; esac
	read -ra prefix <<<"${MARATHON_PREFIX:-}"
	MARATHON_LOG=$T/marathon.log
	rm -f "$pf" "$MARATHON_LOG"
	spawn "$T/marathon.out" "${prefix[@]}" python3 "$MS_ROOT/tests/lib/marathon_emu.py" \
		--port-file "$pf" --log "$MARATHON_LOG" "$@"
	MARATHON_PID=$SPAWNED
	for ((i = 0; i < 200; i++)); do
		[ -s "$pf" ] || ! kill -0 "$MARATHON_PID" 2>/dev/null && break
		sleep 0.05
	done
	# The port file is written once the emulator listens.
	if ! MARATHON_PORT=$(cat "$pf" 2>/dev/null) || ! kill -0 "$MARATHON_PID" 2>/dev/null; then
		echo "marathon_start: the emulator did not start; its output follows" >&2
		cat "$T/marathon.out" >&2
		return 1
	fi
	MARATHON_URL=http://$host:$MARATHON_PORT
	code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$MARATHON_URL/ping")
	case $code in 200 | 401) ;; *)
		echo "marathon_start: /ping answered '$code'" >&2
		return 1
		;;
	esac
	curl -fsS -X POST "$MARATHON_URL/_emu/reset" >/dev/null || return 1
	export MARATHON_URL MARATHON_PID MARATHON_LOG MARATHON_PORT
}

# marathon_stop: TERM (then KILL after 5 s); returns the emulator's exit status.
marathon_stop() {
	stop_pid "$MARATHON_PID"
}

# marathon_api METHOD PATH [BODY]: one request with the credentials of marathon_start; prints the
# status code. The answer's body lands in $T/m.body, its headers in $T/m.hdr.
marathon_api() {
	local args=(-s -o "$T/m.body" -D "$T/m.hdr" -w '%{http_code}' -X "$1" "${MARATHON_AUTH[@]}")
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	curl "${args[@]}" "$MARATHON_URL$2"
}

# marathon_header NAME: a header of the last marathon_api answer (case-insensitive, no CR).
marathon_header() {
	awk -v h="$(tr '[:upper:]' '[:lower:]' <<<"$1")" -F': ' \
		'tolower($1) == h { sub(/\r$/, "", $2); print $2 }' "$T/m.hdr"
}

# marathon_requests [JQ_FILTER]: every API request so far ([{t, method, path, query, body,
# status}]), through jq (default '.').
marathon_requests() {
	curl -fsS "$MARATHON_URL/_emu/requests" | jq -c "${1:-.}"
}

# marathon_history [JQ_FILTER]: the state snapshots ([{t, apps: {ID: {instances, tasksRunning,
# tasksStaged}}}]), through jq (default '.').
marathon_history() {
	curl -fsS "$MARATHON_URL/_emu/history" | jq -c "${1:-.}"
}

# marathon_fail N STATUS: the next N API requests answer STATUS.
marathon_fail() {
	curl -fsS -X POST -d "{\"count\":$1,\"status\":$2}" "$MARATHON_URL/_emu/fail" >/dev/null
}

# marathon_app ID: the app as GET /v2/apps/ID shows it, read through /_emu/apps (not logged, no
# auth, never failed). Prints null for an unknown app.
marathon_app() {
	local id=/${1#/}
	curl -fsS "$MARATHON_URL/_emu/apps" | jq -c --arg id "$id" '.apps[] | select(.id == $id)' |
		grep . || echo null
}

# marathon_wait_instances ID N [TIMEOUT_S]: polls until ID has N tasks running (default 10 s).
marathon_wait_instances() {
	local id=$1 n=$2 limit=${3:-10} i got
	for ((i = 0; i < limit * 20; i++)); do
		got=$(marathon_app "$id" | jq -r '.tasksRunning // "none"')
		[ "$got" = "$n" ] && return 0
		sleep 0.05
	done
	echo "marathon_wait_instances: $id has $got tasks running after ${limit}s, not $n" >&2
	return 1
}

# marathon_wait_deployments [TIMEOUT_S]: polls until no deployment runs (default 10 s).
marathon_wait_deployments() {
	local limit=${1:-10} i
	for ((i = 0; i < limit * 20; i++)); do
		[ "$(curl -fsS "$MARATHON_URL/_emu/apps" | jq '[.apps[].deployments[]] | length')" = 0 ] &&
			return 0
		sleep 0.05
	done
	echo "marathon_wait_deployments: deployments still running after ${limit}s" >&2
	return 1
}

# marathon_max_sum "ID1 ID2 …": the largest sum of those apps' instances over every snapshot in
# the history (an app absent from a snapshot counts 0).
marathon_max_sum() {
	local ids
	ids=$(tr ' ' '\n' <<<"$1" | grep . | sed 's|^/*|/|' | jq -R . | jq -sc .)
	curl -fsS "$MARATHON_URL/_emu/history" |
		jq --argjson ids "$ids" 'map([.apps[$ids[]].instances // 0] | add // 0) | max // 0'
}

# marathon_tasks [JQ_FILTER]: every task, also those whose container is still being removed
# (GET /_emu/tasks: [{id, appId, state, agent, host, ports, version, old, container, name,
# phases}]), through jq (default '.').
marathon_tasks() {
	curl -fsS "$MARATHON_URL/_emu/tasks" | jq -c "${1:-.}"
}

# marathon_events N [QUERY] [TIMEOUT_S]: opens /v2/events (with marathon_start's credentials and
# QUERY, e.g. "event_type=deployment_success"), prints the data of its first N events, one JSON
# per line, and closes it; fails when fewer came within TIMEOUT_S (default 10). The first event
# of an unfiltered stream is event_stream_attached.
marathon_events() {
	local n=$1 query=${2:-} limit=${3:-10} fd pid line got=0
	exec {fd}< <(exec timeout "$limit" curl -sN -H 'Accept: text/event-stream' \
		"${MARATHON_AUTH[@]}" "$MARATHON_URL/v2/events${query:+?$query}")
	pid=$!
	while ((got < n)) && IFS= read -r -u "$fd" line; do
		line=${line%$'\r'}
		[ "${line#data: }" != "$line" ] && echo "${line#data: }" && got=$((got + 1))
	done
	kill "$pid" 2>/dev/null
	exec {fd}<&-
	[ "$got" -ge "$n" ]
}

# marathon_listen NAME [QUERY]: follows /v2/events in the background into $T/events.NAME (the raw
# stream) until the test ends; returns once the stream is open, so every later event is in it.
marathon_listen() {
	local f=$T/events.$1
	rm -f "$f" "$f.hdr"
	spawn "$f.err" curl -sN -D "$f.hdr" -o "$f" -H 'Accept: text/event-stream' \
		"${MARATHON_AUTH[@]}" "$MARATHON_URL/v2/events${2:+?$2}"
	wait_for 5 grep -q '^HTTP/1.1 200' "$f.hdr" 2>/dev/null
}

# marathon_heard NAME [JQ_FILTER]: the data of every event marathon_listen NAME has received so
# far, one JSON per line, through jq -c (default '.'; e.g. 'select(.eventType == "x")').
marathon_heard() {
	tr -d '\r' <"$T/events.$1" | sed -n 's/^data: //p' | jq -c "${2:-.}"
}
