# The scaler's command line: -n, config errors, --help, --dry-run, /metrics, /status.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"

cat >"$T/ok.json" <<'EOF'
{"marathon": {"url": "http://127.0.0.1:8080", "username": "", "password": "", "token_file": "",
              "force": false, "timeout_ms": 5000},
 "caches": ["http://127.0.0.1:5000"], "capacity": 10, "interval_ms": 100,
 "listen": "127.0.0.1:9101",
 "apps": [
   {"id": "/demo/priority1", "priority": 1, "min": 1, "max": 10,
    "demand": {"type": "random", "seed": 42, "step": 2}},
   {"id": "/demo/priority2", "priority": 2, "min": 0, "max": 10, "demand": {"type": "remainder"}},
   {"id": "/web", "priority": 1, "min": 1, "max": 20, "max_delta": 5, "down_cooldown_ms": 2000,
    "demand": {"type": "http", "url": "http://127.0.0.1:9000/queue", "json_pointer": "/depth",
               "per_instance": 50}}]}
EOF
check_eq "-n on the issue's example prints configuration OK" "configuration OK" \
	"$("$SCALER_BIN" -n -c "$T/ok.json" 2>&1)"
sed 's/"capacity": 10/"capacity": 10, "capcity": 3/' "$T/ok.json" >"$T/bad.json"
out=$("$SCALER_BIN" -n -c "$T/bad.json" 2>&1)
check_eq "an unknown key exits 1" 1 "$?"
check_eq "... naming the file and the key" "microscale-scaler: $T/bad.json: capcity: unknown key" "$out"
sed 's/"per_instance": 50/"per_instance": 0/' "$T/ok.json" >"$T/bad.json"
check_eq "a bad demand setting names its key" \
	"microscale-scaler: $T/bad.json: apps[2].demand.per_instance: must be between 1e-09 and 1e+15" \
	"$("$SCALER_BIN" -n -c "$T/bad.json" 2>&1)"
check_eq "a syntax error names the line" "microscale-scaler: $T/ok.json.x:1:1:" \
	"$(echo '}' >"$T/ok.json.x" && "$SCALER_BIN" -n -c "$T/ok.json.x" 2>&1 | cut -d' ' -f1-2)"
"$SCALER_BIN" --bogus >/dev/null 2>&1
check_eq "an unknown flag exits 2" 2 "$?"
check "--help prints the usage" sh -c "'$SCALER_BIN' --help | grep -q -- --dry-run"
check_eq "--log-level is checked" \
	"microscale-scaler: $T/ok.json: --log-level: expected debug, info, warn or error" \
	"$("$SCALER_BIN" -n -c "$T/ok.json" --log-level loud 2>&1)"

# --dry-run against the emulator: decides and logs, sends no PUT; /metrics and /status answer.
cat >"$T/apps.json" <<'EOF'
[{"id": "/dry/a", "instances": 1}, {"id": "/dry/b", "instances": 1}]
EOF
marathon_start --deploy-seconds 0.2 --apps "$T/apps.json" || exit 1
scaler_port
cat >"$T/dry.json" <<EOF
{"marathon": {"url": "$MARATHON_URL"}, "capacity": 6, "interval_ms": 50,
 "listen": "127.0.0.1:$SCALER_PORT",
 "apps": [{"id": "/dry/a", "demand": {"type": "static", "instances": 4}},
          {"id": "/dry/b", "priority": 2, "demand": {"type": "remainder"}}]}
EOF
scaler_start "$T/dry.json" --dry-run || exit 1
check "dry run: the decision is logged" wait_for 5 log_has 'event=decision app=/dry/a demand=4 want=4 from=1 to=4 action=up .*sent=no dry_run=1'
check "dry run: /dry/b's decision too" wait_for 5 log_has 'event=decision app=/dry/b demand=rest .*to=2 action=up'
check_eq "dry run: the decision is logged once, not every tick" 1 \
	"$(grep -c 'event=decision app=/dry/a' "$SCALER_LOG")"
check_eq "dry run: no PUT reached Marathon" 0 "$(marathon_requests '[.[] | select(.method == "PUT")] | length')"
check "dry run: both apps were read" test "$(marathon_requests '[.[] | select(.method == "GET")] | length')" -ge 2
metrics=$(scaler_get /metrics)
check "/metrics: desired per app" grep -q '^microscale_scaler_desired{app="/dry/a"} 4$' <<<"$metrics"
check "/metrics: requested per app" grep -q '^microscale_scaler_requested{app="/dry/a"} 1$' <<<"$metrics"
check "/metrics: running per app" grep -q '^microscale_scaler_running{app="/dry/b"} 1$' <<<"$metrics"
check "/metrics: gate held seconds" grep -q '^microscale_scaler_gate_held_seconds{app="/dry/a"} 0$' <<<"$metrics"
check "/metrics: Marathon calls by status" grep -q '^microscale_scaler_marathon_calls_total{method="GET",status="200"} [1-9]' <<<"$metrics"
check "/metrics: Marathon latency" grep -q '^microscale_scaler_marathon_call_seconds_count{method="GET"} [1-9]' <<<"$metrics"
status=$(scaler_get /status)
check_eq "/status: JSON per app" "/dry/a 4 4 1 known up" \
	"$(jq -r '.apps[0] | "\(.id) \(.desired) \(.target) \(.requested) \(.marathon.state) \(.decision.action)"' <<<"$status")"
check_eq "/status: dry run and Marathon health" "true ok" "$(jq -r '"\(.dry_run) \(.marathon.health)"' <<<"$status")"
check_eq "unknown path is 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SCALER_PORT/nope")"
scaler_stop
check_eq "SIGTERM exits 0" 0 "$?"
check "the log never shows a secret or an error" sh -c "! grep -qE 'level=error|Authorization' '$SCALER_LOG'"
