#!/bin/bash
# No call Marathon is known to refuse. Scenario: the test starts a 2 s deployment of /lock/a,
# then a scaler wants /lock/a at 4.
#   - without marathon.force: the scaler sees the deployment (in the app it reads) and sends no
#     PUT while it runs, so Marathon answers no 409; it says so in its decision log, and the PUT
#     lands once the deployment is over (the event stream tells it at once);
#   - with marathon.force: the PUT carries ?force=true from the first and lands at once.
# A 409 that comes anyway (a deployment started between a read and a PUT) is held until the next
# tick, or retried with force: tests/unit/scaler/test_marathon.c.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"

cat >"$T/apps.json" <<'EOF2'
[{"id": "/lock/a", "instances": 1}]
EOF2
marathon_start --deploy-seconds 2 --apps "$T/apps.json" || exit 1
scaler_port
write_conf() { # FORCE
	cat >"$T/scaler.json" <<EOF2
{"marathon": {"url": "$MARATHON_URL", "force": $1}, "capacity": 10, "interval_ms": 100,
 "listen": "127.0.0.1:$SCALER_PORT",
 "apps": [{"id": "/lock/a", "demand": {"type": "static", "instances": 4}}]}
EOF2
}
at() { [ "$(app_field /lock/a .instances)" = "$1" ]; }

# --- without force ----------------------------------------------------------------------------
check_eq "the test's own deployment starts" 200 "$(marathon_api PUT /v2/apps/lock/a '{"instances":2}')"
write_conf false
start=$(date +%s.%N)
scaler_start "$T/scaler.json" || exit 1
check "the scaler's PUT lands after the deployment" wait_for 10 at 4
mine='[.[] | select(.body.instances == 4)]'
check_eq "no PUT was answered 409" 0 "$(puts /lock/a "$mine | map(select(.status == 409)) | length")"
check_eq "one PUT, answered 200" "200" "$(puts /lock/a "$mine | map(.status) | join(\" \")" | tr -d '"')"
check_eq "never forced" 0 "$(puts /lock/a "$mine | map(select(.query | test(\"force\"))) | length")"
check "the hold was logged with its reason" log_has 'event=decision app=/lock/a .*action=hold .*reason="a deployment of the app is running"'
check "the event stream was attached" log_has 'event=marathon_events_attached'
scaler_stop

# --- with force -------------------------------------------------------------------------------
marathon_wait_deployments 5
check_eq "a new deployment of the test's" 200 "$(marathon_api PUT /v2/apps/lock/a '{"instances":1}')"
mark=$(date +%s.%N)
write_conf true
scaler_start "$T/scaler.json" || exit 1
check "with force: lands while the deployment still runs" wait_for 5 at 4
recent="[.[] | select(.body.instances == 4 and .t > $mark)]"
check_eq "with force: one PUT, forced from the first, answered 200" "200:force=true" \
	"$(puts /lock/a "$recent | map(\"\(.status):\(.query)\") | join(\" \")" | tr -d '"')"
took=$(puts /lock/a "$recent | .[0].t - $mark")
check "with force: it went out at once (${took}s after the deployment started)" jtrue "$took < 1"
scaler_stop
check "no error in the scaler's log" sh -c "! grep -q 'level=error' '$SCALER_LOG'"
