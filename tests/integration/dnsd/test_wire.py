# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd on the wire: malformed packets, opcodes, EDNS0, truncation,
ECS echo (RFC 1035, 6891, 7766, 7871)."""

import struct

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

import fedtest
from fedtest import ZONE, header, query, raw_udp

Z = ZONE + "."
QNAME = b"\x04host\x03fed\x07example\x04test\x00"
QTAIL = b"\x00\x01\x00\x01"  # A IN
ID = 0x4A5B


def hdr(qd=1, an=0, ns=0, ar=0, flags=0x0100, qid=ID):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


OPT_OK = b"\x00" + b"\x00\x29" + b"\x04\xd0" + b"\x00\x00\x00\x00" + b"\x00\x00"

MALFORMED = {
    "truncated_question": hdr() + b"\x04host\x03fed",
    "truncated_qtype": hdr() + QNAME + b"\x00",
    "qdcount_2": hdr(qd=2) + QNAME + QTAIL + QNAME + QTAIL,
    "qdcount_0": hdr(qd=0),
    "label_64": hdr() + b"\x40" + b"a" * 64 + b"\x00" + QTAIL,
    "name_over_255": hdr() + (b"\x3f" + b"a" * 63) * 5 + b"\x00" + QTAIL,
    "pointer_loop": hdr() + b"\xc0\x0c" + QTAIL,
    "pointer_out_of_packet": hdr() + b"\xc0\xff" + QTAIL,
    "ancount_without_data": hdr(an=1) + QNAME + QTAIL,
    "opt_rdlen_overflow": hdr(ar=1) + QNAME + QTAIL + OPT_OK[:-2] + b"\x00\x10",
    "two_opt": hdr(ar=2) + QNAME + QTAIL + OPT_OK + OPT_OK,
}


def _ecs_opt(family, srclen, addr):
    body = struct.pack("!HBB", family, srclen, 0) + addr
    opt = struct.pack("!HH", 8, len(body)) + body
    return b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00" + struct.pack("!H", len(opt)) + opt


# RFC 7871 section 6: bad family, wrong ADDRESS length, bits beyond the prefix -> FORMERR
MALFORMED["ecs_bits_beyond_prefix"] = hdr(ar=1) + QNAME + QTAIL + _ecs_opt(1, 20, b"\x0a\x01\x0f")
MALFORMED["ecs_too_many_octets"] = hdr(ar=1) + QNAME + QTAIL + _ecs_opt(1, 8, b"\x0a\x01\x00")
MALFORMED["ecs_prefix_33"] = hdr(ar=1) + QNAME + QTAIL + _ecs_opt(1, 33, b"\x0a\x01\x02\x03\x00")
MALFORMED["ecs_family_3"] = hdr(ar=1) + QNAME + QTAIL + _ecs_opt(3, 8, b"\x0a")


def _valid_query_works(d):
    r = query(d, "host." + Z, "A")
    assert r.rcode() == dns.rcode.NOERROR and fedtest.addresses(r) == {"192.0.2.80"}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_formerr_for_malformed_query(dnsd, case):
    wire = MALFORMED[case]
    resp = raw_udp(dnsd.dns_port, wire)
    assert resp is not None, f"{case}: no reply (expected FORMERR)"
    qid, flags, *_ = header(resp)
    assert qid == ID
    assert flags & 0x8000, "QR must be set"
    assert (flags >> 11) & 0xF == 0, "opcode QUERY echoed"
    assert flags & 0xF == dns.rcode.FORMERR, f"{case}: rcode {flags & 0xF}, expected FORMERR"
    _valid_query_works(dnsd)


@pytest.mark.parametrize("wire", [b"", b"\x12", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00"])
def test_shorter_than_header_dropped(dnsd, wire):
    assert raw_udp(dnsd.dns_port, wire, timeout=0.7) is None
    _valid_query_works(dnsd)


@pytest.mark.parametrize("opcode", [1, 2, 4, 5, 6, 15])
def test_notimp_for_other_opcodes(dnsd, opcode):
    wire = hdr(flags=opcode << 11) + QNAME + QTAIL
    resp = raw_udp(dnsd.dns_port, wire)
    assert resp is not None, "no reply to opcode %d" % opcode
    qid, flags, *_ = header(resp)
    assert qid == ID and flags & 0x8000
    assert (flags >> 11) & 0xF == opcode, "opcode echoed"
    assert flags & 0xF == dns.rcode.NOTIMP, "rcode %d" % (flags & 0xF)
    _valid_query_works(dnsd)


def test_response_packet_gets_no_reply(dnsd):
    q = dns.message.make_query("host." + Z, "A")
    q.flags |= dns.flags.QR
    assert raw_udp(dnsd.dns_port, q.to_wire(), timeout=1.0) is None
    _valid_query_works(dnsd)


def test_no_opt_without_edns(dnsd):
    r = query(dnsd, "host." + Z, "A", edns=-1)
    assert r.edns == -1, "RFC 6891: no OPT in a response to a query without one"


def test_opt_echoed(dnsd):
    r = query(dnsd, "host." + Z, "A", edns=0, payload=1400)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.edns == 0
    assert r.payload >= 512


def test_do_bit_accepted(dnsd):
    r = query(dnsd, "host." + Z, "A", edns=0, want_dnssec=True)
    assert r.rcode() == dns.rcode.NOERROR and fedtest.addresses(r) == {"192.0.2.80"}


def test_badvers_for_edns1(dnsd):
    r = query(dnsd, "host." + Z, "A", edns=1)
    assert r.rcode() == dns.rcode.BADVERS, dns.rcode.to_text(r.rcode())
    assert r.edns == 0, "responder states the version it implements"
    assert not r.answer


def _raw_edns_query(port, name, payload, rdtype="TXT"):
    if payload is None:
        q = dns.message.make_query(name, rdtype, use_edns=False)
    else:
        q = dns.message.make_query(name, rdtype, use_edns=0, payload=payload)
    q.id = ID
    resp = raw_udp(port, q.to_wire())
    assert resp is not None
    qid, flags, qd, an, ns, ar = header(resp)
    assert qid == ID
    return resp, bool(flags & 0x0200), an


def test_tc_without_edns_then_tcp_full(dnsd):
    resp, tc, _ = _raw_edns_query(dnsd.dns_port, "big." + Z, None)
    assert tc, "20 x 100-byte TXT cannot fit 512 bytes"
    assert len(resp) <= 512
    q = dns.message.make_query("big." + Z, "TXT", use_edns=False)
    r = dns.query.tcp(q, "127.0.0.1", port=dnsd.dns_port, timeout=3)
    assert not r.flags & dns.flags.TC
    assert len(r.answer) == 1 and len(r.answer[0]) == 20


def test_mid_fits_1232_not_512(dnsd):
    resp, tc, _ = _raw_edns_query(dnsd.dns_port, "mid." + Z, None)
    assert tc and len(resp) <= 512
    resp, tc, an = _raw_edns_query(dnsd.dns_port, "mid." + Z, 1232)
    assert not tc and an == 6 and len(resp) <= 1232


def test_payload_size_honoured(dnsd):
    resp, tc, _ = _raw_edns_query(dnsd.dns_port, "big." + Z, 1232)
    assert tc and len(resp) <= 1232
    resp, tc, _ = _raw_edns_query(dnsd.dns_port, "big." + Z, 600)
    assert tc and len(resp) <= 600
    # below 512 counts as 512 (RFC 6891 6.2.5): a 700-byte answer is still truncated
    resp, tc, _ = _raw_edns_query(dnsd.dns_port, "mid." + Z, 100)
    assert tc and len(resp) <= 512


def test_udp_edns_4096_whole(dnsd):
    # the module daemon has dnsd.max_udp_size 4096
    resp, tc, an = _raw_edns_query(dnsd.dns_port, "big." + Z, 4096)
    assert not tc, "answer fits the 4096-byte EDNS size"
    assert an == 20 and 2000 < len(resp) <= 4096
    r = dns.message.from_wire(resp)
    assert len(r.answer[0]) == 20


def test_max_udp_size_default_caps_edns(tmp_path):
    port = fedtest.free_port()
    ctl = fedtest.free_port(ipv6=False)
    conf = fedtest.base_config(tmp_path, port, ctl)
    del conf["dnsd"]["max_udp_size"]  # default 1232
    d = fedtest.start_dnsd(tmp_path, conf=conf, dns_port=port, ctl_port=ctl)
    try:
        resp, tc, _ = _raw_edns_query(port, "big." + Z, 4096)
        assert tc, "default max_udp_size 1232 must cap a 4096 EDNS size"
        assert len(resp) <= 1232
        resp, tc, an = _raw_edns_query(port, "mid." + Z, 4096)
        assert not tc and an == 6
    finally:
        fedtest.finish(d)


def test_dig_tc_and_tcp(dnsd):
    port = str(dnsd.dns_port)
    p = fedtest.run(["dig", "@127.0.0.1", "-p", port, "+notcp", "+ignore", "+noedns",
                     "+time=3", "+tries=1", "big." + Z, "TXT"])
    assert p.returncode == 0, p.stderr
    flags = p.stdout.split("flags:")[1].split(";")[0]
    assert " tc" in flags, p.stdout
    p = fedtest.run(["dig", "@127.0.0.1", "-p", port, "+tcp", "+noedns", "+time=3",
                     "+tries=1", "big." + Z, "TXT"])
    assert p.returncode == 0, p.stderr
    assert "status: NOERROR" in p.stdout
    assert p.stdout.count("\tTXT\t") == 20 or p.stdout.count(" TXT ") == 20, p.stdout
    # dig retries over TCP by itself on TC
    p = fedtest.run(["dig", "@127.0.0.1", "-p", port, "+noedns", "+time=3", "+tries=1",
                     "big." + Z, "TXT", "+short"])
    assert len(p.stdout.strip().splitlines()) == 20, p.stdout + p.stderr


def test_kdig_tcp(dnsd):
    p = fedtest.run(["kdig", "@127.0.0.1", "-p", str(dnsd.dns_port), "+tcp", "+time=3",
                     "+retry=0", "big." + Z, "TXT", "+short"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(p.stdout.strip().splitlines()) == 20, p.stdout


@pytest.mark.parametrize("ecs,family,srclen", [("10.1.2.0/24", 1, 24),
                                                ("2001:db8:1:500::/56", 2, 56),
                                                ("192.0.2.0/32", 1, 32)])
def test_ecs_echoed_scope_zero_for_static(dnsd, ecs, family, srclen):
    r = query(dnsd, "host." + Z, "A", ecs=ecs)
    assert r.rcode() == dns.rcode.NOERROR
    o = fedtest.ecs_option(r)
    assert o is not None, "ECS option must be echoed (RFC 7871 7.2.1)"
    assert o.family == family and o.srclen == srclen
    assert o.address == ecs.split("/")[0]
    assert o.scopelen == 0, "a static answer does not depend on the client"


def test_ecs_echoed_on_nxdomain(dnsd):
    r = query(dnsd, "nope." + Z, "A", ecs="10.2.3.0/24")
    assert r.rcode() == dns.rcode.NXDOMAIN
    o = fedtest.ecs_option(r)
    assert o is not None and o.srclen == 24 and o.scopelen == 0
