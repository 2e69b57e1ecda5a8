# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd's UDP sockets ignore path MTU updates (IP_PMTUDISC_OMIT,
IPV6_PMTUDISC_OMIT): a forged ICMP "fragmentation needed" (ICMPv6 Packet Too
Big) naming a resolver does not make dnsd's kernel fragment the answers it
sends there. A second fragment carries no UDP header and no DNS ID, so an
off-path attacker can spoof it into a resolver's cache (Herzberg & Shulman
2013, RFC 8900, draft-ietf-dnsop-avoid-fragmentation).

Two network namespaces the test creates and removes (root only: skipped
otherwise), joined by a veth pair of MTU 1500: dnsd in one, the client and
the forger in the other. The server namespace's IpFragCreates
(Ip6FragCreates) must not move. A plain UDP socket in the server namespace
shows that the same forged ICMP does lower the path MTU there and make the
kernel fragment, so the test cannot pass because the forgery was ignored."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

import fedtest
from fedtest import ZONE

Z = ZONE + "."
NET = {  # family: (server address, client address, forged MTU, name, EDNS payload)
    4: ("10.53.47.1", "10.53.47.2", 576, "mid." + Z, 1232),
    6: ("fd00:53:47::1", "fd00:53:47::2", 1280, "pmtu6." + Z, 1452),
}
HEADERS = {4: 20 + 8, 6: 40 + 8}  # IP + UDP header bytes in front of a DNS message
PMTU6_TXT = 11  # TXT records of "pmtu6": an answer between 1280 and 1500 bytes on IPv6
RUN_TIMEOUT = 10

# Client namespace: an ICMP error about a datagram from the server's
# address:port to the client's, as a router on the path would send it.
FORGE = r"""
import socket, struct, sys
fam, srv, cli = sys.argv[1], sys.argv[2], sys.argv[4]
sport, dport, mtu, size = (int(sys.argv[i]) for i in (3, 5, 6, 7))

def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b + b"\0" * (len(b) % 2)))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

udp = struct.pack("!HHHH", sport, dport, 8 + size, 0)  # the quoted datagram's first 8 bytes
if fam == "4":
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + size, 0, 0x4000, 64, 17, 0,
                     socket.inet_pton(socket.AF_INET, srv), socket.inet_pton(socket.AF_INET, cli))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    msg = struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + ip + udp  # fragmentation needed, next-hop MTU
    msg = msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
else:
    ip = struct.pack("!IHBB16s16s", 6 << 28, 8 + size, 17, 64,
                     socket.inet_pton(socket.AF_INET6, srv), socket.inet_pton(socket.AF_INET6, cli))
    msg = struct.pack("!BBHI", 2, 0, 0, mtu) + ip + udp  # Packet Too Big; the kernel sums ICMPv6
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.sendto(msg, (srv, 0))
"""

# Client namespace: one TXT query over UDP; prints the reply's size, TC, rcode, TXT count.
QUERY = r"""
import socket, sys
import dns.message, dns.rdatatype
srv, port, src, name, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], \
    int(sys.argv[5])
fam = socket.AF_INET6 if ":" in srv else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((src, 0))
s.settimeout(3)
s.sendto(dns.message.make_query(name, "TXT", use_edns=0, payload=payload).to_wire(), (srv, port))
data = s.recv(65535)
r = dns.message.from_wire(data)
txt = sum(len(rrset) for rrset in r.answer if rrset.rdtype == dns.rdatatype.TXT)
print(len(data), int(bool(r.flags & 0x200)), r.rcode(), txt)
"""

# Server namespace: a UDP socket with the kernel's default (path MTU
# followed); prints its port, then on "go" sends @size bytes to the client.
PLAIN = r"""
import select, socket, sys
srv, cli, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in srv else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((srv, 0))
print(s.getsockname()[1], flush=True)
if select.select([sys.stdin], [], [], 10)[0] and sys.stdin.readline().strip() == "go":
    s.sendto(b"x" * size, (cli, 9))
    print("sent", flush=True)
"""


def _ns_run(ns, argv, check=True):
    return subprocess.run(["ip", "netns", "exec", ns] + argv, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT * fedtest.SLOW, check=check)


def _ip(*argv):
    subprocess.run(["ip"] + list(argv), check=True, capture_output=True,
                   timeout=RUN_TIMEOUT * fedtest.SLOW)


def _frag_creates(ns, fam):
    """The namespace's count of fragments its IP layer created (IPv4 or IPv6)."""
    if fam == 4:
        lines = [ln.split() for ln in _ns_run(ns, ["cat", "/proc/net/snmp"]).stdout.splitlines()
                 if ln.startswith("Ip:")]
        return int(lines[1][lines[0].index("FragCreates")])
    for ln in _ns_run(ns, ["cat", "/proc/net/snmp6"]).stdout.splitlines():
        if ln.startswith("Ip6FragCreates"):
            return int(ln.split()[1])
    raise AssertionError("no Ip6FragCreates in /proc/net/snmp6")


def _route_mtu(ns, dst):
    """The path MTU the namespace's routing holds for @dst (None: the interface's)."""
    out = subprocess.run(["ip", "-n", ns, "route", "get", dst], capture_output=True, text=True,
                         timeout=RUN_TIMEOUT * fedtest.SLOW, check=True).stdout
    m = re.search(r"\bmtu (\d+)", out)
    return int(m.group(1)) if m else None


