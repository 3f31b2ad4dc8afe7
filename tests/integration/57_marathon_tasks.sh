#!/bin/bash
# The Marathon emulator with --mesos: placement on a Mesos master's agents and tasks that are real
# containers. The fixture: one real dockerd (tests/lib/clients.sh) with a busybox image imported,
# and a fake Mesos master (written here) serving /master/slaves from $T/slaves.json and keeping
# what the framework reports at /_emu/tasks. Three agents, 127.0.0.1-3 (all loopback, so every
# task's httpd can bind its HOST:PORT0), racks r1-r3, 2 cpus each and 6 host ports of their own,
# all on the one dockerd (--docker-host without {hostname}). Scenarios:
#   /t/web 3 x 0.5 cpu       one per agent; staged then running; containers with labels; httpd
#                            answers on HOST:PORT0; the master sees them; scale-down removes two
#   /t/big 6 x 1 cpu         5 fit beside web's one task, 1 waits in the queue (deployment runs)
#                            until web goes to 0; DELETE removes all of it
#   constraints              LIKE on hostname, UNLIKE on an attribute, UNIQUE on hostname
#   /t/missing               image on a registry that is not there: TASK_FAILED, relaunched after
#                            1 s, then 2 s (backoffFactor 2); /v2/queue shows the delay
#   a container killed       TASK_FAILED, replaced
#   agents                   deactivated: keeps its task, gets no new one; removed: TASK_LOST,
#                            replaced elsewhere, its container removed; a new agent takes the
#                            instance that had no room
#   stop                     the emulator removes its containers; the master hears they are gone
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/clients.sh"
clients_need_root || exit 0

# --- the fixture --------------------------------------------------------------------------------
dockerd_start http://127.0.0.1:9 || { echo "setup: dockerd_start failed" >&2; exit 1; }
if ! { mkdir -p "$T/img/bin" && cp /bin/busybox "$T/img/bin/" && ln -s busybox "$T/img/bin/sh" &&
	tar -C "$T/img" -cf "$T/img.tar" . && $DOCKER import "$T/img.tar" emu/bb:1 >/dev/null; }; then
	echo "setup: docker import failed" >&2
	exit 1
fi

