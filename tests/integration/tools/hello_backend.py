#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A member's application backend, like the hello server of the federation
seeds: GET / answers {"hostname": ..., "zone": ...}; GET /healthz answers
200 "ok" (or the status set with set_status(), to simulate a broken
ingress). As a module: HelloBackend(...).start() serves from a thread.
As a program: hello_backend.py --listen HOST:PORT --hostname H --zone Z.
"""

import argparse
import http.server
import json
import signal
import socket
import sys
import threading


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *a, **kw):
        self.conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(*a, **kw)

    def process_request(self, request, client_address):
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        # A client (or stop()) cutting a connection is not worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, code, body, ctype):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        be = self.server.backend
        be.requests += 1
        if self.path.startswith("/healthz"):
            code = be.status
            self._send(code, "ok\n" if code < 400 else "failing\n", "text/plain")
            return
        if be.status >= 500 and be.fail_all:
            self._send(be.status, "failing\n", "text/plain")
            return
        self._send(200, json.dumps({"hostname": be.hostname, "zone": be.zone}) + "\n",
                   "application/json")

    do_HEAD = do_GET


class HelloBackend:
    def __init__(self, host, port=0, hostname="hello", zone="", fail_all=False):
        self.hostname = hostname
        self.zone = zone
        self.status = 200
        self.fail_all = fail_all
        self.requests = 0
        self._server = _Server((host, port), _Handler)
        self._server.backend = self
        self._thread = None

    @property
    def address(self):
        return self._server.server_address[:2]

    def set_status(self, code):
        self.status = int(code)

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, name="hello",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops like a dead process: no more connections, and the open ones
        (keep-alive connections of a proxy, say) are cut."""
        self._server.shutdown()
        self._server.server_close()
        with self._server.conns_lock:
            conns = list(self._server.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--hostname", default=socket.gethostname())
    ap.add_argument("--zone", default="")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    be = HelloBackend(host.strip("[]"), int(port), a.hostname, a.zone).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    be.stop()


if __name__ == "__main__":
    main()
