#!/usr/bin/env python3
"""A Mesos master emulator for microscale's cluster on one machine, written from Mesos' documented
HTTP endpoints (docs/endpoints/master/slaves.md, state.md, health.md, redirect.md). Standard
library only; one lock guards all state. It registers no real agents: the cluster script tells
it which agents exist, and the Marathon emulator (as the framework) which tasks run where.

    mesos_emu.py --listen ADDR:PORT --port-file F [--log F] [--basic USER:PASS]

--listen: PORT 0 lets the kernel pick; the port is written to --port-file (atomically) once
listening. --log: a JSON line per API request {t, method, path, query, status}. --basic: the API
(all but /health and /master/redirect, as in Mesos) needs HTTP Basic with these credentials, else
401 with `WWW-Authenticate: Basic realm="mesos"`. SIGTERM/SIGINT exit 0.

API (GET only; another method is 405):
  /master/slaves, /slaves [?slave_id=ID]
      {"slaves": [AGENT], "recovered_slaves": []}. AGENT: id, pid ("slave(1)@HOSTNAME:PORT"),
      hostname, port, registered_time (and reregistered_time after a re-registration), version,
      active (false once deactivated; "deactivated" says the same the other way round),
      attributes, resources {cpus, mem, disk, gpus, ports}, used_resources (the sum of its live
      tasks' resources), offered_resources (none: this master makes no offers),
      reserved_resources ({}: no roles), unreserved_resources (= resources), capabilities.
      Removed agents are gone.
  /master/state, /state
      version, id, pid, hostname, leader, leader_info, start_time, elected_time,
      activated_slaves, deactivated_slaves, unreachable_slaves, flags, slaves (as above),
      frameworks [{id, name, active, role, registered_time, resources, used_resources,
      offered_resources, tasks [TASK], completed_tasks [TASK]}], completed_frameworks,
      orphan_tasks, unregistered_frameworks. TASK: id, name, framework_id, executor_id,
      slave_id, state, resources, statuses [{state, timestamp}], role.
  /health: 200, empty.   /master/redirect[/PATH]: 307 to //HOSTNAME:PORT[/PATH] (the leader:
  this master).

Test control (no auth, never logged, never failed), JSON:
  POST   /_emu/agents {hostname, port (5051), attributes ({}), resources, id?, version?}
         -> 201 {"id"}. An id this master knows re-registers that agent (200, active again,
         tasks kept); an unknown id is taken as given; without one it is <master id>-S<n>.
         A new agent on another agent's hostname:port replaces it (as a new agent process on
         the same address would). resources default {cpus 1, mem 1024, disk 10000, gpus 0,
         ports "[31000-32000]"}.
  POST   /_emu/agents/ID/deactivate, /_emu/agents/ID/activate -> 200 {"id", "active"}
  DELETE /_emu/agents/ID -> 200 {"id"}: the agent is gone; its live tasks become TASK_LOST
         completed tasks (the framework notices the agent missing from /master/slaves).
  GET    /_emu/agents -> {"agents": [AGENT + "tasks": N live]}
  POST   /_emu/tasks {id, agent_id (or slave_id), framework_id (<master id>-0000), name,
         state (TASK_STAGING), resources {cpus, mem, disk, gpus}, framework_name ("marathon")}
         -> 201 new / 200 updated. An upsert: also how states change. A terminal state moves
         the task to its framework's completed_tasks. 404 when the agent is unknown, 400 for
         an unknown state.
  DELETE /_emu/tasks/ID -> 200; 404 unknown.   GET /_emu/tasks -> {"tasks": [TASK]}
  GET    /_emu/requests -> [{t, method, path, query, status}] (the last 10000)
  POST   /_emu/fail {"count": N, "status": S}: the next N API requests answer S (empty body).
  Errors: {"message": "…"} with 400/404/405.
"""
import argparse
import base64
import collections
import json
import os
import re
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

VERSION = "1.11.0"
# Task states whose resources the agent still holds (Mesos counts them in used_resources).
LIVE = {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"}
TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
            "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR"}
SCALARS = ("cpus", "mem", "disk", "gpus")
DEFAULT_RESOURCES = {"cpus": 1.0, "mem": 1024.0, "disk": 10000.0, "gpus": 0.0,
                     "ports": "[31000-32000]"}
PORTS_RE = re.compile(r"^\[\d+-\d+(, ?\d+-\d+)*\]$")
COMPLETED_MAX = 1000   # completed tasks kept per framework, as Mesos bounds them too
REQUESTS_MAX = 10000
STATUSES_MAX = 10


