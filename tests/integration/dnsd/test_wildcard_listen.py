# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd on a wildcard address (0.0.0.0, [::]) answers from the
address each query was sent to (IP_PKTINFO / IPV6_PKTINFO), not from the
route's preferred source: resolvers drop replies from another address."""

import socket
import time

import dns.message
import dns.query
import dns.rcode
import pytest

import fedtest
from fedtest import ZONE

Z = ZONE + "."


@pytest.fixture(scope="module")
def dnsd(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dnsd-wildcard")
    port = fedtest.free_port()
    listen = [f"0.0.0.0:{port}"]
    if fedtest.have_ipv6():
        listen.append(f"[::]:{port}")
    d = fedtest.start_dnsd(tmp, dns_port=port, listen=listen, workers=2)
    yield d
    fedtest.finish(d)


def _raw(port, dst, src):
    """Sends from @src (unconnected socket) to @dst; returns (reply, sender address)."""
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    wire = dns.message.make_query("host." + Z, "A").to_wire()
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        s.settimeout(3 * fedtest.SLOW)
        s.sendto(wire, (dst, port))
        data, sender = s.recvfrom(65535)
    return dns.message.from_wire(data), sender


@pytest.mark.parametrize("dst", ["127.0.0.2", "127.0.0.3", "127.0.0.1"])
def test_ipv4_reply_from_queried_address(dnsd, dst):
    # From 127.0.0.1 the kernel's preferred source towards us is 127.0.0.1:
    # without IP_PKTINFO the replies to .2 and .3 would come from there.
    for _ in range(8):  # several source ports: both workers' sockets
        r, sender = _raw(dnsd.dns_port, dst, "127.0.0.1")
        assert sender[0] == dst and sender[1] == dnsd.dns_port
        assert fedtest.addresses(r) == {"192.0.2.80"}


@pytest.mark.parametrize("dst", ["127.0.0.2", "127.0.0.3"])
def test_ipv4_dnspython_accepts_reply(dnsd, dst):
    # dns.query.udp raises UnexpectedSource when the reply comes from elsewhere
    q = dns.message.make_query("host." + Z, "A")
    r = dns.query.udp(q, dst, port=dnsd.dns_port, timeout=3 * fedtest.SLOW, source="127.0.0.1")
    assert r.rcode() == dns.rcode.NOERROR and fedtest.addresses(r) == {"192.0.2.80"}


def test_ipv6_wildcard(dnsd):
    if not fedtest.have_ipv6():
        pytest.skip("no IPv6 on this host")
    r, sender = _raw(dnsd.dns_port, "::1", "::1")
    assert sender[0] == "::1" and sender[1] == dnsd.dns_port
    assert fedtest.addresses(r) == {"192.0.2.80"}


def test_tcp_on_wildcard(dnsd):
    r = fedtest.query(dnsd, "host." + Z, host="127.0.0.3", tcp=True)
    assert fedtest.addresses(r) == {"192.0.2.80"}


PROBE = r"""
import socket, sys
import dns.message
dst, src, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((src, 0))
s.settimeout(3)
s.sendto(dns.message.make_query(sys.argv[4], "A").to_wire(), (dst, port))
data, sender = s.recvfrom(65535)
print(sender[0], sender[1], len(dns.message.from_wire(data).answer))
"""


def test_ipv6_wildcard_several_addresses(tmp_path):
    """[::] with three IPv6 addresses on lo, in a network namespace the test
    creates (root only): each reply comes from the address queried."""
    import os
    import shutil
    import subprocess
    import sys
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip(8) for a network namespace with extra IPv6 addresses")
    ns = f"fedtest-h5-v6-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace")
    d = None
    try:
        ex = ["ip", "netns", "exec", ns]
        subprocess.run(ex + ["ip", "link", "set", "lo", "up"], check=True)
        for a in ("fd00:53::2", "fd00:53::3"):
            subprocess.run(ex + ["ip", "-6", "addr", "add", f"{a}/128", "dev", "lo", "nodad"],
                           check=True)
        conf = fedtest.base_config(tmp_path, 5353, 8053, ipv6=False)
        conf["dnsd"]["listen"] = ["[::]:5353"]
        path = fedtest.write_config(tmp_path, conf)
        d = fedtest.Daemon(ex + [fedtest.binary("fedgslb-dnsd"), "--config", path],
                           os.path.join(str(tmp_path), "dnsd.log")).start()
        for dst in ("fd00:53::2", "fd00:53::3", "::1"):
            out = ""
            for _ in range(100):  # until it serves
                r = subprocess.run(ex + [sys.executable, "-c", PROBE, dst, "::1", "5353",
                                         "host." + Z], capture_output=True, text=True)
                out = r.stdout.split()
                if r.returncode == 0:
                    break
                time.sleep(0.1)
            assert out == [dst, "5353", "1"], (dst, out, d.log_text())
    finally:
        # the namespace goes even when the server does not stop cleanly
        code = d.stop() if d is not None else 0
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert code == 0, d.log_text()
