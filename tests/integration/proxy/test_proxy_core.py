# SPDX-License-Identifier: Apache-2.0
"""fedgslb-proxy on real sockets: keep-alive, pipelining, streaming, limits,
smuggling, timeouts, WebSocket, retry and ejection, reload, drain, state."""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

import proxy_harness as ph
from fedtest import TOKEN, finish, http, next_generation, now_rfc3339

SLOW = ph.SLOW


@pytest.fixture
def backends():
    bs = [ph.Backend("b1").start(), ph.Backend("b2").start()]
    yield bs
    for b in bs:
        b.stop()


@pytest.fixture
def proxy(tmp_path, backends):
    p = ph.start_proxy(tmp_path, backends)
    yield p
    finish(p)


def status_of(resp):
    return int(resp.split(b" ", 2)[1])


def test_keepalive_and_pipelining(proxy):
    req = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(3))
    req += b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = ph.raw(proxy.port, req)
    assert out.count(b"HTTP/1.1 200 OK") == 4
    order = [out.find(b'"/p0"'), out.find(b'"/p1"'), out.find(b'"/p2"'), out.find(b'"/last"')]
    assert all(x > 0 for x in order) and order == sorted(order)


def test_headers_rewritten(proxy):
    st, hdrs, body = ph.get(proxy.port, "/h", headers={
        "Connection": "X-Hop, keep-alive", "X-Hop": "1", "Keep-Alive": "300", "TE": "trailers",
        "X-Forwarded-For": "6.6.6.6", "Proxy-Authorization": "x"})
    info = json.loads(body)
    assert st == 200
    assert info["xff"] == "127.0.0.1"  # untrusted client: replaced
    assert info["xfp"] == "http" and info["via"] == "1.1 fedgslb-proxy"
    assert info["x_hop"] is None and info["keep_alive"] is None and info["te"] is None
    assert "Keep-Alive" not in hdrs


def test_http10_and_head(proxy):
    out = ph.raw(proxy.port, b"GET /ten HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and b'"/ten"' in out
    out = ph.raw(proxy.port, b"HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"\r\n\r\n")
    out = ph.raw(proxy.port, b"GET /noclen HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.endswith(b"until-close-body")


def test_limits_and_smuggling(proxy):
    big_hdr = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(400)) + b"\r\n"
    assert status_of(ph.raw(proxy.port, big_hdr)) == 431
    many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i
                                                      for i in range(150)) + b"\r\n"
    assert status_of(ph.raw(proxy.port, many)) == 431
    long_uri = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert status_of(ph.raw(proxy.port, long_uri)) in (414, 431)
    cl_te = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert status_of(ph.raw(proxy.port, cl_te)) == 400
    dup = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
    assert status_of(ph.raw(proxy.port, dup)) == 400
    assert status_of(ph.raw(proxy.port, b"GARBAGE\r\n\r\n")) == 400


def test_body_limit_413(tmp_path, backends):
    p = ph.start_proxy(tmp_path, backends, proxy_over={"limits": {"body_bytes": 1000}})
    try:
        out = ph.raw(p.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        assert status_of(out) == 413
        chunked = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"800\r\n" + b"y" * 0x800 + b"\r\n0\r\n\r\n")
        assert status_of(ph.raw(p.port, chunked)) == 413
    finally:
        finish(p)


def test_stream_50mb_both_ways_bounded_memory(proxy):
    n = 50 * 1024 * 1024
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=30 * SLOW)
    s.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(65536)
    head, rest = got.split(b"\r\n\r\n", 1)
    assert b"chunked" in head.lower()
    total = len(rest)
    while not rest.endswith(b"0\r\n\r\n") or total < n:
        rest = s.recv(1 << 20)
        assert rest
        total += len(rest)
    assert total > n
    # Upload 50 MB chunked on the same keep-alive connection.
    s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    block = b"z" * 65536
    sent = 0
    while sent < n:
        s.sendall(b"%x\r\n" % len(block) + block + b"\r\n")
        sent += len(block)
    s.sendall(b"0\r\n\r\n")
    resp = b""
    while b'"received"' not in resp or not resp.endswith(b"}"):
        resp += s.recv(65536)
    assert b'"received": %d' % sent in resp
    s.close()
    if SLOW == 1:  # ASan's quarantine makes RSS meaningless under the sanitizers
        hwm = proxy.vm("VmHWM")
        assert hwm < 30 * 1024 * 1024, hwm


