#!/usr/bin/env python3
"""A TCP proxy that makes a loopback upstream look remote: everything the target sends back goes
through one shared link of --mbps MB/s (10^6 bytes), as a node's uplink to a remote registry
would; requests go through unhindered. Standard library only.

    slowlink.py --target HOST:PORT --mbps N --port-file F [--listen ADDR]

Binds ADDR:0 (ADDR 127.0.0.1 unless given: a cluster's uplink listens on its bridge address) and
writes the port to F (atomically) once listening. SIGTERM/SIGINT exit 0.
"""
import argparse
import os
import signal
import socket
import threading
import time

CHUNK = 64 * 1024


class Link:
    """One shared link: each chunk occupies it for len/rate seconds, in the order they come. The
    moments spent between chunks (reading the next one, waking up) are not lost to a steady
    stream: a chunk may start up to SLACK in the past, so the stream gets the nominal rate."""
    SLACK = 0.05

    def __init__(self, bytes_per_s):
        self.rate, self.free_at, self.lock = bytes_per_s, 0.0, threading.Lock()

    def send(self, sock, data):
        with self.lock:
            start = max(time.monotonic() - self.SLACK, self.free_at)
            self.free_at = start + len(data) / self.rate
            done = self.free_at
        time.sleep(max(0.0, done - time.monotonic()))
        sock.sendall(data)


def pump(src, dst, link):
    """Copies src to dst until either side ends (through link when given), then closes both."""
    try:
        while data := src.recv(CHUNK):
            if link:
                link.send(dst, data)
            else:
                dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, target, link):
    try:
        upstream = socket.create_connection(target, timeout=10)
        upstream.settimeout(None)
    except OSError:
        client.close()
        return
    threading.Thread(target=pump, args=(client, upstream, None), daemon=True).start()
    pump(upstream, client, link)
    client.close()
    upstream.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True, metavar="HOST:PORT")
    ap.add_argument("--mbps", type=float, default=20.0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--listen", default="127.0.0.1", metavar="ADDR")
    args = ap.parse_args()
    host, _, port = args.target.rpartition(":")
    target, link = (host, int(port)), Link(args.mbps * 1e6)
    lsock = socket.socket()
    lsock.bind((args.listen, 0))
    lsock.listen(64)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    with open(args.port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(f"{lsock.getsockname()[1]}\n")
    os.replace(args.port_file + ".tmp", args.port_file)
    while True:
        client, _ = lsock.accept()
        threading.Thread(target=serve, args=(client, target, link), daemon=True).start()


if __name__ == "__main__":
    main()
