# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd's TCP slots on the open Internet: connections that hold one
byte of a query cannot lock legitimate queries out (the least recently used
idle or partial connection makes room), one source cannot take the table from
another (dnsd.tcp_max_conns_per_source), and a connection trickling a query
cannot keep its slot past dnsd.tcp_idle_timeout_ms."""

import select
import socket
import struct
import time

import dns.message
import dns.query
import dns.rcode
import pytest

import fedtest
from fedtest import ZONE, tcp_read_msg

Z = ZONE + "."
MAX_CONNS = 8
SOURCES = [f"127.0.7.{i}" for i in range(1, 6)]
LEGIT = "127.0.7.9"


def _start(tmp_path, **over):
    conf = {"workers": 1, "tcp_max_conns": MAX_CONNS, "tcp_idle_timeout_ms": 30000}
    conf.update(over)
    return fedtest.start_dnsd(tmp_path, **conf)


@pytest.fixture
def dnsd(tmp_path):
    d = _start(tmp_path)
    yield d
    fedtest.finish(d)


@pytest.fixture
def dnsd_capped(tmp_path):
    d = _start(tmp_path, tcp_max_conns_per_source=4)
    yield d
    fedtest.finish(d)


@pytest.fixture
def dnsd_short_idle(tmp_path):
    d = _start(tmp_path, tcp_idle_timeout_ms=1000)
    yield d
    fedtest.finish(d)


def _tcp_counts(d):
    out = {}
    for name, labels, value in fedtest.Control(d.ctl_port).metrics():
        if name == "fedgslb_dns_tcp_connections_total":
            out[labels["result"]] = value
    return out


def _wait_taken(d, n):
    """Waits (bounded) until dnsd has taken @n connections off its backlog
    (accepted or refused), then a little more so their bytes are read."""
    deadline = time.monotonic() + 5 * fedtest.SLOW
    while True:
        c = _tcp_counts(d)
        if c.get("accepted", 0) + c.get("refused", 0) >= n:
            break
        assert time.monotonic() < deadline, f"dnsd took {c} of {n} connections"
        time.sleep(0.02)
    time.sleep(0.2 * fedtest.SLOW)
    return c


def _connect(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5 * fedtest.SLOW)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def _holders(port, sources, per_source):
    """@per_source connections from each of @sources, each sending the first
    byte of a length prefix and holding: the slot-exhaustion attack."""
    socks = []
    for _ in range(per_source):
        for src in sources:
            s = _connect(port, src)
            s.sendall(b"\x00")
            socks.append(s)
    return socks


def _framed(name, qid):
    q = dns.message.make_query(name, "A")
    q.id = qid
    w = q.to_wire()
    return struct.pack("!H", len(w)) + w


def _ask(s, qid):
    """One query on the open connection @s; the answer's addresses."""
    s.sendall(_framed("host." + Z, qid))
    r = dns.message.from_wire(tcp_read_msg(s))
    assert r.id == qid and r.rcode() == dns.rcode.NOERROR
    return fedtest.addresses(r)


def _tcp_query(d, source):
    q = dns.message.make_query("host." + Z, "A")
    t0 = time.monotonic()
    r = dns.query.tcp(q, "127.0.0.1", port=d.dns_port, source=source, timeout=3 * fedtest.SLOW)
    return r, time.monotonic() - t0


def _close_all(socks):
    for s in socks:
        s.close()


def test_one_byte_holders_do_not_lock_out_tcp(dnsd):
    """40 connections from 5 sources each holding one byte of a query, the
    table holds 8: a legitimate TCP query is still answered, promptly."""
    socks = _holders(dnsd.dns_port, SOURCES, 8)
    try:
        _wait_taken(dnsd, 40)
        r, elapsed = _tcp_query(dnsd, LEGIT)
        assert r.rcode() == dns.rcode.NOERROR and fedtest.addresses(r) == {"192.0.2.80"}
        assert elapsed < 2 * fedtest.SLOW, f"answered after {elapsed:.2f}s"
        c = _tcp_counts(dnsd)
        assert c.get("refused", 0) == 0, c
        assert c.get("evicted", 0) >= 40 - MAX_CONNS, c
        assert dnsd.alive()
    finally:
        _close_all(socks)


