# SPDX-License-Identifier: Apache-2.0
"""fedgslb-proxy TLS session resumption: a Python ssl client and openssl
s_client resume sessions (TLS 1.3 tickets, TLS 1.2 tickets and session IDs),
the proxy counts full and resumed handshakes, tickets survive a reload, a
ticket from before a key rotation resumes while its key is the previous one
and not once that key is gone, and proxy.tls_sessions turns tickets and the
session cache off."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

import proxy_harness as ph
from fedtest import SLOW, finish, http, parse_metrics

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl needed")

NAME = "www.example.test"
TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


@pytest.fixture
def backend():
    b = ph.Backend("b1").start()
    yield b
    b.stop()


def start(tmp_path, backend, sessions=None):
    cert = ph.make_cert(tmp_path, NAME, ec=True)
    over = {"tls_sessions": sessions} if sessions is not None else None
    return ph.start_proxy(tmp_path, [backend], proxy_over=over,
                          listen_over={"tls": {"certificates": [cert]}})


def get(port, ctx, session=None):
    """GET / on a new TLS connection offering @session; returns (reused,
    session to offer next, TLS version). The response is read in full, so a
    TLS 1.3 ticket (sent after the handshake) has arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as raw:
        with ctx.wrap_socket(raw, server_hostname=NAME, session=session) as s:
            s.sendall(b"GET /r HTTP/1.1\r\nHost: " + NAME.encode() + b"\r\nConnection: close\r\n\r\n")
            data = ph.recv_all(s)
            assert data.startswith(b"HTTP/1.1 200 "), data[:200]
            return s.session_reused, s.session, s.version()


def handshakes(p):
    """{result: count} of fedgslb_proxy_tls_handshakes_total."""
    st, text = http(p.ctl_port, "GET", "/metrics")
    assert st == 200
    return {lab["result"]: v for name, lab, v in parse_metrics(text)
            if name == "fedgslb_proxy_tls_handshakes_total"}


def keys_made(p):
    st, text = http(p.ctl_port, "GET", "/metrics")
    assert st == 200
    return [v for name, _, v in parse_metrics(text) if name == "fedgslb_proxy_tls_ticket_keys_total"][0]


def wait_keys(p, n, timeout):
    deadline = time.monotonic() + timeout
    while keys_made(p) < n:
        assert time.monotonic() < deadline, "ticket key %d not made within %.0f s" % (n, timeout)
        time.sleep(0.02)


@pytest.mark.parametrize("version,tickets", [(TLS13, True), (TLS12, True), (TLS12, False)],
                         ids=["tls13-ticket", "tls12-ticket", "tls12-session-id"])
def test_python_client_resumes(tmp_path, backend, version, tickets):
    p = start(tmp_path, backend)
    try:
        ctx = ph.client_context(version)
        if not tickets:
            ctx.options |= ssl.OP_NO_TICKET  # the server's session cache, by session ID
        h0 = handshakes(p)
        reused, sess, ver = get(p.port, ctx)
        assert not reused and ver == ("TLSv1.3" if version == TLS13 else "TLSv1.2")
        for _ in range(3):
            reused, sess2, _ = get(p.port, ctx, sess)
            assert reused
            sess = sess2 if version == TLS13 else sess  # TLS 1.3 tickets are for one use
        h = handshakes(p)
        # (the harness's readiness probe is a TCP connect without a handshake: "failed")
        assert (h["full"] - h0["full"], h["resumed"] - h0["resumed"]) == (1, 3), (h0, h)
    finally:
        finish(p)


