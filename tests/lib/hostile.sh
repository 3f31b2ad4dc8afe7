# Helpers for scenario tests against tests/lib/hostile.py. Sourced after tests/lib/common.sh.
# shellcheck shell=bash

# hostile_start DIR [ARGS…]: hostile.py serving the blobs in DIR on a port of its choosing.
# Sets HOSTILE_PORT, HOSTILE_URL, HOSTILE_PID and HOSTILE_LOG (one line per request:
# "METHOD PATH MODE auth=…"). Returns non-zero if it never wrote its port file.
hostile_start() {
	local dir=$1 pf=$T/hostile.port
	shift
	HOSTILE_LOG=$T/hostile.log
	rm -f "$pf"
	spawn "$T/hostile.out" python3 "$MS_ROOT/tests/lib/hostile.py" --dir "$dir" \
		--port-file "$pf" --log "$HOSTILE_LOG" "$@"
	HOSTILE_PID=$SPAWNED
	if ! wait_for 10 _hostile_up "$pf" || ! HOSTILE_PORT=$(cat "$pf") ||
		! wait_port "$HOSTILE_PORT" "$HOSTILE_PID" 5; then
		echo "hostile_start: hostile.py did not start; its output follows" >&2
		cat "$T/hostile.out" >&2
		return 1
	fi
	# shellcheck disable=SC2034 # read by the test scripts
	HOSTILE_URL=http://127.0.0.1:$HOSTILE_PORT
}

# The port file exists, or the process died (then waiting longer is pointless).
_hostile_up() {
	[ -s "$1" ] || ! kill -0 "$HOSTILE_PID" 2>/dev/null
}

# hostile_count METHOD PATH [MODE]: how many requests hostile.py logged for exactly PATH.
hostile_count() {
	awk -v m="$1" -v p="$2" -v mode="${3:-}" \
		'$1 == m && $2 == p && (mode == "" || $3 == mode) { n++ } END { print n + 0 }' \
		"$HOSTILE_LOG"
}

# sanitizer_clean LOG…: no UBSan/ASan/LSan report in any of the logs.
sanitizer_clean() {
	! grep -qE 'runtime error|AddressSanitizer|LeakSanitizer' "$@"
}
