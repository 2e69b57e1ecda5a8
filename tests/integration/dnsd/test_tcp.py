# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd over TCP (RFC 7766) and on its IPv6 listener."""

import socket
import struct
import time

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

import fedtest
from fedtest import ZONE, query, tcp_read_msg

Z = ZONE + "."
IDLE_MS = 1000
MAX_CONNS = 4


@pytest.fixture(scope="module")
def dnsd(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dnsd-tcp")
    d = fedtest.start_dnsd(tmp, tcp_idle_timeout_ms=IDLE_MS, tcp_max_conns=MAX_CONNS, workers=2)
    yield d
    fedtest.finish(d)


def _connect(port, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5 * fedtest.SLOW)
    s.connect((host, port))
    return s


def _framed(msg):
    w = msg.to_wire()
    return struct.pack("!H", len(w)) + w


def test_tcp_query(dnsd):
    r = query(dnsd, "host." + Z, "A", tcp=True)
    assert r.rcode() == dns.rcode.NOERROR and fedtest.addresses(r) == {"192.0.2.80"}
    assert r.flags & dns.flags.AA


def test_tcp_pipelining(dnsd):
    names = ["host.", "www.", "nope.", "mail.", "big."]
    types = ["A", "A", "A", "A", "TXT"]
    qs = []
    for i, (n, t) in enumerate(zip(names, types)):
        q = dns.message.make_query(n + Z, t)
        q.id = 1000 + i
        qs.append(q)
    s = _connect(dnsd.dns_port)
    try:
        s.sendall(b"".join(_framed(q) for q in qs))  # all five before reading
        got = [dns.message.from_wire(tcp_read_msg(s)) for _ in qs]
    finally:
        s.close()
    # RFC 7766 6.2.1.1 lets a server answer out of order; each answer must
    # match its query by ID and question.
    by_id = {r.id: r for r in got}
    assert sorted(by_id) == [q.id for q in qs], [r.id for r in got]
    for q in qs:
        r = by_id[q.id]
        assert r.question[0].name == q.question[0].name
        assert r.question[0].rdtype == q.question[0].rdtype
    assert fedtest.addresses(by_id[1000]) == {"192.0.2.80"}
    assert by_id[1002].rcode() == dns.rcode.NXDOMAIN
    assert len(by_id[1004].answer[0]) == 20


def test_tcp_split_writes(dnsd):
    """A message that arrives in pieces (length prefix split) is still answered."""
    q = dns.message.make_query("host." + Z, "A")
    q.id = 77
    data = _framed(q)
    s = _connect(dnsd.dns_port)
    try:
        for b in (data[:1], data[1:5], data[5:]):
            s.sendall(b)
            time.sleep(0.05)
        r = dns.message.from_wire(tcp_read_msg(s))
    finally:
        s.close()
    assert r.id == 77 and fedtest.addresses(r) == {"192.0.2.80"}


def test_tcp_idle_timeout_closes(dnsd):
    s = _connect(dnsd.dns_port)
    try:
        # the connection works first
        q = dns.message.make_query("host." + Z, "A")
        s.sendall(_framed(q))
        tcp_read_msg(s)
        t0 = time.monotonic()
        s.settimeout(10 * fedtest.SLOW)
        try:
            data = s.recv(10)
        except ConnectionResetError:
            data = b""
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert data == b"", "server sent data instead of closing"
    assert elapsed >= IDLE_MS / 1000 * 0.5, f"closed too early ({elapsed:.2f}s)"
    assert elapsed < 5 * fedtest.SLOW, f"idle connection still open after {elapsed:.2f}s"


def test_tcp_zero_length_message_closes_or_ignored(dnsd):
    """A zero-length frame is not a message; the server must not crash."""
    s = _connect(dnsd.dns_port)
    try:
        s.sendall(b"\x00\x00")
        time.sleep(0.2)
    finally:
        s.close()
    r = query(dnsd, "host." + Z, "A", tcp=True)
    assert r.rcode() == dns.rcode.NOERROR


def test_many_tcp_connections_beyond_limit(dnsd):
    socks = []
    try:
        for _ in range(MAX_CONNS * 2 * 6):  # far beyond tcp_max_conns per worker
            try:
                socks.append(_connect(dnsd.dns_port))
            except OSError:
                break
        assert dnsd.alive()
        # UDP still answered while the TCP slots are taken
        r = query(dnsd, "host." + Z, "A")
        assert r.rcode() == dns.rcode.NOERROR
    finally:
        for s in socks:
            s.close()
    assert dnsd.alive()
    # once they are gone, TCP works again (slots were released)
    deadline = time.monotonic() + 5 * fedtest.SLOW
    while True:
        try:
            r = query(dnsd, "host." + Z, "A", tcp=True, timeout=1)
            break
        except (OSError, EOFError, dns.exception.DNSException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert fedtest.addresses(r) == {"192.0.2.80"}


def test_tcp_half_sent_message_then_close(dnsd):
    s = _connect(dnsd.dns_port)
    s.sendall(b"\x00\x40" + b"\x12\x34\x01\x00")  # announces 64 bytes, sends 4
    s.close()
    r = query(dnsd, "host." + Z, "A", tcp=True)
    assert r.rcode() == dns.rcode.NOERROR


@pytest.mark.skipif(not fedtest.have_ipv6(), reason="no ::1")
def test_ipv6_listener_udp_and_tcp(dnsd):
    r = query(dnsd, "host." + Z, "AAAA", host="::1")
    assert r.rcode() == dns.rcode.NOERROR
    assert fedtest.addresses(r, "AAAA") == {"2001:db8::80"}
    r = query(dnsd, "www." + Z, "A", host="::1", tcp=True)
    assert fedtest.addresses(r) == {"192.0.2.80"}
    p = fedtest.run(["dig", "@::1", "-p", str(dnsd.dns_port), "+time=3", "+tries=1",
                     "host." + Z, "A", "+short"])
    assert p.stdout.strip() == "192.0.2.80", p.stdout + p.stderr