def test_s_client_reconnect_reuses(tmp_path, backend):
    """openssl s_client -reconnect (TLS 1.2: it does not wait for TLS 1.3
    tickets) and -sess_out/-sess_in (TLS 1.3)."""
    p = start(tmp_path, backend)
    try:
        r = subprocess.run(["openssl", "s_client", "-tls1_2", "-reconnect", "-connect",
                            f"127.0.0.1:{p.port}", "-servername", NAME],
                           input=b"", capture_output=True, timeout=30 * SLOW)
        lines = [ln for ln in r.stdout.decode(errors="replace").splitlines()
                 if ln.startswith(("New,", "Reused,"))]
        assert lines[0].startswith("New, TLSv1.2") and len(lines) == 6, lines
        assert all(ln.startswith("Reused, TLSv1.2") for ln in lines[1:]), lines

        # TLS 1.3: each connection saves the session it ends with and the next
        # one offers it. OpenSSL's client uses a TLS 1.3 ticket once, so every
        # resumption must come with a new ticket for the chain to go on (as
        # wrk's reconnects found out).
        req = b"GET / HTTP/1.1\nHost: x\nConnection: close\n\n"
        sess = [os.path.join(str(tmp_path), "sess%d.pem" % i) for i in range(4)]
        for i in range(4):
            argv = ["openssl", "s_client", "-tls1_3", "-crlf", "-sess_out", sess[i], "-connect",
                    f"127.0.0.1:{p.port}", "-servername", NAME, "-ign_eof"]
            if i > 0:
                argv += ["-sess_in", sess[i - 1]]
            r = subprocess.run(argv, input=req, capture_output=True, timeout=30 * SLOW)
            out = r.stdout.decode(errors="replace")
            want = "New, TLSv1.3" if i == 0 else "Reused, TLSv1.3"
            assert want in out and "HTTP/1.1 200 OK" in out, (i, out[-2000:])
    finally:
        finish(p)


def test_tickets_survive_reload(tmp_path, backend):
    p = start(tmp_path, backend)
    try:
        ctx = ph.client_context(TLS13)
        _, sess, _ = get(p.port, ctx)
        before = len([ln for ln in p.log_text().splitlines() if "reload done" in ln])
        p.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10 * SLOW
        while len([ln for ln in p.log_text().splitlines() if "reload done" in ln]) == before:
            assert time.monotonic() < deadline, p.log_text()[-2000:]
            time.sleep(0.05)
        reused, _, _ = get(p.port, ctx, sess)
        assert reused  # the keys belong to the process, not to the TLS set
    finally:
        finish(p)


def test_ticket_key_rotation_window(tmp_path, backend):
    """A ticket resumes while its key is the previous one (one rotation
    later) and no longer once that key is gone (two rotations later); the
    connection then makes a full handshake and works."""
    period = max(2, int(round(2 * SLOW)))
    p = start(tmp_path, backend, {"ticket_key_rotation_s": period})
    try:
        ctx = ph.client_context(TLS13)
        for _attempt in range(5):  # a rotation may fall between the metric and the handshake
            n0 = keys_made(p)
            _, sess, _ = get(p.port, ctx)
            if keys_made(p) == n0:
                break
        else:
            pytest.fail("a key rotation came with every try")

        wait_keys(p, n0 + 1, 3 * period * SLOW)
        reused, _, _ = get(p.port, ctx, sess)
        if keys_made(p) == n0 + 1:  # (else too slow to tell: the key may be gone already)
            assert reused, "a ticket under the previous key must resume"

        wait_keys(p, n0 + 2, 3 * period * SLOW)
        h0 = handshakes(p)
        reused, _, _ = get(p.port, ctx, sess)
        assert not reused, "a ticket under a key two rotations old must not resume"
        h = handshakes(p)
        assert h["full"] == h0["full"] + 1 and h["resumed"] == h0["resumed"]
    finally:
        finish(p)


@pytest.mark.parametrize("sessions,resumes", [
    ({"tickets": False}, True),                     # TLS 1.3 resumes from the session cache
    ({"tickets": False, "cache_size": 0}, False),   # nothing left to resume from
    ({"tickets": True, "cache_size": 0}, True),     # tickets need no cache
], ids=["no-tickets", "no-tickets-no-cache", "tickets-no-cache"])
def test_sessions_settings(tmp_path, backend, sessions, resumes):
    p = start(tmp_path, backend, sessions)
    try:
        for version in (TLS13, TLS12):
            ctx = ph.client_context(version)
            _, sess, _ = get(p.port, ctx)
            reused, _, _ = get(p.port, ctx, sess)
            assert reused == resumes, (version, sessions)
    finally:
        finish(p)


def test_check_config_rejects_bad_sessions(tmp_path):
    port = ph.free_port(ipv6=False)
    conf = ph.proxy_config(tmp_path, port, ph.free_port(ipv6=False), ["127.0.0.1:1"],
                           proxy_over={"tls_sessions": {"ticket_key_rotation_s": 0}})
    path = ph.fedtest.write_config(str(tmp_path), conf, "bad.json")
    r = subprocess.run([ph.fedtest.binary("fedgslb-proxy"), "--check-config", "--config", path],
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert r.returncode != 0
    assert "proxy.tls_sessions.ticket_key_rotation_s" in r.stderr, r.stderr
