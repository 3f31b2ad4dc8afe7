#!/bin/bash
# The Marathon emulator itself (tests/lib/marathon_emu.py): the scaler tests trust that it answers
# as Marathon's documented REST API does (status codes, messages, JSON shapes, deployments that
# take time and lock their app) and that its request log and state history are complete.
# Checked here with curl and jq.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"

LOCKED="App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'."
cat >"$T/apps.json" <<'EOF'
[{"id": "/demo/priority1", "instances": 1,
  "container": {"type": "DOCKER", "docker": {"image": "127.0.0.1:5000/library/x:1"}}},
 {"id": "demo/priority2", "instances": 2, "cpus": 0.5}]
EOF
marathon_start --deploy-seconds 2 --apps "$T/apps.json" ||
	{ echo "setup: marathon_start failed" >&2; exit 1; }
echo "# emulator at $MARATHON_URL"

api() { marathon_api "$@"; }
body() { jq -c "$1" "$T/m.body"; }
jr() { jq -r "$1" "$T/m.body"; }
app() { marathon_app "$1" | jq -r "$2"; }

# --- ping, info, list, get -------------------------------------------------------------------
check_eq "GET /ping is 200" 200 "$(api GET /ping)"
check_eq "/ping says pong" pong "$(cat "$T/m.body")"
check "/ping is text/plain" grep -q '^text/plain' <<<"$(marathon_header Content-Type)"
check_eq "GET /v2/info is 200" 200 "$(api GET /v2/info)"
check_eq "info: name marathon, version 1.x, a leader and a frameworkId" "marathon 1 true true" \
	"$(jr '[.name, (.version | split(".")[0]), (.leader | test(":")), (.frameworkId | length > 0)] | join(" ")')"
check_eq "GET /v2/apps is 200" 200 "$(api GET /v2/apps)"
check_eq "the list holds both apps, ids normalised" '["/demo/priority1","/demo/priority2"]' \
	"$(body '[.apps[].id]')"
for p in /v2/apps/demo/priority1 /v2/apps//demo/priority1/ /v2/apps/%2Fdemo%2Fpriority1; do
	check_eq "GET $p is 200" 200 "$(api GET "$p")"
	check_eq "GET $p is /demo/priority1" /demo/priority1 "$(jr .app.id)"
done
check_eq "initial app: instances, running, staged, healthy, no deployment" "1 1 0 0 0" \
	"$(jr '.app | "\(.instances) \(.tasksRunning) \(.tasksStaged) \(.tasksHealthy) \(.deployments | length)"')"
check_eq "initial app keeps its image" 127.0.0.1:5000/library/x:1 "$(jr .app.container.docker.image)"
check_eq "defaults filled in (mem, versionInfo)" "128 true" \
	"$(jr '.app | "\(.mem) \(.versionInfo.lastScalingAt != null)"')"
api GET /v2/apps/demo/priority2 >/dev/null
check_eq "given fields kept (cpus)" 0.5 "$(jr .app.cpus)"
check_eq "GET unknown app is 404" 404 "$(api GET /v2/apps/nope/x)"
check_eq "404 message" "App '/nope/x' does not exist" "$(jr .message)"

# --- PUT scale: 200, deployment id, staged then running -------------------------------------
check_eq "PUT instances=3 is 200" 200 "$(api PUT /v2/apps/demo/priority1 '{"instances":3}')"
dep=$(jr .deploymentId)
check "PUT answers a deploymentId and a version" test -n "$dep" -a "$(jr .version)" != null
check_eq "Marathon-Deployment-Id header = deploymentId" "$dep" \
	"$(marathon_header Marathon-Deployment-Id)"
api GET /v2/apps/demo/priority1 >/dev/null
check_eq "during the deployment: 3 instances, 1 running, 2 staged, locked by it" "3 1 2 $dep" \
	"$(jr '.app | "\(.instances) \(.tasksRunning) \(.tasksStaged) \(.deployments[0].id)"')"
check_eq "version changed with the scale" "$(jr .app.version)" "$(jr .app.versionInfo.lastScalingAt)"
api GET /v2/apps/demo/priority1/tasks >/dev/null
check_eq "tasks: 1 TASK_RUNNING, 2 TASK_STAGING" "TASK_RUNNING TASK_STAGING TASK_STAGING" \
	"$(jr '[.tasks[].state] | sort | join(" ")')"
check_eq "tasks carry appId, ids and startedAt only when running" "true 3 1" \
	"$(jr '"\(all(.tasks[]; .appId == "/demo/priority1")) \([.tasks[].id] | unique | length) \([.tasks[] | select(.startedAt)] | length)"')"
check_eq "GET /v2/deployments is 200" 200 "$(api GET /v2/deployments)"
check_eq "the deployment is listed with its app and action" \
	"$dep /demo/priority1 ScaleApplication 1 1" \
	"$(jr '.[0] | "\(.id) \(.affectedApps[0]) \(.currentActions[0].action) \(.currentStep) \(.totalSteps)"')"
