#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A user-space TCP relay that adds latency: the stand-in for a WAN link on
machines without netem.

Every chunk is delivered delay/2 after it arrived, in each direction, in
order, so a request/response exchange through the relay takes `delay` ms
longer (one round trip). The delay can depend on the client's source address
(one relay then emulates a whole latency matrix: each health checker probes
from its own source address), and a source can be blocked (its connections
are reset at once), to make one vantage see a member as down.

The target may also be a list of (host, port): connections are then spread
round-robin, skipping a target that refuses (a load balancer with two
backends; it has no health checks of its own).

As a module: DelayRelay(...).start() runs it in a background thread with its
own asyncio loop; set_delay() / block() change it while it runs.
As a program:
  delay_relay.py --listen 127.0.1.1:8080 --to 127.0.2.1:8080 --delay-ms 60 \
                 [--source-delay 127.0.0.3=120 ...]
runs until SIGTERM/SIGINT.
"""

import argparse
import asyncio
import signal
import socket
import struct
import threading
import time

CHUNK = 65536


class DelayRelay:
    def __init__(self, listen, target, delay_ms=0.0, per_source=None):
        self.listen = listen          # (host, port); port 0 = any
        self.target = target          # (host, port), or a list of them (round-robin)
        self._next = 0
        self.delay_ms = float(delay_ms)
        self.per_source = dict(per_source or {})  # source ip -> delay ms
        self.blocked = set()
        self.connections = 0
        self._loop = None
        self._server = None
        self._thread = None
        self._tasks = set()
        self._ready = threading.Event()

    # ---- control (thread-safe: plain attribute writes) ----
    def set_delay(self, ms, source=None):
        if source is None:
            self.delay_ms = float(ms)
        else:
            self.per_source[source] = float(ms)

    def block(self, source, on=True):
        (self.blocked.add if on else self.blocked.discard)(source)

    def delay_for(self, source):
        return self.per_source.get(source, self.delay_ms)

    @property
    def port(self):
        return self.listen[1]

    # ---- lifecycle ----
    def start(self):
        self._thread = threading.Thread(target=self._run, name="delay-relay", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("delay relay did not start")
        return self

    def stop(self):
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            fut.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._open())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _open(self):
        self._server = await asyncio.start_server(self._handle, self.listen[0], self.listen[1],
                                                  reuse_address=True)
        self.listen = (self.listen[0], self._server.sockets[0].getsockname()[1])

    async def _shutdown(self):
        self._server.close()
        await self._server.wait_closed()
        # Every task of this loop (connections, their pipes and senders).
        me = asyncio.current_task()
        for _ in range(3):
            rest = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
            if not rest:
                break
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

    # ---- relaying ----
    async def _handle(self, reader, writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        up_w = None
        try:
            source = writer.get_extra_info("peername")[0]
            if source in self.blocked:
                _reset(writer)
                return
            self.connections += 1
            up = await self._connect()
            if up is None:
                _reset(writer)
                return
            up_r, up_w = up
            half = self.delay_for(source) / 2000.0
            await asyncio.gather(self._pipe(reader, up_w, half), self._pipe(up_r, writer, half))
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass
        finally:
            for w in (writer, up_w):
                if w is not None:
                    w.close()
            self._tasks.discard(task)

    async def _connect(self):
        """Opens the upstream connection: the target, or the next of the list
        that accepts. None when none does."""
        targets = self.target if isinstance(self.target, list) else [self.target]
        start = self._next
        self._next += 1
        for i in range(len(targets)):
            try:
                return await asyncio.open_connection(*targets[(start + i) % len(targets)])
            except OSError:
                continue
        return None

    async def _pipe(self, reader, writer, half_s):
        """Copies reader -> writer, each chunk due half_s after it arrived."""
        queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(CHUNK)
                await queue.put((time.monotonic() + half_s, data if data else None))
                if not data:
                    break
            await sender
        except BaseException:  # also cancellation at stop(): end the sender too
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            raise


def _reset(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


def _hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT to accept on")
    ap.add_argument("--to", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--delay-ms", type=float, default=0.0, help="added round-trip time")
    ap.add_argument("--source-delay", action="append", default=[],
                    help="SRC_IP=MS: a different added RTT for clients from SRC_IP")
    a = ap.parse_args()
    per = {}
    for item in a.source_delay:
        src, _, ms = item.partition("=")
        per[src] = float(ms)
    relay = DelayRelay(_hostport(a.listen), _hostport(a.to), a.delay_ms, per).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    relay.stop()


if __name__ == "__main__":
    main()