cat >"$T/master.py" <<'EOF'
import json, os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
slaves, tasks, lock = sys.argv[1], {}, threading.Lock()
class Master(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.path == "/master/slaves":
            with open(slaves) as f:
                return self.answer(json.load(f))
        with lock:
            self.answer(sorted(tasks.values(), key=lambda t: t["id"]))
    def do_POST(self):
        t = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with lock:
            tasks[t["id"]] = t
        self.answer({})
    def do_DELETE(self):
        with lock:
            tasks.pop(self.path.rsplit("/", 1)[1], None)
        self.answer({})
srv = ThreadingHTTPServer(("127.0.0.1", 0), Master)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(f"{srv.server_address[1]}\n")
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
EOF
echo '{"slaves": []}' >"$T/slaves.json"
spawn "$T/master.log" python3 "$T/master.py" "$T/slaves.json" "$T/master.port"
wait_for 5 test -s "$T/master.port" || { echo "setup: the fake master did not start" >&2; exit 1; }
MASTER=http://127.0.0.1:$(cat "$T/master.port")

# Host ports nobody listens on, 6 per agent, none shared.
read -ra PORTS <<<"$(python3 -c 'import socket
ss = [socket.socket() for _ in range(24)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
agents_edit() { jq -c "$1" "$T/slaves.json" >"$T/slaves.tmp" && mv "$T/slaves.tmp" "$T/slaves.json"; }
# agent_add N CPUS: agent SN, hostname 127.0.0.N, rack rN, ports PORTS[6(N-1) .. 6N-1].
agent_add() {
	local n=$1 ports="" p
	for p in "${PORTS[@]:$((6 * (n - 1))):6}"; do ports+="$p-$p,"; done
	agents_edit ".slaves += [{id: \"S$n\", hostname: \"127.0.0.$n\", port: 5051, active: true,
		attributes: {rack: \"r$n\"}, resources: {cpus: $2, mem: 1024, disk: 1000,
		ports: \"[${ports%,}]\"}, used_resources: {cpus: 0, mem: 0}}]"
}
for n in 1 2 3; do agent_add "$n" 2; done

marathon_start --deploy-seconds 0.2 --mesos "$MASTER" --docker-host "unix://$T/docker.sock" \
	--docker "$CLIENTS_DOCKER_BIN" || { echo "setup: marathon_start --mesos failed" >&2; exit 1; }
marathon_listen all
echo "# emulator at $MARATHON_URL, master at $MASTER"

api() { marathon_api "$@"; }
jr() { jq -r "$1" "$T/m.body"; }
app() { marathon_app "$1" | jq -r "$2"; }
heard() { [ -n "$(marathon_heard all "$1")" ]; }
# tasks ID JQ: the app's tasks (GET /v2/apps/ID/tasks) through jq -r.
tasks() { api GET "/v2/apps$1/tasks" >/dev/null && jr "$2"; }
hosts() { tasks "$1" '[.tasks[].host] | sort | join(" ")'; }
# containers APP: the task ids of the app's running containers, as their labels say.
containers() {
	$DOCKER ps --filter "label=microscale.app=$1" --format '{{.Label "microscale.task"}}' | sort
}
running() { [ "$(app "$1" '"\(.tasksRunning) \(.tasksStaged) \(.deployments | length)"')" = "$2 0 0" ]; }
settles() { wait_for "${3:-20}" running "$1" "$2"; } # ID N [TIMEOUT]: N running, no deployment
# shellcheck disable=SC2016 # $HOST and $PORT0 are the container's
web='"cmd": "exec /bin/busybox httpd -f -p $HOST:$PORT0", "mem": 64,
	"container": {"type": "DOCKER", "docker": {"image": "emu/bb:1"}}'

# --- placement spreads; TASK_STAGING then TASK_RUNNING; real containers -------------------------
check_eq "PUT /t/web, 3 instances of 0.5 cpus, is 201" 201 \
	"$(api PUT /v2/apps/t/web "{\"instances\": 3, \"cpus\": 0.5, $web}")"
dep=$(jr .deploymentId)
check "its 3 tasks run and the deployment ends" settles /t/web 3
check "... deployment_success on the stream" \
	heard "select(.eventType == \"deployment_success\" and .id == \"$dep\")"
check_eq "one task on each agent" "127.0.0.1 127.0.0.2 127.0.0.3" "$(hosts /t/web)"
check_eq "slaveId is the agent's" "S1 S2 S3" "$(tasks /t/web '[.tasks[].slaveId] | sort | join(" ")')"
ids=$(tasks /t/web '.tasks[].id' | sort)
check_eq "each task: status TASK_STAGING, then TASK_RUNNING" '[["TASK_STAGING","TASK_RUNNING"]]' \
	"$(marathon_heard all 'select(.appId == "/t/web" and .eventType == "status_update_event")' |
		jq -sc 'group_by(.taskId) | map([.[].taskStatus]) | unique')"
check_eq "status events carry host, slaveId, ports, ipAddresses" true \
	"$(marathon_heard all 'select(.appId == "/t/web" and .taskStatus == "TASK_RUNNING")' |
		jq -s 'all(.[]; (.host | test("^127.0.0.[1-3]$")) and (.slaveId | test("^S")) and (.ports | length) == 1 and .ipAddresses[0].ipAddress == .host)')"
check_eq "tasks have stagedAt <= startedAt, state, version" true \
	"$(tasks /t/web "all(.tasks[]; .stagedAt <= .startedAt and .state == \"TASK_RUNNING\" and .version == \"$(app /t/web .version)\")")"
ok_port=true
for row in $(tasks /t/web '.tasks[] | "\(.slaveId):\(.ports[0])"'); do
	agent_ports=$(jq -r --arg s "${row%%:*}" '.slaves[] | select(.id == $s) | .resources.ports' "$T/slaves.json")
	grep -qE "[[,]${row#*:}-${row#*:}[],]" <<<"$agent_ports" || ok_port=false
done
check_eq "each task's host port is from its agent's range" true "$ok_port"
check_eq "docker ps: 3 containers labelled with the tasks' ids" "$ids" "$(containers /t/web)"
check_eq "... named mesos-<uuid>" 3 \
	"$($DOCKER ps --filter label=microscale.app=/t/web --format '{{.Names}}' | grep -c '^mesos-[0-9a-f-]\{36\}$')"
answered=0
for hp in $(tasks /t/web '.tasks[] | "\(.host):\(.ports[0])"'); do
	code=$(curl -s -m 2 --noproxy '*' -o /dev/null -w '%{http_code}' "http://$hp/")
	[ "$code" != 000 ] && answered=$((answered + 1))
done
check_eq "each container's httpd answers on its HOST:PORT0 (env from the task)" 3 "$answered"
check_eq "/_emu/tasks: agent, container id and the phases (image present: no pull)" \
	"3 true true" \
	"$(marathon_tasks '[.[] | select(.appId == "/t/web")] | "\(length) \(all(.[]; .container | length == 64)) \(all(.[]; .phases | has("staged", "inspect", "run_start", "running") and (has("pull_start") | not)))"' | jq -r .)"
check_eq "the master was told: 3 TASK_RUNNING, Marathon's framework, 0.5 cpus" \
	"3 TASK_RUNNING 0f6b7c0e-e3a1-4a7e-9d6b-0123456789ab-0000 0.5 web.t" \
	"$(curl -fsS "$MASTER/_emu/tasks" | jq -r '[.[] | select(.name == "web.t")] | "\(length) \([.[].state] | unique | join(",")) \(.[0].framework_id) \(.[0].resources.cpus) \(.[0].name)"')"
check_eq "GET /v2/tasks lists them" "$ids" \
	"$(api GET /v2/tasks >/dev/null && jr '.tasks[] | select(.appId == "/t/web") | .id' | sort)"

# --- a scale-down removes containers; the deployment ends once they are gone ----------------------
check_eq "scale /t/web to 1 is 200" 200 "$(api PUT /v2/apps/t/web '{"instances": 1}')"
dep=$(jr .deploymentId)
check "1 runs, the deployment ends" settles /t/web 1
check_eq "... 1 container left" 1 "$(containers /t/web | wc -l)"
check_eq "... the 2 others TASK_KILLED on the stream" 2 \
	"$(marathon_heard all 'select(.appId == "/t/web" and .taskStatus == "TASK_KILLED")' | wc -l)"
killed_at=$(marathon_heard all 'select(.appId == "/t/web" and .taskStatus == "TASK_KILLED") | .timestamp' | jq -r . | sort | tail -1)
check "... before deployment_success" test "$killed_at" \< \
	"$(marathon_heard all "select(.eventType == \"deployment_success\" and .id == \"$dep\") | .timestamp" | jq -r .)"
check "the master no longer lists them" wait_for 5 sh -c "[ \$(curl -fsS '$MASTER/_emu/tasks' | jq '[.[] | select(.name == \"web.t\")] | length') = 1 ]"
web_host=$(hosts /t/web)

# --- resources limit placement: an instance without room waits in the queue ---------------------
check_eq "PUT /t/big, 6 instances of 1 cpu, is 201" 201 \
	"$(api PUT /v2/apps/t/big "{\"instances\": 6, \"cpus\": 1, $web}")"
check "5 run: 2 on each free agent, 1 beside web's task" \
	wait_for 20 sh -c "[ \"\$(curl -fsS $MARATHON_URL/_emu/apps | jq -r '.apps[] | select(.id == \"/t/big\") | .tasksRunning')\" = 5 ]"
check_eq "... 1 on $web_host" 1 "$(tasks /t/big "[.tasks[] | select(.host == \"$web_host\")] | length")"
check_eq "the 6th waits in /v2/queue (count 1, overdue: waiting for offers)" "1 true" \
	"$(api GET /v2/queue >/dev/null && jr '.queue[] | select(.app.id == "/t/big") | "\(.count) \(.delay.overdue)"')"
check_eq "... and the deployment still runs" 1 "$(app /t/big '.deployments | length')"
check_eq "scale /t/web to 0 is 200" 200 "$(api PUT /v2/apps/t/web '{"instances": 0}')"
check "the freed room takes the 6th and the deployment ends" settles /t/big 6
check_eq "... 2 per agent" "2 2 2" \
	"$(tasks /t/big '[.tasks | group_by(.host)[] | length] | join(" ")')"
check_eq "... each with a host port of its own" 6 \
	"$(tasks /t/big '[.tasks[] | "\(.host):\(.ports[0])"] | unique | length')"
check_eq "the queue is empty" 0 "$(api GET /v2/queue >/dev/null && jr '.queue | length')"

# --- DELETE /v2/apps removes every task and container ---------------------------------------------
check_eq "DELETE /t/big is 200" 200 "$(api DELETE /v2/apps/t/big)"
check "... the app goes" wait_for 20 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $MARATHON_URL/v2/apps/t/big)\" = 404 ]"
check_eq "... with all its containers" 0 "$(containers /t/big | wc -l)"
check_eq "... TASK_KILLED for each of its 6 tasks" 6 \
	"$(marathon_heard all 'select(.appId == "/t/big" and .taskStatus == "TASK_KILLED")' | wc -l)"
check "... app_terminated_event" heard 'select(.eventType == "app_terminated_event" and .appId == "/t/big")'
check "... and the master lists none of its tasks" wait_for 5 sh -c "curl -fsS '$MASTER/_emu/tasks' | jq -e 'all(.[]; .name != \"big.t\")' >/dev/null"

# --- constraints ------------------------------------------------------------------------------------
# shellcheck disable=SC2016
small='"cpus": 0.1, "mem": 16, "container": {"type": "DOCKER", "docker": {"image": "emu/bb:1"}},
	"cmd": "exec /bin/busybox httpd -f -p $HOST:$PORT0"'
api PUT /v2/apps/c/like "{\"instances\": 4, \"constraints\": [[\"hostname\", \"LIKE\", \"127\\\\.0\\\\.0\\\\.[12]\"]], $small}" >/dev/null
api PUT /v2/apps/c/unlike "{\"instances\": 2, \"constraints\": [[\"rack\", \"UNLIKE\", \"r1\"]], $small}" >/dev/null
api PUT /v2/apps/c/unique "{\"instances\": 4, \"constraints\": [[\"hostname\", \"UNIQUE\"]], $small}" >/dev/null
check "LIKE: 4 run" settles /c/like 4
check_eq "... only on the agents whose hostname matches (2 each)" \
	"127.0.0.1 127.0.0.1 127.0.0.2 127.0.0.2" "$(hosts /c/like)"
check "UNLIKE rack r1: 2 run" settles /c/unlike 2
check_eq "... none on rack r1's agent" "127.0.0.2 127.0.0.3" "$(hosts /c/unlike)"
check "UNIQUE hostname, 4 wanted: 3 run" wait_for 20 sh -c "[ \"\$(curl -fsS $MARATHON_URL/_emu/apps | jq -r '.apps[] | select(.id == \"/c/unique\") | .tasksRunning')\" = 3 ]"
check_eq "... one per agent" "127.0.0.1 127.0.0.2 127.0.0.3" "$(hosts /c/unique)"
check_eq "... the 4th waits, the deployment runs" "1 1" \
	"$(api GET /v2/queue >/dev/null && jr '.queue[] | select(.app.id == "/c/unique") | .count') $(app /c/unique '.deployments | length')"
check_eq "scaled to 3 (forced, it is locked) it settles" 200 \
	"$(api PUT '/v2/apps/c/unique?force=true' '{"instances": 3}')"
check "... 3 running, no deployment" settles /c/unique 3
for a in like unlike unique; do api DELETE "/v2/apps/c/$a" >/dev/null; done
check "the constrained apps are deleted, containers and all" wait_for 20 sh -c \
	"[ -z \"\$($DOCKER ps -q --filter label=microscale.app=/c/like; $DOCKER ps -q --filter label=microscale.app=/c/unlike; $DOCKER ps -q --filter label=microscale.app=/c/unique)\" ]"

# --- an image that cannot be pulled: TASK_FAILED, relaunched with backoff -----------------------
check_eq "PUT /t/missing (image on a registry that is not there) is 201" 201 \
	"$(api PUT /v2/apps/t/missing '{"instances": 1, "cpus": 0.1, "mem": 16, "backoffSeconds": 1,
		"backoffFactor": 2, "container": {"type": "DOCKER", "docker": {"image": "127.0.0.1:9/none:1"}}}')"
