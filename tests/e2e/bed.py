# SPDX-License-Identifier: Apache-2.0
"""The multi-region federation of issue 7 on one machine, as objects.

Built on tests/integration/chain/chain.py (the whole chain on loopback) and
the shared tools (tests/integration/tools/): three member clusters (fake
Kubernetes API servers holding default/web), two real hello backends per
member, a user-space delaying relay per member standing in for the WAN
(one relay is a whole latency row: the delay depends on the source address
of the client or of the health vantage), one fedgslb-health per vantage
region, two fedgslb-dnsd (ns1 and ns2) fed by every vantage, and
fedgslb-proxy as jpn's load balancer.

Every daemon runs from one deployment file (deployment.json, see
Testbed.deployment()): `--instance ns1` / `ns2`, `--instance <region>` for
the vantages, `--instance px` for the proxy; the vantages publish to every
name server and the proxy because the file lists them, and fedgslbctl
reaches them all through the same file.

Addresses (loopback mode; tests/e2e/netplan.py has the netns variant, where
the load-balancer addresses are 10.250.1.1/2/3 and the clients 10.250.0.11/12/13
inside the namespaces fgs-us/eu/ap):
    usa LB  127.0.1.1:P  relay -> usa-web-1 127.0.2.1:P, usa-web-2 127.0.2.11:P
    eur LB  127.0.1.2:P  relay -> eur-web-1 127.0.2.2:P, eur-web-2 127.0.2.12:P
    jpn LB  127.0.1.3:P  relay -> fedgslb-proxy 127.0.4.3:P -> the Ready nodes
                         at the nodePort: jpn-node-1 127.0.5.1:N, jpn-node-2 127.0.5.2:N
    vantages probe from 127.0.3.1/2/3, clients come from 127.0.0.2/3/4
    (fedtest.SOURCE; client_networks maps them to their region) or carry
    ECS 10.1/10.2/10.3.x.0/24.

jpn has no native load balancer: its config says lb mode proxy at
127.0.1.3, and the proxy.listen entry the health checkers read names
127.0.1.3:P (where the proxy is reached across the WAN, i.e. through the
relay, so that each vantage measures its own RTT to it), while the proxy
itself listens behind the relay on 127.0.4.3:P. The proxy learns jpn's
nodePort backends from the state documents the vantages push to it.
"""

import copy
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEG = os.path.join(os.path.dirname(HERE), "integration")
for _d in (HERE, INTEG, os.path.join(INTEG, "chain"), os.path.join(INTEG, "health"),
           os.path.join(INTEG, "tools"), os.path.join(INTEG, "etcd")):
    if _d not in sys.path:
        sys.path.insert(0, _d)

import chain  # noqa: E402
import etcd_cluster  # noqa: E402
import fedtest  # noqa: E402
from delay_relay import DelayRelay  # noqa: E402
from hello_backend import HelloBackend  # noqa: E402
from netplan import LoopbackNet, NetnsNet  # noqa: E402,F401

REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
SHORT = {"us-east-1": "us", "eu-west-1": "eu", "ap-northeast-1": "ap"}
HOME = {"us-east-1": "usa", "eu-west-1": "eur", "ap-northeast-1": "jpn"}
MEMBER_REGION = dict(fedtest.MEMBER_REGION)
ZONE_OF = {m: fedtest.MEMBERS[m]["zone"] for m in fedtest.MEMBERS}
MEMBER_OF_ZONE = {z: m for m, z in ZONE_OF.items()}

# Round-trip times between regions (ms), as in the issue.
RTT_PAIRS = {("us-east-1", "us-east-1"): 20, ("eu-west-1", "eu-west-1"): 20,
             ("ap-northeast-1", "ap-northeast-1"): 20,
             ("us-east-1", "eu-west-1"): 80, ("us-east-1", "ap-northeast-1"): 150,
             ("eu-west-1", "ap-northeast-1"): 220}


def rtt(a, b):
    return RTT_PAIRS.get((a, b), RTT_PAIRS.get((b, a)))


