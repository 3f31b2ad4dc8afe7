#!/bin/bash
# Credentials. Scenario, against an emulator that wants Basic auth, then one that wants a DC/OS
# token: the right credentials scale the app; wrong ones give a clear error in the log and in
# /status, nothing is PUT, the scaler backs off and stays up; no secret reaches the log.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"

cat >"$T/apps.json" <<'EOF2'
[{"id": "/auth/a", "instances": 1}]
EOF2
# run_case NAME AUTH_JSON WANT(ok|fail)
run_case() {
	local name=$1 auth=$2 want=$3
	SCALER_LOG=$T/scaler.$name.log
	scaler_port
	cat >"$T/scaler.json" <<EOF2
{"marathon": {"url": "$MARATHON_URL", $auth, "backoff_max_ms": 500}, "capacity": 5,
 "interval_ms": 50, "listen": "127.0.0.1:$SCALER_PORT",
 "apps": [{"id": "/auth/a", "demand": {"type": "static", "instances": 3}}]}
EOF2
	curl -fsS -X POST "$MARATHON_URL/_emu/reset" >/dev/null
	scaler_start "$T/scaler.json" || return 1
	if [ "$want" = ok ]; then
		check "$name: the app is scaled to 3" wait_for 10 sh -c "curl -fsS $MARATHON_URL/_emu/apps | jq -e '.apps[0].instances == 3' >/dev/null"
		check_eq "$name: no 401 at all" 0 "$(marathon_requests '[.[] | select(.status == 401)] | length')"
		check "$name: /status says ok" sh -c "curl -fsS http://127.0.0.1:$SCALER_PORT/status | jq -e '.marathon.health == \"ok\"' >/dev/null"
	else
		check "$name: a clear error" wait_for 10 log_has 'level=error .*event=marathon_auth_failed app=/auth/a status=401 message="Invalid username or password." hint="Marathon refused the credentials: check marathon.username and marathon.password, or marathon.token_file"'
		check "$name: /status says auth_failed" sh -c "curl -fsS http://127.0.0.1:$SCALER_PORT/status | jq -e '.marathon.health == \"auth_failed\"' >/dev/null"
		sleep 1 # a window in which to count attempts; nothing waits on it
		n=$(marathon_requests length)
		check "$name: backs off ($n attempts in about 1 s)" test "$n" -le 8
		check_eq "$name: nothing PUT" 0 "$(marathon_requests '[.[] | select(.method == "PUT")] | length')"
		check "$name: still up" kill -0 "$SCALER_PID"
	fi
	check "$name: no secret in the log" sh -c "! grep -qE 's3cret|wr0ng|t0ken-|Authorization' '$SCALER_LOG'"
	scaler_stop
	marathon_api PUT /v2/apps/auth/a '{"instances":1}' >/dev/null
	marathon_wait_deployments 5
}

marathon_start --deploy-seconds 0.1 --basic ops:s3cret --apps "$T/apps.json" || exit 1
run_case basic '"username": "ops", "password": "s3cret"' ok
run_case "wrong password" '"username": "ops", "password": "wr0ng"' fail
run_case "no credentials" '"force": false' fail
marathon_stop

echo "t0ken-good" >"$T/token"
echo "t0ken-bad" >"$T/badtoken"
marathon_start --deploy-seconds 0.1 --token t0ken-good --apps "$T/apps.json" || exit 1
run_case token "\"token_file\": \"$T/token\"" ok
run_case "wrong token" "\"token_file\": \"$T/badtoken\"" fail
marathon_stop
