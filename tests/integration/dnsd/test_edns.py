# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd on the open Internet, the EDNS part: the ECS scope of every kind
of answer (bug ecs_short_source), DNS cookies (RFC 7873 with RFC 9018 server
cookies), NSID (RFC 5001) and the header of NOTIMP replies (bug
notimp_flags), seen with dnspython, dig and kdig on a real daemon."""

import os
import signal
import struct
import time

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

import fedtest
from fedtest import ZONE, endpoint, fed_name, query, state_doc

US, EU, AP = "us-east-1", "eu-west-1", "ap-northeast-1"
V4 = {"usa": "192.0.2.10", "eur": "192.0.2.20", "jpn": "192.0.2.30"}
WEB = fed_name("web")
SECRET = "e5e973e5a6b2a43f48e7dc849e37bfcf"  # RFC 9018 appendix A
SECRET2 = "445536bcd2513298075a5d379663c962"
COOKIE = 10
NSID = 3
CLIENT = bytes.fromhex("2464c4abcf10c957")


def push(ctl):
    svcs = {svc: {m: endpoint([a]) for m, a in V4.items()}
            for svc in ("default/web", "default/closed", "default/sorry", "default/cloud",
                        "default/shared")}
    for v in (US, EU, AP):
        st, body = ctl.put_state(state_doc(v, svcs))
        assert 200 <= st < 300, (st, body)


@pytest.fixture(scope="module")
def dnsd(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edns")
    fedtest.write_secret(os.path.join(tmp, "cookie.secret"), SECRET)
    d = fedtest.start_dnsd(tmp, nsid="ns1.us-east-1",
                           cookies={"secret_file": os.path.join(tmp, "cookie.secret")})
    push(fedtest.Control(d.ctl_port))
    yield d
    fedtest.finish(d)


def ask(d, name, rdtype="A", options=(), tcp=False, ecs=None):
    q = dns.message.make_query(name, rdtype)
    opts = list(options)
    if ecs:
        addr, n = ecs.split("/")
        opts.append(dns.edns.ECSOption(addr, int(n)))
    q.use_edns(0, payload=1232, options=opts)
    fn = dns.query.tcp if tcp else dns.query.udp
    return fn(q, "127.0.0.1", port=d.dns_port, timeout=3 * fedtest.SLOW)


def option(msg, code):
    for o in msg.options:
        if o.otype == code:
            return o
    return None


def scope(msg):
    o = fedtest.ecs_option(msg)
    assert o is not None, msg.to_text()
    return o.srclen, o.scopelen


# ---------------------------------------------------------------- ECS scope

# (ECS, member answered, scope). client_networks: 10.1/16 us, 10.2/16 eu,
# 10.3/16 ap, 2001:db8:1::/48 us, :2::/48 eu, :3::/48 ap; dnsd.region eu.
SCOPES = [
    ("10.1.2.0/24", "usa", 16),   # longer than the network
    ("10.1.0.0/16", "usa", 16),   # equal
    ("10.0.0.0/8", "eur", 16),    # the bug: was /8/8; covering: none -> default
    ("10.0.0.0/12", "eur", 16),
    ("192.0.2.0/24", "eur", 1),   # no network at all in 128.0.0.0/1: default, /1
    ("2001:db8::/40", "eur", 48),  # the bug in IPv6: was /40/40
    ("2001:db8:3:500::/56", "jpn", 48),
]


@pytest.mark.parametrize("ecs,member,want", SCOPES)
def test_ecs_scope(dnsd, ecs, member, want):
    r = query(dnsd, WEB, "A", ecs=ecs)
    assert fedtest.addresses(r) == {V4[member]}, r.to_text()
    assert scope(r) == (int(ecs.split("/")[1]), want)


@pytest.mark.parametrize("name,rdtype,rcode", [
    (WEB, "MX", dns.rcode.NOERROR),                           # NODATA on a federated name
    (fed_name("nothing"), "A", dns.rcode.NXDOMAIN),
    (f"www.{ZONE}", "A", dns.rcode.NOERROR),                  # static CNAME + A
    (f"nx.{ZONE}", "A", dns.rcode.NXDOMAIN),
    (fed_name("web", region=US), "A", dns.rcode.NOERROR),     # the same for every client
])
def test_ecs_scope_zero_when_shared(dnsd, name, rdtype, rcode):
    r = query(dnsd, name, rdtype, ecs="10.3.4.0/24")
    assert r.rcode() == rcode
    assert scope(r) == (24, 0), r.to_text()


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_ecs_scope_tools(dnsd, tool):
    r = fedtest.run([tool, "@127.0.0.1", "-p", str(dnsd.dns_port), "+subnet=10.0.0.0/8",
                     "+norecurse", WEB, "A"])
    assert r.returncode == 0, r.stderr
    assert "CLIENT-SUBNET: 10.0.0.0/8/16" in r.stdout, r.stdout
    assert V4["eur"] in r.stdout, r.stdout


# ---------------------------------------------------------------- NOTIMP header

def test_notimp_clears_query_flags(dnsd):
    # bug notimp_flags: opcode 15 with RD, AD and CD (and RA, Z) set
    q = dns.message.make_query(f"www.{ZONE}", "A")
    wire = bytearray(q.to_wire())
    wire[2] = 0x78 | 0x01          # opcode 15, RD
    wire[3] = 0x80 | 0x20 | 0x10   # RA, AD, CD
    resp = fedtest.raw_udp(dnsd.dns_port, bytes(wire))
    assert resp is not None
    qid, flags, *_ = struct.unpack("!HHHHHH", resp[:12])
    assert qid == q.id
    assert flags & 0x8000                     # QR
    assert (flags >> 11) & 0xF == 15          # opcode kept
    assert flags & 0x0F == dns.rcode.NOTIMP
    assert flags & (0x0100 | 0x0080 | 0x0020 | 0x0010) == 0, hex(flags)  # no RD RA AD CD
    # a QUERY still gets RD and CD back
    wire[2] = 0x01
    resp = fedtest.raw_udp(dnsd.dns_port, bytes(wire))
    flags = struct.unpack("!H", resp[2:4])[0]
    assert flags & 0x0100 and flags & 0x0010, hex(flags)


# ---------------------------------------------------------------- NSID

def test_nsid(dnsd):
    r = ask(dnsd, WEB, options=[dns.edns.GenericOption(NSID, b"")])
    assert option(r, NSID).data == b"ns1.us-east-1"
    r = ask(dnsd, WEB)
    assert option(r, NSID) is None
    for tool in ("dig", "kdig"):
        out = fedtest.run([tool, "@127.0.0.1", "-p", str(dnsd.dns_port), "+nsid", WEB, "A"])
        assert "NSID" in out.stdout and "ns1.us-east-1" in out.stdout, out.stdout


# ---------------------------------------------------------------- cookies

def test_cookie_client_only_gets_server_cookie(dnsd):
    r = ask(dnsd, WEB, options=[dns.edns.GenericOption(COOKIE, CLIENT)])
    assert r.rcode() == dns.rcode.NOERROR
    c = option(r, COOKIE).data
    assert len(c) == 24 and c[:8] == CLIENT
    assert c[8] == 1 and c[9:12] == b"\0\0\0"               # RFC 9018 version, reserved
    ts = int.from_bytes(c[12:16], "big")
    assert abs(ts - time.time()) < 60
    # returned as is over the next query: recognised (a fresh cookie back)
    r2 = ask(dnsd, WEB, options=[dns.edns.GenericOption(COOKIE, c)])
    assert r2.rcode() == dns.rcode.NOERROR
    assert option(r2, COOKIE).data[:8] == CLIENT


@pytest.mark.parametrize("length", [0, 1, 7, 9, 15, 41, 64])
def test_cookie_malformed_is_formerr(dnsd, length):
    r = ask(dnsd, WEB, options=[dns.edns.GenericOption(COOKIE, b"\x01" * length)])
    assert r.rcode() == dns.rcode.FORMERR
    assert not r.answer
    # the server is still there
    assert ask(dnsd, WEB).rcode() == dns.rcode.NOERROR


def test_two_cookies_is_formerr(dnsd):
    o = dns.edns.GenericOption(COOKIE, CLIENT)
    assert ask(dnsd, WEB, options=[o, o]).rcode() == dns.rcode.FORMERR


def test_cookie_tools(dnsd):
    out = fedtest.run(["kdig", "@127.0.0.1", "-p", str(dnsd.dns_port),
                       "+cookie=" + CLIENT.hex(), WEB, "A"])
    line = [ln for ln in out.stdout.splitlines() if "COOKIE:" in ln]
    assert line, out.stdout
    c = bytes.fromhex(line[0].split("COOKIE:")[1].split()[0])
    assert c[:8] == CLIENT and len(c) == 24
    # kdig sends the whole cookie back: answered
    out = fedtest.run(["kdig", "@127.0.0.1", "-p", str(dnsd.dns_port), "+cookie=" + c.hex(),
                       WEB, "A"])
    assert "NOERROR" in out.stdout and V4["eur"] in out.stdout, out.stdout
    # BIND's dig sends a cookie by default and checks ours
    out = fedtest.run(["dig", "@127.0.0.1", "-p", str(dnsd.dns_port), WEB, "A"])
    assert "COOKIE:" in out.stdout and "(good)" in out.stdout, out.stdout


def _cookie_server(tmp, require, secret=SECRET, previous=None):
    sec = os.path.join(tmp, "cookie.secret")
    fedtest.write_secret(sec, secret)
    cookies = {"secret_file": sec, "require": require}
    if previous:
        prev = os.path.join(tmp, "cookie.previous")
        fedtest.write_secret(prev, previous)
        cookies["previous_secret_file"] = prev
    return cookies


def test_cookie_require_and_rotation(tmp_path):
    d = fedtest.start_dnsd(tmp_path, cookies=_cookie_server(str(tmp_path), True))
    try:
        push(fedtest.Control(d.ctl_port))
        # a client cookie alone over UDP: BADCOOKIE (23) with a cookie to use
        r = ask(d, WEB, options=[dns.edns.GenericOption(COOKIE, CLIENT)])
        assert r.rcode() == 23, r.to_text()
        assert not r.answer
        good = option(r, COOKIE).data
        assert good[:8] == CLIENT and len(good) == 24
        # TCP is exempt
        r = ask(d, WEB, options=[dns.edns.GenericOption(COOKIE, CLIENT)], tcp=True)
        assert r.rcode() == dns.rcode.NOERROR and r.answer
        # with the server cookie: answered
        r = ask(d, WEB, options=[dns.edns.GenericOption(COOKIE, good)])
        assert r.rcode() == dns.rcode.NOERROR and r.answer
        # a forged server cookie: BADCOOKIE
        forged = good[:-1] + bytes([good[-1] ^ 1])
        assert ask(d, WEB, options=[dns.edns.GenericOption(COOKIE, forged)]).rcode() == 23
        # no COOKIE at all: the client cannot do cookies; answered
        assert ask(d, WEB).rcode() == dns.rcode.NOERROR
        # counted under their own rcode label
        bad = [v for n, lb, v in fedtest.Control(d.ctl_port).metrics()
               if n == "fedgslb_dns_responses_total" and lb.get("rcode") == "BADCOOKIE"]
        assert bad and bad[0] >= 2, bad
        # dig retries a BADCOOKIE with the cookie it got, and gets the answer
        out = fedtest.run(["dig", "@127.0.0.1", "-p", str(d.dns_port), WEB, "A"])
        assert "status: NOERROR" in out.stdout and V4["eur"] in out.stdout, out.stdout

        # rotation: new secret, the old one as previous -> old cookies still good
        conf = dict(d.conf)
        conf["dnsd"] = dict(conf["dnsd"])
        conf["dnsd"]["cookies"] = _cookie_server(str(tmp_path), True, SECRET2, SECRET)
        fedtest.write_config(tmp_path, conf)
        d.signal(signal.SIGHUP)
        fresh = None
        for _ in range(50):
            r = ask(d, WEB, options=[dns.edns.GenericOption(COOKIE, CLIENT)])
            fresh = option(r, COOKIE).data
            if fresh[16:] != good[16:] or fresh[12:16] != good[12:16]:
                break
            time.sleep(0.1)
        r = ask(d, WEB, options=[dns.edns.GenericOption(COOKIE, good)])
        assert r.rcode() == dns.rcode.NOERROR and r.answer, "old-secret cookie refused"
        # the overlap ends: the old secret is forgotten
        conf["dnsd"]["cookies"] = _cookie_server(str(tmp_path), True, SECRET2)
        fedtest.write_config(tmp_path, conf)
        d.signal(signal.SIGHUP)
        for _ in range(50):
            if ask(d, WEB, options=[dns.edns.GenericOption(COOKIE, good)]).rcode() == 23:
                break
            time.sleep(0.1)
        assert ask(d, WEB, options=[dns.edns.GenericOption(COOKIE, good)]).rcode() == 23
        r = ask(d, WEB, options=[dns.edns.GenericOption(COOKIE, option(r, COOKIE).data)])
        assert r.rcode() == dns.rcode.NOERROR, "a cookie made with the new secret is refused"
    finally:
        fedtest.finish(d)


def test_cookie_secret_file_checked(tmp_path):
    """A secret that is not 32 hex digits, or readable by others, is refused
    at --check-config with the file named and the content never shown."""
    sec = os.path.join(str(tmp_path), "bad.secret")
    fedtest.write_secret(sec, "not-hex-" + "z" * 24)
    conf = fedtest.base_config(tmp_path, fedtest.free_port(), fedtest.free_port(ipv6=False),
                               cookies={"secret_file": sec})
    path = fedtest.write_config(tmp_path, conf)
    r = fedtest.run([fedtest.binary("fedgslb-dnsd"), "--config", path, "--check-config"])
    assert r.returncode != 0
    assert "bad.secret" in r.stderr and "zzzz" not in r.stderr, r.stderr
    fedtest.write_secret(sec, SECRET)
    os.chmod(sec, 0o644)
    r = fedtest.run([fedtest.binary("fedgslb-dnsd"), "--config", path, "--check-config"])
    assert r.returncode != 0 and "bad.secret" in r.stderr, r.stderr
    os.chmod(sec, 0o600)
    r = fedtest.run([fedtest.binary("fedgslb-dnsd"), "--config", path, "--check-config"])
    assert r.returncode == 0, r.stderr
