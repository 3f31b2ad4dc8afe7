# Fault-injection helpers: what a process costs (CPU, memory), and a TCP forwarder that can be
# down, flapping or slow (tests/lib/faultproxy.py). Sourced after tests/lib/common.sh.
# shellcheck shell=bash

# cpu_ticks PID: utime + stime of PID so far, in clock ticks (/proc/PID/stat fields 14 and 15;
# the command name in field 2 may hold spaces, so count from the closing parenthesis).
cpu_ticks() {
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# cpu_seconds_over PID SECONDS: the CPU time (s) PID uses during the next SECONDS of wall time.
cpu_seconds_over() {
	local pid=$1 secs=$2 a b hz
	hz=$(getconf CLK_TCK)
	a=$(cpu_ticks "$pid") || return 1
	sleep "$secs"
	b=$(cpu_ticks "$pid") || return 1
	awk -v a="$a" -v b="$b" -v hz="$hz" 'BEGIN { printf "%.2f\n", (b - a) / hz }'
}

# rss_kib PID: resident memory (VmRSS) in KiB. hwm_kib PID: its peak (VmHWM).
rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}
hwm_kib() {
	awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

# fewer A B: A < B, both decimals.
fewer() {
	awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'
}

# faultproxy_start TARGET_PORT: a forwarder on a free port to 127.0.0.1:TARGET_PORT, starting up.
# Sets FAULT_PORT, FAULT_URL, FAULT_PID, FAULT_LOG. faultproxy_mode MODE switches it (up, down,
# "flap S", "slow S"; see faultproxy.py; never the mode it is in) and returns once the forwarder
# has taken it.
# shellcheck disable=SC2034 # FAULT_URL and FAULT_PID are for the callers
faultproxy_start() {
	FAULT_MODE_FILE=$T/faultproxy.mode
	FAULT_LOG=$T/faultproxy.log
	echo up >"$FAULT_MODE_FILE"
	FAULT_PORT=$(free_port)
	FAULT_URL=http://127.0.0.1:$FAULT_PORT
	spawn "$T/faultproxy.out" python3 "$MS_ROOT/tests/lib/faultproxy.py" --listen "$FAULT_PORT" \
		--target "$1" --mode-file "$FAULT_MODE_FILE" --log "$FAULT_LOG"
	FAULT_PID=$SPAWNED
	wait_port "$FAULT_PORT" "$FAULT_PID" 10
}
faultproxy_mode() {
	local from
	from=$(wc -l <"$FAULT_LOG")
	echo "$1" >"$FAULT_MODE_FILE.tmp" && mv "$FAULT_MODE_FILE.tmp" "$FAULT_MODE_FILE"
	wait_for 5 _faultproxy_took "$from" "$1"
}
_faultproxy_took() {
	tail -n "+$(($1 + 1))" "$FAULT_LOG" | grep -qx "[0-9.]* mode $2"
}
