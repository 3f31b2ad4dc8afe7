#!/bin/bash
# Marathon failing. Scenario:
#   - Marathon is down when the scaler starts (connections refused): the scaler backs off (the
#     gaps between its attempts grow, capped at backoff_max_ms, no hot loop, no crash); once
#     Marathon comes up it reads the apps and scales them;
#   - the next 6 calls are answered 500: the scaler backs off (growing gaps), then recovers and
#     reaches the new demand.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"

cat >"$T/apps.json" <<'EOF2'
[{"id": "/b/a", "instances": 1}]
EOF2
marathon_start --deploy-seconds 0.2 --apps "$T/apps.json" || exit 1
demand_start || exit 1
demand_set a 3

# A TCP forwarder on a port of our choosing stands for Marathon's address: until it runs,
# connections there are refused.
cat >"$T/fwd.py" <<'EOF2'
import socket, sys, threading
lp, tp = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", lp))
srv.listen(64)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", tp))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
EOF2
FWD_PORT=$(free_port)
scaler_port
cat >"$T/scaler.json" <<EOF2
{"marathon": {"url": "http://127.0.0.1:$FWD_PORT", "timeout_ms": 1000, "backoff_max_ms": 800},
 "capacity": 10, "interval_ms": 50, "listen": "127.0.0.1:$SCALER_PORT",
 "apps": [{"id": "/b/a", "demand": {"type": "http", "url": "$DEMAND_URL/a"}}]}
EOF2
scaler_start "$T/scaler.json" || exit 1

failures() { grep -c 'event=marathon_call_failed' "$SCALER_LOG"; }
check "Marathon down: the scaler keeps trying" wait_for 10 sh -c "[ \$(grep -c event=marathon_call_failed '$SCALER_LOG') -ge 6 ]"
check "... and stays up" kill -0 "$SCALER_PID"
# the gaps between attempts, from the log's timestamps
gaps=$(grep 'event=marathon_call_failed' "$SCALER_LOG" | sed 's/^ts=\([^ ]*\).*/\1/' |
	while read -r ts; do date -d "$ts" +%s.%N; done |
	awk 'NR > 1 {printf "%.3f ", $1 - p} {p = $1}')
echo "# gaps between refused attempts (s): $gaps"
check "the first gaps grow (backoff)" awk -v g="$gaps" 'BEGIN {split(g, a, " "); exit !(a[3] > a[1] && a[1] >= 0.05)}'
check "no gap under 50 ms (no hot loop)" awk -v g="$gaps" 'BEGIN {n = split(g, a, " "); for (i = 1; i <= n; i++) if (a[i] < 0.05) exit 1}'
check "gaps capped at backoff_max_ms (0.8 s, plus a tick)" awk -v g="$gaps" 'BEGIN {n = split(g, a, " "); for (i = 1; i <= n; i++) if (a[i] > 0.95) exit 1}'
check_eq "/status says so" "backoff" "$(scaler_get /status | jq -r '.marathon.health | sub("failing"; "backoff")')"
check_eq "nothing reached Marathon yet" 0 "$(marathon_requests length)"

spawn "$T/fwd.log" python3 "$T/fwd.py" "$FWD_PORT" "$MARATHON_PORT"
wait_port "$FWD_PORT" "$SPAWNED"
at() { [ "$(app_field /b/a '"\(.instances) \(.tasksRunning)"')" = "$1 $1" ]; }
check "Marathon up: the scaler reads the app and scales it to 3" wait_for 10 at 3
check "it logged the recovery" log_has 'event=marathon_recovered'
check_eq "it read before it wrote" GET "$(marathon_requests '.[0].method' | tr -d '"')"

# --- injected 500s ----------------------------------------------------------------------------
marathon_wait_deployments 5
mark=$(date +%s.%N)
marathon_fail 6 500
demand_set a 7
check "after 6 failures the scaler recovers and reaches 7" wait_for 20 at 7
fails=$(marathon_requests "[.[] | select(.t > $mark and .status == 500)]")
check_eq "the 6 failures were seen" 6 "$(jq length <<<"$fails")"
gaps=$(jq -r '[.[].t] | [range(1; length) as $i | .[$i] - .[$i - 1]] | map(. * 1000 | floor / 1000) | join(" ")' <<<"$fails")
echo "# gaps between the 500s (s): $gaps"
# A read that a PUT replaced may have been answered (and failed) on Marathon's side without the
# scaler seeing it: so the first gap may be short; every later one is a backoff.
check "the gaps grow, none under 50 ms after the first" awk -v g="$gaps" 'BEGIN {n = split(g, a, " "); for (i = 2; i <= n; i++) if (a[i] < 0.05) exit 1; exit !(a[n] > a[2])}'
check "after the 500s: one PUT to 7 accepted" test "$(puts /b/a 'map(select(.body.instances == 7 and .status == 200)) | length')" -eq 1
check "logged the backoff" log_has 'event=marathon_backoff failures=[3-9]'
check "still alive" kill -0 "$SCALER_PID"
scaler_stop
check_eq "SIGTERM exits 0" 0 "$?"