check_eq "PUT during the deployment is 409" 409 "$(api PUT /v2/apps/demo/priority1 '{"instances":4}')"
check_eq "409 message is Marathon's" "$LOCKED" "$(jr .message)"
check_eq "409 names the deployment" "[{\"id\":\"$dep\"}]" "$(body .deployments)"
check_eq "the refused PUT changed nothing" 3 "$(app /demo/priority1 .instances)"
check "3 running after the deployment" marathon_wait_instances /demo/priority1 3 5
check_eq "deployment over: nothing staged, not locked, none listed" "0 0 0" \
	"$(app /demo/priority1 '"\(.tasksStaged) \(.deployments | length)"') $(api GET /v2/deployments >/dev/null && jr length)"
check_eq "a PUT that changes nothing is 200" 200 "$(api PUT /v2/apps/demo/priority1 '{"instances":3}')"
check_eq "... and leaves the app unlocked" 0 "$(app /demo/priority1 '.deployments | length')"

# --- force=true replaces a running deployment ------------------------------------------------
api PUT /v2/apps/demo/priority1 '{"instances":5}' >/dev/null
dep1=$(jr .deploymentId)
check_eq "PUT ?force=true during a deployment is 200" 200 \
	"$(api PUT '/v2/apps/demo/priority1?force=true' '{"instances":2}')"
dep2=$(jr .deploymentId)
check "force gives a new deployment id" test -n "$dep2" -a "$dep2" != "$dep1"
api GET /v2/deployments >/dev/null
check_eq "only the forced deployment is listed" "[\"$dep2\"]" "$(body '[.[].id]')"
check_eq "scale-down kills staged tasks first, at once" "2 2 0" \
	"$(app /demo/priority1 '"\(.instances) \(.tasksRunning) \(.tasksStaged)"')"
check "the forced deployment ends" marathon_wait_deployments 5
check_eq "... with 2 running" "2 0" "$(app /demo/priority1 '"\(.tasksRunning) \(.tasksStaged)"')"

# --- a config change restarts: old tasks run until the new ones do ---------------------------
api PUT /v2/apps/demo/priority1 '{"container":{"type":"DOCKER","docker":{"image":"127.0.0.1:5000/library/x:2"}}}' >/dev/null
check_eq "image change: old tasks run while the new stage" "2 2 2 RestartApplication" \
	"$(app /demo/priority1 '"\(.instances) \(.tasksRunning) \(.tasksStaged)"') $(api GET /v2/deployments >/dev/null && jr '.[0].currentActions[0].action')"
check "image change done" marathon_wait_deployments 5
check_eq "... with only new tasks" "0 127.0.0.1:5000/library/x:2" \
	"$(app /demo/priority1 '"\(.tasksStaged) \(.container.docker.image)"')"

# --- PUT of an unknown id creates it ---------------------------------------------------------
check_eq "PUT of an unknown app is 201" 201 "$(api PUT /v2/apps/new/app '{"instances":2,"mem":64}')"
check_eq "201 has a Location and a deployment id" "/v2/apps/new/app $(jr .deploymentId)" \
	"$(marathon_header Location) $(marathon_header Marathon-Deployment-Id)"
check_eq "the new app stages its tasks" "2 0 2 64" \
	"$(app /new/app '"\(.instances) \(.tasksRunning) \(.tasksStaged) \(.mem)"')"
check "the new app runs" marathon_wait_instances /new/app 2 5

# --- bad bodies: 400 Invalid JSON (syntax, types), 422 Object is not valid (range) ------------
check_eq "PUT with a body that is not JSON is 400" 400 "$(api PUT /v2/apps/demo/priority1 'instances=3')"
check_eq "... Invalid JSON with details" "Invalid JSON 1" "$(jr '"\(.message) \(.details | length)"')"
check_eq "PUT instances=-1 is 422" 422 "$(api PUT /v2/apps/demo/priority1 '{"instances":-1}')"
check_eq "... Object is not valid, at /instances" "Object is not valid /instances true" \
	"$(jr '"\(.message) \(.details[0].path) \(.details[0].errors | length > 0)"')"
check_eq 'PUT instances="x" is 400' 400 "$(api PUT /v2/apps/demo/priority1 '{"instances":"x"}')"
check_eq "... at /instances" "/instances error.expected.jsnumber" "$(jr '"\(.details[0].path) \(.details[0].errors[0])"')"
check_eq "PUT instances=1.5 is 400" 400 "$(api PUT /v2/apps/demo/priority1 '{"instances":1.5}')"
check_eq "PUT of a JSON array is 400" 400 "$(api PUT /v2/apps/demo/priority1 '[1]')"
check_eq "bad bodies changed nothing" "2 0" "$(app /demo/priority1 '"\(.instances) \(.deployments | length)"')"

