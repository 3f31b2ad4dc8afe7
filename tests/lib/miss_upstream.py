#!/usr/bin/env python3
"""An upstream that has nothing, and counts how it is asked (standard library only), for tests
of how a cache's misses reach its upstream.

  miss_upstream.py --port-file FILE [--retry-after N]

/v2/<name>/{manifests,blobs,tags}/…: 404 (MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN), but
  held until the gate is open (POST /_open; it starts closed), so that a test sees how many
  requests the cache has in flight at once. A name starting "limited/" is answered at once
  with 429 and Retry-After: N (default 120), as a rate-limited registry does.
GET /_stats: {"requests": …, "inflight": …, "max_inflight": …, "limited": …} (requests to
  /v2/…/ paths so far, of which "limited" were 429s; the most held at once). Not counted itself.
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from testserver import JSONReplies, serve_until_signalled, write_port_file

lock = threading.Lock()
gate = threading.Event()
stop = threading.Event()
stats = {"requests": 0, "inflight": 0, "max_inflight": 0, "limited": 0}


class Handler(JSONReplies, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "miss/1"

    def log_message(self, fmt, *args):
        pass

    def error(self, code, err, headers=()):
        self.reply(code, json.dumps({"errors": [{"code": err, "message": err.lower()}]}).encode(), headers)

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/_stats":
            with lock:
                return self.reply(200, json.dumps(stats).encode())
        if path in ("/v2", "/v2/"):
            return self.reply(200, b"{}")
        if not path.startswith("/v2/"):
            return self.error(404, "NAME_UNKNOWN")
        with lock:
            stats["requests"] += 1
        if path.startswith("/v2/limited/"):
            with lock:
                stats["limited"] += 1
            return self.error(429, "TOOMANYREQUESTS", [("Retry-After", str(ARGS.retry_after))])
        with lock:
            stats["inflight"] += 1
            stats["max_inflight"] = max(stats["max_inflight"], stats["inflight"])
        while not gate.wait(0.05) and not stop.is_set():
            pass
        with lock:
            stats["inflight"] -= 1
        code = "BLOB_UNKNOWN" if "/blobs/" in path else "NAME_UNKNOWN" if "/tags/" in path else "MANIFEST_UNKNOWN"
        self.error(404, code)

    do_HEAD = do_GET

    def do_POST(self):
        if urlsplit(self.path).path == "/_open":
            gate.set()
            return self.reply(200, b"{}")
        self.error(405, "UNSUPPORTED")


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port-file", required=True)
    p.add_argument("--retry-after", type=int, default=120)
    ARGS = p.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 1024  # a cache without bounds connects ~1,000 at once
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    write_port_file(ARGS.port_file, srv.server_address[1])
    serve_until_signalled(srv, stop)


if __name__ == "__main__":
    main()
