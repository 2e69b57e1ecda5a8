# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd response rate limiting (dnsd.rrl) on real sockets.

A flood from one loopback /24 (127.0.5.x) is limited: most responses are
dropped, every second limited one comes back truncated (slip 2) with no
records; another /24 (127.0.6.x) and an exempt one (127.0.7.0/24) are
answered in full, and TCP is never limited. Bounded: a few thousand queries.
"""

import select
import socket
import struct

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest

import fedtest
from fedtest import ZONE, query

Z = ZONE + "."
RATE = 20
WORKERS = 2


@pytest.fixture(scope="module")
def dnsd(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dnsd-rrl")
    d = fedtest.start_dnsd(tmp, workers=WORKERS, rrl={
        "enabled": True, "responses_per_second": RATE, "slip": 2, "window_s": 5,
        "exempt": ["127.0.7.0/24", "::1/128"]})
    yield d
    fedtest.finish(d)


def flood(port, source, count, name="host." + Z, batch=48, sockets=8):
    """@count A queries from @source, @batch in flight at a time, spread over
    @sockets source ports (so that SO_REUSEPORT spreads them over the workers,
    as a spoofed flood with random ports would be).

    Returns (full, slipped, silent): full answers, TC=1 replies with no
    records, and queries that got nothing back."""
    wire = bytearray(dns.message.make_query(name, "A", use_edns=False).to_wire())
    full = slipped = 0
    socks = []
    try:
        for _ in range(sockets):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind((source, 0))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sent = 0
        while sent < count:
            n = min(batch, count - sent)
            for i in range(n):
                struct.pack_into("!H", wire, 0, (sent + i) & 0xFFFF)
                socks[i % sockets].sendto(bytes(wire), ("127.0.0.1", port))
            sent += n
            got = 0
            while got < n:
                r, _, _ = select.select(socks, [], [], 0.3 * fedtest.SLOW)
                if not r:
                    break
                for s in r:
                    data = s.recv(65535)
                    got += 1
                    _, flags, _, an, ns, ar = fedtest.header(data)
                    if flags & 0x0200:
                        assert an == 0 and ns == 0 and ar == 0, "slipped replies carry no records"
                        slipped += 1
                    else:
                        assert an > 0
                        full += 1
    finally:
        for s in socks:
            s.close()
    return full, slipped, count - full - slipped


def _rrl_metrics(dnsd):
    m = {}
    for name, labels, v in fedtest.Control(dnsd.ctl_port).metrics():
        if name == "fedgslb_dns_rrl_responses_total":
            m[labels["action"]] = v
    return m


def test_flood_is_limited_other_prefix_is_not(dnsd):
    before = _rrl_metrics(dnsd)
    full, slipped, silent = flood(dnsd.dns_port, "127.0.5.1", 2000)
    print(f"flood 2000 from 127.0.5.1: full={full} slipped={slipped} silent={silent}")
    # A few seconds at most: each worker lets RATE/s through per bucket, plus the burst.
    assert full <= RATE * WORKERS * 8, (full, slipped, silent)
    assert slipped >= 300 and silent >= 600, (full, slipped, silent)
    # slip 2: about as many slipped as dropped
    assert abs(slipped - silent) <= 0.3 * (slipped + silent), (slipped, silent)
    # another address of the same /24 is in the same debt
    full2, slipped2, silent2 = flood(dnsd.dns_port, "127.0.5.77", 20)
    assert full2 == 0, (full2, slipped2, silent2)
    # another /24 is answered in full, even right after the flood
    for i in range(15):
        r = query(dnsd, "host." + Z, source=f"127.0.6.{1 + i}")
        assert r.rcode() == dns.rcode.NOERROR and not r.flags & dns.flags.TC
        assert fedtest.addresses(r) == {"192.0.2.80"}
    # TCP is exempt: the flooding /24 still gets full answers over TCP
    r = query(dnsd, "host." + Z, source="127.0.5.1", tcp=True)
    assert fedtest.addresses(r) == {"192.0.2.80"}
    after = _rrl_metrics(dnsd)
    assert after["dropped"] - before.get("dropped", 0) >= silent
    assert after["slipped"] - before.get("slipped", 0) >= slipped
    assert after["passed"] - before.get("passed", 0) >= full + 15


def test_exempt_network_is_not_limited(dnsd):
    full, slipped, silent = flood(dnsd.dns_port, "127.0.7.1", 600)
    assert (full, slipped, silent) == (600, 0, 0)
    assert _rrl_metrics(dnsd)["exempt"] >= 600


def test_dnspython_retries_slipped_over_tcp(dnsd):
    """What a real resolver sees: a slipped reply is TC=1, and TCP answers."""
    flood(dnsd.dns_port, "127.0.5.9", 200, name="www." + Z)
    seen_tc = False
    for i in range(10):
        q = dns.message.make_query("www." + Z, "A")
        try:
            r, used_tcp = dns.query.udp_with_fallback(q, "127.0.0.1", port=dnsd.dns_port,
                                                       timeout=0.3, source="127.0.5.9")
        except dns.exception.Timeout:
            continue
        seen_tc = seen_tc or used_tcp
        assert fedtest.addresses(r) == {"192.0.2.80"}
    assert seen_tc
