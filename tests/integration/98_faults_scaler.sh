# The scaler against a Marathon that is down, flapping, or slow. Scenario, as data:
#   Marathon: the emulator (deploy 0.2 s), reached through tests/lib/faultproxy.py, with
#     /f/a (priority 1, demand over HTTP) and /f/b (priority 2, remainder), capacity 10.
#   1. down (connections refused) for 3 s while a's demand goes 3 -> 6;
#   2. flapping (up 1 s, down 1 s) for 6 s while a's demand goes 6 -> 2 -> 8;
#   3. slow (every answer 5 s late; timeout_ms 8000) while a's demand goes 8 -> 4;
#   4. slow again, with a scaler whose timeout_ms (2000) is shorter than the delay (4 -> 7).
#   the scaler must: send nothing while down and not spin (< 0.3 s of CPU over 2.5 s); never
#     have two calls out for one app (after a PUT, no other request for that app until its
#     answer, 5 s later, when slow); never repeat a PUT Marathon already accepted; never let
#     the apps' instances or live tasks exceed the capacity in any state the emulator went
#     through; reach the demand once Marathon is well again; keep a steady RSS (within 4 MiB
#     from phase 1 to the end); exit 0 on SIGTERM.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
. "$MS_ROOT/tests/lib/faults.sh"

SLOW_S=5
# Under AddressSanitizer, freed memory waits in a quarantine (256 MiB by default) before reuse,
# which looks like growth; a small one lets RSS show what the scaler really keeps.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:quarantine_size_mb=1"
cat >"$T/apps.json" <<'EOF'
[{"id": "/f/a", "instances": 1}, {"id": "/f/b", "instances": 1}]
EOF
marathon_start --deploy-seconds 0.2 --apps "$T/apps.json" || exit 1
faultproxy_start "$MARATHON_PORT" || exit 1
demand_start || exit 1
demand_set a 3

# scaler_conf TIMEOUT_MS: the config, with Marathon behind the fault proxy.
scaler_conf() {
	cat <<EOF
{"marathon": {"url": "$FAULT_URL", "timeout_ms": $1, "resync_ms": 2000, "backoff_max_ms": 1000},
 "capacity": 10, "interval_ms": 50, "listen": "127.0.0.1:$SCALER_PORT",
 "apps": [{"id": "/f/a", "priority": 1, "min": 1, "max": 10,
           "demand": {"type": "http", "url": "$DEMAND_URL/a"}},
          {"id": "/f/b", "priority": 2, "min": 0, "max": 10, "demand": {"type": "remainder"}}]}
EOF
}
settled() { # A B: both apps at these counts, all running, no deployment
	[ "$(app_field /f/a '"\(.instances) \(.tasksRunning) \(.deployments | length)"')" = "$1 $1 0" ] &&
		[ "$(app_field /f/b '"\(.instances) \(.tasksRunning) \(.deployments | length)"')" = "$2 $2 0" ]
}
now() { date +%s.%N; }
# requests_since T: every API request after T, by app, as "APP METHOD T INSTANCES STATUS".
requests_since() {
	marathon_requests "[.[] | select(.t > $1 and (.path | startswith(\"/v2/apps/f/\")))] | sort_by(.t) | .[] |
		\"\(.path | ltrimstr(\"/v2/apps\")) \(.method) \(.t) \(.body.instances // \"-\") \(.status)\"" | tr -d '"'
}
# overlapping_calls T WINDOW_S: requests for an app that came less than WINDOW_S after a PUT for
# the same app (so while that PUT was still out, when every answer takes WINDOW_S).
overlapping_calls() {
	requests_since "$1" | awk -v w="$2" '
		{ if (($1 in put) && $3 - put[$1] < w) print; if ($2 == "PUT") put[$1] = $3 }'
}
# repeated_puts T: PUTs that ask for what the app's previous PUT already had accepted.
repeated_puts() {
	requests_since "$1" | awk '$2 == "PUT" {
		if (($1 in last) && last[$1] == $4 && ok[$1] == 200) print; last[$1] = $4; ok[$1] = $5 }'
}
within_capacity() {
	test "$(marathon_max_sum "/f/a /f/b")" -le 10 && test "$(max_tasks "/f/a /f/b")" -le 10
}

scaler_port
scaler_conf 8000 >"$T/scaler.json"
scaler_start "$T/scaler.json" || exit 1
check "start: a at 3, b fills the rest (7)" wait_for 20 settled 3 7
t0=$(now)
sleep 1 # let the allocator warm up before the memory baseline
rss0=$(rss_kib "$SCALER_PID")

