#!/usr/bin/env python3
"""Many slow readers of one response, from one process, for memory tests.

    slowread.py --port P --path PATH --n N --ready FILE [--read BYTES] [--accept A] [--head]

Opens N connections with a small receive buffer, sends "GET PATH" on each, and reads until each
has BYTES bytes (the status line and a little more), or its connection ends. Then it writes FILE
(--ready) with JSON: connected, answered (connections that read BYTES), status (count of each
status code seen) and refused, and holds every connection open without reading more until it is
sent SIGTERM, when it closes them all and exits. Readers that stop reading are what a server must
not buffer for: the rest of each response stays with the server, and the test measures what that
costs it."""
import argparse
import json
import os
import selectors
import signal
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--read", type=int, default=256)
    ap.add_argument("--accept", default="")
    ap.add_argument("--timeout", type=float, default=60, help="seconds to wait for the answers")
    a = ap.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    req = f"GET {a.path} HTTP/1.1\r\nHost: slowread\r\n"
    if a.accept:
        req += f"Accept: {a.accept}\r\n"
    req = (req + "\r\n").encode()
    sel = selectors.DefaultSelector()
    res = {"connected": 0, "answered": 0, "status": {}, "refused": 0}
    socks = []
    for _ in range(a.n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        try:
            s.connect(("127.0.0.1", a.port))
            s.sendall(req)
        except OSError:
            res["refused"] += 1
            s.close()
            continue
        s.setblocking(False)
        res["connected"] += 1
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, bytearray())
    end = time.monotonic() + a.timeout
    while sel.get_map() and time.monotonic() < end and not stop:
        for key, _ in sel.select(timeout=0.5):
            got = key.data
            try:
                chunk = key.fileobj.recv(a.read - len(got))
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            got += chunk
            if not chunk or len(got) >= a.read:
                sel.unregister(key.fileobj)
                line = bytes(got).split(b"\r\n", 1)[0].split()
                code = line[1].decode() if len(line) > 1 else "none"
                res["status"][code] = res["status"].get(code, 0) + 1
                res["answered"] += len(got) >= a.read
    with open(a.ready + ".tmp", "w", encoding="utf-8") as f:
        json.dump(res, f)
    os.rename(a.ready + ".tmp", a.ready)
    while not stop:  # a signal between the test and pause() would be missed: poll instead
        time.sleep(0.1)
    for s in socks:
        s.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
