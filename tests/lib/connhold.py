#!/usr/bin/env python3
"""Holds many connections to a server at once, from one process, for resource-limit tests.

    connhold.py --port P --idle N --slow M --seconds S --ready FILE --out FILE [--reconnect]
                [--request PATH]

Opens N idle connections (they never send a byte) and M slowloris connections (they send a
request head one byte a second and never finish it), writes FILE (--ready) once all are
connected, then watches them for S seconds. A slowloris connection the server closes is opened
again at once, so M stay present; with --reconnect idle ones are too. With --request an idle
connection first sends one GET of PATH and reads its whole answer (Content-Length framed), so it
is held as a keep-alive connection that has served a request. --out gets JSON:
  idle_connected, idle_closed: counts; idle_close_s: for each closed idle connection, seconds
  from its connect to the server's EOF; slow_closed, slow_close_s: the same for slowloris ones,
  from their first byte; slow_bytes_sent; refused: connects (or --request answers) that failed;
  data: bytes the server sent (an error page before closing is fine)."""
import argparse
import json
import re
import selectors
import socket
import time

HEAD = b"GET /v2/ HTTP/1.1\r\nHost: slowloris\r\n" + b"X-Slow: " + b"a" * 4096


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--idle", type=int, default=0)
    ap.add_argument("--slow", type=int, default=0)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reconnect", action="store_true")
    ap.add_argument("--request")
    a = ap.parse_args()
    sel = selectors.DefaultSelector()
    res = {"idle_connected": 0, "idle_closed": 0, "idle_close_s": [], "slow_closed": 0,
           "slow_close_s": [], "slow_bytes_sent": 0, "refused": 0, "data": 0}

    def recv_more(s, buf):
        data = s.recv(65536)
        if not data:
            raise OSError("closed before the answer ended")
        return buf + data

    def request(s):  # one GET, its answer read to its last byte
        s.sendall(b"GET " + a.request.encode() + b" HTTP/1.1\r\nHost: connhold\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf = recv_more(s, buf)
        head = buf.split(b"\r\n\r\n", 1)[0]
        m = re.search(rb"(?im)^content-length: *(\d+)", head)
        while len(buf) < len(head) + 4 + (int(m.group(1)) if m else 0):
            buf = recv_more(s, buf)
        res["data"] += len(buf)

    def connect(kind):
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
            if kind == "idle" and a.request:
                request(s)
        except OSError:
            res["refused"] += 1
            return
        s.setblocking(False)
        st = {"kind": kind, "t": time.monotonic(), "sent": 0, "first": None}
        sel.register(s, selectors.EVENT_READ, st)
        if kind == "idle":
            res["idle_connected"] += 1

    for _ in range(a.idle):
        connect("idle")
    for _ in range(a.slow):
        connect("slow")
    with open(a.ready, "w", encoding="utf-8") as f:
        f.write("ready\n")
    end = time.monotonic() + a.seconds
    next_byte = time.monotonic()
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_byte:  # one more head byte on every slowloris connection
            next_byte = now + 1.0
            for key in list(sel.get_map().values()):
                st = key.data
                if st["kind"] != "slow" or st["sent"] >= len(HEAD):
                    continue
                try:
                    key.fileobj.send(HEAD[st["sent"]:st["sent"] + 1])
                    st["sent"] += 1
                    res["slow_bytes_sent"] += 1
                    if st["first"] is None:
                        st["first"] = now
                except OSError:
                    pass  # the read side sees the close
        for key, _ in sel.select(timeout=max(0.0, min(next_byte, end) - time.monotonic())):
            s, st = key.fileobj, key.data
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                res["data"] += len(data)
                continue
            t = time.monotonic()
            sel.unregister(s)
            s.close()
            if st["kind"] == "idle":
                res["idle_closed"] += 1
                res["idle_close_s"].append(round(t - st["t"], 3))
                if a.reconnect:
                    connect("idle")
            else:
                res["slow_closed"] += 1
                res["slow_close_s"].append(round(t - (st["first"] or st["t"]), 3))
                connect("slow")
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