# --- 1: down ------------------------------------------------------------------------------------
faultproxy_mode down
mark=$(now)
demand_set a 6
sleep 0.5
cpu=$(cpu_seconds_over "$SCALER_PID" 2.5)
echo "# scaler CPU while Marathon is down: ${cpu}s over 2.5 s"
check "down: no busy loop (${cpu}s of CPU over 2.5 s < 0.3)" fewer "$cpu" 0.3
check_eq "down: nothing reached Marathon" "" "$(requests_since "$mark")"
check "down: /status says backoff" sh -c "curl -fsS http://127.0.0.1:$SCALER_PORT/status | jq -e '.marathon.health != \"ok\"' >/dev/null"
faultproxy_mode up
check "up again: settles at a 6, b 4" wait_for 20 settled 6 4
check_eq "... with one PUT per app, b down first" "$(printf '/f/b 4\n/f/a 6')" \
	"$(requests_since "$mark" | awk '$2 == "PUT" { print $1, $4 }')"

# --- 2: flapping --------------------------------------------------------------------------------
mark=$(now)
faultproxy_mode "flap 1"
demand_set a 2
sleep 3
demand_set a 8
sleep 3
faultproxy_mode up
check "after the flapping: settles at a 8, b 2" wait_for 30 settled 8 2
requests_since "$mark" | awk '$2 == "PUT"' | sed 's/^/# flapping PUT: /'
check_eq "flapping: no PUT repeats one Marathon had accepted" "" "$(repeated_puts "$mark")"
check "flapping: instances and live tasks within the capacity" within_capacity

# --- 3: slow, answers within the timeout ------------------------------------------------------------
marathon_wait_deployments 5
mark=$(now)
faultproxy_mode "slow $SLOW_S"
demand_set a 4
sleep 12
faultproxy_mode up
check "after the slow phase: settles at a 4, b 6" wait_for 30 settled 4 6
requests_since "$mark" | sed 's/^/# slow request: /'
check "slow: the scaler scaled while Marathon was slow" test "$(requests_since "$mark" | awk '$2 == "PUT"' | wc -l)" -ge 1
check_eq "slow: never a second call for an app while its PUT is out" "" "$(overlapping_calls "$mark" "$(awk -v s="$SLOW_S" 'BEGIN { print s - 0.2 }')")"
check_eq "slow: no PUT repeats one Marathon had accepted" "" "$(repeated_puts "$mark")"
check "slow: instances and live tasks within the capacity" within_capacity
rss1=$(rss_kib "$SCALER_PID")
echo "# scaler VmRSS: ${rss0} KiB after start, ${rss1} KiB after down, flapping and slow phases"
check "steady memory: RSS grew by < 4 MiB ($(((rss1 - rss0))) KiB)" test $((rss1 - rss0)) -lt 4096
check "the scaler is alive" kill -0 "$SCALER_PID"
scaler_stop
check_eq "SIGTERM exits 0" 0 "$?"

# --- 4: slow, answers later than the timeout ------------------------------------------------------
scaler_conf 2000 >"$T/scaler2.json"
scaler_start "$T/scaler2.json" || exit 1
check "a scaler with timeout_ms 2000 sees a 4, b 6" wait_for 20 sh -c "curl -fsS http://127.0.0.1:$SCALER_PORT/status | jq -e '[.apps[].marathon.state] == [\"known\", \"known\"]' >/dev/null"
mark=$(now)
faultproxy_mode "slow $SLOW_S"
demand_set a 7
sleep 8
puts_slow=$(requests_since "$mark" | awk '$2 == "PUT"')
echo "$puts_slow" | sed 's/^/# timed-out phase PUT: /'
check "timeouts: at most one PUT per app while every answer is too late" \
	test "$(awk '{ n[$1]++ } END { m = 0; for (a in n) if (n[a] > m) m = n[a]; print m }' <<<"$puts_slow")" -le 1
check "timeouts: logged as failed calls" log_has 'event=marathon_call_failed .*error="[^"]*([Tt]imeout|timed out)'
faultproxy_mode up
check "after it: settles at a 7, b 3" wait_for 30 settled 7 3
check_eq "timeouts: no PUT repeats one Marathon had accepted" "" "$(repeated_puts "$mark")"
check "the whole run: instances and live tasks within the capacity (since $t0)" within_capacity
scaler_stop
check_eq "SIGTERM exits 0" 0 "$?"
echo "# faultproxy: $(grep -c ' up$' "$FAULT_LOG") ups, $(grep -c ' down ' "$FAULT_LOG") downs, $(grep -c ' conn ' "$FAULT_LOG") connections"