# --- DELETE /v2/deployments: rollback, force, unknown ----------------------------------------
api PUT /v2/apps/demo/priority2 '{"instances":4}' >/dev/null
dep=$(jr .deploymentId)
check_eq "DELETE a deployment is 200" 200 "$(api DELETE "/v2/deployments/$dep")"
rb=$(jr .deploymentId)
check "... answering a rollback deployment" test -n "$rb" -a "$rb" != "$dep" -a "$(jr .version)" != null
api GET /v2/deployments >/dev/null
check_eq "only the rollback is listed" "[\"$rb\"]" "$(body '[.[].id]')"
check_eq "the rollback goes back to 2 instances" "2 2 0" \
	"$(app /demo/priority2 '"\(.instances) \(.tasksRunning) \(.tasksStaged)"')"
check "rollback finishes" marathon_wait_deployments 5
api PUT /v2/apps/demo/priority2 '{"instances":3}' >/dev/null
dep=$(jr .deploymentId)
check_eq "DELETE ?force=true is 202" 202 "$(api DELETE "/v2/deployments/$dep?force=true")"
check_eq "... with no body" 0 "$(wc -c <"$T/m.body")"
check_eq "... and no deployment left, app unlocked" "0 0" \
	"$(api GET /v2/deployments >/dev/null; jr length) $(app /demo/priority2 '.deployments | length')"
check_eq "DELETE an unknown deployment is 404" 404 "$(api DELETE /v2/deployments/nope)"
check_eq "... with Marathon's message" "DeploymentPlan nope does not exist" "$(jr .message)"
check_eq "POST /v2/deployments is 405" 405 "$(api POST /v2/deployments '{}')"

# --- injected failures, then recovery --------------------------------------------------------
marathon_fail 2 503
check_eq "injected failure 1 is 503" 503 "$(api GET /v2/apps)"
check_eq "... with a JSON message" true "$(jr '.message | length > 0')"
check_eq "injected failure 2 is 503" 503 "$(api PUT /v2/apps/demo/priority1 '{"instances":9}')"
check_eq "then Marathon answers again" 200 "$(api GET /v2/apps)"
check_eq "the failed PUT changed nothing" 2 "$(app /demo/priority1 .instances)"
marathon_fail 1 500
check_eq "injected 500" 500 "$(api GET /ping)"

# --- request log and history -----------------------------------------------------------------
check_eq "request log has the first PUT with its body and status" '{"instances":3} 200' \
	"$(marathon_requests '[.[] | select(.method == "PUT")][0] | "\(.body | tojson) \(.status)"' | jq -r .)"
check_eq "request log keeps the query" force=true \
	"$(marathon_requests '[.[] | select(.query != "")][0].query' | jq -r .)"
check_eq "request log has the injected failures" 3 \
	"$(marathon_requests '[.[] | select(.status >= 500)] | length')"
check_eq "--log file has one line per logged request" "$(marathon_requests length)" \
	"$(wc -l <"$MARATHON_LOG")"
check_eq "history: priority1 peaked at 5 instances" 5 "$(marathon_max_sum /demo/priority1)"
# priority1 peaked at 5 while priority2 had 2; priority2 at 4 while priority1 had 2.
check_eq "history: priority1+priority2 peaked at 7" 7 "$(marathon_max_sum "/demo/priority1 demo/priority2")"
check_eq "history saw 2 tasks staged while 1 ran" true \
	"$(marathon_history 'any(.[]; .apps["/demo/priority1"] == {"instances":3,"tasksRunning":1,"tasksStaged":2})')"
check_eq "history times never go back" true "$(marathon_history '[.[].t] | . == sort')"
curl -fsS -X POST "$MARATHON_URL/_emu/reset" >/dev/null
check_eq "reset clears the request log" 0 "$(marathon_requests length)"
check_eq "reset leaves one snapshot, the current state" "1 2" \
	"$(marathon_history '"\(length) \(.[0].apps["/demo/priority1"].instances)"' | jq -r .)"

# --- constraints are checked --------------------------------------------------------------------
check_eq "an unknown constraint operator is 422" 422 \
	"$(api PUT /v2/apps/demo/priority1 '{"constraints":[["hostname","NEAR"]]}')"
check_eq "... Object is not valid, at /constraints(0)" "Object is not valid /constraints(0)" \
	"$(jr '"\(.message) \(.details[0].path)"')"
check_eq "LIKE without a value is 422" 422 \
	"$(api PUT /v2/apps/demo/priority1 '{"constraints":[["hostname","LIKE"]]}')"