def test_newcomer_evicts_the_oldest_not_the_newest(dnsd):
    """With the table full of holders, a client that has just connected is
    not the one closed for the next holder: the least recently used is."""
    socks = _holders(dnsd.dns_port, SOURCES, 8)
    legit = None
    try:
        taken = _wait_taken(dnsd, 40)
        legit = _connect(dnsd.dns_port, LEGIT)
        taken = _wait_taken(dnsd, taken.get("accepted", 0) + taken.get("refused", 0) + 1)
        socks += _holders(dnsd.dns_port, SOURCES[:1], 1)  # one more holder after it
        _wait_taken(dnsd, taken.get("accepted", 0) + taken.get("refused", 0) + 1)
        assert _ask(legit, 4242) == {"192.0.2.80"}
        # and the connection keeps working for the next query
        assert _ask(legit, 4243) == {"192.0.2.80"}
    finally:
        _close_all(socks)
        if legit is not None:
            legit.close()


def test_recently_used_connection_outlives_holders(dnsd):
    """Least recently *used*, not least recently opened: a connection opened
    before the holders but answered after them is not the one closed."""
    mine = _connect(dnsd.dns_port, LEGIT)
    socks = []
    try:
        assert _ask(mine, 1) == {"192.0.2.80"}
        socks = _holders(dnsd.dns_port, SOURCES, 1) + _holders(dnsd.dns_port, SOURCES[:2], 1)
        taken = _wait_taken(dnsd, 1 + 7)  # the table is full now
        assert _ask(mine, 2) == {"192.0.2.80"}  # used again: the newest
        socks += _holders(dnsd.dns_port, SOURCES[2:3], 1)
        _wait_taken(dnsd, taken.get("accepted", 0) + taken.get("refused", 0) + 1)
        assert _ask(mine, 3) == {"192.0.2.80"}
        assert _tcp_counts(dnsd).get("evicted", 0) == 1
    finally:
        _close_all(socks)
        mine.close()


def test_source_cap_keeps_other_sources_connections(dnsd_capped):
    """tcp_max_conns_per_source 4: one source opening 30 holders takes at most
    4 slots; another source's idle connections stay open and answer, and both
    sources can still open new ones."""
    d = dnsd_capped
    mine = []
    holders = []
    try:
        for i in range(3):  # a resolver's persistent connections, idle between queries
            s = _connect(d.dns_port, "127.0.7.2")
            assert _ask(s, 100 + i) == {"192.0.2.80"}
            mine.append(s)
        holders = _holders(d.dns_port, ["127.0.7.1"], 30)
        _wait_taken(d, 33)
        for i, s in enumerate(mine):
            assert _ask(s, 200 + i) == {"192.0.2.80"}
        r, _ = _tcp_query(d, "127.0.7.2")  # a fresh connection from the same source
        assert fedtest.addresses(r) == {"192.0.2.80"}
        r, _ = _tcp_query(d, "127.0.7.1")  # the capped source itself still gets answers
        assert fedtest.addresses(r) == {"192.0.2.80"}
        c = _tcp_counts(d)
        assert c.get("source_cap", 0) >= 30 - 4, c
        assert c.get("evicted", 0) == 0, c  # the cap alone made the room
        assert c.get("refused", 0) == 0, c
    finally:
        _close_all(holders)
        _close_all(mine)


def _closed_by_peer(s, wait_s):
    """True when @s is closed by dnsd (EOF or reset) within @wait_s."""
    try:
        readable, _, _ = select.select([s], [], [], wait_s)
        return bool(readable) and s.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_slowloris_cannot_keep_its_slot(dnsd_short_idle):
    """A connection that answered one query and then trickles the next one
    byte every 200 ms is closed when the 1000 ms idle timeout runs out,
    though it never stops sending."""
    d = dnsd_short_idle
    s = _connect(d.dns_port, SOURCES[0])
    try:
        assert _ask(s, 7) == {"192.0.2.80"}
        before = _tcp_counts(d).get("closed_idle", 0)
        t0 = time.monotonic()
        s.sendall(b"\x01\x00")  # announces 256 bytes, which will come one at a time
        sent = 2
        closed = False
        while time.monotonic() - t0 < 6 * fedtest.SLOW:
            try:
                s.sendall(b"\x00")
                sent += 1
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            if _closed_by_peer(s, 0.2):
                closed = True
                break
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert closed, f"still open after {elapsed:.1f}s and {sent} bytes trickled"
    assert sent >= 4, f"closed after {sent} bytes: not a trickle"
    assert elapsed >= 0.5, f"closed too early ({elapsed:.2f}s)"
    assert elapsed < 3 * fedtest.SLOW, f"closed only after {elapsed:.2f}s"
    deadline = time.monotonic() + 2 * fedtest.SLOW
    while _tcp_counts(d).get("closed_idle", 0) <= before:
        assert time.monotonic() < deadline, "closed_idle not counted"
        time.sleep(0.05)
    # the slot is free again
    r, _ = _tcp_query(d, LEGIT)
    assert fedtest.addresses(r) == {"192.0.2.80"}