def test_websocket_echo(proxy):
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5 * SLOW)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    f = s.makefile("rb")
    line = f.readline()
    assert b"101" in line
    while f.readline() not in (b"\r\n", b""):
        pass
    for msg in (b"hello", b"x" * 1000, b"y" * 70000):
        s.sendall(ph.ws_frame(1, msg))
        op, data = ph.ws_read_frame(f)
        assert op == 1 and data == msg
    s.sendall(ph.ws_frame(8, b""))
    op, _ = ph.ws_read_frame(f)
    assert op == 8
    s.close()


def test_expect_100_continue(proxy):
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5 * SLOW)
    s.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    first = s.recv(4096)
    assert first.startswith(b"HTTP/1.1 100")
    s.sendall(b"abcd")
    got = b""
    while b'"received": 4' not in got:
        b = s.recv(4096)
        assert b
        got += b
    s.close()


def test_504_and_slowloris(tmp_path, backends):
    p = ph.start_proxy(tmp_path, backends, proxy_over={
        "timeouts_ms": {"header": 500, "idle": 5000, "connect": 1000, "response": 700,
                        "drain": 1000}})
    try:
        out = ph.raw(p.port, b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10)
        assert status_of(out) == 504
        slow = socket.create_connection(("127.0.0.1", p.port), timeout=5 * SLOW)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        for _ in range(3):  # others are served meanwhile
            assert ph.get(p.port, "/ok")[0] == 200
            try:
                slow.sendall(b"X-A: b\r\n")
            except OSError:
                break
            time.sleep(0.1)
        data = b""
        while True:
            b = slow.recv(4096)
            if not b:
                break
            data += b
        assert status_of(data) == 408
        assert time.monotonic() - t0 < 5 * SLOW
    finally:
        finish(p)


def _load(port, stop, results):
    while not stop.is_set():
        try:
            st, _, _ = ph.get(port, "/load", timeout=5)
            results.append(st)
        except Exception as e:  # a failure is what the test counts
            results.append(repr(e))


def test_backend_killed_retry_and_ejection(proxy, backends):
    stop = threading.Event()
    results = []
    th = threading.Thread(target=_load, args=(proxy.port, stop, results))
    th.start()
    time.sleep(0.5)
    port = backends[1].port
    backends[1].stop()
    time.sleep(2.0 * SLOW)
    st, doc = http(proxy.ctl_port, "GET", "/v1/state")
    pool = doc["listeners"][0]["pool"]
    dead = [b for b in pool["backends"] if b["address"].endswith(":%d" % port)][0]
    # Out of rotation: ejected by real traffic or marked down by the active check.
    assert dead["ejected"] or dead["check"] == "down", dead
    backends[1] = ph.Backend("b2", port).start()
    deadline = time.monotonic() + 10 * SLOW
    while time.monotonic() < deadline:
        st, doc = http(proxy.ctl_port, "GET", "/v1/state")
        back = [b for b in doc["listeners"][0]["pool"]["backends"]
                if b["address"].endswith(":%d" % port)][0]
        if not back["ejected"] and back["check"] != "down":
            break
        time.sleep(0.2)
    assert not back["ejected"] and back["check"] != "down", back
    stop.set()
    th.join(30)
    assert results and all(r == 200 for r in results), [r for r in results if r != 200][:5]