check_eq "LIKE with a broken regular expression is 422" 422 \
	"$(api PUT /v2/apps/demo/priority1 '{"constraints":[["rack","LIKE","r[1"]]}')"
check_eq "constraints that are not a list of lists are 400" 400 \
	"$(api PUT /v2/apps/demo/priority1 '{"constraints":"hostname:UNIQUE"}')"
check_eq "LIKE, UNLIKE, UNIQUE, CLUSTER, MAX_PER, GROUP_BY, IS are taken" 201 \
	"$(api PUT /v2/apps/ev/constrained '{"instances":0,"constraints":[["hostname","LIKE","a.*"],["rack","UNLIKE","r1"],["hostname","UNIQUE"],["rack","CLUSTER"],["rack","MAX_PER","2"],["rack","GROUP_BY"],["zone","IS","z"]]}')"

# --- the event stream: Marathon's names, fields and framing (GET /v2/events) -------------------
# Jetty's EventSourceServlet wants "Accept: text/event-stream" and answers 405 otherwise.
check_eq "/v2/events without Accept: text/event-stream is 405" 405 \
	"$(curl -s -o "$T/m.body" -D "$T/m.hdr" -w '%{http_code}' "$MARATHON_URL/v2/events")"
check "... in text/html, as Jetty's" grep -q '^text/html' <<<"$(marathon_header Content-Type)"
first=$(marathon_events 1)
check_eq "a stream opens with event_stream_attached {remoteAddress, eventType, timestamp}" \
	"event_stream_attached 127.0.0.1 true" \
	"$(jq -r '"\(.eventType) \(.remoteAddress) \(.timestamp | test("^[0-9-]+T[0-9:.]+Z$"))"' <<<"$first")"
marathon_listen all
marathon_listen some 'event_type=deployment_success&event_type=status_update_event'
check_eq "the stream: 200, text/event-stream, no-cache, Connection: close" \
	"200 text/event-stream;charset=utf-8 no-cache close" \
	"$(tr -d '\r' <"$T/events.all.hdr" | awk -F': ' 'NR == 1 { s = $0; sub(/^HTTP\/1.1 /, "", s); sub(/ .*/, "", s) }
		tolower($1) == "content-type" { c = $2 } tolower($1) == "cache-control" { n = $2 }
		tolower($1) == "connection" { k = $2 } END { print s, c, n, k }')"
heard() { [ -n "$(marathon_heard "$1" "$2")" ]; } # NAME JQ_FILTER: some event passes it
check_eq "PUT of a new app is 201" 201 "$(api PUT /v2/apps/ev/app '{"instances":2}')"
dep=$(jr .deploymentId)
check "deployment_success reaches the stream" \
	wait_for 5 heard all "select(.eventType == \"deployment_success\" and .id == \"$dep\")"
ev_tasks=$(api GET /v2/apps/ev/app/tasks >/dev/null && jr '[.tasks[].id] | sort | join(" ")')
check_eq "api_post_event: clientIp, uri, the new definition" "127.0.0.1 /v2/apps/ev/app /ev/app 2" \
	"$(marathon_heard all 'select(.eventType == "api_post_event") | "\(.clientIp) \(.uri) \(.appDefinition.id) \(.appDefinition.instances)"' | jq -r . | tail -1)"
check_eq "deployment_info: plan {id, steps, version} and currentStep" \
	"StartApplication /ev/app StartApplication true" \
	"$(marathon_heard all "select(.eventType == \"deployment_info\" and .plan.id == \"$dep\") | \"\(.plan.steps[0].actions[0].action) \(.plan.steps[0].actions[0].app) \(.currentStep.actions[0].action) \(.plan.version != null)\"" | jq -r .)"
check_eq "deployment_success: its id and plan" "$dep" \
	"$(marathon_heard all 'select(.eventType == "deployment_success") | .plan.id' | jq -r . | tail -1)"
check_eq "status_update_event: each task staged, then running" \
	'[["TASK_STAGING","TASK_RUNNING"]]' \
	"$(marathon_heard all 'select(.eventType == "status_update_event" and .appId == "/ev/app")' |
		jq -sc 'group_by(.taskId) | map([.[].taskStatus]) | unique')"
check_eq "... for the tasks GET /v2/apps/ev/app/tasks lists" "$ev_tasks" \
	"$(marathon_heard all 'select(.appId == "/ev/app") | .taskId // empty' | jq -r . | sort -u | tr '\n' ' ' | sed 's/ $//')"
check_eq "status_update_event has Marathon's fields" \
	'["appId","eventType","host","ipAddresses","message","ports","slaveId","taskId","taskStatus","timestamp","version"]' \
	"$(marathon_heard all 'select(.eventType == "status_update_event") | keys' | head -1)"
check_eq "in order: deployment_info, staged, running, step success, deployment_success" \
	"deployment_info TASK_STAGING TASK_RUNNING deployment_step_success deployment_success" \
	"$(marathon_heard all 'select((.appId // .plan.steps[0].actions[0].app) == "/ev/app") | if .taskStatus then .taskStatus else .eventType end' | jq -r . | uniq | tr '\n' ' ' | sed 's/ $//')"
check_eq "?event_type= filters (repeatable)" "deployment_success status_update_event" \
	"$(marathon_heard some .eventType | jq -r . | sort -u | tr '\n' ' ' | sed 's/ $//')"
check "every event is framed as Jetty does: event: NAME CRLF data: one JSON line CRLF CRLF" \
	python3 -c 'import json, sys
