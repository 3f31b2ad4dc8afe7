#!/usr/bin/env python3
"""An upstream whose 401 names a token realm of the test's choosing, and a token service that
records what Authorization it was sent (standard library only), for tests of where the cache's
upstream credentials go.

  realm_upstream.py --port-file FILE --log FILE [--realm URL] [--tls-cert PEM --tls-key PEM]

/v2/<name>/{manifests,blobs,tags}/<ref>: without "Authorization: Bearer good-token", 401 with
  WWW-Authenticate: Bearer realm="URL",service="realmtest",scope="repository:<name>:pull";
  with it, 404 (nothing is stored here: only the way to the token matters).
/token… (any path starting /token): 200 {"token": "good-token"}, whoever asks.
--realm defaults to this server's own /token; "{port}" in it becomes this server's port (so a
  test can name this very server under another host name: http://localhost:{port}/token).

Log: one line per request, "METHOD PATH auth=none|basic|bearer|other" (PATH with its query,
so a token request's scope shows which upstream it was for). Secrets are not logged.
"""
import argparse
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from testserver import JSONReplies, serve_until_signalled, write_port_file

lock = threading.Lock()


class Handler(JSONReplies, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "realm/1"

    def log_message(self, fmt, *args):
        pass

    def log(self):
        a = self.headers.get("Authorization")
        kind = "none" if a is None else a.split(" ", 1)[0].lower()
        kind = kind if kind in ("none", "basic", "bearer") else "other"
        with lock:
            LOG.write(f"{self.command} {self.path} auth={kind}\n")

    def do_GET(self):
        self.log()
        path = urlsplit(self.path).path
        if path.startswith("/token"):
            return self.reply(200, json.dumps({"token": "good-token", "expires_in": 300}).encode())
        if path in ("/v2", "/v2/"):
            return self.reply(200, b"{}")
        parts = path[len("/v2/"):].rsplit("/", 2) if path.startswith("/v2/") else []
        if len(parts) != 3:
            return self.reply(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no route"}]}')
        if self.headers.get("Authorization") != "Bearer good-token":
            challenge = f'Bearer realm="{REALM}",service="realmtest",scope="repository:{parts[0]}:pull"'
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}',
                              [("WWW-Authenticate", challenge)])
        self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"not here"}]}')

    do_HEAD = do_GET


def main():
    global LOG, REALM
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--realm")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    a = p.parse_args()
    LOG = open(a.log, "a", buffering=1)
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = srv.server_address[1]
    scheme = "http"
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    REALM = (a.realm or f"{scheme}://127.0.0.1:{{port}}/token").replace("{port}", str(port))
    write_port_file(a.port_file, port)
    serve_until_signalled(srv)


if __name__ == "__main__":
    main()
