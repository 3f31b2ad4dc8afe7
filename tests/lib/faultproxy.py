#!/usr/bin/env python3
"""A TCP forwarder that injects faults, for tests of a daemon against a server that is down,
flapping or slow. Standard library only (asyncio, one thread).

    faultproxy.py --listen PORT --target PORT --mode-file FILE [--log FILE]

It listens on 127.0.0.1:PORT and forwards every connection to 127.0.0.1:TARGET. FILE (re-read
every 20 ms; write it atomically) holds one mode:

    up        forward as is
    down      nothing listens on PORT (connections are refused) and open connections are cut
    flap S    up for S seconds, down for S seconds, and so on, starting up
    slow S    requests go through at once; every answer is held until S seconds after the last
              request bytes its connection carried (a server that takes S seconds to answer)

--log gets one line per event: "T mode MODE", "T up", "T down", "T conn N", "T cut N"."""
import argparse
import asyncio
import os
import time


class Proxy:
    def __init__(self, args):
        self.args, self.mode, self.server, self.conns = args, "up", None, set()
        self.log = open(args.log, "a", encoding="utf-8", buffering=1) if args.log else None
        self.flap_start = 0.0
        self.nconn = 0

    def note(self, what):
        if self.log:
            self.log.write(f"{time.time():.3f} {what}\n")

    def delay_s(self):
        word, _, arg = self.mode.partition(" ")
        return float(arg) if word == "slow" else 0.0

    def want_up(self):
        word, _, arg = self.mode.partition(" ")
        if word == "down":
            return False
        if word == "flap":
            period = float(arg)
            return int((time.monotonic() - self.flap_start) / period) % 2 == 0
        return True

    async def set_listening(self, up):
        if up and self.server is None:
            for _ in range(100):  # the port may linger a moment after close
                try:
                    self.server = await asyncio.start_server(
                        self.handle, "127.0.0.1", self.args.listen, reuse_address=True)
                    break
                except OSError:
                    await asyncio.sleep(0.01)
            self.note("up")
        elif not up and self.server is not None:
            self.server.close()
            self.server = None
            for w in list(self.conns):
                w.transport.abort()
            self.note(f"down cut={len(self.conns)}")
            self.conns.clear()

    async def control(self):
        while True:
            try:
                with open(self.args.mode_file, encoding="utf-8") as f:
                    mode = f.read().strip() or "up"
            except OSError:
                mode = "up"
            if mode != self.mode:
                self.mode = mode
                self.flap_start = time.monotonic()
                self.note(f"mode {mode}")
            await self.set_listening(self.want_up())
            await asyncio.sleep(0.02)

    async def handle(self, cr, cw):
        self.nconn += 1
        n = self.nconn
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.args.target)
        except OSError:
            cw.transport.abort()
            return
        self.conns.add(cw)
        self.conns.add(uw)
        self.note(f"conn {n}")
        last = [time.monotonic()]

        async def c2u():
            while True:
                data = await cr.read(65536)
                if not data:
                    break
                last[0] = time.monotonic()
                uw.write(data)
                await uw.drain()
            if uw.can_write_eof():
                uw.write_eof()

        async def u2c():
            while True:
                data = await ur.read(65536)
                if not data:
                    break
                wait = last[0] + self.delay_s() - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                cw.write(data)
                await cw.drain()
            cw.close()

        try:
            await asyncio.gather(c2u(), u2c())
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (cw, uw):
                self.conns.discard(w)
                w.transport.abort()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--mode-file", required=True)
    ap.add_argument("--log")
    proxy = Proxy(ap.parse_args())
    await proxy.control()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    os._exit(0)