raw = open(sys.argv[1], "rb").read().decode()
frames = raw.split("\r\n\r\n")
assert frames[-1] == "" and len(frames) > 5, len(frames)
for f in frames[:-1]:
    name, data = f.split("\r\n")
    assert name.startswith("event: ") and data.startswith("data: "), f
    assert json.loads(data[6:])["eventType"] == name[7:], f' "$T/events.all"
check_eq "a scale-down is 200" 200 "$(api PUT /v2/apps/ev/app '{"instances":1}')"
check "... its surplus task is TASK_KILLED on the stream" \
	wait_for 5 heard all 'select(.taskStatus == "TASK_KILLED" and .appId == "/ev/app")'

# --- all tasks, the launch queue ---------------------------------------------------------------
check "the scale-down ends" marathon_wait_deployments 5
check_eq "GET /v2/tasks is 200" 200 "$(api GET /v2/tasks)"
check_eq "... with every app's tasks" "1 true" \
	"$(jr '"\([.tasks[] | select(.appId == "/ev/app")] | length) \(any(.tasks[]; .appId == "/demo/priority1"))"')"
check_eq "... each with id, appId, host, slaveId, state, stagedAt, startedAt, ports, version, ipAddresses" true \
	"$(jr '[.tasks[] | select(.state == "TASK_RUNNING")] | all(has("id", "appId", "host", "slaveId", "state", "stagedAt", "startedAt", "ports", "version", "ipAddresses"))')"
check_eq "GET /v2/tasks?status=staging: the one left staged by a forced DELETE" \
	"1 TASK_STAGING /demo/priority2" \
	"$(api GET '/v2/tasks?status=staging' >/dev/null && jr '"\(.tasks | length) \(.tasks[0].state) \(.tasks[0].appId)"')"
check_eq "GET /v2/queue is 200, empty without --mesos" '200 []' \
	"$(api GET /v2/queue) $(body .queue)"

# --- DELETE /v2/apps/ID: a deployment that kills every task and removes the app ---------------
api PUT /v2/apps/ev/app '{"instances":3}' >/dev/null
dep=$(jr .deploymentId)
check_eq "DELETE an app while it deploys is 409" 409 "$(api DELETE /v2/apps/ev/app)"
check_eq "... with Marathon's message" "$LOCKED" "$(jr .message)"
check_eq "DELETE ?force=true is 200" 200 "$(api DELETE '/v2/apps/ev/app?force=true')"
del=$(jr .deploymentId)
check "... answering a deploymentId and a version" test -n "$del" -a "$(jr .version)" != null
check_eq "... also in Marathon-Deployment-Id" "$del" "$(marathon_header Marathon-Deployment-Id)"
check_eq "... cancelling the running deployment (deployment_failed)" "$dep" \
	"$(marathon_heard all 'select(.eventType == "deployment_failed") | .plan.id' | jq -r . | tail -1)"
check_eq "while it runs the app is listed, locked by it" "$del" "$(app /ev/app '.deployments[0].id')"
gone() { [ "$(api GET "/v2/apps$1")" = 404 ]; }
check "then the app is gone" wait_for 5 gone /ev/app
check_eq "... its deployment was StopApplication and succeeded" "StopApplication" \
	"$(marathon_heard all "select(.eventType == \"deployment_success\" and .id == \"$del\") | .plan.steps[0].actions[0].action" | jq -r .)"
check "... app_terminated_event names it" heard all 'select(.eventType == "app_terminated_event" and .appId == "/ev/app")'
check_eq "... every task it ever staged was killed" \
	"$(marathon_heard all 'select(.taskStatus == "TASK_STAGING" and .appId == "/ev/app") | .taskId' | sort)" \
	"$(marathon_heard all 'select(.taskStatus == "TASK_KILLED" and .appId == "/ev/app") | .taskId' | sort)"
check_eq "api_post_event for each accepted PUT and DELETE of it" 4 \
	"$(marathon_heard all 'select(.eventType == "api_post_event" and .uri == "/v2/apps/ev/app")' | wc -l)"
check_eq "DELETE it again is 404" 404 "$(api DELETE /v2/apps/ev/app)"
check_eq "... App '/ev/app' does not exist" "App '/ev/app' does not exist" "$(jr .message)"
api PUT /v2/apps/ev/two '{"instances":1}' >/dev/null
check "an app that is not deploying" marathon_wait_deployments 5
check_eq "... DELETE without force is 200" 200 "$(api DELETE /v2/apps/ev/two)"
check "... and it goes" wait_for 5 gone /ev/two
marathon_fail 1 503
check_eq "an injected failure applies to /v2/events too" 503 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: text/event-stream' "$MARATHON_URL/v2/events")"
check_eq "/v2/events requests are logged (405, 200s, 503)" "200 405 503" \
	"$(marathon_requests '[.[] | select(.path == "/v2/events") | .status] | unique | map(tostring) | join(" ")' | jq -r .)"
check_eq "/_emu/tasks lists the tasks with their agent" "true" \
	"$(marathon_tasks 'all(.[]; .agent == "emu-agent-0" and .phases == {})')"