def test_reload_under_load(proxy, backends):
    stop = threading.Event()
    results = []
    th = threading.Thread(target=_load, args=(proxy.port, stop, results))
    th.start()
    conf = dict(proxy.conf)
    for i in range(3):
        time.sleep(0.3)
        conf["proxy"]["limits"] = {"header_count": 50 + i}
        proxy.rewrite(conf)
        proxy.signal(signal.SIGHUP)
    time.sleep(0.5)
    stop.set()
    th.join(30)
    assert len(results) > 10
    assert all(r == 200 for r in results), [r for r in results if r != 200][:5]
    assert "reload done" in proxy.log_text()


def test_state_push_and_bad_push(proxy, backends):
    extra = ph.Backend("b3").start()
    try:
        doc = {"version": 1, "vantage": "us-east-1", "generation": next_generation(),
               "generated_at": now_rfc3339(),
               "services": {"default/web": {"port": 80, "members": {"jpn": {
                   "via_proxy": True, "addresses": ["127.0.0.1"], "backends": [extra.addr],
                   "healthy": True, "ready_endpoints": 1}}}}}
        st, body = http(proxy.ctl_port, "PUT", "/v1/state", body=doc, token=TOKEN)
        assert st == 200, body
        for _ in range(5):
            assert json.loads(ph.get(proxy.port, "/s")[2])["backend"] == "b3"
        bad = dict(doc, generation=next_generation())
        bad["services"] = {"default/web": {"port": 80, "members": {"jpn": {
            "backends": ["not-an-address"], "healthy": True}}}}
        st, body = http(proxy.ctl_port, "PUT", "/v1/state", body=bad, token=TOKEN)
        assert st == 400, body
        assert json.loads(ph.get(proxy.port, "/s")[2])["backend"] == "b3"
        st, state = http(proxy.ctl_port, "GET", "/v1/state")
        assert state["listeners"][0]["backends_from"] == "state"
        saved = json.load(open(os.path.join(proxy.tmp, "proxy-state.json")))
        assert saved["documents"][0]["generation"] == doc["generation"]
        st, text = http(proxy.ctl_port, "GET", "/metrics")
        assert "fedgslb_proxy_requests_total" in text
    finally:
        extra.stop()


def test_sigterm_drains(tmp_path, backends):
    p = ph.start_proxy(tmp_path, backends)
    s = socket.create_connection(("127.0.0.1", p.port), timeout=10 * SLOW)
    s.sendall(b"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabcde")
    time.sleep(0.3)
    p.signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", p.port), timeout=1).close()
    s.sendall(b"fghij")
    got = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        got += b
    assert b'"received": 10' in got and b"Connection: close" in got
    assert p.proc.wait(10 * SLOW) == 0
    finish(p)


def test_access_log_written(proxy):
    ph.get(proxy.port, "/logged")
    proxy.signal(signal.SIGHUP)  # nothing else; the tick flushes within 1 s
    time.sleep(1.5)
    lines = open(os.path.join(proxy.tmp, "access.log")).read().splitlines()
    recs = [json.loads(x) for x in lines]
    assert any(r["uri"] == "/logged" and r["status"] == 200 for r in recs)


def test_wrk_smoke(proxy):
    if not os.access("/usr/bin/wrk", os.X_OK):
        pytest.skip("no wrk")
    out = subprocess.run(["/usr/bin/wrk", "-t1", "-c8", "-d2s",
                          f"http://127.0.0.1:{proxy.port}/w"],
                         capture_output=True, text=True, timeout=30)
    assert "Requests/sec" in out.stdout
    assert "Non-2xx" not in out.stdout and "Socket errors" not in out.stdout, out.stdout


def test_check_config(tmp_path, backends):
    conf = ph.proxy_config(tmp_path, 1, 2, ["127.0.0.1:1"])
    conf["proxy"]["limits"] = {"header_count": 1}
    path = os.path.join(str(tmp_path), "bad.json")
    json.dump(conf, open(path, "w"))
    r = subprocess.run([ph.fedtest.binary("fedgslb-proxy"), "--check-config", "--config", path],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "proxy.limits.header_count" in r.stderr
