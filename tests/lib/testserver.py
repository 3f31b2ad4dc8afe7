"""What every Python test server here does around its handler: announce the port it got in a
file (written whole, then renamed, so a reader polling for it never sees half), and serve until
SIGTERM or SIGINT."""
import os
import signal
import threading


class JSONReplies:
    """Mixed into a BaseHTTPRequestHandler: reply() sends a JSON answer with its length (and,
    to a HEAD, no body)."""

    def reply(self, code, body, headers=()):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def write_port_file(path, port):
    with open(path + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.rename(path + ".tmp", path)


def serve_until_signalled(srv, stop=None):
    """Serves srv until a signal; sets the stop event first, if given, so that handlers waiting
    on it give up at once."""

    def on_signal(*_):  # shutdown() waits for serve_forever(), so it cannot run in this thread
        if stop is not None:
            stop.set()
        threading.Thread(target=srv.shutdown).start()

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, on_signal)
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()
