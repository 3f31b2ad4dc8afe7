#!/usr/bin/env python3
"""A Marathon 1.x REST emulator for microscale's scaler tests, written from Marathon's documented
REST API (v1.x RAML). Standard library only; one lock guards all state. CLI: --port-file F (binds
127.0.0.1:0, writes the port when listening) --deploy-seconds S (1.0) --basic USER:PASS / --token
TOKEN (then /ping and /v2/* need Basic auth or "Authorization: token=TOKEN") --apps FILE (JSON
array of app definitions, all tasks running) --log F (a JSON line per API request).

A PUT that changes an app starts a deployment of --deploy-seconds that locks it (409 unless
?force=true, which cancels it and starts the new one from the tasks as they are). Scale (only
"instances" changed): new tasks stage at once and run at the end; surplus ones die at once,
staged first. Restart (another field changed): old tasks run until the end, new ones stage.
Create (PUT of an unknown id, 201): all stage. A PUT that changes nothing answers 200 with a
deploymentId that never shows. DELETE /v2/deployments/ID rolls back to the definition before it
(200); ?force=true only removes it (202), leaving staged tasks staged, like a stuck launch.

Test control (no auth, not logged, never failed): GET /_emu/requests [{t, method, path, query,
body, status}]; GET /_emu/history, a snapshot after every state change [{t, apps: {ID: {instances,
tasksRunning, tasksStaged}}}]; GET /_emu/apps as GET /v2/apps; POST /_emu/fail {"count": N,
"status": S}: the next N API requests answer S; POST /_emu/reset clears requests, history (which
restarts with the current state) and --log.

Pull time (--cache URL, --link-mbps N): a new task of an app with container.docker.image stays
staged while its image "pulls" on its node. A thread asks the cache (GET
URL/_microscale/v1/ready?ref=IMAGE, 2 s timeout, off the lock so other requests never wait on
it): ready, the task runs when its deployment's time is up, as without --cache; otherwise it
stays staged for BYTES / N MB/s from its staging, BYTES being the answer's bytes_total when it
is known, else the app's label MICROSCALE_IMAGE_BYTES (0 when neither: no wait), and then for
--deploy-seconds more, as the container starts only once its image is on the node. A deployment
ends when its time is up and all its tasks have pulled and started. --pull-from-cache: a ready image is also
read through the cache (manifest, config and layers, bytes discarded) as the node's runtime
would, and the task runs no sooner than that read ends.
"""
import argparse
import base64
import json
import os
import signal
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

LOCKED = ("App is locked by one or more deployments. Override with the option '?force=true'. "
          "View details at '/v2/deployments/<DEPLOYMENT_ID>'.")
