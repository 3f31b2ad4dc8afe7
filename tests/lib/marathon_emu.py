#!/usr/bin/env python3
"""A Marathon 1.10 REST emulator for microscale's tests, written from Marathon's documented REST
API (v1.x RAML) and event bus. Standard library only; one lock guards all state, and nothing that
waits (a cache, docker, the Mesos master, a subscriber's socket) is done while holding it.
CLI: --port-file F (written once listening) --listen ADDR:PORT (127.0.0.1:0) --deploy-seconds S
(1.0) --basic USER:PASS / --token TOKEN (then /ping, /v2/* and /v2/events need Basic auth or
"Authorization: token=TOKEN") --apps FILE (JSON array of app definitions, all tasks running; with
--mesos, all instances queued) --log F (a JSON line per API request).

Apps and deployments. A PUT that changes an app starts a deployment that locks it (409 unless
?force=true, which cancels it and starts the new one from the tasks as they are). Scale (only
"instances" changed): new tasks stage, surplus ones die at once, staged first. Restart (another
field changed): old tasks run until the new ones do. Create (PUT of an unknown id, 201): all stage.
DELETE /v2/apps/ID (404 unknown, 409 locked unless ?force=true): every task dies and the app goes
when that deployment ends. A PUT that changes nothing answers 200 with a deploymentId that never
shows. DELETE /v2/deployments/ID rolls back to the definition before it (200); ?force=true only
removes it (202); without --mesos its staged tasks stay staged, like a stuck launch. A deployment
takes --deploy-seconds at least; without --mesos its staged tasks then run (with --cache, once
their image has "pulled") and its old ones go. GET /v2/tasks (?status=) and /v2/apps/ID/tasks list
tasks, GET /v2/queue the instances waiting for room (only with --mesos). Constraints ([field,
LIKE|UNLIKE|IS|CLUSTER|UNIQUE|MAX_PER|GROUP_BY, value?]) are validated (422 otherwise) and, with
--mesos, obeyed.

Events (GET /v2/events, "Accept: text/event-stream" exactly or 405, ?event_type=NAME repeatable;
--no-events: 404 as when the stream is off). As Marathon's Jetty writes them: 200, Connection:
close, "event: NAME\\r\\ndata: JSON\\r\\n\\r\\n", a bare "\\r\\n" every --events-heartbeat S
(10). event_stream_attached/detached {remoteAddress}; api_post_event {clientIp, uri,
appDefinition} on every accepted PUT/DELETE of an app; deployment_info {plan, currentStep} at the
start, deployment_step_success, deployment_success {id, plan} at the end, deployment_failed {id,
plan, reason} when cancelled or deleted; plan is {id, steps: [{actions: [{action, app}]}],
version}; status_update_event {slaveId, taskId, taskStatus, message, appId, host, ipAddresses,
ports, version} on TASK_STAGING, TASK_RUNNING, TASK_KILLED, TASK_FAILED, TASK_FINISHED,
TASK_LOST; app_terminated_event {appId}. Every event has eventType and timestamp. A subscriber
more than --events-queue N (1024) events behind is dropped, as Marathon does.

Test control (no auth, not logged, never failed): GET /_emu/requests [{t, method, path, query,
body, status}]; GET /_emu/history, a snapshot after every state change [{t, apps: {ID: {instances,
tasksRunning, tasksStaged}}}]; GET /_emu/apps as GET /v2/apps; GET /_emu/tasks, every task also
while its container goes [{id, appId, state, agent, host, ports, version, old, container, name,
phases: {staged, inspect, pull_start, pull_end, run_start, running, ended}}] (epoch
seconds); GET /_emu/agents; POST /_emu/fail {"count": N, "status": S}: the next N API requests
(/v2/events too) answer S; POST /_emu/reset clears requests, history (which restarts with the
current state) and --log; tasks go on.

Pull time (--cache URL, --link-mbps N; not with --mesos): a new task of an app with
container.docker.image stays staged while its image "pulls" on its node. A thread asks the cache
(GET URL/_microscale/v1/ready?ref=IMAGE, 2 s timeout): ready, the task runs when its deployment's
time is up, as without --cache; otherwise it stays staged for BYTES / N MB/s from its staging,
BYTES being the answer's bytes_total when it is known, else the app's label
MICROSCALE_IMAGE_BYTES (0 when neither: no wait), and then for --deploy-seconds more, as the
container starts only once its image is on the node. A deployment ends when its time is up and all
its tasks have pulled and started. --pull-from-cache: a ready image is also read through the
cache (manifest, config and layers, bytes discarded) as the node's runtime would, and the task
runs no sooner than that read ends.

Placement and real tasks (--mesos URL, --docker-host TEMPLATE, {hostname} and {id} replaced by the
agent's, --docker PATH: the CLI, docker). The agents are GET URL/master/slaves, re-read every
0.5 s; an instance is placed on an active agent whose cpus, mem and ports (resources less this
emulator's tasks there, also those whose container is still going) fit the app and that its
constraints allow, preferring the agent with the fewest tasks of the app, then the most free cpus,
then mem; without one it waits in the queue (the deployment runs on) and is placed when room
appears. Its host ports (as many as portDefinitions, else 1) come from the agent's "ports" and go
to env PORT0.., PORT, PORTS, with HOST, MARATHON_APP_ID, MARATHON_APP_VERSION, MESOS_TASK_ID. A
task is what Mesos' Docker containerizer makes of it with `docker -H HOST`: image inspect, pull
only if absent (or forcePullImage), then run -d --network=host --name mesos-UUID, labels
microscale.task, microscale.app and microscale.emu (this process), cmd as `--entrypoint /bin/sh
IMAGE -c CMD`, else IMAGE ARGS; docker.parameters as --KEY=VALUE. TASK_STAGING until `docker
inspect` says it runs, TASK_RUNNING after. A failed pull or run is TASK_FAILED, a container that
exits TASK_FAILED (TASK_FINISHED on 0; from `docker events`); the instance relaunches after the
app's backoff (backoffSeconds, times backoffFactor for each further failure of the same config, at
most maxLaunchDelaySeconds). A kill (scale-down, restart, delete) is `docker rm -f`, in the
background; TASK_KILLED once the container is gone, and a deployment ends only once its tasks run
and its killed ones are gone. An agent gone from /master/slaves: its tasks are TASK_LOST and placed
again; an inactive agent keeps its tasks and gets no new ones. At most 2 launches and 2 removals
run at a time per docker host. The master is told POST URL/_emu/tasks {id, agent_id, framework_id,
name, state, resources: {cpus, mem}} at launch and each change and DELETE URL/_emu/tasks/ID when
the container is gone (unreachable: logged once, carried on). SIGTERM removes this emulator's
containers (best effort, within 4 s) and exits 0.
"""
import argparse
import base64
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

LOCKED = ("App is locked by one or more deployments. Override with the option '?force=true'. "
          "View details at '/v2/deployments/<DEPLOYMENT_ID>'.")
