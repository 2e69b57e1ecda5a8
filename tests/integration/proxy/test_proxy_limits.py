# SPDX-License-Identifier: Apache-2.0
"""fedgslb-proxy connection limits on real sockets: max_connections pauses
accept and resumes it when a connection closes; upstream keep-alive
connections are reused (and not with upstream_idle_connections = 0); idle
upstream connections are closed after timeouts_ms.upstream_idle."""

import socket
import threading
import time

import pytest

import proxy_harness as ph
from fedtest import finish

SLOW = ph.SLOW

TIMEOUTS = {"header": 2000, "idle": 5000, "connect": 1000, "response": 5000, "drain": 5000}


# ------------------------------------------------------------ counting backend

class CountingHandler(ph.Handler):
    """ph.Handler that records each TCP connection: requests it carried and
    when it ended (the peer closed it; the backend itself never does)."""

    def setup(self):
        super().setup()
        self.rec = {"requests": 0, "ended": None}
        with self.server.lock:
            self.server.conns.append(self.rec)

    def do_GET(self):
        self.rec["requests"] += 1
        super().do_GET()

    def finish(self):
        try:
            super().finish()
        finally:
            self.rec["ended"] = time.monotonic()


class CountingServer(ph.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    # http.server's backlog of 5 overflows when the proxy opens 10 upstream
    # connections at once (no reuse): the dropped handshakes then retry after
    # a second and hit the connect timeout. The proxy is under test, not that.
    request_queue_size = 128


class CountingBackend(ph.Backend):
    def start(self):
        self.srv = CountingServer(("127.0.0.1", self.port), CountingHandler)
        self.srv.name = self.name
        self.srv.hits = 0
        self.srv.lock = threading.Lock()
        self.srv.conns = []
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        return self

    def request_conns(self):
        """Connections that carried at least one request (the proxy's active
        TCP checks connect and close without one)."""
        with self.srv.lock:
            return [dict(c) for c in self.srv.conns if c["requests"] > 0]


@pytest.fixture
def backend():
    b = CountingBackend("c1").start()
    yield b
    b.stop()


# ------------------------------------------------------------ client helpers

def read_response(s):
    """Reads one Content-Length framed response from @s; returns (status, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response head: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    clen = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            clen = int(v.strip())
    while len(rest) < clen:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    assert len(rest) == clen, "extra bytes after the response"
    return status, rest


def keepalive_get(s, path, timeout=5.0):
    s.settimeout(timeout * SLOW)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    return read_response(s)


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


# ------------------------------------------------------------ (a) max_connections

def test_max_connections_pauses_and_resumes_accept(tmp_path, backend):
    p = ph.start_proxy(tmp_path, [backend], proxy_over={"max_connections": 2})
    socks = []
    try:
        c1, c2 = connect(p.port), connect(p.port)
        socks += [c1, c2]
        assert keepalive_get(c1, "/one")[0] == 200
        assert keepalive_get(c2, "/two")[0] == 200
        # Both stay open (keep-alive, idle): the limit is reached.
        c3 = connect(p.port)  # the kernel completes the handshake; the proxy does not accept
        socks.append(c3)
        c3.sendall(b"GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
        c3.settimeout(1.0)
        with pytest.raises(socket.timeout):
            c3.recv(1)
        assert "accept paused" in p.log_text()
        # One of the first two goes: the third is accepted and served.
        c1.close()
        c3.settimeout(5 * SLOW)
        st, body = read_response(c3)
        assert st == 200 and b'"/three"' in body
        # Both open connections keep working.
        assert keepalive_get(c2, "/two-again")[0] == 200
        assert keepalive_get(c3, "/three-again")[0] == 200
        # Closing them leaves room for new connections again.
        c2.close()
        c3.close()
        n1, n2 = connect(p.port), connect(p.port)
        socks += [n1, n2]
        assert keepalive_get(n1, "/n1")[0] == 200
        assert keepalive_get(n2, "/n2")[0] == 200
        assert p.alive()
    finally:
        for s in socks:
            s.close()
        finish(p)


# ------------------------------------------------------------ (b) upstream reuse

def _client_loop(port, n, results):
    try:
        with connect(port) as s:
            for i in range(n):
                st, _ = keepalive_get(s, "/r%d" % i)
                results.append(st)
    except Exception as e:  # a failure is what the test counts
        results.append(repr(e))


def _run_clients(port, clients, per_client):
    results = []
    threads = [threading.Thread(target=_client_loop, args=(port, per_client, results))
               for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60 * SLOW)
    return results


def test_upstream_connections_reused(tmp_path, backend):
    p = ph.start_proxy(tmp_path, [backend], proxy_over={"timeouts_ms": TIMEOUTS})
    try:
        results = _run_clients(p.port, 10, 30)
        assert len(results) == 300
        assert all(r == 200 for r in results), [r for r in results if r != 200][:5]
        conns = backend.request_conns()
        assert sum(c["requests"] for c in conns) == 300
        # 10 concurrent clients need about 10 upstream connections, not 300.
        assert len(conns) <= 12, [c["requests"] for c in conns]
    finally:
        finish(p)


def test_upstream_idle_connections_zero_no_reuse(tmp_path, backend):
    p = ph.start_proxy(tmp_path, [backend], proxy_over={
        "timeouts_ms": TIMEOUTS, "limits": {"upstream_idle_connections": 0}})
    try:
        results = _run_clients(p.port, 10, 10)
        assert len(results) == 100
        assert all(r == 200 for r in results), [r for r in results if r != 200][:5]
        conns = backend.request_conns()
        assert sum(c["requests"] for c in conns) == 100
        assert len(conns) == 100, [c["requests"] for c in conns if c["requests"] != 1][:10]
        # Each is closed by the proxy after its response.
        assert wait_for(lambda: all(c["ended"] is not None for c in backend.request_conns()),
                        5.0)
    finally:
        finish(p)


# ------------------------------------------------------------ (c) upstream_idle timeout

def test_upstream_idle_timeout_closes(tmp_path, backend):
    p = ph.start_proxy(tmp_path, [backend], proxy_over={
        "timeouts_ms": dict(TIMEOUTS, upstream_idle=200)})
    try:
        st, _, body = ph.get(p.port, "/first")
        assert st == 200 and b'"/first"' in body
        conns = backend.request_conns()
        assert len(conns) == 1 and conns[0]["requests"] == 1
        assert wait_for(lambda: backend.request_conns()[0]["ended"] is not None, 5.0), \
            "the idle upstream connection was not closed by the proxy"
        # The closed connection is gone from the pool: the next request opens a new one.
        st, _, body = ph.get(p.port, "/second")
        assert st == 200 and b'"/second"' in body
        conns = backend.request_conns()
        assert len(conns) == 2 and [c["requests"] for c in conns] == [1, 1]
    finally:
        finish(p)
