#!/bin/bash
# Priorities against the Marathon emulator. Scenario:
#   capacity 10; /prod/p1 (priority 1, demand read over HTTP), /prod/p2 (priority 2, remainder),
#   /prod/ghost (configured, unknown to Marathon).
#   - p1's demand rises 2 -> 7: p2 is scaled down to 3 first, p1 up to 7 only after that;
#   - it falls 7 -> 1: p1 goes down first, then p2 takes the room;
#   - it jumps around every 150 ms for a few seconds, then settles;
#   in every state the emulator passes through, instances and live tasks add up to <= 10;
#   /prod/ghost is reported and never PUT. Prints the median time from a demand change to its PUT.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"

cat >"$T/apps.json" <<'EOF'
[{"id": "/prod/p1", "instances": 1}, {"id": "/prod/p2", "instances": 1}]
EOF
marathon_start --deploy-seconds 0.3 --apps "$T/apps.json" || exit 1
demand_start || exit 1
demand_set p1 2
scaler_port
cat >"$T/scaler.json" <<EOF
{"marathon": {"url": "$MARATHON_URL", "timeout_ms": 2000, "resync_ms": 2000},
 "capacity": 10, "interval_ms": 50, "listen": "127.0.0.1:$SCALER_PORT",
 "apps": [{"id": "/prod/p1", "priority": 1, "min": 1, "max": 10,
           "demand": {"type": "http", "url": "$DEMAND_URL/p1"}},
          {"id": "/prod/p2", "priority": 2, "min": 0, "max": 10, "demand": {"type": "remainder"}},
          {"id": "/prod/ghost", "priority": 2, "min": 1, "max": 3,
           "demand": {"type": "static", "instances": 3}}]}
EOF
scaler_start "$T/scaler.json" || exit 1

settled() { # P1 P2: both apps at these counts, all running, no deployment
	[ "$(app_field /prod/p1 '"\(.instances) \(.tasksRunning) \(.deployments | length)"')" = "$1 $1 0" ] &&
		[ "$(app_field /prod/p2 '"\(.instances) \(.tasksRunning) \(.deployments | length)"')" = "$2 $2 0" ]
}
now() { date +%s.%N; }
# puts_since T: "ID INSTANCES" of every PUT after time T, in order.
puts_since() {
	marathon_requests "[.[] | select(.method == \"PUT\" and .t > $1)] | sort_by(.t) | .[] | \"\(.path | ltrimstr(\"/v2/apps\")) \(.body.instances)\"" | tr -d '"'
}

check "start: p1 at 2, p2 fills the rest (8)" wait_for 20 settled 2 8

mark=$(now)
demand_set p1 7
check "p1 demand 7: settles at p1 7, p2 3" wait_for 20 settled 7 3
check_eq "p2 scaled down first, then p1 up" "$(printf '/prod/p2 3\n/prod/p1 7')" "$(puts_since "$mark")"
t_down=$(marathon_requests "[.[] | select(.method == \"PUT\" and .path == \"/v2/apps/prod/p2\" and .t > $mark)][0].t")
t_up=$(marathon_requests "[.[] | select(.method == \"PUT\" and .path == \"/v2/apps/prod/p1\" and .t > $mark)][0].t")
check "p1's PUT came after p2's was accepted" jtrue "$t_up > $t_down"
check "p1 waited for the room, and said so" log_has 'event=decision app=/prod/p1 .*action=hold gated=no reason="waiting_for_room"'
check "p2's decision: down, never gated" log_has 'event=decision app=/prod/p2 demand=rest want=10 from=8 to=3 action=down gated=no reason="scale-downs are never gated" sent=yes'

mark=$(now)
demand_set p1 1
check "p1 demand 1: settles at p1 1, p2 9" wait_for 20 settled 1 9
check_eq "p1 scaled down first, then p2 up" "$(printf '/prod/p1 1\n/prod/p2 9')" "$(puts_since "$mark")"

# A storm: a new demand every 150 ms for 4 s, then a last one.
for v in 9 3 10 6 1 8 2 7 5 10 4 9 1 6 3 10 2 8 5 7 1 9 4 6 10 2; do
	demand_set p1 "$v"
	sleep 0.15 # pacing the demand changes, not synchronisation
done
demand_set p1 6
check "after the storm: settles at p1 6, p2 4" wait_for 30 settled 6 4

check "instances never exceeded the capacity (every emulator state)" \
	test "$(marathon_max_sum "/prod/p1 /prod/p2 /prod/ghost")" -le 10
check "live tasks never exceeded the capacity (every emulator state)" \
	test "$(max_tasks "/prod/p1 /prod/p2")" -le 10
check "the storm was served with PUTs" test "$(puts /prod/p1 length)" -ge 5
check_eq "the unknown app was never PUT" 0 "$(puts /prod/ghost length)"
check "the unknown app was reported" log_has 'event=marathon_app_missing app=/prod/ghost'
check_eq "nothing was forced (marathon.force is off)" 0 \
	"$(marathon_requests '[.[] | select(.query | test("force"))] | length')"
status=$(scaler_get /status)
check_eq "/status: ghost is missing, p1 known" "missing known" \
	"$(jq -r '"\(.apps[2].marathon.state) \(.apps[0].marathon.state)"' <<<"$status")"
check "/metrics: decisions counted" sh -c "curl -fsS http://127.0.0.1:$SCALER_PORT/metrics | grep -q '^microscale_scaler_decisions_total{app=\"/prod/p1\",action=\"up\"} [1-9]'"
median=$(grep -o 'app=/prod/p1 .*latency_ms=[0-9.]*' "$SCALER_LOG" | sed 's/.*latency_ms=//' | sort -n |
	awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}')
echo "# demand change to PUT, median over $(grep -c 'app=/prod/p1 .*latency_ms' "$SCALER_LOG") PUTs of /prod/p1: ${median} ms (status says $(jq -r '.demand_to_put_median_ms' <<<"$status") ms)"
scaler_stop
check_eq "SIGTERM exits 0" 0 "$?"
check "no error in the scaler's log" sh -c "! grep -q 'level=error' '$SCALER_LOG'"
