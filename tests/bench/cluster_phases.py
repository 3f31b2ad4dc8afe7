#!/usr/bin/env python3
"""The figures of one scale-up on the cluster (tests/bench/steps_cluster.sh), from the Marathon
emulator's tasks (GET /_emu/tasks) and requests (GET /_emu/requests) and the agents' dockerd
logs at level debug. Standard library only.

    cluster_phases.py --t0 EPOCH --app ID --tasks FILE --requests FILE
                      [--dockerd HOST=LOG:LINES]...

Prints "NAME VALUE" lines, in seconds unless said:
  capacity      from t0 (the demand step) to the last of the app's tasks reaching TASK_RUNNING
  staged        task-seconds spent staged: each task's time from staging to running (or to its
                end, or to now), summed over every task of the app, failed ones included
  tasks         how many tasks the app had (count)
and the phases of the critical task, the one that ran last, on its agent:
  demand_put    t0 to the first PUT Marathon accepted (the scaler's tick; the gate's hold)
  put_staged    to the task's staging (placement)
  staged_pull   to the start of its docker pull (docker image inspect), or to docker run
  manifest      dockerd: "Trying to pull" to "Pulling ref from V2 registry"
  layer_fetch   dockerd: the first "pulling blob" to the last "Downloaded"
  unpack        dockerd: the last "Downloaded" to the last "Applied tar"
  pull_run      the end of the task's docker pull to docker run
  start         docker run to TASK_RUNNING (the container start)
The dockerd phases are the first pull on that agent after line LINES of its log: the task's
own pull, or in "microscale cold" the cache's runtime pull during the gate's hold (they then lie
within demand_put). A phase that did not happen is 0.
"""
import argparse
import json
import re
import sys
import time
from datetime import datetime, timezone

TIME = re.compile(r'^time="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z"')


def stamp(line):
    """The epoch seconds of a dockerd log line (time="…Z", up to nanoseconds), else None."""
    m = TIME.match(line)
    if not m:
        return None
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return base.timestamp() + float("0." + (m.group(2) or "0"))


def pull_phases(path, skip):
    """manifest, layer_fetch, unpack of the first pull in the log after `skip` lines."""
    seen = {}
    with open(path, errors="replace") as f:
        for i, line in enumerate(f):
            if i < skip:
                continue
            t = stamp(line)
            if t is None:
                continue
            if "Trying to pull" in line:
                seen.setdefault("trying", t)
            elif "Pulling ref from V2 registry" in line:
                seen.setdefault("ref", t)
            elif 'msg="pulling blob' in line:
                seen.setdefault("blob", t)
            elif 'msg="Downloaded ' in line:
                seen["downloaded"] = t
            elif 'msg="Applied tar ' in line:
                seen["applied"] = t
    def span(a, b):
        return max(0.0, seen[b] - seen[a]) if a in seen and b in seen else 0.0
    return {"manifest": span("trying", "ref"), "layer_fetch": span("blob", "downloaded"),
            "unpack": span("downloaded", "applied")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--t0", type=float, required=True)
    ap.add_argument("--app", required=True)
    ap.add_argument("--tasks", required=True)
    ap.add_argument("--requests", required=True)
    ap.add_argument("--dockerd", action="append", default=[], metavar="HOST=LOG:LINES")
    args = ap.parse_args()
    with open(args.tasks) as f:
        tasks = [t for t in json.load(f) if t.get("appId") == args.app]
    with open(args.requests) as f:
        puts = [r["t"] for r in json.load(f) if r.get("method") == "PUT" and
                r.get("path") == "/v2/apps" + args.app and r.get("status") == 200]
    logs = {}
    for d in args.dockerd:
        host, _, rest = d.partition("=")
        path, _, lines = rest.rpartition(":")
        logs[host] = (path, int(lines))

    now = time.time()
    staged = 0.0
    for t in tasks:
        p = t.get("phases") or {}
        if "staged" in p:
            staged += max(0.0, (p.get("running") or p.get("ended") or now) - p["staged"])
    running = [t for t in tasks if t.get("state") == "TASK_RUNNING"]
    if not running or not puts:
        print("cluster_phases: no running task or no accepted PUT for " + args.app,
              file=sys.stderr)
        return 1
    crit = max(running, key=lambda t: t["phases"]["running"])
    p, put = crit["phases"], min(puts)
    pulled = "pull_start" in p
    out = {"capacity": p["running"] - args.t0, "staged": staged, "tasks": len(tasks),
           "demand_put": put - args.t0, "put_staged": p["staged"] - put,
           "staged_pull": (p["pull_start"] if pulled else p["run_start"]) - p["staged"],
           "manifest": 0.0, "layer_fetch": 0.0, "unpack": 0.0,
           "pull_run": p["run_start"] - p["pull_end"] if pulled else 0.0,
           "start": p["running"] - p["run_start"]}
    if crit["host"] in logs:
        out.update(pull_phases(*logs[crit["host"]]))
    for k, v in out.items():
        print(k, v if isinstance(v, int) else f"{v:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