# Fields Marathon fills in for an app definition that leaves them out.
DEFAULTS = {"instances": 1, "cpus": 1.0, "mem": 128.0, "disk": 0.0, "gpus": 0, "cmd": None,
            "env": {}, "labels": {}, "constraints": [], "healthChecks": [], "backoffSeconds": 1,
            "backoffFactor": 1.15, "maxLaunchDelaySeconds": 300,
            "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}}
GENERATED = {"id", "version", "versionInfo"}   # never taken from a request body
INTERNAL = {"old", "starts_at", "run"}           # task fields the API never shows
IMAGE_BYTES_LABEL = "MICROSCALE_IMAGE_BYTES"     # an image's size when the cache does not know it
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"])
FRAMEWORK_ID = "0f6b7c0e-e3a1-4a7e-9d6b-0123456789ab-0000"
OPERATORS = {"LIKE", "UNLIKE", "IS", "CLUSTER", "UNIQUE", "MAX_PER", "GROUP_BY"}
NOT_ACCEPTABLE = ("<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;"
                  "charset=ISO-8859-1\"/>\n<title>Error 405 </title>\n</head>\n<body>\n<h2>HTTP "
                  "ERROR: 405</h2>\n<p>Problem accessing /v2/events. Reason:\n<pre>    HTTP method "
                  "GET is not supported by this URL</pre></p>\n</body>\n</html>\n")
WORKERS = 2             # per docker host: launches at a time, and removals at a time
PULL_TIMEOUT = 600      # seconds a docker pull may take
STOP_BUDGET = 4.0       # seconds SIGTERM spends removing containers (tests KILL after 5)


class ApiError(Exception):
    def __init__(self, status, body, headers=None):
        self.status, self.body, self.headers = status, body, headers or {}


def log(msg):
    print(f"emulator: {msg}", flush=True)


def iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def norm_id(raw):   # 'demo/x/', '/demo//x' -> '/demo/x'
    return "/" + "/".join(p for p in raw.split("/") if p)


def config(d):   # what a restart changes: everything but the instance count
    return {k: v for k, v in d.items() if k not in GENERATED | {"instances"}}


def counts(app):
    running = sum(t["state"] == "TASK_RUNNING" for t in app["tasks"])
    return {"tasksRunning": running, "tasksStaged": len(app["tasks"]) - running}


def ip_addresses(host):
    ok = re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", host or "")
    return [{"ipAddress": host, "protocol": "IPv4"}] if ok else []


def invalid(status, message, path, error):
    return ApiError(status, {"message": message, "details": [{"path": path, "errors": [error]}]})


def validate(body):
    """An app update (JSON text or parsed) as Marathon documents its answers: 400 "Invalid JSON"
    for syntax and type errors (play-json's error keys), 422 "Object is not valid" for values out
    of range."""
    try:
        body = json.loads(body) if isinstance(body, bytes) else body
    except ValueError as e:
        raise invalid(400, "Invalid JSON", "/", str(e)) from None
    if not isinstance(body, dict):
        raise invalid(400, "Invalid JSON", "/", "error.expected.jsobject")
    if "constraints" in body:
        validate_constraints(body["constraints"])
    n = body.get("instances")
    if n is None:
        return body
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        raise invalid(400, "Invalid JSON", "/instances", "error.expected.jsnumber")
    if isinstance(n, float) and not n.is_integer():
        raise invalid(400, "Invalid JSON", "/instances", "error.expected.int")
    body["instances"] = n = int(n)
    if n < 0:
        raise invalid(422, "Object is not valid", "/instances", f"got {n}, expected 0 or more")
    return body


def validate_constraints(cs):
    if not isinstance(cs, list) or not all(isinstance(c, list) for c in cs):
        raise invalid(400, "Invalid JSON", "/constraints", "error.expected.jsarray")
    for i, c in enumerate(cs):
        path = f"/constraints({i})"
        if not 2 <= len(c) <= 3 or not all(isinstance(x, str) for x in c):
            raise invalid(422, "Object is not valid", path, "Each constraint must have either 2 "
                          "or 3 fields")
        op, value = c[1], c[2] if len(c) == 3 else None
        if op not in OPERATORS:
            raise invalid(422, "Object is not valid", path, f"Constraint operator must be one "
                          f"of the following: [{', '.join(sorted(OPERATORS))}]")
        if op in ("LIKE", "UNLIKE", "IS", "MAX_PER") and value is None:
            raise invalid(422, "Object is not valid", path, f"{op} requires a value")
        if op in ("LIKE", "UNLIKE"):
            try:
                re.compile(value)
            except re.error:
                raise invalid(422, "Object is not valid", path,
                              f"'{value}' is not a valid regular expression") from None
        if op == "MAX_PER" and not value.isdigit():
            raise invalid(422, "Object is not valid", path, "MAX_PER requires an integer value")


def split_ref(image):
    """'[host/]repo[:tag|@digest]' as Docker reads it: (host, repository, reference)."""
    name, _, digest = image.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = name[colon + 1:] if colon > slash else "latest"
    name = name[:colon] if colon > slash else name
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, digest or tag
    return "docker.io", name if rest else "library/" + name, digest or tag


class PullModel:
    """When a new task's image has pulled on its node (--cache, --link-mbps, --pull-from-cache).
    Nothing here holds the emulator's lock: it all waits on the network."""

    def __init__(self, cache_url, link_mbps, read_through):
        self.cache, self.rate = cache_url.rstrip("/"), link_mbps * 1e6
        self.read_through = read_through
        # Only the cache is ever asked, so no proxy from the environment applies.
        self.http = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def pulled_at(self, image, label_bytes, staged):
        """The time.monotonic() at which image, staged at staged, is on the node."""
        answer = self.ready(image) or {}
        if answer.get("ready") is True:
            if self.read_through:
                self.read(image)
            return time.monotonic()
        size = answer.get("bytes_total") or label_bytes
        return staged + size / self.rate

    def ready(self, image):
        """The cache's readiness answer, or None when it has none (down, slow, an error)."""
        try:
            with self.http.open(f"{self.cache}/_microscale/v1/ready?ref={quote(image, safe='')}",
                                timeout=2) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None

    def read(self, image):
        """Reads image through the cache as a runtime pulls it; the bytes are discarded."""
        host, repo, ref = split_ref(image)
        ns = "" if host == "docker.io" else "?ns=" + quote(host)
        base = f"{self.cache}/v2/{repo}"
        try:
            m = json.loads(self.get(f"{base}/manifests/{ref}{ns}", 4 << 20))
            if "manifests" in m:   # an index: this emulated node is linux/amd64
                d = next((x for x in m["manifests"] if x.get("platform", {}).get(
                    "architecture") == "amd64"), m["manifests"][0])
                m = json.loads(self.get(f"{base}/manifests/{d['digest']}{ns}", 4 << 20))
            for blob in [m["config"]] + m["layers"]:
                self.get(f"{base}/blobs/{blob['digest']}{ns}", 0)
        except (OSError, ValueError, KeyError, IndexError) as e:
            log(f"reading {image} through the cache failed: {e!r}")

    def get(self, url, keep):
        """GET url, keeping at most keep bytes of the body (a manifest), discarding the rest."""
        req = urllib.request.Request(url, headers={"Accept": MANIFEST_ACCEPT})
        kept = b""
        with self.http.open(req, timeout=30) as r:
            while chunk := r.read(1 << 20):
                kept += chunk[:max(0, keep - len(kept))]
        return kept


class Subscriber:
    """One /v2/events connection: the frames its thread has yet to write (bounded)."""

    def __init__(self, remote, types, sock, limit):
        self.remote, self.types, self.sock = remote, set(types), sock
        self.frames, self.closed = queue.Queue(maxsize=limit), False

    def close(self):
        self.closed = True
        try:   # a write blocked on a full socket fails at once
            self.sock.shutdown(2)
        except OSError:
            pass


class EventBus:
    """Marathon's event bus. Called with the emulator's lock held; never blocks: a subscriber
    whose queue is full is dropped (Marathon's event_stream_max_outstanding_messages)."""

    def __init__(self, limit):
        self.limit, self.subs = limit, set()

    def subscribe(self, remote, types, sock):
        sub = Subscriber(remote, types, sock, self.limit)
        self.subs.add(sub)
        self.publish("event_stream_attached", remoteAddress=remote)
        return sub

    def unsubscribe(self, sub, why=None):
        if sub not in self.subs:
            return
        self.subs.discard(sub)
        sub.close()
        if why:
            log(f"event stream of {sub.remote} dropped: {why}")
        self.publish("event_stream_detached", remoteAddress=sub.remote)

    def publish(self, event_type, **fields):
        if not self.subs:
            return
        fields.update(eventType=event_type, timestamp=iso(time.time()))
        data = json.dumps(fields, separators=(",", ":"))
        frame = f"event: {event_type}\r\ndata: {data}\r\n\r\n".encode()
        for sub in list(self.subs):
            if sub.types and event_type not in sub.types:
                continue
            try:
                sub.frames.put_nowait(frame)
            except queue.Full:
                self.unsubscribe(sub, f"more than {self.limit} events behind")

    def close(self):
        for sub in list(self.subs):
            sub.close()


class Workers:
    """At most n jobs at a time, on daemon threads started as needed; jobs wait in a queue."""

    def __init__(self, n):
        self.n, self.jobs, self.threads = n, queue.Queue(), []

    def submit(self, fn, *args):
        self.jobs.put((fn, args))
        if len(self.threads) < self.n:
            t = threading.Thread(target=self.run, daemon=True)
            self.threads.append(t)
            t.start()

    def run(self):
        while True:
            fn, args = self.jobs.get()
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 -- a bug: say so, keep the worker
                log(f"job {fn.__name__} failed: {e!r}")


def field_value(agent, field):
    """An agent's value for a constraint's field as text, None when it has no such attribute."""
    if field in ("hostname", "@hostname"):
        return agent["hostname"]
    v = agent["attributes"].get(field)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return None if v is None else str(v)


def constraints_allow(constraints, agent, agents, mine):
    """Whether constraints let one more task of an app (its tasks: mine) go to agent."""
    for c in constraints:
        field, op, value = c[0], c[1], c[2] if len(c) == 3 else None
        v = field_value(agent, field)
        taken = [field_value(agents[t["slaveId"]], field) for t in mine if t["slaveId"] in agents]
        if op == "LIKE":
            ok = v is not None and re.fullmatch(value, v) is not None
        elif op == "UNLIKE":
            ok = v is None or re.fullmatch(value, v) is None
        elif op == "IS" or (op == "CLUSTER" and value):
            ok = v == value
        elif op == "CLUSTER":
            ok = v is not None and (not taken or v == taken[0])
        elif op == "UNIQUE":
            ok = v is not None and v not in taken
        elif op == "MAX_PER":
            ok = v is not None and taken.count(v) < int(value)
        else:   # GROUP_BY: spread evenly over the values the active agents have
            values = {field_value(a, field) for a in agents.values() if a["active"]} - {None}
            ok = v is not None and taken.count(v) <= min(taken.count(x) for x in values)
        if not ok:
            return False
    return True


def parse_ranges(text):
    """Mesos' "[31000-31005, 31010-31010]" as [(31000, 31005), (31010, 31010)]."""
    return [(int(a), int(b)) for a, b in re.findall(r"(\d+)\s*-\s*(\d+)", text or "")]


def port_count(d):
    for key in ("portDefinitions", "ports"):
        if isinstance(d.get(key), list):
            return len(d[key])
    return 1


class Cluster:
    """--mesos: Marathon's scheduler and each agent's Docker containerizer. Its state is the
    emulator's, under the emulator's lock; docker and the master are called from worker threads
    without it. A task's "run" holds what the API never shows: its agent, docker host, container
    name and id, resources, the phases' times, and whether a launch job still owns it
    (launching), it was ended (killed) and how (end)."""

    def __init__(self, emu, url, docker_host, docker_cli):
        self.emu, self.tmpl, self.cli = emu, docker_host, docker_cli
        parts = urlsplit(url.rstrip("/"))
        self.url = urlunsplit(parts._replace(netloc=parts.hostname + (
            f":{parts.port}" if parts.port else "")))
        self.auth = parts.username and "Basic " + base64.b64encode(
            f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode()
        self.http = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.label = f"microscale.emu={os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.agents = {}    # id -> {id, hostname, active, attributes, cpus, mem, ports, docker}
        self.dying = {}     # task id -> task ended whose container is still being removed
        self.pools = {}     # docker host -> {"launch": Workers, "remove": Workers}
        self.hosts = set()  # every docker host a task went to (removed from at exit)
        self.procs, self.procs_lock = set(), threading.Lock()
        self.stopping = threading.Event()
        self.reports = queue.Queue(maxsize=10000)
        self.down = {"master": False, "reports": False}   # for logging once per episode

    def start(self):
        for fn in (self.follow_agents, self.send_reports):
            threading.Thread(target=fn, daemon=True).start()

    # --- the master ------------------------------------------------------------------------
    def master(self, method, path, body=None, timeout=2.0):
        req = urllib.request.Request(self.url + path, method=method, data=body and json.dumps(
            body).encode(), headers={"Content-Type": "application/json"})
        if self.auth:
            req.add_header("Authorization", self.auth)
        with self.http.open(req, timeout=timeout) as r:
            return r.read()

    def episode(self, what, failed, detail=""):
        if failed != self.down[what]:
            self.down[what] = failed
            log(f"{what}: {'unreachable: ' + detail if failed else 'reachable again'}")

    def follow_agents(self):
        while not self.stopping.is_set():
            try:
                slaves = json.loads(self.master("GET", "/master/slaves"))["slaves"]
                agents = {s["id"]: self.agent(s) for s in slaves}
                self.episode("master", False)
            except (OSError, ValueError, KeyError, TypeError) as e:
                self.episode("master", True, repr(e))
                agents = None
            if agents is not None:
                with self.emu.lock:
                    self.set_agents(agents)
            self.stopping.wait(0.5)

    def agent(self, s):
        res = s.get("resources") or {}
        host, aid = s.get("hostname") or "", s["id"]
        return {"id": aid, "hostname": host, "active": s.get("active", True) is not False,
                "attributes": s.get("attributes") or {}, "cpus": float(res.get("cpus") or 0),
                "mem": float(res.get("mem") or 0), "ports": parse_ranges(res.get("ports")),
                "docker": self.tmpl.replace("{hostname}", host).replace("{id}", aid)}

    def report(self, task, gone=False):
        """Tells the master (in the background, in order) what the task is now."""
        run = task["run"]
        item = ("DELETE", "/_emu/tasks/" + quote(task["id"], safe=""), None) if gone else (
            "POST", "/_emu/tasks", {"id": task["id"], "agent_id": task["slaveId"],
                                    "framework_id": FRAMEWORK_ID, "name": run["task_name"],
                                    "state": task["state"], "resources": {
                                        "cpus": run["cpus"], "mem": run["mem"]}})
        try:
            self.reports.put_nowait(item)
        except queue.Full:
            self.episode("reports", True, "queue full, report dropped")

    def send_reports(self):
        while True:
            method, path, body = self.reports.get()
            try:
                self.master(method, path, body)
                self.episode("reports", False)
            except OSError as e:
                self.episode("reports", True, f"{method} {path}: {e!r}")

    # --- agents ----------------------------------------------------------------------------
    def set_agents(self, agents):
        for aid in set(self.agents) - set(agents):
            log(f"agent {aid} ({self.agents[aid]['hostname']}) is gone: its tasks are lost")
            for app in list(self.emu.apps.values()):
                for t in [t for t in app["tasks"] if t["slaveId"] == aid]:
                    self.end(app, t, "TASK_LOST", "Agent removed from the master")
        for aid, a in agents.items():
            if aid not in self.agents:
                log(f"agent {aid} ({a['hostname']}) joined, active={a['active']}" +
                    ("" if a["ports"] else "; it offers no ports, so no app with one goes there"))
            elif a["active"] != self.agents[aid]["active"]:
                log(f"agent {aid} ({a['hostname']}) active={a['active']}")
        self.agents = agents
        for host in {a["docker"] for a in agents.values()} - set(self.pools):
            self.pools[host] = {"launch": Workers(WORKERS), "remove": Workers(WORKERS)}
            threading.Thread(target=self.watch, args=(host,), daemon=True).start()

    def usage(self):
        """Per agent id: the cpus, mem and ports this emulator's tasks take there."""
        use = {aid: {"cpus": 0.0, "mem": 0.0, "ports": set()} for aid in self.agents}
        tasks = [t for a in self.emu.apps.values() for t in a["tasks"]] + list(self.dying.values())
        for t in tasks:
            u = use.get(t["slaveId"])
            if u is not None:
                u["cpus"] += t["run"]["cpus"]
                u["mem"] += t["run"]["mem"]
                u["ports"].update(t["ports"])
        return use

    def agents_json(self):
        use = self.usage()
        return [dict(a, ports=[list(r) for r in a["ports"]], used=dict(
            use[a["id"]], ports=sorted(use[a["id"]]["ports"]))) for a in self.agents.values()]

    # --- placement -------------------------------------------------------------------------
    def place(self):
        """Launches what the queue holds while an agent has room (called on every tick)."""
        if self.stopping.is_set():
            return
        use, now = None, time.monotonic()
        for app_id, app in sorted(self.emu.apps.items()):
            while app["queue"] > 0 and not self.delayed(app, now):
                use = use or self.usage()
                found = self.choose(app, use)
                if found is None:
                    break
                self.launch(app_id, app, *found)
                task = app["tasks"][-1]
                u = use[task["slaveId"]]
                u["cpus"], u["mem"] = u["cpus"] + task["run"]["cpus"], u["mem"] + task["run"]["mem"]
                u["ports"].update(task["ports"])

    @staticmethod
    def delayed(app, now):
        delay = app["delay"]
        return delay is not None and delay["until"] > now and \
            delay["config"] == app["def"]["versionInfo"]["lastConfigChangeAt"]

    def choose(self, app, use):
        d = app["def"]
        cpus, mem, nports = float(d.get("cpus") or 0), float(d.get("mem") or 0), port_count(d)
        mine = [t for t in app["tasks"] if not t["old"]]
        best = None
        for a in self.agents.values():
            u = use[a["id"]]
            free_cpus, free_mem = a["cpus"] - u["cpus"], a["mem"] - u["mem"]
            if not a["active"] or free_cpus < cpus - 1e-9 or free_mem < mem - 1e-9:
                continue
            ports = self.free_ports(a, u["ports"], nports)
            if ports is None or not constraints_allow(d["constraints"], a, self.agents, mine):
                continue
            rank = (sum(t["slaveId"] == a["id"] for t in mine), -free_cpus, -free_mem,
                    a["hostname"], a["id"])
            if best is None or rank < best[0]:
                best = (rank, a, ports)
        return best and best[1:]

    @staticmethod
    def free_ports(agent, used, n):
        got = []
        for lo, hi in agent["ports"]:
            for p in range(lo, hi + 1):
                if len(got) == n:
                    return got
                if p not in used:
                    got.append(p)
        return got if len(got) == n else None

    def launch(self, app_id, app, agent, ports):
        d, uid, now = app["def"], str(uuid.uuid4()), time.time()
        name = ".".join(reversed([p for p in app_id.split("/") if p]))
        task = {"id": f"{app_id.strip('/').replace('/', '_')}.instance-{uid}._app.1",
                "appId": app_id, "host": agent["hostname"], "slaveId": agent["id"],
                "ports": ports, "stagedAt": iso(now), "startedAt": None, "version": d["version"],
                "state": "TASK_STAGING", "healthCheckResults": [],
                "ipAddresses": ip_addresses(agent["hostname"]), "old": False, "starts_at": 0.0,
                "run": {"docker": agent["docker"], "name": f"mesos-{uid}", "task_name": name,
                        "cpus": float(d.get("cpus") or 0), "mem": float(d.get("mem") or 0),
                        "container": None, "launching": True, "killed": False, "end": None,
                        "died": None, "proc": None, "phases": {"staged": now}}}
        app["tasks"].append(task)
        app["queue"] -= 1
        self.hosts.add(agent["docker"])
        spec = self.run_spec(d, task, agent)
        self.emu.status(task, "TASK_STAGING")
        self.report(task)
        self.emu.snapshot()
        self.pools[agent["docker"]]["launch"].submit(self.launch_job, task, spec)

    def run_spec(self, d, task, agent):
        """What the launch job needs, taken from the definition under the lock."""
        docker = (d.get("container") or {}).get("docker") or {}
        image, ports = docker.get("image"), task["ports"]
        env = {k: v for k, v in (d.get("env") or {}).items() if isinstance(v, str)}
        env.update({f"PORT{i}": str(p) for i, p in enumerate(ports)})
        env.update(HOST=agent["hostname"], MARATHON_APP_ID=task["appId"],
                   MARATHON_APP_VERSION=task["version"], MESOS_TASK_ID=task["id"])
        if ports:
            env.update(PORT=str(ports[0]), PORTS=",".join(map(str, ports)))
        argv = ["run", "-d", "--network=host", "--name", task["run"]["name"], "--label",
                f"microscale.task={task['id']}", "--label", f"microscale.app={task['appId']}",
                "--label", self.label]
        for k, v in sorted(env.items()):
            argv += ["-e", f"{k}={v}"]
        for p in docker.get("parameters") or []:
            argv.append(f"--{p.get('key')}={p.get('value')}")
        if d.get("cmd"):
            argv += ["--entrypoint", "/bin/sh", image, "-c", d["cmd"]]
        else:
            argv += [image] + [str(a) for a in d.get("args") or []]
        return {"image": image, "force_pull": docker.get("forcePullImage") is True, "run": argv}

    # --- a task's life ---------------------------------------------------------------------
    def launch_job(self, task, spec):
        """inspect, pull if absent, run, inspect: the Docker containerizer's launch."""
        host, image = task["run"]["docker"], spec["image"]
        if not self.checkpoint(task, "inspect"):
            return
        if not image:
            return self.failed(task, "emulator: only apps with container.docker.image run")
        present = not spec["force_pull"] and self.docker(
            host, "image", "inspect", "--format", "{{.Id}}", image, timeout=30)[0] == 0
        if not present:
            if not self.checkpoint(task, "pull_start"):
                return
            rc, _, err = self.docker(host, "pull", image, timeout=PULL_TIMEOUT, task=task)
            if not self.checkpoint(task, "pull_end"):
                return
            if rc != 0:
                return self.failed(task, f"Failed to launch container: docker pull {image}: "
                                   f"{last_line(err)}")
        if not self.checkpoint(task, "run_start"):
            return
        # Not stopped by a kill (a stopped `docker run` may still leave a container): the
        # checkpoint after it removes the container instead.
        rc, out, err = self.docker(host, *spec["run"], timeout=60)
        if rc != 0:
            return self.failed(task, f"Failed to launch container: docker run: {last_line(err)}")
        cid = last_line(out)
        rc, out, _ = self.docker(host, "inspect", "--format",
                                 "{{.State.Running}} {{.State.ExitCode}}", cid, timeout=30)
        state = out.split() if rc == 0 else ["false", "?"]
        with self.emu.lock:
            run = task["run"]
            run["container"], run["launching"] = cid, False
            if run["killed"] or self.stopping.is_set():
                return self.remove(task)
            if state[0] != "true" or run["died"] is not None:
                code = run["died"] if run["died"] is not None else state[-1]
                return self.end(self.emu.apps.get(task["appId"]), task, "TASK_FAILED",
                                f"Container exited with status {code}")
            now = time.time()
            run["phases"]["running"] = now
            task["state"], task["startedAt"] = "TASK_RUNNING", iso(now)
            self.emu.status(task, "TASK_RUNNING")
            self.report(task)
            self.emu.snapshot()

    def checkpoint(self, task, phase):
        """Records a phase's start; False (and the launch job stops) once the task is ended."""
        with self.emu.lock:
            run = task["run"]
            run["phases"][phase] = time.time()
            if run["killed"] or self.stopping.is_set():
                run["launching"] = False
                self.remove(task)
                return False
            return True

    def failed(self, task, message):
        with self.emu.lock:
            task["run"]["launching"] = False
            if task["run"]["killed"] or self.stopping.is_set():
                return self.remove(task)
            self.end(self.emu.apps.get(task["appId"]), task, "TASK_FAILED", message)

    def end(self, app, task, state, message=""):
        """Takes task out of app. TASK_KILLED is reported once its container is gone; TASK_LOST,
        TASK_FAILED and TASK_FINISHED now, and the instance is queued again (after the backoff
        unless lost). The container is removed in the background; its resources and ports stay
        taken until then."""
        run = task["run"]
        if app is not None and task in app["tasks"]:
            app["tasks"].remove(task)
        run["killed"], run["end"] = True, state
        run["phases"]["ended"] = time.time()
        self.dying[task["id"]] = task
        with self.procs_lock:   # a pull in progress for it is not waited for
            if run["proc"] is not None:
                run["proc"].terminate()
        if state == "TASK_KILLED":
            task["state"] = "TASK_KILLING"
        else:
            task["state"] = state
            self.emu.status(task, state, message)
            if app is not None and not task["old"]:
                app["queue"] += 1
                if state != "TASK_LOST":
                    self.back_off(app)
            log(f"task {task['id']} {state}: {message}")
        self.report(task)
        if not run["launching"]:
            self.remove(task)
        self.emu.snapshot()

    @staticmethod
    def back_off(app):
        d, delay = app["def"], app["delay"]
        key = d["versionInfo"]["lastConfigChangeAt"]
        if delay is not None and delay["config"] == key:
            seconds = min(delay["seconds"] * float(d.get("backoffFactor") or 1),
                          float(d.get("maxLaunchDelaySeconds") or 0))
        else:
            seconds = float(d.get("backoffSeconds") or 0)
        app["delay"] = {"config": key, "seconds": seconds, "until": time.monotonic() + seconds}

    def remove(self, task):
        """docker rm -f the task's container (there may be none yet), then it is gone."""
        if task["run"].get("removing") or self.stopping.is_set():
            return
        task["run"]["removing"] = True
        self.pools[task["run"]["docker"]]["remove"].submit(self.remove_job, task)

    def remove_job(self, task):
        lost = task["run"]["end"] == "TASK_LOST"   # its docker may be gone with its agent
        self.docker(task["run"]["docker"], "rm", "-f", task["run"]["name"], timeout=5 if lost
                    else 30)
        with self.emu.lock:
            if self.stopping.is_set():
                return
            self.dying.pop(task["id"], None)
            if task["run"]["end"] == "TASK_KILLED":
                task["state"] = "TASK_KILLED"
                self.emu.status(task, "TASK_KILLED")
            self.report(task, gone=True)

    def kill(self, app, task):
        self.end(app, task, "TASK_KILLED")

    def died(self, task_id, code):
        """A container of ours exited (docker events)."""
        for app in self.emu.apps.values():
            for t in app["tasks"]:
                if t["id"] != task_id or t["run"]["killed"]:
                    continue
                if t["run"]["launching"]:   # the launch job decides
                    t["run"]["died"] = code
                else:
                    self.end(app, t, "TASK_FINISHED" if code == "0" else "TASK_FAILED",
                             f"Container exited with status {code}")
                return

    def watch(self, host):
        """Follows `docker events` for this emulator's containers that die on one docker host."""
        pause = 0.5
        while not self.stopping.is_set():
            with self.procs_lock:
                if self.stopping.is_set():
                    return
                try:
                    p = subprocess.Popen(
                        [self.cli, "-H", host, "events", "--filter", "type=container", "--filter",
                         "event=die", "--filter", "label=" + self.label, "--format",
                         "{{json .}}"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL, text=True)
                except OSError as e:
                    log(f"docker events on {host}: {e}")
                    return
                self.procs.add(p)
            for line in p.stdout:
                try:
                    attrs = json.loads(line)["Actor"]["Attributes"]
                except (ValueError, KeyError, TypeError):
                    continue
                pause = 0.5
                with self.emu.lock:
                    self.died(attrs.get("microscale.task"), attrs.get("exitCode", "?"))
            p.wait()
            with self.procs_lock:
                self.procs.discard(p)
            self.stopping.wait(pause)
            pause = min(pause * 2, 10)

    # --- docker ----------------------------------------------------------------------------
    def docker(self, host, *args, timeout, task=None):
        """Runs the docker CLI against host: (exit status, stdout, stderr). Never under the
        emulator's lock; refused once stopping."""
        with self.procs_lock:
            if self.stopping.is_set():
                return 1, "", "emulator stopping"
            try:
                p = subprocess.Popen([self.cli, "-H", host, *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            except OSError as e:
                return 127, "", f"{self.cli}: {e}"
            self.procs.add(p)
            if task is not None:
                task["run"]["proc"] = p
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err += f"\ntimed out after {timeout} s"
        with self.procs_lock:
            self.procs.discard(p)
            if task is not None and task["run"]["proc"] is p:
                task["run"]["proc"] = None
        return p.returncode, out, err

    def close(self):
        """On exit: stops every docker process, removes every container this emulator started
        on every docker host it used, and tells the master, within STOP_BUDGET seconds."""
        deadline = time.monotonic() + STOP_BUDGET
        with self.procs_lock:
            self.stopping.set()
            for p in self.procs:
                p.terminate()
        with self.emu.lock:
            hosts = sorted(self.hosts)
            tasks = [t for a in self.emu.apps.values() for t in a["tasks"]] + list(
                self.dying.values())
        for attempt in range(2):   # again for a container a stopped `docker run` still made
            for host in hosts:
                left = deadline - time.monotonic()
                ids = left > 0.2 and run_quiet([self.cli, "-H", host, "ps", "-aq", "--filter",
                                                "label=" + self.label], left / 2).split()
                if ids:
                    run_quiet([self.cli, "-H", host, "rm", "-f", *ids],
                              deadline - time.monotonic())
        for t in tasks:
            if time.monotonic() < deadline - 0.3:
                try:
                    self.master("DELETE", "/_emu/tasks/" + quote(t["id"], safe=""), timeout=0.3)
                except OSError:
                    pass


def run_quiet(argv, timeout):
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=max(timeout, 0.1)).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def last_line(text):
    lines = [x for x in (text or "").strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else ""


class Emulator:
    """All of Marathon's state. Callers hold self.lock (tick_forever takes it itself)."""

    def __init__(self, deploy_seconds, leader, pull=None, bus=None, mesos=None):
        self.lock = threading.Lock()
        self.deploy_seconds, self.leader, self.pull, self.bus = deploy_seconds, leader, pull, bus
        # id -> {"def": definition, "tasks": [task], "deployment": id|None, "queue": instances
        # waiting to launch (--mesos), "delay": the launch backoff {config, seconds, until}|None}
        self.apps = {}
        self.deployments = {}   # id -> {id, version, app, action, deadline, target, prev}
        self.requests, self.history = [], []
        self.fail_count, self.fail_status, self.last_version = 0, 500, 0.0
        self.cluster = Cluster(self, **mesos) if mesos else None

    def load(self, apps):
        for d in map(validate, apps):
            app_id = norm_id(d.get("id", ""))
            definition = self.definition(app_id, {}, d, None)
            n = definition["instances"]
            tasks = [] if self.cluster else [self.new_task(app_id, definition["version"], True)
                                             for _ in range(n)]
            self.apps[app_id] = {"def": definition, "tasks": tasks, "deployment": None,
                                 "queue": n if self.cluster else 0, "delay": None}
        self.snapshot()

    # --- building blocks -------------------------------------------------------------------
    def new_version(self):
        ts = max(time.time(), self.last_version + 0.001)   # versions are unique and increasing
        self.last_version = ts
        return iso(ts)

    def definition(self, app_id, base, update, current):
        """base + update as a new version of app_id (current: the definition it replaces)."""
        d = dict(DEFAULTS, **base)
        d.update({k: v for k, v in update.items() if k not in GENERATED})
        d["id"], d["version"] = app_id, self.new_version()
        same = current is not None and config(d) == config(current)
        d["versionInfo"] = {"lastScalingAt": d["version"], "lastConfigChangeAt":
                            current["versionInfo"]["lastConfigChangeAt"] if same else d["version"]}
        return d

    @staticmethod
    def new_task(app_id, version, running):
        now = iso(time.time())
        return {"id": f"{app_id.strip('/').replace('/', '_')}.instance-{uuid.uuid4()}._app.1",
                "appId": app_id, "host": "127.0.0.1", "slaveId": "emu-agent-0", "ports": [],
                "stagedAt": now, "startedAt": now if running else None, "version": version,
                "state": "TASK_RUNNING" if running else "TASK_STAGING", "healthCheckResults": [],
                "ipAddresses": ip_addresses("127.0.0.1"),
                "old": False, "starts_at": 0.0}   # starts_at: None while its image pulls

    def start_pulls(self, definition, tasks):
        """With --cache: one thread per new task finds out when its image is on its node."""
        image = ((definition.get("container") or {}).get("docker") or {}).get("image")
        if self.pull is None or not image:
            return
        try:   # Marathon's labels are strings
            label = float((definition.get("labels") or {}).get(IMAGE_BYTES_LABEL) or 0)
        except ValueError:
            label = 0.0
        for t in tasks:
            t["starts_at"] = None
            threading.Thread(target=self.pull_task, args=(t, image, label, time.monotonic()),
                             daemon=True).start()

    def pull_task(self, task, image, label_bytes, staged):
        at = self.pull.pulled_at(image, label_bytes, staged)   # without the lock: it waits
        with self.lock:   # then the container starts
            task["starts_at"] = at + self.deploy_seconds

    @staticmethod
    def started(task):
        return task["starts_at"] is not None and task["starts_at"] <= time.monotonic()

    def snapshot(self):
        apps = sorted(self.apps.items())
        self.history.append({"t": time.time(), "apps": {
            i: dict(instances=a["def"]["instances"], **counts(a)) for i, a in apps}})

    def get_app(self, app_id):
        if app_id not in self.apps:
            raise ApiError(404, {"message": f"App '{app_id}' does not exist"})
        return self.apps[app_id]

    def event(self, event_type, **fields):
        if self.bus is not None:
            self.bus.publish(event_type, **fields)

    def status(self, task, state, message=""):
        self.event("status_update_event", slaveId=task["slaveId"], taskId=task["id"],
                   taskStatus=state, message=message, appId=task["appId"], host=task["host"],
                   ipAddresses=task["ipAddresses"], ports=task["ports"], version=task["version"])

    # --- JSON views ------------------------------------------------------------------------
    @staticmethod
    def app_json(app):
        c = counts(app)
        return dict(app["def"], **c, tasksUnhealthy=0,
                    tasksHealthy=c["tasksRunning"] if app["def"]["healthChecks"] else 0,
                    deployments=[{"id": app["deployment"]}] if app["deployment"] else [])

    def apps_json(self):
        return {"apps": [self.app_json(a) for _, a in sorted(self.apps.items())]}

    @staticmethod
    def tasks_json(app):
        return [{k: v for k, v in t.items() if k not in INTERNAL and v is not None}
                for t in app["tasks"]]

    def all_tasks_json(self, query):
        want = {"TASK_" + s.upper() for v in query.get("status", []) for s in v.split(",")}
        return {"tasks": [t for _, a in sorted(self.apps.items()) for t in self.tasks_json(a)
                          if not want or t["state"] in want]}

    def queue_json(self):
        now = time.monotonic()
        items = []
        for _, app in sorted(self.apps.items()):
            if app["queue"] > 0:
                left = max(0.0, app["delay"]["until"] - now) if app["delay"] else 0.0
                overdue = not (self.cluster and self.cluster.delayed(app, now))
                items.append({"app": self.app_json(app), "count": app["queue"], "role": "*",
                              "delay": {"timeLeftSeconds": 0 if overdue else int(left + 0.999),
                                        "overdue": overdue}})
        return {"queue": items}

    def emu_tasks(self):
        dying = list(self.cluster.dying.values()) if self.cluster else []
        rows = []
        for t in [t for _, a in sorted(self.apps.items()) for t in a["tasks"]] + dying:
            run = t.get("run") or {}
            rows.append({"id": t["id"], "appId": t["appId"], "state": t["state"],
                         "agent": t["slaveId"], "host": t["host"], "ports": t["ports"],
                         "version": t["version"], "old": t["old"],
                         "container": run.get("container"), "name": run.get("name"),
                         "phases": run.get("phases", {})})
        return rows

    @staticmethod
    def deployment_json(dep):
        action = {"action": dep["action"], "app": dep["app"]}
        return {"id": dep["id"], "version": dep["version"], "affectedApps": [dep["app"]],
                "affectedPods": [], "steps": [{"actions": [action]}], "currentStep": 1,
                "totalSteps": 1, "currentActions": [dict(action, readinessCheckResults=[])]}

    @staticmethod
    def plan_json(dep):
        """A plan as Marathon 1.10's events carry it (raml.DeploymentPlan)."""
        return {"id": dep["id"], "steps": [Emulator.step_json(dep)], "version": dep["version"]}

    @staticmethod
    def step_json(dep):
        return {"actions": [{"action": dep["action"], "app": dep["app"]}]}

    # --- deployments -----------------------------------------------------------------------
    def deploy(self, app_id, target, action, prev):
        """Starts a deployment taking app_id to definition target (None: remove the app). The
        action, unless given, is a restart when more than the instance count changes."""
        app = self.apps[app_id]
        if action is None:
            restart = config(target) != config(app["def"])
            action = "RestartApplication" if restart else "ScaleApplication"
        if action == "RestartApplication":   # the old tasks run until the deployment ends
            for t in app["tasks"]:
                t["old"] = True
            app["queue"] = 0
        dep = {"id": str(uuid.uuid4()), "version": target["version"] if target else
               self.new_version(), "app": app_id, "action": action, "target": target,
               "prev": prev, "deadline": time.monotonic() + self.deploy_seconds}
        self.deployments[dep["id"]] = dep
        app["deployment"] = dep["id"]
        self.event("deployment_info", plan=self.plan_json(dep), currentStep=self.step_json(dep))
        n = target["instances"] if target else 0
        if self.cluster:
            self.rescale_cluster(app, n, target is None)
        else:
            self.rescale(app_id, app, n, target)
        app["def"] = target or app["def"]
        self.snapshot()
        return dep

    def rescale(self, app_id, app, n, target):
        """Without --mesos: surplus tasks die at once (staged first), new ones stage."""
        current = [t for t in app["tasks"] if not t["old"]]
        current.sort(key=lambda t: t["state"] == "TASK_RUNNING")   # surplus: staged ones first
        surplus = current[:max(0, len(current) - n)]
        new = [self.new_task(app_id, target["version"], False) for _ in range(n - len(current))]
        app["tasks"] = [t for t in app["tasks"] if t not in surplus] + new
        for t in surplus:
            self.status(t, "TASK_KILLED")
        for t in new:
            self.status(t, "TASK_STAGING")
        self.start_pulls(target or {}, new)

    def rescale_cluster(self, app, n, remove):
        """With --mesos: the queue makes up the count; surplus goes from the queue first, then
        staged tasks, then running ones. Removing the app kills every task, old ones too."""
        current = [t for t in app["tasks"] if not t["old"] or remove]
        have = len(current) + app["queue"]
        if n >= have:
            app["queue"] += n - have
            return
        cut = min(have - n, app["queue"])
        app["queue"] -= cut
        current.sort(key=lambda t: t["state"] == "TASK_RUNNING")
        for t in current[:have - n - cut]:
            self.cluster.kill(app, t)

    def settled(self, dep):
        """Whether a deployment whose time is up is done; with --mesos, its old tasks are
        killed once the new ones run, and it is done when they are gone."""
        app = self.apps[dep["app"]]
        if not self.cluster:
            return all(map(self.started, app["tasks"]))
        if app["queue"] or any(t["state"] != "TASK_RUNNING" for t in app["tasks"]
                               if not t["old"]):
            return False
        for t in [t for t in app["tasks"] if t["old"]]:
            self.cluster.kill(app, t)
        return not any(t["appId"] == dep["app"] for t in self.cluster.dying.values())

    def tick(self):
        """Places queued instances (--mesos) and ends the deployments that are done: old tasks
        go, staged ones run."""
        if self.cluster:
            self.cluster.place()
        now = time.monotonic()
        due = [d for d in list(self.deployments.values()) if d["deadline"] <= now and
               self.settled(d)]
        for dep in due:
            del self.deployments[dep["id"]]
            app = self.apps[dep["app"]]
            for t in (t for t in app["tasks"] if t["old"] or dep["target"] is None):
                self.status(t, "TASK_KILLED")
            if dep["target"] is None:
                del self.apps[dep["app"]]
                self.event("app_terminated_event", appId=dep["app"])
            else:
                app["deployment"] = None
                app["tasks"] = [t for t in app["tasks"] if not t["old"]]
                for t in (t for t in app["tasks"] if t["state"] != "TASK_RUNNING"):
                    t["state"], t["startedAt"] = "TASK_RUNNING", iso(time.time())
                    self.status(t, "TASK_RUNNING")
            plan = self.plan_json(dep)
            self.event("deployment_step_success", plan=plan, currentStep=self.step_json(dep))
            self.event("deployment_success", id=dep["id"], plan=plan)
        if due:
            self.snapshot()

    def tick_forever(self):
        while True:
            time.sleep(0.02)
            with self.lock:
                self.tick()

    def cancel(self, dep_id, reason):
        dep = self.deployments.pop(dep_id)
        self.event("deployment_failed", id=dep["id"], plan=self.plan_json(dep), reason=reason)
        return dep

    def put_app(self, app_id, update, force):
        app = self.apps.get(app_id)
        if app is None:
            target = self.definition(app_id, {}, update, None)
            self.apps[app_id] = {"def": target, "tasks": [], "deployment": None, "queue": 0,
                                 "delay": None}
            dep = self.deploy(app_id, target, "StartApplication", None)
            return 201, dep, {"Location": f"/v2/apps{app_id}"}
        if app["deployment"] and not force:
            raise ApiError(409, {"message": LOCKED, "deployments": [{"id": app["deployment"]}]})
        old = app["def"]
        target = self.definition(app_id, old, update, old)
        cancelled = app["deployment"] and self.cancel(app["deployment"], "cancelled by a forced "
                                                      "update")
        if config(target) == config(old) and target["instances"] == old["instances"] \
                and not cancelled:   # an empty plan: done at once, never listed
            return 200, {"id": str(uuid.uuid4()), "version": old["version"]}, {}
        return 200, self.deploy(app_id, target, None, cancelled["prev"] if cancelled else old), {}

    def delete_app(self, app_id, force):
        app = self.get_app(app_id)
        if app["deployment"] and not force:
            raise ApiError(409, {"message": LOCKED, "deployments": [{"id": app["deployment"]}]})
        cancelled = app["deployment"] and self.cancel(app["deployment"], "cancelled by a forced "
                                                      "delete")
        prev = cancelled["prev"] if cancelled and cancelled["prev"] else app["def"]
        return 200, self.deploy(app_id, None, "StopApplication", prev), {}

    def delete_deployment(self, dep_id, force):
        if dep_id not in self.deployments:
            raise ApiError(404, {"message": f"DeploymentPlan {dep_id} does not exist"})
        dep = self.cancel(dep_id, "cancelled by DELETE /v2/deployments")
        self.apps[dep["app"]]["deployment"] = None
        if force:
            self.snapshot()
            return 202, None, {}
        if dep["prev"] is None:   # the app was being created: roll back by removing it
            return 200, self.deploy(dep["app"], None, "StopApplication", None), {}
        target = self.definition(dep["app"], dep["prev"], {}, self.apps[dep["app"]]["def"])
        return 200, self.deploy(dep["app"], target, None, None), {}

    def record(self, method, path, query, raw, status, log_file):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = dict(t=time.time(), method=method, path=path, query=query, body=body, status=status)
        self.requests.append(rec)
        if log_file:
            print(json.dumps(rec), file=log_file, flush=True)


def deployment_result(status, dep, headers):
    if dep is None:
        return status, None, headers
    return status, {"version": dep["version"], "deploymentId": dep["id"]}, dict(
        headers, **{"Marathon-Deployment-Id": dep["id"]})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "marathon-emu/1.10"
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits ~40 ms
    # (delayed ACK) for the second one. Marathon's server does not make clients wait like that.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):   # and PUT, POST, DELETE: see below
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        if "chunked" in self.headers.get("Transfer-Encoding", ""):   # not needed by libcurl PUTs
            self.close_connection = True
            return self.reply(411, b'{"message": "emulator: send Content-Length, not chunked"}', {})
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        emu, control = self.server.emu, path.startswith("/_emu/")
        with emu.lock:
            emu.tick()
            try:
                status, body, headers = (self.control(emu, path, raw) if control else
                                         self.api(emu, path, query, raw))
            except ApiError as e:
                status, body, headers = e.status, e.body, e.headers
            except Exception as e:  # noqa: BLE001 -- a bug or bad control input: say so, stay up
                status, body, headers = 500, {"message": f"emulator error: {e!r}"}, {}
            if not control:
                emu.record(self.command, path, url.query, raw, status, self.server.log)
            if body is not None and not isinstance(body, (str, Subscriber)):
                body = json.dumps(body).encode()   # here: the views share the state
        if isinstance(body, Subscriber):
            return self.stream(emu, body)
        self.reply(status, body, headers)

    do_PUT = do_POST = do_DELETE = do_GET

    def reply(self, status, body, headers):
        """body: None (empty), str (text/plain unless headers say) or bytes (JSON)."""
        data = body.encode() if isinstance(body, str) else body or b""
        self.send_response(status)
        if body is not None and "Content-Type" not in headers:
            self.send_header("Content-Type", "text/plain" if isinstance(body, str) else
                             "application/json")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, emu, sub):
        """The event stream, on this connection's own thread, until either side ends it."""
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream;charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            while not sub.closed:
                try:
                    frame = sub.frames.get(timeout=self.server.heartbeat)
                except queue.Empty:
                    frame = b"\r\n"   # Jetty's heartbeat; a write to a closed peer fails
                self.wfile.write(frame)
        except OSError:
            pass
        finally:
            with emu.lock:
                emu.bus.unsubscribe(sub)

    def control(self, emu, path, raw):
        views = {"/_emu/requests": lambda: emu.requests, "/_emu/history": lambda: emu.history,
                 "/_emu/apps": emu.apps_json, "/_emu/tasks": emu.emu_tasks,
                 "/_emu/agents": lambda: emu.cluster.agents_json() if emu.cluster else []}
        if self.command == "GET" and path in views:
            return 200, views[path](), {}
        if self.command == "POST" and path == "/_emu/fail":
            req = json.loads(raw or b"{}")
            emu.fail_count, emu.fail_status = int(req.get("count", 1)), int(req.get("status", 500))
            return 200, {"count": emu.fail_count, "status": emu.fail_status}, {}
        if self.command == "POST" and path == "/_emu/reset":
            emu.requests, emu.history = [], []
            emu.snapshot()
            if self.server.log:
                self.server.log.truncate(0)
            return 200, {}, {}
        raise ApiError(404, {"message": f"no control endpoint {self.command} {path}"})

    def authorized(self):
        srv, got = self.server, self.headers.get("Authorization")
        basic = srv.basic and "Basic " + base64.b64encode(srv.basic.encode()).decode()
        return got is not None and got in (basic, srv.token and "token=" + srv.token)

    def events(self, emu, query):
        if emu.bus is None:
            raise ApiError(404, {"message": "URI not found: /v2/events"})
        if "text/event-stream" not in [v.strip() for v in self.headers.get_all("Accept", [])]:
            raise ApiError(405, NOT_ACCEPTABLE, {"Content-Type": "text/html;charset=iso-8859-1"})
        return 200, emu.bus.subscribe(self.client_address[0], query.get("event_type", []),
                                      self.connection), {}

    def app_changed(self, emu, result, uri):
        """api_post_event for an accepted change of an app."""
        app = emu.apps.get("/" + uri.split("/", 3)[3])
        if app is not None:
            emu.event("api_post_event", clientIp=self.client_address[0], uri=uri,
                      appDefinition=app["def"])
        return result

    def api(self, emu, path, query, raw):
        if emu.fail_count > 0:
            emu.fail_count -= 1
            raise ApiError(emu.fail_status, {"message": f"emulated failure ({emu.fail_status})"})
        srv = self.server
        if (srv.basic or srv.token) and not self.authorized():
            challenge = 'Basic realm="Mesosphere Marathon"' if srv.basic else "acsjwt"
            raise ApiError(401, {"message": "Invalid username or password."},
                           {"WWW-Authenticate": challenge})
        force = query.get("force", ["false"])[-1] == "true"
        # The resource: /v2/apps/ID and /v2/deployments/ID become …/* with arg = ID.
        p, m = norm_id(path), self.command
        arg = p.split("/", 3)[3] if p.startswith(("/v2/apps/", "/v2/deployments/")) else ""
        resource = p[:-len(arg)] + "*" if arg else p
        if resource == "/v2/apps/*" and m == "GET" and arg.endswith("/tasks"):
            resource, arg = "/v2/apps/*/tasks", arg[:-len("/tasks")]
        app_id = "/" + arg
        info = {"name": "marathon", "version": "1.10.17", "buildref": "emulated", "elected": True,
                "leader": emu.leader, "frameworkId": FRAMEWORK_ID,
                "http_config": {"http_port": self.server.server_address[1]}}
        routes = {
            ("GET", "/ping"): lambda: (200, "pong", {}),
            ("GET", "/v2/info"): lambda: (200, info, {}),
            ("GET", "/v2/apps"): lambda: (200, emu.apps_json(), {}),
            ("GET", "/v2/apps/*"): lambda: (200, {"app": emu.app_json(emu.get_app(app_id))}, {}),
            ("GET", "/v2/apps/*/tasks"): lambda: (200, {"tasks": emu.tasks_json(
                emu.get_app(app_id))}, {}),
            ("PUT", "/v2/apps/*"): lambda: self.app_changed(emu, deployment_result(
                *emu.put_app(app_id, validate(raw), force)), p),
            ("DELETE", "/v2/apps/*"): lambda: self.app_changed(emu, deployment_result(
                *emu.delete_app(app_id, force)), p),
            ("GET", "/v2/tasks"): lambda: (200, emu.all_tasks_json(query), {}),
            ("GET", "/v2/queue"): lambda: (200, emu.queue_json(), {}),
            ("GET", "/v2/deployments"): lambda: (200, [
                emu.deployment_json(d) for d in emu.deployments.values()], {}),
            ("DELETE", "/v2/deployments/*"): lambda: deployment_result(
                *emu.delete_deployment(arg, force)),
            ("GET", "/v2/events"): lambda: self.events(emu, query),
        }
        if (m, resource) in routes:
            return routes[(m, resource)]()
        if any(r == resource for _, r in routes):
            raise ApiError(405, {"message": "HTTP 405 Method Not Allowed"})
        raise ApiError(404, {"message": f"URI not found: {path}"})


def listen_address(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not ADDR:PORT")
    return host or "0.0.0.0", int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--listen", type=listen_address, default=("127.0.0.1", 0), metavar="ADDR:PORT")
    ap.add_argument("--deploy-seconds", type=float, default=1.0)
    ap.add_argument("--basic", metavar="USER:PASS")
    ap.add_argument("--token")
    ap.add_argument("--apps", metavar="FILE")
    ap.add_argument("--log", metavar="FILE")
    ap.add_argument("--cache", metavar="URL", help="model image pull time with this cache")
    ap.add_argument("--link-mbps", type=float, default=20.0, metavar="N",
                    help="MB/s (10^6 bytes) of a pull from the remote registry (20)")
    ap.add_argument("--pull-from-cache", action="store_true",
                    help="read ready images through the cache as a node's runtime would")
    ap.add_argument("--mesos", metavar="URL", help="place real tasks on this master's agents")
    ap.add_argument("--docker-host", metavar="TEMPLATE",
                    help="an agent's docker -H, {hostname} and {id} replaced (with --mesos)")
    ap.add_argument("--docker", default="docker", metavar="PATH", help="the docker CLI (docker)")
    ap.add_argument("--no-events", action="store_true", help="no /v2/events (404)")
    ap.add_argument("--events-queue", type=int, default=1024, metavar="N",
                    help="events a subscriber may lag before it is dropped (1024)")
    ap.add_argument("--events-heartbeat", type=float, default=10.0, metavar="S",
                    help="seconds between the stream's heartbeats (10)")
    args = ap.parse_args()
    if args.link_mbps <= 0 or (args.pull_from_cache and not args.cache):
        ap.error("--link-mbps must be > 0; --pull-from-cache needs --cache")
    if args.mesos and (args.cache or not args.docker_host):
        ap.error("--mesos needs --docker-host and excludes --cache")
    if args.events_queue < 1 or args.events_heartbeat <= 0:
        ap.error("--events-queue must be >= 1, --events-heartbeat > 0")
    pull = args.cache and PullModel(args.cache, args.link_mbps, args.pull_from_cache)
    apps = json.loads(Path(args.apps).read_text(encoding="utf-8")) if args.apps else []
    srv = ThreadingHTTPServer(args.listen, Handler)
    addr, port = srv.server_address[:2]
    mesos = args.mesos and {"url": args.mesos, "docker_host": args.docker_host,
                            "docker_cli": args.docker}
    bus = None if args.no_events else EventBus(args.events_queue)
    srv.emu = Emulator(args.deploy_seconds, f"{addr}:{port}", pull or None, bus, mesos or None)
    srv.emu.load(apps)
    srv.basic, srv.token, srv.heartbeat = args.basic, args.token, args.events_heartbeat
    srv.log = open(args.log, "a", encoding="utf-8") if args.log else None
    if srv.emu.cluster:
        srv.emu.cluster.start()
    threading.Thread(target=srv.emu.tick_forever, daemon=True).start()
    stop = lambda *_: threading.Thread(target=srv.shutdown).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    Path(args.port_file + ".tmp").write_text(f"{port}\n", encoding="utf-8")
    os.replace(args.port_file + ".tmp", args.port_file)   # readers never see a partial port
    srv.serve_forever(poll_interval=0.1)
    if bus is not None:
        with srv.emu.lock:
            bus.close()
    if srv.emu.cluster:
        srv.emu.cluster.close()
    srv.server_close()


if __name__ == "__main__":
    main()