class ApiError(Exception):
    def __init__(self, status, body=None, headers=None):
        self.status, self.body, self.headers = status, body, headers or {}


def bad(msg):
    return ApiError(400, {"message": msg})


def resources(raw, default):
    """Validated resources: scalars as floats, ports as Mesos' range string."""
    if raw is None:
        raw = default
    if not isinstance(raw, dict):
        raise bad("resources must be an object")
    out = {}
    for k in SCALARS:
        v = raw.get(k, default.get(k, 0.0))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise bad(f"resources.{k} must be a number >= 0")
        out[k] = float(v)
    ports = raw.get("ports", default.get("ports"))
    if ports is not None:
        if not isinstance(ports, str) or not PORTS_RE.match(ports):
            raise bad('resources.ports must be a range string like "[31000-31999]"')
        out["ports"] = ports
    unknown = set(raw) - set(SCALARS) - {"ports"}
    if unknown:
        raise bad(f"unknown resources: {sorted(unknown)}")
    return out


def scalar_sum(items):
    total = dict.fromkeys(SCALARS, 0.0)
    for r in items:
        for k in SCALARS:
            total[k] += r.get(k, 0.0)
    return total


class Master:
    """The master's state. Every method is called with the lock held."""

    def __init__(self, host, port):
        self.lock = threading.Lock()
        self.id = str(uuid.uuid4())
        self.host, self.port = host, port
        self.pid = f"master@{host}:{port}"
        self.start_time = time.time()
        self.agents = collections.OrderedDict()   # id -> agent dict (internal form)
        self.next_agent = 0
        self.tasks = collections.OrderedDict()    # id -> task dict (live tasks)
        self.frameworks = collections.OrderedDict()  # id -> {id, name, registered_time, done}
        self.requests = collections.deque(maxlen=REQUESTS_MAX)
        self.fail_count, self.fail_status = 0, 503

    # --- agents -----------------------------------------------------------------------------

    def add_agent(self, req):
        hostname, port = req.get("hostname"), req.get("port", 5051)
        if not isinstance(hostname, str) or not hostname:
            raise bad("hostname is required")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise bad("port must be a TCP port number")
        attrs = req.get("attributes", {})
        if not isinstance(attrs, dict) or not all(
                isinstance(v, (str, int, float)) and not isinstance(v, bool)
                for v in attrs.values()):
            raise bad("attributes must be an object of strings and numbers")
        res = resources(req.get("resources"), DEFAULT_RESOURCES)
        aid, now = req.get("id"), time.time()
        if aid is not None and (not isinstance(aid, str) or not aid or "/" in aid):
            raise bad("id must be a non-empty string without '/'")
        if aid in self.agents:   # the same agent registering again
            a = self.agents[aid]
            a.update(hostname=hostname, port=port, attributes=attrs, resources=res,
                     active=True, reregistered_time=now)
            return 200, {"id": aid}
        for other in [a for a in self.agents.values()
                      if (a["hostname"], a["port"]) == (hostname, port)]:
            self.remove_agent(other["id"])
        if aid is None:
            aid = f"{self.id}-S{self.next_agent}"
            self.next_agent += 1
        self.agents[aid] = {"id": aid, "hostname": hostname, "port": port, "attributes": attrs,
                            "resources": res, "active": True, "registered_time": now,
                            "version": req.get("version", VERSION)}
        return 201, {"id": aid}

    def agent(self, aid):
        if aid not in self.agents:
            raise ApiError(404, {"message": f"no agent {aid}"})
        return self.agents[aid]

    def set_active(self, aid, active):
        self.agent(aid)["active"] = active
        return 200, {"id": aid, "active": active}

    def remove_agent(self, aid):
        self.agent(aid)
        for t in [t for t in self.tasks.values() if t["slave_id"] == aid]:
            self.set_state(t, "TASK_LOST")
        del self.agents[aid]
        return 200, {"id": aid}

    def agent_json(self, a):
        res = a["resources"]
        used = scalar_sum(t["resources"] for t in self.tasks.values()
                          if t["slave_id"] == a["id"])
        j = {"id": a["id"], "pid": f"slave(1)@{a['hostname']}:{a['port']}",
             "hostname": a["hostname"], "port": a["port"],
             "registered_time": a["registered_time"], "version": a["version"],
             "active": a["active"], "deactivated": not a["active"],
             "attributes": a["attributes"], "resources": dict(res), "used_resources": used,
             "offered_resources": dict.fromkeys(SCALARS, 0.0), "reserved_resources": {},
             "unreserved_resources": dict(res),
             "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"]}
        if "reregistered_time" in a:
            j["reregistered_time"] = a["reregistered_time"]
        return j

    def slaves_json(self, query):
        want = query.get("slave_id", [None])[-1]
        return {"slaves": [self.agent_json(a) for a in self.agents.values()
                           if want is None or a["id"] == want],
                "recovered_slaves": []}

    # --- tasks ------------------------------------------------------------------------------

    def upsert_task(self, req):
        tid = req.get("id")
        if not isinstance(tid, str) or not tid:
            raise bad("id is required")
        old = self.tasks.get(tid)
        aid = req.get("agent_id", req.get("slave_id", old and old["slave_id"]))
        if aid not in self.agents:
            raise ApiError(404, {"message": f"no agent {aid}"})
        state = req.get("state", old["state"] if old else "TASK_STAGING")
        if state not in LIVE | TERMINAL:
            raise bad(f"unknown task state {state!r}")
        fid = req.get("framework_id", old["framework_id"] if old else f"{self.id}-0000")
        if fid not in self.frameworks:
            self.frameworks[fid] = {"id": fid, "name": req.get("framework_name", "marathon"),
                                    "registered_time": time.time(),
                                    "done": collections.deque(maxlen=COMPLETED_MAX)}
        res = resources(req.get("resources"), old["resources"] if old else {})
        res.pop("ports", None)
        t = old or {"id": tid, "executor_id": "", "role": "*", "statuses": []}
        t.update(name=req.get("name", old["name"] if old else tid), framework_id=fid,
                 slave_id=aid, resources=res)
        self.tasks[tid] = t
        self.set_state(t, state)
        return (200 if old else 201), {"id": tid, "state": state}

    def set_state(self, t, state):
        """Records a state change; a terminal one moves the task to the completed ones."""
        if not t["statuses"] or t["statuses"][-1]["state"] != state:
            t["statuses"] = (t["statuses"] + [{"state": state, "timestamp": time.time()}]
                             )[-STATUSES_MAX:]
        t["state"] = state
        if state in TERMINAL:
            self.tasks.pop(t["id"], None)
            self.frameworks[t["framework_id"]]["done"].append(t)

    def delete_task(self, tid):
        if self.tasks.pop(tid, None) is None:
            raise ApiError(404, {"message": f"no task {tid}"})
        return 200, {"id": tid}

    @staticmethod
    def task_json(t):
        return {k: t[k] for k in ("id", "name", "framework_id", "executor_id", "slave_id",
                                  "state", "resources", "statuses", "role")}

    # --- the whole state --------------------------------------------------------------------

    def framework_json(self, f):
        tasks = [t for t in self.tasks.values() if t["framework_id"] == f["id"]]
        used = scalar_sum(t["resources"] for t in tasks)
        return {"id": f["id"], "name": f["name"], "active": True, "connected": True,
                "role": "*", "user": "root", "hostname": self.host,
                "registered_time": f["registered_time"], "resources": used,
                "used_resources": used, "offered_resources": dict.fromkeys(SCALARS, 0.0),
                "offers": [], "executors": [], "tasks": [self.task_json(t) for t in tasks],
                "completed_tasks": [self.task_json(t) for t in f["done"]]}

    def state_json(self, basic):
        active = sum(a["active"] for a in self.agents.values())
        return {"version": VERSION, "git_sha": "emulated", "build_user": "microscale",
                "start_time": self.start_time, "elected_time": self.start_time,
                "id": self.id, "pid": self.pid, "hostname": self.host, "leader": self.pid,
                "leader_info": {"id": self.id, "pid": self.pid, "hostname": self.host,
                                "port": self.port},
                "activated_slaves": active, "deactivated_slaves": len(self.agents) - active,
                "unreachable_slaves": 0,
                "flags": {"authenticate_http_readonly": str(basic).lower(),
                          "http_authenticators": "basic", "port": str(self.port),
                          "hostname": self.host},
                "slaves": [self.agent_json(a) for a in self.agents.values()],
                "frameworks": [self.framework_json(f) for f in self.frameworks.values()],
                "completed_frameworks": [], "orphan_tasks": [], "unregistered_frameworks": []}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mesos-emu/" + VERSION
    disable_nagle_algorithm = True   # headers and body are two writes; see marathon_emu.py

    def log_message(self, *args):
        pass

    def do_GET(self):   # and POST, PUT, DELETE: see below
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        master, control = self.server.master, path.startswith("/_emu/")
        with master.lock:
            try:
                status, body, headers = (self.control(master, path, raw) if control else
                                         self.api(master, path, query))
            except ApiError as e:
                status, body, headers = e.status, e.body, e.headers
            except Exception as e:  # noqa: BLE001 -- a bug or bad control input: say so, stay up
                status, body, headers = 500, {"message": f"emulator error: {e!r}"}, {}
            if not control:
                self.record(master, path, url.query, status)
            data = b"" if body is None else json.dumps(body).encode()
        self.reply(status, data, headers)

    do_POST = do_PUT = do_DELETE = do_GET

    def reply(self, status, data, headers):
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, master, path, query, status):
        entry = {"t": time.time(), "method": self.command, "path": path, "query": query,
                 "status": status}
        master.requests.append(entry)
        if self.server.log:
            self.server.log.write(json.dumps(entry) + "\n")
            self.server.log.flush()

    def authorized(self):
        want = "Basic " + base64.b64encode(self.server.basic.encode()).decode()
        return self.headers.get("Authorization") == want

    def api(self, master, path, query):
        if master.fail_count > 0:
            master.fail_count -= 1
            raise ApiError(master.fail_status)
        if path == "/health" or path.startswith("/master/redirect"):
            if self.command != "GET":
                raise ApiError(405, {"message": "Expecting 'GET', received " + self.command})
            if path == "/health":
                return 200, None, {}
            rest = path[len("/master/redirect"):]
            return 307, None, {"Location": f"//{master.host}:{master.port}{rest}"}
        routes = {"/master/slaves": lambda: master.slaves_json(query),
                  "/master/state": lambda: master.state_json(bool(self.server.basic))}
        key = path if path.startswith("/master/") else "/master" + path
        if key not in routes:
            raise ApiError(404, {"message": f"no endpoint {path}"})
        if self.server.basic and not self.authorized():
            raise ApiError(401, None, {"WWW-Authenticate": 'Basic realm="mesos"'})
        if self.command != "GET":
            raise ApiError(405, {"message": "Expecting 'GET', received " + self.command})
        return 200, routes[key](), {}

    def control(self, master, path, raw):
        try:
            req = json.loads(raw) if raw else {}
        except ValueError as e:
            raise bad(f"body is not JSON: {e}") from None
        if not isinstance(req, dict):
            raise bad("body must be a JSON object")
        m, parts = self.command, path.strip("/").split("/")   # ["_emu", "agents", ID, VERB]
        if m == "GET" and path == "/_emu/agents":
            return 200, {"agents": [dict(master.agent_json(a), tasks=sum(
                t["slave_id"] == a["id"] for t in master.tasks.values()))
                for a in master.agents.values()]}, {}
        if m == "POST" and path == "/_emu/agents":
            return (*master.add_agent(req), {})
        if parts[:2] == ["_emu", "agents"] and len(parts) == 4 and m == "POST" and \
                parts[3] in ("activate", "deactivate"):
            return (*master.set_active(parts[2], parts[3] == "activate"), {})
        if parts[:2] == ["_emu", "agents"] and len(parts) == 3 and m == "DELETE":
            return (*master.remove_agent(parts[2]), {})
        if m == "GET" and path == "/_emu/tasks":
            return 200, {"tasks": [master.task_json(t) for t in master.tasks.values()]}, {}
        if m == "POST" and path == "/_emu/tasks":
            return (*master.upsert_task(req), {})
        if parts[:2] == ["_emu", "tasks"] and len(parts) == 3 and m == "DELETE":
            return (*master.delete_task(parts[2]), {})
        if m == "GET" and path == "/_emu/requests":
            return 200, list(master.requests), {}
        if m == "POST" and path == "/_emu/fail":
            master.fail_count = int(req.get("count", 1))
            master.fail_status = int(req.get("status", 503))
            return 200, {"count": master.fail_count, "status": master.fail_status}, {}
        raise ApiError(404, {"message": f"no control endpoint {m} {path}"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0", metavar="ADDR:PORT")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", metavar="FILE")
    ap.add_argument("--basic", metavar="USER:PASS")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit() or (args.basic is not None and ":" not in args.basic):
        ap.error("--listen wants ADDR:PORT, --basic USER:PASS")
    srv = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
    srv.daemon_threads = True
    srv.master = Master(host.strip("[]"), srv.server_address[1])
    srv.basic = args.basic
    srv.log = open(args.log, "a", encoding="utf-8") if args.log else None
    stop = lambda *_: threading.Thread(target=srv.shutdown).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    Path(args.port_file + ".tmp").write_text(f"{srv.server_address[1]}\n", encoding="utf-8")
    os.replace(args.port_file + ".tmp", args.port_file)   # readers never see a partial port
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()


if __name__ == "__main__":
    main()
