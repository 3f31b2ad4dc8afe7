#!/usr/bin/env python3
"""A hostile registry upstream for microscale's integration tests (standard library only).

Blobs and manifests live in --dir as files named by the 64-hex sha256 of their (true) content;
a manifest's media type may sit beside it in <hex>.type. Tags resolve through --dir/tags/<tag>,
a file holding "sha256:<hex>" (any repository name). The FIRST path component of the repository
name picks how /v2/<name>/{blobs,manifests}/<ref> misbehaves:

  ok/        true bytes, Content-Length and Docker-Content-Digest (also any unknown prefix)
  wrong/     same length, one byte in the middle flipped (digest mismatch)
  truncate/  correct Content-Length, socket closed after half the bytes
  stall/     headers and half the bytes, then the socket is held (up to 600 s or shutdown)
  slow/      true bytes at ~64 KiB/s
  err429/    first request of each path: 429, Retry-After: 1, TOOMANYREQUESTS; then ok
  err503/    first two requests of each path: 503; then ok
  always503/ always 503
  auth/      needs "Authorization: Bearer good-token", else 401 with a Bearer challenge whose
             realm is /token on this server; GET /token returns good-token (with --basic
             USER:PASS the token endpoint itself needs that Basic auth)
  redirect/  needs the Bearer token like auth/ (as Docker Hub does), then 307 to
             http://localhost:PORT/storage/<hex> ("?manifest" added for manifests): another host
             name, so a client must drop Authorization; the /storage/ log line's auth= shows
             whether one arrived there
  gated/     like ok/, but a manifest or blob is answered only once a file named "gate" exists
             in --dir (the test decides when a fetch may finish, e.g. once clients have joined)

With --downconvert a tag that names an image index (or Docker manifest list) is answered, to a
client whose Accept names neither index type, with the index's linux/amd64 manifest instead (or
the index itself when it has none), as Docker Hub does; a digest is always answered as stored.

Log (--log): one line per request, "METHOD PATH MODE auth=none|basic|bearer|other", with
--verbose also accept="…" and ua="…". PATH keeps the query string (containerd's ?ns=).
"""
import argparse
import base64
import hashlib
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from testserver import serve_until_signalled, write_port_file

MODES = {"ok", "wrong", "truncate", "stall", "slow", "err429", "err503", "always503", "auth", "redirect", "gated"}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ROUTE = re.compile(r"^/v2/(?P<name>[^?]+)/(?P<kind>blobs|manifests)/(?P<ref>[^/]+)$")
DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")

