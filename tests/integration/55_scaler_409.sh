#!/bin/bash
# 409 while a deployment runs. Scenario: the test starts a 2 s deployment of /lock/a, then a
# scaler wants /lock/a at 4.
#   - without marathon.force: the PUT is answered 409, retried on later ticks (not in a hot loop),
#     never with ?force=true, and lands once the deployment is over;
#   - with marathon.force: after the first 409 the next PUT carries ?force=true and lands at once.
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
check "its first PUTs were answered 409" test "$(puts /lock/a "$mine | map(select(.status == 409)) | length")" -ge 1
check_eq "then one 200" 1 "$(puts /lock/a "$mine | map(select(.status == 200)) | length")"
check_eq "never forced" 0 "$(puts /lock/a "$mine | map(select(.query | test(\"force\"))) | length")"
n409=$(puts /lock/a "$mine | map(select(.status == 409)) | length")
check "409s retried once a tick at most ($n409 in about 2 s)" test "$n409" -le 25
gap=$(puts /lock/a "$mine | [.[1:][].t] as \$b | [.[:-1][].t] as \$a | [range(0; \$b | length) | \$b[.] - \$a[.]] | min // 1")
check "no hot loop: no two PUTs within 25 ms (min gap ${gap}s; ticks are 100 ms)" jtrue "$gap >= 0.025"
check "the 409 was logged with Marathon's message" log_has "event=marathon_locked app=/lock/a to=4 retry=next_tick message=\"App is locked by one or more deployments"
scaler_stop

# --- with force -------------------------------------------------------------------------------
marathon_wait_deployments 5
check_eq "a new deployment of the test's" 200 "$(marathon_api PUT /v2/apps/lock/a '{"instances":1}')"
mark=$(date +%s.%N)
write_conf true
scaler_start "$T/scaler.json" || exit 1
check "with force: lands while the deployment still runs" wait_for 5 at 4
recent="[.[] | select(.body.instances == 4 and .t > $mark)]"
check_eq "with force: first 409 unforced, then forced 200" "409: 200:force=true" \
	"$(puts /lock/a "$recent | map(\"\(.status):\(.query)\") | join(\" \")" | tr -d '"')"
took=$(puts /lock/a "$recent | .[-1].t - .[0].t")
check "with force: the forced PUT followed at once (${took}s), not after the deployment" jtrue "$took < 1"
check "with force: logged as retried with force" log_has 'event=marathon_locked app=/lock/a to=4 retry=force'
scaler_stop
check "no error in the scaler's log" sh -c "! grep -q 'level=error' '$SCALER_LOG'"
