#!/bin/bash
# Stateless restart. Scenario: capacity 8; /r/p1 follows a fast random walk (priority 1), /r/p2
# takes the rest. The scaler is killed with SIGKILL while a deployment runs, and started again:
#   - the new one reads every app before it writes anything, and sends no burst of PUTs;
#   - it carries on from Marathon's state (the apps keep following the demand);
#   - in every state the emulator passed through, before, during and after, the sum stayed <= 8.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"

cat >"$T/apps.json" <<'EOF2'
[{"id": "/r/p1", "instances": 1}, {"id": "/r/p2", "instances": 1}]
EOF2
marathon_start --deploy-seconds 0.4 --apps "$T/apps.json" || exit 1
scaler_port
cat >"$T/scaler.json" <<EOF2
{"marathon": {"url": "$MARATHON_URL"}, "capacity": 8, "interval_ms": 50,
 "listen": "127.0.0.1:$SCALER_PORT",
 "apps": [{"id": "/r/p1", "priority": 1, "min": 1, "max": 8,
           "demand": {"type": "random", "seed": 7, "step": 3, "period_ms": 250}},
          {"id": "/r/p2", "priority": 2, "min": 0, "max": 8, "demand": {"type": "remainder"}}]}
EOF2
scaler_start "$T/scaler.json" || exit 1
nputs() { marathon_requests '[.[] | select(.method == "PUT" and .status == 200)] | length'; }
check "the scaler is scaling (6 PUTs accepted)" wait_for 20 sh -c "[ \$(curl -fsS $MARATHON_URL/_emu/requests | jq '[.[] | select(.method == \"PUT\" and .status == 200)] | length') -ge 6 ]"
deploying() { [ "$(curl -fsS "$MARATHON_URL/_emu/apps" | jq '[.apps[].deployments[]] | length')" -gt 0 ]; }
check "a deployment is running" wait_for 10 deploying
kill -KILL "$SCALER_PID"
wait "$SCALER_PID" 2>/dev/null
mark=$(date +%s.%N)
before=$(nputs)
echo "# killed after $before accepted PUTs; state: $(curl -fsS "$MARATHON_URL/_emu/apps" | jq -c '[.apps[] | {id, instances, tasksRunning, tasksStaged}]')"
scaler_start "$T/scaler.json" || exit 1
check "the restarted scaler is scaling again" wait_for 20 sh -c "[ \$(curl -fsS $MARATHON_URL/_emu/requests | jq '[.[] | select(.method == \"PUT\" and .status == 200)] | length') -ge $((before + 4)) ]"
after="[.[] | select(.t > $mark)]"
first_put=$(marathon_requests "$after | map(.method) | index(\"PUT\")")
reads=$(marathon_requests "$after | .[:$first_put] | map(select(.method == \"GET\" and (.path | startswith(\"/v2/apps\"))) | .path) | unique | join(\" \")" | tr -d '"')
check_eq "it read both apps before its first PUT" "/v2/apps/r/p1 /v2/apps/r/p2" "$reads"
t0=$(marathon_requests "$after | .[0].t")
burst=$(marathon_requests "$after | map(select(.method == \"PUT\" and .status != 409 and .t < $t0 + 1)) | length")
check "no burst: $burst PUTs taken in its first second (409 retries aside)" test "$burst" -le 4
retries=$(marathon_requests "$after | map(select(.method == \"PUT\" and .t < $t0 + 1)) | length")
check "409 retries at most once a tick per app ($retries PUTs in all)" test "$retries" -le 42
check "instances never exceeded the capacity, across the kill" test "$(marathon_max_sum "/r/p1 /r/p2")" -le 8
check "live tasks never exceeded the capacity, across the kill" test "$(max_tasks "/r/p1 /r/p2")" -le 8
check "the new scaler's view matches Marathon's" wait_for 10 sh -c "curl -fsS http://127.0.0.1:$SCALER_PORT/status | jq -e '.apps | all(.marathon.state == \"known\")' >/dev/null"
scaler_stop
check_eq "SIGTERM exits 0" 0 "$?"
