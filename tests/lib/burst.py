#!/usr/bin/env python3
"""Many clients at once, from one process: one connection and one GET per path, all started
together, for tests of what a burst of requests costs a server's upstream.

  burst.py --port P --paths FILE --out FILE [--timeout S]

FILE (--paths) holds one request path a line. --out gets one line per answer as it arrives,
"STATUS RETRY_AFTER PATH" ("-" when there was no Retry-After; status 0 when the connection
failed or --timeout, default 60 s, passed first), so that a test can watch answers come in.
"""
import argparse
import asyncio


async def one(port, path, out, timeout):
    status, retry_after = 0, "-"
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        w.write(f"GET {path} HTTP/1.1\r\nHost: burst\r\nConnection: close\r\n\r\n".encode())
        await w.drain()
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "retry-after":
                retry_after = value.strip()
        w.close()
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
        pass
    out.write(f"{status} {retry_after} {path}\n")
    out.flush()


async def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--paths", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    with open(a.paths) as f:
        paths = [line.strip() for line in f if line.strip()]
    with open(a.out, "w") as out:
        await asyncio.gather(*(one(a.port, path, out, a.timeout) for path in paths))


if __name__ == "__main__":
    asyncio.run(main())