BACKEND_IPS = {"usa": ["127.0.2.1", "127.0.2.11"], "eur": ["127.0.2.2", "127.0.2.12"]}
NODE_IPS = ["127.0.5.1", "127.0.5.2"]           # jpn's nodes
PROXY_IP = "127.0.4.3"                           # fedgslb-proxy, behind jpn's relay
PROBE_SOURCE = dict(chain.PROBE_SOURCE)
POLL_SOURCE = dict(fedtest.SOURCE)   # the harness's own DNS polls, from the root namespace
CLIENT_ECS = {r: fedtest.ECS4[r] + "/24" for r in REGIONS}
WEB = fedtest.fed_name("web")                   # with the trailing dot
WEB_HOST = WEB.rstrip(".")

INTERVAL_MS, FALL, RISE = chain.INTERVAL_MS, chain.FALL, chain.RISE
PUBLISH_DEBOUNCE_S = 2.0   # a changed verdict is published within this
TTL_S, MIN_TTL_S = 10, 2


class Testbed(chain.Chain):
    """Chain with the issue's topology; see the module docstring. With @etcd,
    the distributed mode: a three-node etcd cluster on loopback holds the
    vantages' documents, the name servers and the proxy watch it, and no
    vantage pushes to anyone."""

    def __init__(self, tmp, net=None, etcd=False):
        self.cluster = etcd_cluster.EtcdCluster(str(tmp)) if etcd else None
        self.net = net or LoopbackNet()
        self.lb_ip = dict(self.net.lb_ip)
        self.member_of_ip = {ip: m for m, ip in self.lb_ip.items()}
        self.node_port = fedtest.free_port(ipv6=False)
        self.proxy_ctl_port = fedtest.free_port(ipv6=False)
        self.proxy = None
        self.nodes = {}          # jpn node name -> HelloBackend
        super().__init__(tmp, vantages=REGIONS)
        if self.cluster is not None:
            # Below the ephemeral range, which etcd's many connections draw from.
            q = etcd_cluster.quiet_port
            self.dns_port, self.ctl_port, self.ns2_dns_port = q(), q(), q()
            self.ns2_ctl_port, self.proxy_ctl_port = q(), q()
            self.health_ports = {v: q() for v in REGIONS}
            self.conf = self._config()

    # ---- configuration ----
    def _config(self):
        conf = chain.Chain._config(self)
        conf["latency_ms"] = {"us-east-1": {"eu-west-1": rtt("us-east-1", "eu-west-1"),
                                            "ap-northeast-1": rtt("us-east-1", "ap-northeast-1")},
                              "eu-west-1": {"ap-northeast-1": rtt("eu-west-1", "ap-northeast-1")}}
        conf["dnsd"]["ttl_s"] = TTL_S
        conf["dnsd"]["min_ttl_s"] = MIN_TTL_S
        conf["members"]["jpn"]["lb"] = {"mode": "proxy", "address": self.lb_ip["jpn"]}
        conf["dnsd"]["listen"] += self.net.extra_dns_listen(self.dns_port)
        conf["client_networks"] += self.net.client_networks()
        token_file = conf["dnsd"]["control"]["token_file"]
        conf["proxy"] = {
            # where health checkers reach jpn's proxy: across the "WAN" (the relay)
            "listen": [{"address": "%s:%d" % (self.lb_ip["jpn"], self.port), "member": "jpn",
                        "service": "default/web"}],
            "state_file": os.path.join(self.tmp, "proxy-state.json"),
            "control": {"listen": "127.0.0.1:%d" % self.proxy_ctl_port,
                        "token_file": token_file},
            # fits the descriptor check under the hard RLIMIT_NOFILE of small hosts
            "max_connections": 1000,
        }
        if self.cluster is not None:
            conf["etcd"] = {"endpoints": self.cluster.endpoints, "request_timeout_ms": 1000,
                            "check_interval_ms": 1000, "backoff_min_ms": 100,
                            "backoff_max_ms": 2000}
        return conf

    def health_config(self, vantage):
        conf = chain.Chain.health_config(self, vantage)
        if self.cluster is not None:
            del conf["health"]["publish_to"]  # etcd: nobody is named
        else:
            conf["health"]["publish_to"] = [self.ns1_url, self.ns2_url, self.proxy_url]
        return conf

    def proxy_config(self):
        conf = copy.deepcopy(self.conf)
        conf["proxy"]["listen"][0]["address"] = "%s:%d" % (PROXY_IP, self.port)
        conf["proxy"]["timeouts_ms"] = {"connect": 300, "response": 3000}
        conf["proxy"]["access_log"] = {"format": "json",
                                       "path": os.path.join(self.tmp, "proxy-access.log")}
        return conf

    def deployment(self):
        """The one file of the whole testbed: what the instances share in the
        dnsd, health and proxy sections, and each instance's own addresses,
        region and state file under "deployment"."""
        conf = copy.deepcopy(self.conf)
        dn = conf["dnsd"]
        ns1_listen = dn.pop("listen")
        dn.pop("region")
        dn.pop("state_file")
        token_file = dn["control"]["token_file"]
        dn["control"] = {"token_file": token_file}
        ns2_listen = self.ns2_config()["dnsd"]["listen"]
        h = self.health_config(REGIONS[0])["health"]
        conf["health"] = {"publish_interval_ms": h["publish_interval_ms"], "api": h["api"],
                          "control": {"token_file": token_file}}
        px = self.proxy_config()["proxy"]
        bind = [l["address"] for l in px["listen"]]
        px["listen"] = copy.deepcopy(self.conf["proxy"]["listen"])
        px["control"] = {"token_file": token_file}
        px.pop("state_file")
        conf["proxy"] = px
        conf["deployment"] = {
            "name_servers": {
                "ns1": {"listen": ns1_listen, "control": "127.0.0.1:%d" % self.ctl_port,
                        "region": fedtest.DEFAULT_REGION,
                        "state_file": os.path.join(self.tmp, "ns1-state.json")},
                "ns2": {"listen": ns2_listen, "control": "127.0.0.1:%d" % self.ns2_ctl_port,
                        "region": fedtest.DEFAULT_REGION,
                        "state_file": os.path.join(self.tmp, "ns2-state.json")},
            },
            "vantages": {
                v: {"control": "127.0.0.1:%d" % self.health_ports.setdefault(
                        v, fedtest.free_port(ipv6=False)),
                    "probe_source": PROBE_SOURCE[v],
                    "state_file": os.path.join(self.tmp, "health-%s.json" % v)}
                for v in REGIONS},
            "proxies": {
                "px": {"control": "127.0.0.1:%d" % self.proxy_ctl_port, "listen": bind,
                       "state_file": os.path.join(self.tmp, "proxy-state.json")},
            },
        }
        return conf

    @property
    def deployment_path(self):
        return os.path.join(self.tmp, "deployment.json")

    def ctl_config(self):
        """The configuration fedgslbctl reads: the deployment file itself."""
        return self.deployment_path

    @property
    def ns1_url(self):
        return "http://127.0.0.1:%d" % self.ctl_port

    @property
    def ns2_url(self):
        return "http://127.0.0.1:%d" % self.ns2_ctl_port

    @property
    def proxy_url(self):
        return "http://127.0.0.1:%d" % self.proxy_ctl_port

    def kubeconfig_text(self):
        with open(self.kubeconfig) as f:
            return f.read()

    # ---- members ----
    def _relay_delays(self, member):
        region = MEMBER_REGION[member]
        per = {}
        for r in REGIONS:
            per[PROBE_SOURCE[r]] = rtt(r, region)
            per[POLL_SOURCE[r]] = rtt(r, region)
            per[self.net.client_source[r]] = rtt(r, region)
        return per

    def start_members(self):
        for m in ("usa", "eur"):
            targets = []
            for i, ip in enumerate(BACKEND_IPS[m], 1):
                name = "%s-web-%d" % (m, i)
                self.backends[name] = HelloBackend(ip, self.port, name, ZONE_OF[m]).start()
                targets.append((ip, self.port))
            self.relays[m] = DelayRelay((self.lb_ip[m], self.port), targets, 20.0,
                                        self._relay_delays(m)).start()
            fk = self.fakes[m]
            fk.start()
            fk.add_service("default", "web",
                           ports=[{"name": "http", "port": self.port, "protocol": "TCP",
                                   "nodePort": self.node_port}],
                           lb_ingress=[{"ip": self.lb_ip[m]}])
            fk.set_endpoints("default", "web", ready=2)
        # jpn: no load balancer; a NodePort service on two nodes, fedgslb-proxy in front.
        fk = self.fakes["jpn"]
        fk.start()
        for i, ip in enumerate(NODE_IPS, 1):
            name = "jpn-node-%d" % i
            self.nodes[name] = HelloBackend(ip, self.node_port, name, ZONE_OF["jpn"]).start()
            self.backends[name] = self.nodes[name]
            fk.add_node(name, ip, zone=ZONE_OF["jpn"])
        fk.add_service("default", "web", type="NodePort",
                       ports=[{"name": "http", "port": self.port, "protocol": "TCP",
                               "nodePort": self.node_port}], lb_ingress=[])
        fk.set_endpoints("default", "web", ready=2)
        self.relays["jpn"] = DelayRelay((self.lb_ip["jpn"], self.port), (PROXY_IP, self.port), 20.0,
                                        self._relay_delays("jpn")).start()
        return self

    def member_backends(self, m):
        return [b for n, b in self.backends.items() if n.startswith(m)]

    def set_member_failing(self, m, failing):
        for b in self.member_backends(m):
            b.set_status(500 if failing else 200)
            b.fail_all = failing

    # ---- daemons: every one from deployment.json, with --instance ----
    def write_deployment(self):
        return fedtest.write_config(self.tmp, self.deployment(), "deployment.json")

    def _start_name_server(self, name, dns_port, ctl_port):
        d = fedtest.Daemon([fedtest.binary("fedgslb-dnsd"), "--config", self.deployment_path,
                            "--instance", name],
                           os.path.join(self.tmp, "dnsd-%s.log" % name), cwd=self.tmp)
        d.dns_port, d.ctl_port, d.config_path = dns_port, ctl_port, self.deployment_path
        d.start()
        d.wait_ready()
        return d

    def start_dnsd(self):
        self.dnsd = self._start_name_server("ns1", self.dns_port, self.ctl_port)
        self.ctl = fedtest.Control(self.ctl_port)
        return self.dnsd

    def start_ns2(self):
        self.ns2 = self._start_name_server("ns2", self.ns2_dns_port, self.ns2_ctl_port)
        self.ctl2 = fedtest.Control(self.ns2_ctl_port)
        return self.ns2

    def stop_ns2(self):
        fedtest.finish(self.ns2)
        self.ns2 = None

    def start_health(self, vantage):
        d = fedtest.start_health(self.deployment_path,
                                 os.path.join(self.tmp, "health-%s.log" % vantage),
                                 self.health_ports[vantage], self.tmp, args=["--instance", vantage])
        self.health[vantage] = d
        return d

    def start_proxy(self):
        d = fedtest.Daemon([fedtest.binary("fedgslb-proxy"), "--config", self.deployment_path,
                            "--instance", "px", "--log-level", "info"],
                           os.path.join(self.tmp, "proxy.log"), cwd=self.tmp)
        d.ctl_port = self.proxy_ctl_port
        d.start()
        self.proxy = d
        return fedtest.wait_ctl(d, "fedgslb-proxy")

    def start(self):
        if self.cluster is not None:
            self.cluster.start()
        self.write_deployment()
        self.start_members()
        self.start_dnsd()
        self.start_ns2()
        self.start_proxy()
        for v in self.vantages:
            self.start_health(v)
        return self

    def close(self):
        """Stops everything; never raises. Returns a list of problems (unclean exits,
        sanitizer reports)."""
        problems = []
        for v in list(self.health):
            try:
                self.stop_health(v)
            except Exception as e:  # teardown goes on
                problems.append("health %s: %s" % (v, str(e)[:300]))
        for name, d in (("ns1", self.dnsd), ("ns2", self.ns2), ("proxy", self.proxy)):
            if d is None:
                continue
            try:
                fedtest.finish(d)
            except Exception as e:
                problems.append("%s: %s" % (name, str(e)[:300]))
        self.dnsd = self.ns2 = self.proxy = None
        if self.cluster is not None:
            self.cluster.close()
        for group in (self.relays, self.backends, self.fakes):
            for x in list(group.values()):
                try:
                    x.stop()
                except Exception:
                    pass
            group.clear()
        # Anything fedtest still counts as alive (a failed start): kill it.
        for d in list(fedtest.LIVE):
            try:
                d.stop(timeout=2)
            except Exception:
                pass
        return problems

    def logs(self, tail=2500):
        out = [chain.Chain.logs(self, tail)]
        for name, d in (("proxy", self.proxy),):
            if d is not None:
                out.append("--- %s ---\n%s" % (name, d.log_text()[-tail:]))
        for i in range(self.cluster.n if self.cluster is not None else 0):
            out.append("--- etcd m%d ---\n%s" % (i, self.cluster.log_text(i, 800)))
        return "\n".join(out)

    # ---- observations ----
    def answer_ns(self, region, ns=1):
        """Members answered to @region: ns1 asked from the region's source address,
        ns2 asked with the region's ECS option."""
        if ns == 1:
            msg = fedtest.query(self.dns_port, WEB, "A", source=POLL_SOURCE[region])
        else:
            msg = fedtest.query(self.ns2_dns_port, WEB, "A", ecs=CLIENT_ECS[region])
        return sorted(self.member_of_ip.get(a, a) for a in fedtest.addresses(msg))

    def proxy_state(self):
        st, doc = fedtest.http(self.proxy_ctl_port, "GET", "/v1/state",
                               token=fedtest.TOKEN, timeout=2)
        return doc if st == 200 else None