# Fields Marathon fills in for an app definition that leaves them out.
DEFAULTS = {"instances": 1, "cpus": 1.0, "mem": 128.0, "disk": 0.0, "gpus": 0, "cmd": None,
            "env": {}, "labels": {}, "constraints": [], "healthChecks": [], "backoffSeconds": 1,
            "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}}
GENERATED = {"id", "version", "versionInfo"}   # never taken from a request body
INTERNAL = {"old", "starts_at"}                  # task fields the API never shows
IMAGE_BYTES_LABEL = "MICROSCALE_IMAGE_BYTES"     # an image's size when the cache does not know it
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"])


class ApiError(Exception):
    def __init__(self, status, body, headers=None):
        self.status, self.body, self.headers = status, body, headers or {}


def iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def norm_id(raw):   # 'demo/x/', '/demo//x' -> '/demo/x'
    return "/" + "/".join(p for p in raw.split("/") if p)


def config(d):   # what a restart changes: everything but the instance count
    return {k: v for k, v in d.items() if k not in GENERATED | {"instances"}}


def counts(app):
    running = sum(t["state"] == "TASK_RUNNING" for t in app["tasks"])
    return {"tasksRunning": running, "tasksStaged": len(app["tasks"]) - running}


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
            print(f"emulator: reading {image} through the cache failed: {e!r}", flush=True)

    def get(self, url, keep):
        """GET url, keeping at most keep bytes of the body (a manifest), discarding the rest."""
        req = urllib.request.Request(url, headers={"Accept": MANIFEST_ACCEPT})
        kept = b""
        with self.http.open(req, timeout=30) as r:
            while chunk := r.read(1 << 20):
                kept += chunk[:max(0, keep - len(kept))]
        return kept


class Emulator:
    """All of Marathon's state. Callers hold self.lock (tick_forever takes it itself)."""

    def __init__(self, deploy_seconds, apps, leader, pull=None):
        self.lock = threading.Lock()
        self.deploy_seconds, self.leader, self.pull = deploy_seconds, leader, pull
        self.apps = {}          # id -> {"def": definition, "tasks": [task], "deployment": id|None}
        self.deployments = {}   # id -> {id, version, app, action, deadline, target, prev}
        self.requests, self.history = [], []
        self.fail_count, self.fail_status, self.last_version = 0, 500, 0.0
        for d in map(validate, apps):
            app_id = norm_id(d.get("id", ""))
            definition = self.definition(app_id, {}, d, None)
            tasks = [self.new_task(app_id, definition["version"], True)
                     for _ in range(definition["instances"])]
            self.apps[app_id] = {"def": definition, "tasks": tasks, "deployment": None}
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

    @staticmethod
    def deployment_json(dep):
        action = {"action": dep["action"], "app": dep["app"]}
        return {"id": dep["id"], "version": dep["version"], "affectedApps": [dep["app"]],
                "affectedPods": [], "steps": [{"actions": [action]}], "currentStep": 1,
                "totalSteps": 1, "currentActions": [dict(action, readinessCheckResults=[])]}

    # --- deployments -----------------------------------------------------------------------
    def deploy(self, app_id, target, action, prev):
        """Starts a deployment taking app_id to definition target (None: remove the app). The
        action, unless given, is a restart when more than the instance count changes."""
        app = self.apps[app_id]
        if action is None:
            restart = config(target) != config(app["def"])
            action = "RestartApplication" if restart else "ScaleApplication"
        current = [t for t in app["tasks"] if not t["old"]]
        if action == "RestartApplication":   # the old tasks run until the deployment ends
            for t in current:
                t["old"] = True
            current = []
        n = target["instances"] if target else 0
        current.sort(key=lambda t: t["state"] == "TASK_RUNNING")   # surplus: staged ones first
        surplus = current[:max(0, len(current) - n)]
        new = [self.new_task(app_id, target["version"], False) for _ in range(n - len(current))]
        app["tasks"] = [t for t in app["tasks"] if t not in surplus] + new
        self.start_pulls(target or {}, new)
        app["def"] = target or app["def"]
        dep = {"id": str(uuid.uuid4()), "version": target["version"] if target else
               self.new_version(), "app": app_id, "action": action, "target": target,
               "prev": prev, "deadline": time.monotonic() + self.deploy_seconds}
        self.deployments[dep["id"]] = dep
        app["deployment"] = dep["id"]
        self.snapshot()
        return dep

    def tick(self):
        """Ends the deployments whose time is up and whose new tasks have pulled their image and
        started:
        old tasks go, staged ones run."""
        due = [d for d in self.deployments.values() if d["deadline"] <= time.monotonic() and
               all(map(self.started, self.apps[d["app"]]["tasks"]))]
        for dep in due:
            del self.deployments[dep["id"]]
            if dep["target"] is None:
                del self.apps[dep["app"]]
                continue
            app = self.apps[dep["app"]]
            app["deployment"] = None
            app["tasks"] = [t for t in app["tasks"] if not t["old"]]
            for t in (t for t in app["tasks"] if t["state"] != "TASK_RUNNING"):
                t["state"], t["startedAt"] = "TASK_RUNNING", iso(time.time())
        if due:
            self.snapshot()

    def tick_forever(self):
        while True:
            time.sleep(0.02)
            with self.lock:
                self.tick()

    def put_app(self, app_id, update, force):
        app = self.apps.get(app_id)
        if app is None:
            target = self.definition(app_id, {}, update, None)
            self.apps[app_id] = {"def": target, "tasks": [], "deployment": None}
            dep = self.deploy(app_id, target, "StartApplication", None)
            return 201, dep, {"Location": f"/v2/apps{app_id}"}
        if app["deployment"] and not force:
            raise ApiError(409, {"message": LOCKED, "deployments": [{"id": app["deployment"]}]})
        old = app["def"]
        target = self.definition(app_id, old, update, old)
        cancelled = self.deployments.pop(app["deployment"], None) if app["deployment"] else None
        if config(target) == config(old) and target["instances"] == old["instances"] \
                and not cancelled:   # an empty plan: done at once, never listed
            return 200, {"id": str(uuid.uuid4()), "version": old["version"]}, {}
        return 200, self.deploy(app_id, target, None, cancelled["prev"] if cancelled else old), {}

    def delete_deployment(self, dep_id, force):
        dep = self.deployments.pop(dep_id, None)
        if dep is None:
            raise ApiError(404, {"message": f"DeploymentPlan {dep_id} does not exist"})
        self.apps[dep["app"]]["deployment"] = None
        if force:
            self.snapshot()
            return 202, None, {}
        if dep["prev"] is None:   # the app was being created: roll back by removing it
            return 200, self.deploy(dep["app"], None, "StopApplication", None), {}
        target = self.definition(dep["app"], dep["prev"], {}, self.apps[dep["app"]]["def"])
        return 200, self.deploy(dep["app"], target, None, None), {}

    def record(self, method, path, query, raw, status, log):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = dict(t=time.time(), method=method, path=path, query=query, body=body, status=status)
        self.requests.append(rec)
        if log:
            print(json.dumps(rec), file=log, flush=True)


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
            if body is not None and not isinstance(body, str):
                body = json.dumps(body).encode()   # here: the views share the state
        self.reply(status, body, headers)

    do_PUT = do_POST = do_DELETE = do_GET

    def reply(self, status, body, headers):
        """body: None (empty), str (text/plain) or bytes (JSON)."""
        data = body.encode() if isinstance(body, str) else body or b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "text/plain" if isinstance(body, str) else
                             "application/json")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def control(self, emu, path, raw):
        views = {"/_emu/requests": lambda: emu.requests, "/_emu/history": lambda: emu.history,
                 "/_emu/apps": emu.apps_json}
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
                "leader": emu.leader, "frameworkId": "0f6b7c0e-e3a1-4a7e-9d6b-0123456789ab-0000",
                "http_config": {"http_port": self.server.server_address[1]}}
        routes = {
            ("GET", "/ping"): lambda: (200, "pong", {}),
            ("GET", "/v2/info"): lambda: (200, info, {}),
            ("GET", "/v2/apps"): lambda: (200, emu.apps_json(), {}),
            ("GET", "/v2/apps/*"): lambda: (200, {"app": emu.app_json(emu.get_app(app_id))}, {}),
            ("GET", "/v2/apps/*/tasks"): lambda: (200, {"tasks": emu.tasks_json(
                emu.get_app(app_id))}, {}),
            ("PUT", "/v2/apps/*"): lambda: deployment_result(
                *emu.put_app(app_id, validate(raw), force)),
            ("GET", "/v2/deployments"): lambda: (200, [
                emu.deployment_json(d) for d in emu.deployments.values()], {}),
            ("DELETE", "/v2/deployments/*"): lambda: deployment_result(
                *emu.delete_deployment(arg, force)),
        }
        if (m, resource) in routes:
            return routes[(m, resource)]()
        if any(r == resource for _, r in routes):
            raise ApiError(405, {"message": "HTTP 405 Method Not Allowed"})
        raise ApiError(404, {"message": f"URI not found: {path}"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port-file", required=True)
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
    args = ap.parse_args()
    if args.link_mbps <= 0 or (args.pull_from_cache and not args.cache):
        ap.error("--link-mbps must be > 0; --pull-from-cache needs --cache")
    pull = args.cache and PullModel(args.cache, args.link_mbps, args.pull_from_cache)
    apps = json.loads(Path(args.apps).read_text(encoding="utf-8")) if args.apps else []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = srv.server_address[1]
    srv.emu = Emulator(args.deploy_seconds, apps, f"127.0.0.1:{port}", pull or None)
    srv.basic, srv.token = args.basic, args.token
    srv.log = open(args.log, "a", encoding="utf-8") if args.log else None
    threading.Thread(target=srv.emu.tick_forever, daemon=True).start()
    stop = lambda *_: threading.Thread(target=srv.shutdown).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    Path(args.port_file + ".tmp").write_text(f"{port}\n", encoding="utf-8")
    os.replace(args.port_file + ".tmp", args.port_file)   # readers never see a partial port
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()


if __name__ == "__main__":
    main()
