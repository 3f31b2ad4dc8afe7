#!/usr/bin/env python3
"""A small Chrome DevTools Protocol client for the browser tests: Python's standard library and
a minimal WebSocket client (RFC 6455: the client's masked text frames, the server's unmasked
ones, fragments, ping and close), enough to drive a headless chromium started with
--remote-debugging-port=PORT.

    cdp.py PORT new URL                 opens a tab on URL; prints its target id
    cdp.py PORT eval ID EXPR            evaluates EXPR in the tab; prints the value as JSON
    cdp.py PORT wait ID EXPR SECONDS    polls EXPR every 0.1 s until it is truthy: exit 0, or
                                        after SECONDS prints the last value and exits 1
    cdp.py PORT shot ID FILE [W H [mobile]]  a PNG of the whole page at W x H (1280 x 900)
    cdp.py PORT close ID                closes the tab

Talks to 127.0.0.1 only and never through a proxy."""
import base64
import json
import os
import socket
import struct
import sys
import time
import urllib.parse
import urllib.request

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with OPENER.open(req, timeout=10) as r:
        return json.loads(r.read().decode())


class WebSocket:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("the WebSocket handshake was cut")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise OSError("no WebSocket: " + head.split(b"\r\n")[0].decode(errors="replace"))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("the WebSocket was closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send(self, opcode, payload):
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, text):
        self._send(0x1, text.encode())

    def recv(self):
        """The next whole text message."""
        parts = []
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            op = b0 & 0x0F
            if op == 0x9:  # ping
                self._send(0xA, data)
                continue
            if op == 0x8:
                raise OSError("the WebSocket was closed by the browser")
            if op in (0x0, 0x1, 0x2):
                parts.append(data)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self):
        try:
            self._send(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class Tab:
    def __init__(self, port, target):
        for t in http(port, "/json/list"):
            if t["id"] == target:
                self.ws = WebSocket(t["webSocketDebuggerUrl"])
                break
        else:
            raise SystemExit(f"cdp: no tab {target}")
        self.n = 0

    def call(self, method, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == self.n:
                if "error" in m:
                    raise SystemExit(f"cdp: {method}: {m['error']}")
                return m["result"]

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            return {"exception": d.get("exception", {}).get("description", d.get("text"))}
        return r["result"].get("value")


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    port, cmd, args = argv[1], argv[2], argv[3:]
    if cmd == "new":
        t = http(port, "/json/new?" + urllib.parse.quote(args[0], safe=":/?=&"), "PUT")
        print(t["id"])
        return 0
    if cmd == "close":
        OPENER.open(f"http://127.0.0.1:{port}/json/close/{args[0]}", timeout=10).read()
        return 0
    tab = Tab(port, args[0])
    if cmd == "eval":
        print(json.dumps(tab.eval(args[1])))
        return 0
    if cmd == "wait":
        deadline = time.monotonic() + float(args[2])
        while True:
            v = tab.eval(args[1])
            if v and not (isinstance(v, dict) and "exception" in v):
                return 0
            if time.monotonic() >= deadline:
                print(json.dumps(v))
                return 1
            time.sleep(0.1)
    if cmd == "shot":
        w, h = (int(args[2]), int(args[3])) if len(args) >= 4 else (1280, 900)
        mobile = len(args) >= 5 and args[4] == "mobile"
        tab.call("Emulation.setDeviceMetricsOverride", width=w, height=h, deviceScaleFactor=1,
                 mobile=mobile)
        # no scrollbar: the whole-page capture lays the page out at w, and would cut its edge
        tab.call("Emulation.setScrollbarsHidden", hidden=True)
        # the page redraws on "resize": wait for a frame after it
        tab.eval("new Promise((r) => requestAnimationFrame(() => {"
                 " window.dispatchEvent(new Event('resize')); requestAnimationFrame(() => r(1)); }))")
        r = tab.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(args[1], "wb") as f:
            f.write(base64.b64decode(r["data"]))
        return 0
    raise SystemExit(f"cdp: unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