# --- SIGTERM exits 0 ---------------------------------------------------------------------------
kill -TERM "$MARATHON_PID"
wait "$MARATHON_PID"
check_eq "SIGTERM: exit status 0" 0 "$?"

# --- HTTP Basic auth -------------------------------------------------------------------------
marathon_start --deploy-seconds 0.5 --basic 'ops:s3cr:et' --apps "$T/apps.json" ||
	{ echo "setup: marathon_start --basic failed" >&2; exit 1; }
code=$(curl -s -o "$T/m.body" -D "$T/m.hdr" -w '%{http_code}' "$MARATHON_URL/v2/apps")
check_eq "--basic: no credentials is 401" 401 "$code"
check_eq "... Invalid username or password." "Invalid username or password." "$(jr .message)"
check "... with a Basic challenge" grep -q '^Basic ' <<<"$(marathon_header WWW-Authenticate)"
check_eq "--basic: wrong password is 401" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' -u ops:wrong "$MARATHON_URL/v2/apps")"
check_eq "--basic: /ping without credentials is 401" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' "$MARATHON_URL/ping")"
check_eq "--basic: the token form is refused" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: token=s3cr:et' "$MARATHON_URL/v2/apps")"
check_eq "--basic: right credentials is 200" 200 "$(api GET /v2/apps/demo/priority1)"
check_eq "--basic: right credentials, PUT is 200" 200 "$(api PUT /v2/apps/demo/priority1 '{"instances":2}')"
check_eq "--basic: /_emu needs none" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' "$MARATHON_URL/_emu/history")"
check_eq "--basic: 401s are logged" "401 401 401 401 200 200" \
	"$(marathon_requests '[.[].status] | map(tostring) | join(" ")' | jq -r .)"
check_eq "--basic: /v2/events without credentials is 401" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: text/event-stream' "$MARATHON_URL/v2/events")"
check_eq "--basic: /v2/events with them streams" event_stream_attached \
	"$(marathon_events 1 | jq -r .eventType)"
marathon_stop
check_eq "--basic: SIGTERM exit 0" 0 "$?"

# --- DC/OS token auth --------------------------------------------------------------------------
marathon_start --token tok-123 ||
	{ echo "setup: marathon_start --token failed" >&2; exit 1; }
check_eq "--token: no header is 401" 401 \
	"$(curl -s -o "$T/m.body" -w '%{http_code}' "$MARATHON_URL/v2/apps")"
check_eq "... Invalid username or password." "Invalid username or password." "$(jr .message)"
check_eq "--token: wrong token is 401" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: token=nope' "$MARATHON_URL/v2/apps")"
check_eq "--token: right token is 200" 200 "$(api GET /v2/apps)"
check_eq "--token: no apps without --apps" '[]' "$(body .apps)"
check_eq "--token: /ping with the token is 200" 200 "$(api GET /ping)"

# --- keep-alive: several requests on one connection --------------------------------------------
n=$(curl -s -H 'Authorization: token=tok-123' -o /dev/null -o /dev/null -o /dev/null \
	-w '%{num_connects}\n' "$MARATHON_URL/ping" "$MARATHON_URL/v2/apps" "$MARATHON_URL/v2/info" |
	awk '{ n += $1 } END { print n }')
check_eq "three requests reuse one connection" 1 "$n"
marathon_stop
check_eq "--token: SIGTERM exit 0" 0 "$?"

# --- the stream's heartbeat, and a subscriber that stops reading -------------------------------
# Jetty writes a bare CRLF every heartbeat (10 s; 0.2 s here). A subscriber that reads nothing
# (a 4 KiB receive buffer) falls behind once the socket is full; past --events-queue events it is
# dropped, as Marathon drops one past event_stream_max_outstanding_messages, and no request waits
# on it meanwhile.
marathon_start --deploy-seconds 0.05 --events-heartbeat 0.2 --events-queue 64 ||
	{ echo "setup: marathon_start --events-heartbeat failed" >&2; exit 1; }