failures() { [ "$(marathon_heard all 'select(.appId == "/t/missing" and .taskStatus == "TASK_FAILED")' | wc -l)" -ge "$1" ]; }
check "TASK_FAILED, three times" wait_for 15 failures 3
check "... the message says the pull failed" \
	heard 'select(.appId == "/t/missing" and .taskStatus == "TASK_FAILED" and (.message | test("docker pull 127.0.0.1:9/none:1")))'
check "... and logged" \
	grep -q 'TASK_FAILED: Failed to launch container: docker pull' "$T/marathon.out"
gaps=$(marathon_heard all 'select(.appId == "/t/missing" and .eventType == "status_update_event") | "\(.taskStatus) \(.timestamp)"' | jq -r . |
	awk '$1 == "TASK_STAGING" { split($2, a, /[T:Z]/); print a[2] * 3600 + a[3] * 60 + a[4] }' |
	awk 'NR > 1 { printf "%.2f ", $1 - p } { p = $1 }')
check "relaunched after ~1 s, then ~2 s (backoffFactor 2; gaps $gaps)" \
	awk -v g="$gaps" 'BEGIN { split(g, a, " "); exit !(a[1] >= 0.9 && a[2] >= 1.8 && a[2] > a[1]) }'
backed_off() { api GET /v2/queue >/dev/null && [ "$(jr '.queue[] | select(.app.id == "/t/missing") | .delay.overdue')" = false ]; }
check "/v2/queue shows the instance backed off (overdue false)" wait_for 10 backed_off
check_eq "the deployment does not end" 1 "$(app /t/missing '.deployments | length')"
check_eq "DELETE ?force=true is 200" 200 "$(api DELETE '/v2/apps/t/missing?force=true')"
check "... and it goes" wait_for 20 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $MARATHON_URL/v2/apps/t/missing)\" = 404 ]"

