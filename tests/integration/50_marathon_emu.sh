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
marathon_start --deploy-seconds 0.5 --apps "$T/apps.json" ||
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
