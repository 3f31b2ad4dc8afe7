#!/bin/bash
# The gate, with a real microscale cache in front of the fixtures upstream. Scenario:
#   /g/web (image $FIX_OCI, not in the cache) wants 3; /g/never (an image the upstream does not
#   have) wants 2.
#   - /g/web is held (logged, exported), the scaler asks the cache to prewarm it, and its first
#     PUT comes after the cache reports the image ready;
#   - /g/never is never scaled up;
#   - then, with the upstream stopped, the image still pulls from the cache.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"

fixtures_upstream_start || exit 1
cache_start --upstream "$UPSTREAM_URL" || exit 1
image=$FIX_OCI
ready_now() { # IMAGE: the cache's answer to ready?ref=IMAGE, "STATUS READY"
	local code
	code=$(curl -s -o "$T/ready.json" -w '%{http_code}' -G --data-urlencode "ref=$1" \
		"$CACHE_URL/_microscale/v1/ready")
	echo "$code $(jq -r .ready "$T/ready.json" 2>/dev/null)"
}
check_eq "the cache answers readiness: $image not ready yet" "200 false" "$(ready_now "$image")"

cat >"$T/apps.json" <<EOF2
[{"id": "/g/web", "instances": 0, "container": {"type": "DOCKER", "docker": {"image": "$image"}}},
 {"id": "/g/never", "instances": 0,
  "container": {"type": "DOCKER", "docker": {"image": "library/never-pushed:1"}}}]
EOF2
marathon_start --deploy-seconds 0.2 --apps "$T/apps.json" || exit 1
scaler_port
cat >"$T/scaler.json" <<EOF2
{"marathon": {"url": "$MARATHON_URL"}, "caches": ["$CACHE_URL"], "capacity": 6,
 "interval_ms": 100, "listen": "127.0.0.1:$SCALER_PORT",
 "apps": [{"id": "/g/web", "priority": 1, "demand": {"type": "static", "instances": 3}},
          {"id": "/g/never", "priority": 2, "demand": {"type": "static", "instances": 2}}]}
EOF2
scaler_start "$T/scaler.json" || exit 1

check "/g/web is held by the gate, and the log says why" \
	wait_for 10 log_has 'event=decision app=/g/web demand=3 want=3 from=0 to=3 action=hold gated=yes reason='
check "the scaler asked the cache to prewarm $image" \
	wait_for 10 log_has "event=gate_prewarm app=/g/web cache=$CACHE_URL ref=$image status=20[02]"
at() { [ "$(app_field /g/web .instances)" = "$1" ]; }
check "/g/web is scaled to 3 once the image is in the cache" wait_for 90 at 3
put_t=$(puts /g/web 'map(select(.status == 200)) | .[0].t')
ready_ts=$(grep "event=gate_check app=/g/web .*state=ready" "$SCALER_LOG" | head -1 | sed 's/^ts=\([^ ]*\).*/\1/')
ready_t=$(date -d "$ready_ts" +%s.%N)
check "the first PUT of /g/web came after the cache reported it ready" jtrue "$put_t >= $ready_t"
check_eq "no PUT of /g/web before that" 0 "$(puts /g/web "map(select(.t < $ready_t)) | length")"
check_eq "the cache agrees: ready" "200 true" "$(ready_now "$image")"
check "the hold was logged as released" log_has 'event=gate_released app=/g/web'
check "/metrics: /g/web was held for a while" sh -c "curl -fsS http://127.0.0.1:$SCALER_PORT/metrics | awk '/^microscale_scaler_gate_held_seconds_total\\{app=\"\\/g\\/web\"\\}/ {exit !(\$2 > 0)}'"
check "/metrics: /g/never is held now" sh -c "curl -fsS http://127.0.0.1:$SCALER_PORT/metrics | grep -q '^microscale_scaler_gate_held{app=\"/g/never\"} 1'"
check_eq "/g/never was never PUT" 0 "$(puts /g/never length)"
check_eq "/status: /g/never's gate holds it" "gated true" \
	"$(scaler_get /status | jq -r '.apps[1] | "\(.decision.why | if test("not ready|error|answered|checking") then "gated" else . end) \(.gate.held)"')"

upstream_stop
rm -rf "$T/out"
check "upstream stopped: $image still pulls from the cache" cache_copy "$image" "dir:$T/out"
scaler_stop
check_eq "SIGTERM exits 0" 0 "$?"