class Client:
    """A client in one region: `dig` against ns1 (from the region's address)
    and ns2 (with the region's ECS), then `curl` to the answer; in netns mode
    both run inside the region's namespace."""

    def __init__(self, bed, region):
        self.bed = bed
        self.net = bed.net
        self.region = region
        self.src = self.net.client_source[region]
        self.ecs = CLIENT_ECS[region]

    def dig_argv(self, ns):
        common = ["dig", "+short", "+norec", "+time=2", "+tries=1"]
        if ns == 1:
            argv = common + self.net.dig_bind(self.region) + [
                "-p", str(self.bed.dns_port), "@" + self.net.dns_host, WEB_HOST, "A"]
        else:
            argv = common + ["+subnet=" + self.ecs, "-p", str(self.bed.ns2_dns_port),
                             "@" + self.net.dns_host, WEB_HOST, "A"]
        return self.net.run_argv(self.region, argv)

    def dig(self, ns=1):
        p = subprocess.run(self.dig_argv(ns), capture_output=True, text=True, timeout=10)
        return [l.strip() for l in p.stdout.splitlines() if l.strip() and l[0].isdigit()]

    def curl_argv(self, ip):
        return self.net.run_argv(self.region, [
            "curl", "-sS", "-m", "3"] + self.net.curl_bind(self.region) + [
            "--resolve", "%s:%d:%s" % (WEB_HOST, self.bed.port, ip),
            "-w", "\\n%{http_code} %{time_total}", "http://%s:%d/" % (WEB_HOST, self.bed.port)])

    def curl(self, ip):
        """-> dict(status, zone, hostname, ms, error)."""
        p = subprocess.run(self.curl_argv(ip), capture_output=True, text=True, timeout=10)
        out = {"status": 0, "zone": None, "hostname": None, "ms": None,
               "error": p.stderr.strip() or None}
        lines = p.stdout.rstrip("\n").split("\n")
        try:
            code, total = lines[-1].split()
            out["status"] = int(code)
            out["ms"] = float(total) * 1000.0
        except ValueError:
            return out
        try:
            doc = json.loads("\n".join(lines[:-1]))
            out["zone"], out["hostname"] = doc.get("zone"), doc.get("hostname")
        except ValueError:
            pass
        return out

    def visit(self):
        """dig (ns1 and ns2), then curl the first ns1 answer."""
        a1, a2 = self.dig(1), self.dig(2)
        res = {"region": self.region, "ns1": a1, "ns2": a2, "http": None}
        if a1:
            res["http"] = self.curl(a1[0])
        return res
