# SPDX-License-Identifier: Apache-2.0
"""Where the testbed's clients live and which addresses they reach.

LoopbackNet: everything on 127.0.0.0/8; a client of a region is a source
address (fedtest.SOURCE: 127.0.0.2/3/4, which client_networks maps to the
regions) and an ECS option.

NetnsNet (root, `ip netns`): three network namespaces fgs-us, fgs-eu, fgs-ap,
each with a veth link to a bridge fgsbr0 in the root namespace
(10.250.0.1/24; the namespaces are 10.250.0.11/12/13 with a default route
to it). The members' load-balancer addresses 10.250.1.1/2/3 and both name
servers (10.250.0.1) live in the root namespace; clients run inside their
namespace (`ip netns exec`). No netem here: the delaying relays in front of
each load-balancer address add the latency by the client's (namespace's)
address. Health vantages stay in the root namespace and probe from their
own loopback source addresses. setup() removes what it built when any step
fails; teardown() always removes it.
"""

import os
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
INTEG = os.path.join(os.path.dirname(HERE), "integration")
if INTEG not in sys.path:
    sys.path.insert(0, INTEG)

import fedtest  # noqa: E402

REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
MEMBERS = ("usa", "eur", "jpn")


class LoopbackNet:
    mode = "loopback"

    def __init__(self):
        self.lb_ip = {"usa": "127.0.1.1", "eur": "127.0.1.2", "jpn": "127.0.1.3"}
        self.client_source = dict(fedtest.SOURCE)
        self.dns_host = "127.0.0.1"

    def setup(self):
        return self

    def teardown(self):
        pass

    def extra_dns_listen(self, port):
        return []

    def client_networks(self):
        return []   # fedtest.base_config maps the loopback sources already

    def where(self, region):
        return self.client_source[region]

    def run_argv(self, region, argv):
        """@argv run as a client of @region."""
        return list(argv)

    def dig_bind(self, region):
        return ["-b", self.client_source[region]]

    def curl_bind(self, region):
        return ["--interface", self.client_source[region]]


def _ip(*args, check=True):
    p = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=10)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), (p.stderr or p.stdout).strip()))
    return p


class NetnsNet(LoopbackNet):
    mode = "netns"
    BRIDGE = "fgsbr0"
    NS = {"us-east-1": "fgs-us", "eu-west-1": "fgs-eu", "ap-northeast-1": "fgs-ap"}
    HOST_IP = "10.250.0.1"

    def __init__(self):
        super().__init__()
        self.lb_ip = {"usa": "10.250.1.1", "eur": "10.250.1.2", "jpn": "10.250.1.3"}
        self.client_source = {"us-east-1": "10.250.0.11", "eu-west-1": "10.250.0.12",
                              "ap-northeast-1": "10.250.0.13"}
        self.dns_host = self.HOST_IP
        self.built = False

    @staticmethod
    def problem():
        """None when namespaces can be used here, else why not."""
        if os.geteuid() != 0:
            return "not root"
        try:
            p = _ip("netns", "list", check=False)
        except (OSError, subprocess.SubprocessError) as e:
            return "no ip command (%s)" % e
        if p.returncode != 0:
            return "ip netns: %s" % p.stderr.strip()
        return None

    def setup(self):
        self.teardown()  # leftovers of a killed run (these names are the testbed's)
        self.built = True
        try:
            _ip("link", "add", self.BRIDGE, "type", "bridge")
            _ip("addr", "add", self.HOST_IP + "/24", "dev", self.BRIDGE)
            for m in MEMBERS:
                _ip("addr", "add", self.lb_ip[m] + "/32", "dev", self.BRIDGE)
            _ip("link", "set", self.BRIDGE, "up")
            for r in REGIONS:
                ns = self.NS[r]
                _ip("netns", "add", ns)
                _ip("link", "add", ns + "-h", "type", "veth", "peer", "name", ns + "-c")
                _ip("link", "set", ns + "-c", "netns", ns)
                _ip("link", "set", ns + "-h", "master", self.BRIDGE, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "addr", "add", self.client_source[r] + "/24", "dev", ns + "-c")
                _ip("-n", ns, "link", "set", ns + "-c", "up")
                _ip("-n", ns, "route", "add", "default", "via", self.HOST_IP)
            self._check_reach()
        except Exception:
            self.teardown()
            raise
        return self

    def _check_reach(self):
        """A TCP connection from every namespace to the root namespace."""
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((self.lb_ip["usa"], 0))
        srv.listen(8)
        srv.settimeout(5)
        port = srv.getsockname()[1]
        seen = []

        def accept():
            try:
                for _ in REGIONS:
                    c, addr = srv.accept()
                    seen.append(addr[0])
                    c.close()
            except OSError:
                pass
        th = threading.Thread(target=accept, daemon=True)
        th.start()
        try:
            for r in REGIONS:
                code = ("import socket; socket.create_connection((%r, %d), timeout=3).close()"
                        % (self.lb_ip["usa"], port))
                p = subprocess.run(self.run_argv(r, ["/usr/bin/python3", "-c", code]),
                                   capture_output=True, text=True, timeout=10)
                if p.returncode != 0:
                    raise RuntimeError("no TCP from %s to the root namespace: %s"
                                       % (self.NS[r], p.stderr.strip()[-300:]))
            th.join(5)
        finally:
            srv.close()
        if sorted(seen) != sorted(self.client_source.values()):
            raise RuntimeError("connections came from %s, expected %s"
                               % (seen, sorted(self.client_source.values())))

    def teardown(self):
        for r in REGIONS:
            _ip("netns", "del", self.NS[r], check=False)
            _ip("link", "del", self.NS[r] + "-h", check=False)
        _ip("link", "del", self.BRIDGE, check=False)
        self.built = False

    def extra_dns_listen(self, port):
        return ["%s:%d" % (self.HOST_IP, port)]

    def client_networks(self):
        return [{"cidr": self.client_source[r] + "/32", "region": r} for r in REGIONS]

    def where(self, region):
        return "%s %s" % (self.NS[region], self.client_source[region])

    def run_argv(self, region, argv):
        return ["ip", "netns", "exec", self.NS[region]] + list(argv)

    def dig_bind(self, region):
        return []

    def curl_bind(self, region):
        return []