marathon_listen hb
blank_lines() { [ "$(grep -c $'^\r$' "$T/events.hb")" -ge "$1" ]; }
check "heartbeats: bare CRLF lines between events" wait_for 3 blank_lines 4
cat >"$T/slowsub.py" <<'EOF2'
import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /v2/events HTTP/1.1\r\nHost: emu\r\nAccept: text/event-stream\r\n\r\n")
print("connected", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
s.settimeout(10)
try:
    while s.recv(1 << 16):
        pass
    print("eof", flush=True)
except OSError as e:
    print("error", e, flush=True)
EOF2
spawn "$T/slowsub.log" python3 "$T/slowsub.py" "$MARATHON_PORT" "$T/slowsub.drain"
attached() { [ "$(marathon_heard hb 'select(.eventType == "event_stream_attached")' | wc -l)" -ge "$1" ]; }
check "a subscriber that never reads is attached" wait_for 5 attached 2
marathon_listen reader
head -c 262144 /dev/zero | tr '\0' x | jq -Rc '{instances: 1, labels: {big: .}}' >"$T/big.json"
check_eq "an app with a 256 KiB label is 201" 201 "$(api PUT /v2/apps/slow/app "@$T/big.json")"
below() { jq -en "$1 < $2" >/dev/null; } # VALUE LIMIT
slowest=0
for i in $(seq 1 60); do
	t=$(curl -s -o /dev/null -w '%{time_total}' -X PUT -d "{\"instances\":$((i % 2 + 1))}" \
		"$MARATHON_URL/v2/apps/slow/app?force=true")
	slowest=$(jq -n "[$slowest, $t] | max")
done
check "60 PUTs, each 256 KiB of events, none slowed by the lagging subscriber (slowest $slowest s)" \
	below "$slowest" 0.5
check "the lagging subscriber is dropped: event_stream_detached" \
	wait_for 5 heard reader 'select(.eventType == "event_stream_detached")'
check "... logged" grep -q 'event stream of 127.0.0.1 dropped: more than 64 events behind' "$T/marathon.out"
touch "$T/slowsub.drain"
check "... and its connection closed after what it was sent" wait_for 15 grep -q '^eof$' "$T/slowsub.log"
check_eq "the subscriber that reads got every api_post_event" 61 \
	"$(marathon_heard reader 'select(.eventType == "api_post_event")' | wc -l)"
marathon_stop
check_eq "SIGTERM with subscribers attached: exit 0" 0 "$?"

# --- --listen, --no-events, flags that do not go together -----------------------------------
port=$(free_port)
marathon_start --listen "127.0.0.1:$port" --no-events ||
	{ echo "setup: marathon_start --listen failed" >&2; exit 1; }
check_eq "--listen: the emulator listens on that port" "$port" "$MARATHON_PORT"
check_eq "... and /v2/info names it the leader" "127.0.0.1:$port" "$(api GET /v2/info >/dev/null && jr .leader)"
check_eq "--no-events: /v2/events is 404" 404 \
	"$(curl -s -o "$T/m.body" -w '%{http_code}' -H 'Accept: text/event-stream' "$MARATHON_URL/v2/events")"
check_eq "... with a JSON message" "URI not found: /v2/events" "$(jr .message)"
check_eq "--no-events: the API answers as before" 201 "$(api PUT /v2/apps/x '{"instances":1}')"
marathon_stop
# --mesos with no master to ask: no agents, so every instance waits in the launch queue.
marathon_start --deploy-seconds 0.05 --mesos http://127.0.0.1:9 --docker-host "unix://$T/none.sock" \
	--apps "$T/apps.json" || { echo "setup: marathon_start --mesos failed" >&2; exit 1; }
check_eq "--mesos, no agents: --apps instances wait in /v2/queue" "/demo/priority1 1 true /demo/priority2 2 true" \
	"$(api GET /v2/queue >/dev/null && jr '[.queue[] | "\(.app.id) \(.count) \(.delay.overdue)"] | join(" ")')"
check_eq "... none staged or running, no deployment" "0 0 0" \
	"$(app /demo/priority2 '"\(.tasksRunning) \(.tasksStaged) \(.deployments | length)"')"
check "... the unreachable master is logged" wait_for 5 grep -q 'master: unreachable' "$T/marathon.out"
check_eq "a scale-up is 200 and its deployment runs on, waiting for room" "200 1 3" \
	"$(api PUT /v2/apps/demo/priority2 '{"instances":3}') $(app /demo/priority2 '.deployments | length') $(api GET /v2/queue >/dev/null && jr '.queue[] | select(.app.id == "/demo/priority2") | .count')"
check_eq "... the master's failures were logged once" 1 "$(grep -c 'master: unreachable' "$T/marathon.out")"
check_eq "/_emu/agents: none" '[]' "$(curl -fsS "$MARATHON_URL/_emu/agents")"
marathon_stop
check_eq "--mesos: SIGTERM exit 0" 0 "$?"
emu() { python3 "$MS_ROOT/tests/lib/marathon_emu.py" --port-file "$T/never.port" "$@" 2>/dev/null; }
check_eq "--mesos without --docker-host: exit 2" 2 "$(emu --mesos http://127.0.0.1:9; echo $?)"
check_eq "--mesos with --cache: exit 2" 2 \
	"$(emu --mesos http://127.0.0.1:9 --docker-host unix:///x --cache http://127.0.0.1:9; echo $?)"

# --- pull time (--cache, --link-mbps): staged while the image pulls on its node ----------------
# The "cache" is a file server whose _microscale/v1/ready answer the test writes (any ?ref= gets
# it); at --link-mbps 1 a pull of 1 MB from the remote registry takes 1 s, then the container
# starts (the deploy time, 0.2 s).
#   image not ready, bytes_total 1 MB        -> staged ~1.2 s past the PUT
#   image ready                              -> running after the deploy time (0.2 s)
#   not ready, size unknown, label 1.5 MB    -> staged ~1.7 s
#   app without an image                     -> deploy time, the cache is not asked
#   a cache that never answers (2 s timeout) -> other requests are not held up; label size used
mkdir -p "$T/fakecache/_microscale/v1"
ready_answer() { echo "$1" >"$T/fakecache/ready.tmp" && mv "$T/fakecache/ready.tmp" "$T/fakecache/_microscale/v1/ready"; }
ready_answer '{"ready": false, "bytes_total": 1000000}'
fc_port=$(free_port)
spawn "$T/fakecache.log" python3 -m http.server --bind 127.0.0.1 --directory "$T/fakecache" "$fc_port"
wait_port "$fc_port" "$SPAWNED" || { echo "setup: fake cache did not start" >&2; exit 1; }
cat >"$T/pull-apps.json" <<'EOF2'
[{"id": "/pull/img", "instances": 0, "labels": {"MICROSCALE_IMAGE_BYTES": "1500000"},
  "container": {"type": "DOCKER", "docker": {"image": "library/img:1"}}},
 {"id": "/pull/noimg", "instances": 0}]
EOF2
marathon_start --deploy-seconds 0.2 --cache "http://127.0.0.1:$fc_port" --link-mbps 1 \
	--apps "$T/pull-apps.json" || { echo "setup: marathon_start --cache failed" >&2; exit 1; }
# pull_s ID N: seconds from the last PUT of ID to the first snapshot with N of its tasks running.
pull_s() {
	local put
	put=$(marathon_requests "[.[] | select(.method == \"PUT\" and .path == \"/v2/apps$1\")][-1].t")
	marathon_history "[.[] | select(.t >= $put and (.apps[\"$1\"].tasksRunning // 0) >= $2)][0].t - $put"
}
in_range() { jq -en "$1 >= $2 and $1 < $3" >/dev/null; } # VALUE LOW HIGH
cache_asked() { grep -c 'GET /_microscale/v1/ready?ref=' "$T/fakecache.log"; }

check_eq "--cache: PUT of an app whose image is cold is 200" 200 "$(api PUT /v2/apps/pull/img '{"instances":1}')"
check_eq "... its task stages, the app is locked" "0 1 1" \
	"$(app /pull/img '"\(.tasksRunning) \(.tasksStaged) \(.deployments | length)"')"
check "... then runs" marathon_wait_instances /pull/img 1 5
t=$(pull_s /pull/img 1)
check "... after bytes_total / link rate + deploy time (~1.2 s; took $t s)" in_range "$t" 1.1 2
check "the cache was asked about the image by reference" \
	grep -q 'GET /_microscale/v1/ready?ref=library%2Fimg%3A1 ' "$T/fakecache.log"
ready_answer '{"ready": true, "bytes_total": 1000000}'
api PUT /v2/apps/pull/img '{"instances":2}' >/dev/null
check "image ready in the cache: the new task runs" marathon_wait_instances /pull/img 2 5
t=$(pull_s /pull/img 2)
check "... after the deploy time only (0.2 s; took $t s)" in_range "$t" 0.15 0.8
ready_answer '{"ready": false}'
api PUT /v2/apps/pull/img '{"instances":3}' >/dev/null
check "size unknown to the cache: the task runs" marathon_wait_instances /pull/img 3 5
t=$(pull_s /pull/img 3)
check "... after the label's size / link rate + deploy time (~1.7 s; took $t s)" in_range "$t" 1.6 2.5
asked=$(cache_asked)
api PUT /v2/apps/pull/noimg '{"instances":2}' >/dev/null
check "an app without an image runs" marathon_wait_instances /pull/noimg 2 5
t=$(pull_s /pull/noimg 2)
check "... after the deploy time (took $t s)" in_range "$t" 0.15 0.8
check_eq "... and the cache was not asked" "$asked" "$(cache_asked)"
check_eq "tasks show no internal fields" '[]' \
	"$(api GET /v2/apps/pull/img/tasks >/dev/null && body '[.tasks[] | keys[] | select(. == "old" or . == "starts_at")]')"
marathon_stop

# A cache that accepts connections and never answers.
spawn "$T/silent.log" python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True); time.sleep(120)'
silent_pid=$SPAWNED
wait_for 5 test -s "$T/silent.log"
marathon_start --deploy-seconds 0.2 --cache "http://127.0.0.1:$(cat "$T/silent.log")" --link-mbps 1 \
	--apps "$T/pull-apps.json" || { echo "setup: marathon_start (silent cache) failed" >&2; exit 1; }
api PUT /v2/apps/pull/img '{"instances":1}' >/dev/null
t=$(curl -s -o /dev/null -w '%{time_total}' "$MARATHON_URL/v2/apps")
check "a silent cache does not hold up other requests (GET took $t s)" in_range "$t" 0 0.5
check "the task runs once the cache's answer times out" marathon_wait_instances /pull/img 1 6
t=$(pull_s /pull/img 1)
check "... after the 2 s timeout, covering the label's 1.5 s (took $t s)" in_range "$t" 1.9 3
stop_pid "$silent_pid"
marathon_stop
check_eq "--cache: SIGTERM exit 0" 0 "$?"
