#!/usr/bin/env python3
"""Raw HTTP/1.1 client for the tests: sends bytes no well-behaved client would send.

  rawhttp.py PORT DATA [--timeout S] [--ready FILE] [--elapsed FILE] [--dribble S]

DATA uses Python escapes ("GET /v2/ HTTP/1.1\\r\\n\\r\\n") and goes out in one write, or with
--dribble one byte every S seconds (a slowloris; it stops early if the server hangs up). Then it
reads until the server closes the connection and prints everything received to stdout.
--ready FILE is created once DATA is sent (so a test knows the request is in flight);
--elapsed FILE gets the seconds from the send to the close. Exit 0 when the server closed the
connection, 2 when --timeout (default 10 s) passed first, 1 when it could not connect.
"""
import argparse
import socket
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("port", type=int)
    p.add_argument("data")
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--ready")
    p.add_argument("--elapsed")
    p.add_argument("--dribble", type=float)
    a = p.parse_args()
    data = a.data.encode("latin-1").decode("unicode_escape").encode("latin-1")
    try:
        s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    except OSError as e:
        print(f"rawhttp: connect: {e}", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    if a.dribble:
        if a.ready:
            open(a.ready, "w").close()
        try:
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
                time.sleep(a.dribble)
        except OSError:
            pass
    else:
        s.sendall(data)
        if a.ready:
            open(a.ready, "w").close()
    got = bytearray()
    rc = 0
    deadline = t0 + a.timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            rc = 2
            break
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            rc = 2
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    if a.elapsed:
        with open(a.elapsed, "w") as f:
            f.write(f"{time.monotonic() - t0:.3f}\n")
    sys.stdout.buffer.write(bytes(got))
    return rc


if __name__ == "__main__":
    sys.exit(main())