stop = threading.Event()  # set on SIGTERM; stalled and slow responses give up at once
counts = {}  # path -> requests seen, for err429/err503
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hostile/1"

    def log_message(self, fmt, *args):  # the --log file replaces http.server's stderr lines
        pass

    def log(self, mode):
        a = self.headers.get("Authorization")
        kind = "none" if a is None else a.split(" ", 1)[0].lower()
        line = f"{self.command} {self.path} {mode} auth={kind if kind in ('none', 'basic', 'bearer') else 'other'}"
        if ARGS.verbose:
            accept = ", ".join(self.headers.get_all("Accept", []))  # Docker sends several
            line += f' accept="{accept}" ua="{self.headers.get("User-Agent", "")}"'
        with lock:
            LOG.write(line + "\n")

    def reply(self, code, body=b"", headers=(), ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, err, msg, headers=()):
        body = json.dumps({"errors": [{"code": err, "message": msg, "detail": None}]}).encode()
        self.reply(code, body, headers)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path in ("/v2", "/v2/"):
            return self.ping()
        if url.path == "/token":
            return self.token(parse_qs(url.query))
        m = re.match(r"^/storage/([0-9a-f]{64})$", url.path)
        if m:  # where redirect/ sends clients; ?manifest marks a manifest for its Content-Type
            self.log("storage")
            return self.serve(m[1], "ok", self.ctype(m[1], OCI_MANIFEST) if url.query else self.ctype(m[1]))
        m = ROUTE.match(url.path)
        if not m:
            self.log("-")
            return self.error(404, "NAME_UNKNOWN", "no such route")
        mode = m["name"].split("/", 1)[0]
        mode = mode if mode in MODES else "ok"
        self.log(mode)
        self.blob_or_manifest(url.path, m["name"], m["kind"], m["ref"], mode)

    do_HEAD = do_GET

    def do_POST(self):  # containerd tries an OAuth POST to the realm first; 405 sends it to GET
        self.log("-")
        self.error(405, "UNSUPPORTED", "GET the token")

    def ping(self):
        self.log("ping")
        if ARGS.ping_auth and self.headers.get("Authorization") != "Bearer good-token":
            return self.error(401, "UNAUTHORIZED", "token needed", [("WWW-Authenticate", self.challenge(None))])
        self.reply(200, b"{}", [("Docker-Distribution-API-Version", "registry/2.0")])

    def challenge(self, name):
        c = f'Bearer realm="http://127.0.0.1:{PORT}/token",service="hostile"'
        return c + (f',scope="repository:{name}:pull"' if name else "")

    def token(self, query):
        self.log("token")
        if ARGS.basic:
            want = "Basic " + base64.b64encode(ARGS.basic.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.error(401, "UNAUTHORIZED", "bad credentials",
                                  [("WWW-Authenticate", 'Basic realm="hostile"')])
        self.reply(200, json.dumps({"token": "good-token", "expires_in": 300}).encode())

    def ctype(self, hexd, default="application/octet-stream"):
        try:
            with open(os.path.join(ARGS.dir, hexd + ".type")) as f:
                return f.read().strip()
        except OSError:
            return default

    def blob_or_manifest(self, path, name, kind, ref, mode):
        with lock:
            n = counts[path] = counts.get(path, 0) + 1
        if mode == "err429" and n == 1:
            return self.error(429, "TOOMANYREQUESTS", "slow down", [("Retry-After", "1")])
        if (mode == "err503" and n <= 2) or mode == "always503":
            return self.error(503, "UNAVAILABLE", "try later")
        if mode in ("auth", "redirect") and self.headers.get("Authorization") != "Bearer good-token":
            return self.error(401, "UNAUTHORIZED", "token needed",
                              [("WWW-Authenticate", self.challenge(name))])
        d = DIGEST.match(ref)
        if kind == "manifests" and not d:  # a tag
            try:
                with open(os.path.join(ARGS.dir, "tags", os.path.basename(ref))) as f:
                    d = DIGEST.match(f.read().strip())
            except OSError:
                pass
        unknown = ("BLOB_UNKNOWN", "blob unknown") if kind == "blobs" else ("MANIFEST_UNKNOWN", "manifest unknown")
        if not d or not os.path.isfile(os.path.join(ARGS.dir, d.group(1))):
            return self.error(404, *unknown)
        hexd = d.group(1)
        if mode == "gated":
            self.wait_gate()
        if ARGS.downconvert and kind == "manifests" and not DIGEST.match(ref):
            hexd = self.downconvert(hexd)
        if mode == "redirect":
            q = "?manifest" if kind == "manifests" else ""
            return self.reply(307, headers=[("Location", f"http://localhost:{PORT}/storage/{hexd}{q}")])
        ctype = self.ctype(hexd, OCI_MANIFEST) if kind == "manifests" else "application/octet-stream"
        self.serve(hexd, mode, ctype)

    def serve(self, hexd, mode, ctype):
        with open(os.path.join(ARGS.dir, hexd), "rb") as f:
            data = bytearray(f.read())
        half = len(data) // 2
        if mode == "wrong" and data:
            data[half] ^= 0xFF
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Docker-Content-Digest", "sha256:" + hexd)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.end_headers()
        if self.command == "HEAD":
            return
        if mode == "truncate":
            self.wfile.write(data[:half])
            self.close_connection = True
        elif mode == "stall":
            self.wfile.write(data[:half])
            self.wfile.flush()
            stop.wait(600)
            self.close_connection = True
        elif mode == "slow":
            for i in range(0, len(data), 4096):  # 4 KiB every 1/16 s
                if stop.is_set():
                    self.close_connection = True
                    return
                self.wfile.write(data[i:i + 4096])
                self.wfile.flush()
                time.sleep(1 / 16)
        else:
            self.wfile.write(data)

    def wait_gate(self):
        gate = os.path.join(ARGS.dir, "gate")
        while not os.path.exists(gate) and not stop.wait(0.05):
            pass

    def downconvert(self, hexd):
        """The hex of what a tag's GET answers with under --downconvert."""
        accept = ", ".join(self.headers.get_all("Accept", []))
        if self.ctype(hexd, OCI_MANIFEST) not in INDEX_TYPES or any(t in accept for t in INDEX_TYPES):
            return hexd
        with open(os.path.join(ARGS.dir, hexd), "rb") as f:
            index = json.load(f)
        for desc in index.get("manifests", []):
            p = desc.get("platform", {})
            m = DIGEST.match(desc.get("digest", ""))
            if p.get("os") == "linux" and p.get("architecture") == "amd64" and m:
                return m.group(1)
        return hexd


INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


def main():
    global ARGS, LOG, PORT
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="blobs and manifests, named by their sha256 hex")
    p.add_argument("--port-file", required=True, help="written with the port once listening")
    p.add_argument("--log", default=os.devnull, help="one line per request")
    p.add_argument("--basic", metavar="USER:PASS", help="the token endpoint requires this Basic auth")
    p.add_argument("--ping-auth", action="store_true", help="GET /v2/ also answers 401 without a token")
    p.add_argument("--verbose", action="store_true", help="log Accept and User-Agent too")
    p.add_argument("--downconvert", action="store_true",
                   help="a tag naming an index, asked without index types: its linux/amd64 manifest")
    ARGS = p.parse_args()
    LOG = open(ARGS.log, "a", buffering=1)
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    PORT = srv.server_address[1]
    write_port_file(ARGS.port_file, PORT)
    serve_until_signalled(srv, stop)


if __name__ == "__main__":
    main()