# --- a container that dies: TASK_FAILED, replaced ------------------------------------------------
check_eq "scale /t/web to 2 is 200" 200 "$(api PUT /v2/apps/t/web '{"instances": 2}')"
check "2 run" settles /t/web 2
victim=$(tasks /t/web '.tasks[0].id')
$DOCKER kill "$($DOCKER ps -q --filter "label=microscale.task=$victim")" >/dev/null
check "docker kill: TASK_FAILED with the container's exit status" wait_for 10 heard \
	"select(.taskId == \"$victim\" and .taskStatus == \"TASK_FAILED\" and (.message | test(\"exited with status 137\")))"
check "... and a new task takes its place" wait_for 20 sh -c "[ \"\$(curl -fsS $MARATHON_URL/v2/apps/t/web/tasks | jq -r '[.tasks[] | select(.state == \"TASK_RUNNING\" and .id != \"$victim\")] | length')\" = 2 ]"

# --- agents: deactivated, removed, added -------------------------------------------------------------
kept=$(tasks /t/web '.tasks[0].id')
kept_agent=$(tasks /t/web '.tasks[0].slaveId')
agents_edit "(.slaves[] | select(.id == \"$kept_agent\") | .active) = false"
check "an agent deactivated (the emulator sees it)" wait_for 5 sh -c \
	"curl -fsS $MARATHON_URL/_emu/agents | jq -e '.[] | select(.id == \"$kept_agent\") | .active == false' >/dev/null"