def _forge(pair, fam, sport, dport):
    srv, cli, mtu, _, payload = NET[fam]
    _ns_run(pair["cli"], [sys.executable, "-c", FORGE, str(fam), srv, str(sport), cli,
                          str(dport), str(mtu), str(payload)])


def _query(pair, fam):
    """(size, tc, rcode, TXT count) of dnsd's answer to the client, or None on no answer."""
    srv, cli, _, name, payload = NET[fam]
    r = _ns_run(pair["cli"], [sys.executable, "-c", QUERY, srv, "53", cli, name, str(payload)],
                check=False)
    return tuple(int(x) for x in r.stdout.split()) if r.returncode == 0 else None


def _zone_txt():
    return "".join(f'pmtu6 IN TXT "{i:02d}' + "z" * 98 + '"\n' for i in range(PMTU6_TXT))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Namespaces srv (dnsd on SRV4:53 and [SRV6]:53) and cli, a veth of MTU 1500 between."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root (CAP_NET_ADMIN) and ip(8) to create network namespaces")
    tag = f"fedtest-h47-{os.getpid()}"
    ns = {"srv": f"{tag}-srv", "cli": f"{tag}-cli"}
    made, d = [], None
    try:
        for n in ns.values():
            r = subprocess.run(["ip", "netns", "add", n], capture_output=True, text=True,
                               timeout=RUN_TIMEOUT)
            if r.returncode != 0:
                pytest.skip(f"cannot create a network namespace: {r.stderr.strip()}")
            made.append(n)
            _ip("-n", n, "link", "set", "lo", "up")
        _ip("-n", ns["srv"], "link", "add", "v-srv", "mtu", "1500", "type", "veth",
            "peer", "name", "v-cli", "mtu", "1500", "netns", ns["cli"])
        for side, dev in (("srv", "v-srv"), ("cli", "v-cli")):
            i = 0 if side == "srv" else 1
            _ip("-n", ns[side], "addr", "add", NET[4][i] + "/24", "dev", dev)
            _ip("-n", ns[side], "-6", "addr", "add", NET[6][i] + "/64", "dev", dev, "nodad")
            _ip("-n", ns[side], "link", "set", dev, "up")
        tmp = tmp_path_factory.mktemp("dnsd-pmtu")
        with open(os.path.join(str(tmp), "zone.txt"), "w") as f:
            f.write(fedtest.zone_text(extra=_zone_txt()))
        conf = fedtest.base_config(tmp, 53, 8053, ipv6=False)
        conf["dnsd"]["listen"] = [f"{NET[4][0]}:53", f"[{NET[6][0]}]:53"]
        path = fedtest.write_config(tmp, conf)
        d = fedtest.Daemon(["ip", "netns", "exec", ns["srv"], fedtest.binary("fedgslb-dnsd"),
                            "--config", path], os.path.join(str(tmp), "dnsd.log")).start()
        deadline = time.monotonic() + 15 * fedtest.SLOW
        while _query(ns, 4) is None or _query(ns, 6) is None:  # until it serves both
            assert d.alive() and time.monotonic() < deadline, d.log_text()
            time.sleep(0.1)
        yield dict(ns, dnsd=d)
    finally:
        if d is not None:
            fedtest.finish(d)
        for n in made:
            subprocess.run(["ip", "netns", "del", n], check=False, timeout=RUN_TIMEOUT)


def _assert_whole(pair, fam):
    """dnsd's answer arrives whole, and the server's kernel made no fragment for it."""
    before = _frag_creates(pair["srv"], fam)
    r = _query(pair, fam)
    assert r is not None, pair["dnsd"].log_text()
    size, tc, rcode, txt = r
    assert (tc, rcode, txt) == (0, 0, 6 if fam == 4 else PMTU6_TXT)
    # larger than the forged MTU, within the veth's and the client's EDNS size
    assert NET[fam][2] < size + HEADERS[fam] <= 1500 and size <= NET[fam][4], size
    assert _frag_creates(pair["srv"], fam) == before, "dnsd's kernel fragmented the answer"


@pytest.mark.parametrize("fam", [4, 6])
def test_forged_mtu_does_not_fragment_answers(pair, fam):
    srv, cli, mtu = NET[fam][:3]
    # the attack: an ICMP quoting a datagram from dnsd's listener to the client
    _forge(pair, fam, 53, 40053)
    _assert_whole(pair, fam)
    assert _route_mtu(pair["srv"], cli) is None, "the forged ICMP lowered the path MTU"

    # control: a socket that follows path MTU (the kernel's default) takes the
    # same forgery, and its datagram larger than the forged MTU is fragmented
    plain = subprocess.Popen(["ip", "netns", "exec", pair["srv"], sys.executable, "-c", PLAIN,
                              srv, cli, str(mtu)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        port = int(plain.stdout.readline())
        _forge(pair, fam, port, 40053)
        deadline = time.monotonic() + 5 * fedtest.SLOW
        while _route_mtu(pair["srv"], cli) != mtu and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _route_mtu(pair["srv"], cli) == mtu, "the kernel ignored the forged ICMP"
        before = _frag_creates(pair["srv"], fam)
        out, _ = plain.communicate("go\n", timeout=RUN_TIMEOUT * fedtest.SLOW)
        assert out.split() == ["sent"]
        assert _frag_creates(pair["srv"], fam) > before
    finally:
        if plain.poll() is None:
            plain.kill()
            plain.wait()

    # with the path MTU now lowered towards the client, dnsd still sends whole
    _assert_whole(pair, fam)