check_eq "scale /t/web to 5 is 200" 200 "$(api PUT /v2/apps/t/web '{"instances": 5}')"
check "5 run" settles /t/web 5
check_eq "... only its one task on the inactive agent, still running" "1 $kept TASK_RUNNING" \
	"$(tasks /t/web "[.tasks[] | select(.slaveId == \"$kept_agent\")] | \"\(length) \(.[0].id) \(.[0].state)\"")"
gone_agent=$(tasks /t/web "[.tasks[] | select(.slaveId != \"$kept_agent\")][0].slaveId")
lost=$(tasks /t/web ".tasks[] | select(.slaveId == \"$gone_agent\") | .id" | sort)
agents_edit "del(.slaves[] | select(.id == \"$gone_agent\"))"
lost_heard() { [ "$(marathon_heard all 'select(.taskStatus == "TASK_LOST") | .taskId' | jq -r . | sort)" = "$lost" ]; }
check "an agent removed: its $(wc -w <<<"$lost") tasks are TASK_LOST" wait_for 5 lost_heard
check "... replaced: 5 run, none on it" wait_for 20 sh -c "[ \"\$(curl -fsS $MARATHON_URL/v2/apps/t/web/tasks | jq -r '[.tasks[] | select(.state == \"TASK_RUNNING\" and .slaveId != \"$gone_agent\")] | length')\" = 5 ]"
check_eq "... and their containers removed" "" \
	"$(for t in $lost; do $DOCKER ps -q --filter "label=microscale.task=$t"; done)"
forgot() { curl -fsS "$MASTER/_emu/tasks" | jq -e --arg l "$lost" 'all(.[]; .id as $i | $l | split("\n") | index($i) | not)' >/dev/null; }
check "... the master forgot them" wait_for 5 forgot
# Only the remaining active agent (2 cpus) takes new tasks: 4 of web's 0.5 at most.
active_agent=$(jq -r ".slaves[] | select(.active) | .id" "$T/slaves.json")
check_eq "scale /t/web to 7 is 200" 200 "$(api PUT /v2/apps/t/web '{"instances": 7}')"
full() { [ "$(tasks /t/web "[.tasks[] | select(.slaveId == \"$active_agent\" and .state == \"TASK_RUNNING\")] | length")" = 4 ]; }
check "the active agent fills up (4 x 0.5 cpus)" wait_for 20 full
check_eq "... and the rest waits" "$((7 - 1 - 4))" \
	"$(api GET /v2/queue >/dev/null && jr '.queue[] | select(.app.id == "/t/web") | .count')"
agent_add 4 1
check "a new agent (1 cpu) takes the waiting 2; the deployment ends" settles /t/web 7
check_eq "... on it" 2 "$(tasks /t/web '[.tasks[] | select(.slaveId == "S4")] | length')"

# --- stop: the emulator leaves no containers behind ---------------------------------------------------
check_eq "7 containers run before the stop" 7 "$(containers /t/web | wc -l)"
marathon_stop
check_eq "SIGTERM: exit 0" 0 "$?"
check_eq "... no container of ours left, running or not" "" \
	"$($DOCKER ps -aq --filter label=microscale.app)"
check_eq "... the master heard every task is gone" 0 "$(curl -fsS "$MASTER/_emu/tasks" | jq length)"

dockerd_stop
check_eq "dockerd stopped, nothing left mounted under \$T" 0 \
	"$(awk -v t="$T/" 'index($5, t) == 1' /proc/self/mountinfo | wc -l)"
