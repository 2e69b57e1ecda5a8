# SPDX-License-Identifier: Apache-2.0
"""The whole chain on loopback, with real processes: three member clusters
(fake Kubernetes API servers holding default/web), each member's load
balancer (a delaying relay on 127.0.1.N in front of a real HTTP backend on
127.0.2.N), one fedgslb-health per vantage region (probing from its own
source address, so one relay can give each vantage its own RTT), and
fedgslb-dnsd answering the federation zone with what the checkers push.

Latency matrix (added RTT, ms) from each vantage to each member:
    us-east-1:       usa 10, eur 40, jpn 80
    eu-west-1:       usa 40, eur 10, jpn 120
    ap-northeast-1:  usa 80, eur 120, jpn 10
"""

import copy
import json
import os
import signal
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

import fakekube
import fedtest
from delay_relay import DelayRelay
from health_harness import FAST_API
from hello_backend import HelloBackend

MEMBER_INDEX = {"usa": 1, "eur": 2, "jpn": 3}
LB_IP = {m: "127.0.1.%d" % i for m, i in MEMBER_INDEX.items()}
BACKEND_IP = {m: "127.0.2.%d" % i for m, i in MEMBER_INDEX.items()}
MEMBER_OF_IP = {ip: m for m, ip in LB_IP.items()}
PROBE_SOURCE = {"us-east-1": "127.0.3.1", "eu-west-1": "127.0.3.2", "ap-northeast-1": "127.0.3.3"}
RTT = {
    "us-east-1": {"usa": 10, "eur": 40, "jpn": 80},
    "eu-west-1": {"usa": 40, "eur": 10, "jpn": 120},
    "ap-northeast-1": {"usa": 80, "eur": 120, "jpn": 10},
}
WEB = fedtest.fed_name("web")

# Probe timing of the tests: a verdict flips after 2 probes 500 ms apart.
INTERVAL_MS, TIMEOUT_MS, RISE, FALL = 500, 400, 2, 2
PUBLISH_INTERVAL_MS = 1000


class Chain:
    def __init__(self, tmp, vantages=("us-east-1",)):
        self.tmp = str(tmp)
        self.vantages = list(vantages)
        self.port = fedtest.free_port(ipv6=False)
        self.fakes, self.backends, self.relays = {}, {}, {}
        self.health = {}
        self.health_ports = {}
        self.dnsd = None
        for m in MEMBER_INDEX:
            fk = fakekube.FakeKube(m, self.tmp)
            fk.bookmark_interval = 0.5
            self.fakes[m] = fk
        self.kubeconfig = os.path.join(self.tmp, "kubeconfig.yaml")
        fakekube.write_kubeconfig(self.kubeconfig,
                                  [(m, fk, "token-ca-data") for m, fk in self.fakes.items()])
        self.dns_port = fedtest.free_port()
        self.ctl_port = fedtest.free_port(ipv6=False)
        self.ns2 = None  # a second name server, when a test starts one
        self.ns2_dns_port = fedtest.free_port()
        self.ns2_ctl_port = fedtest.free_port(ipv6=False)
        self.conf = self._config()

    # ---- configuration ----
    def _config(self):
        conf = fedtest.base_config(self.tmp, self.dns_port, self.ctl_port)
        for m, e in conf["members"].items():
            e["kubeconfig"] = self.kubeconfig
            e["context"] = m
        conf["services"] = {
            "default/web": {
                "port": self.port,
                "check": {"type": "http", "path": "/healthz", "interval_ms": INTERVAL_MS,
                          "timeout_ms": TIMEOUT_MS, "rise": RISE, "fall": FALL},
                "policy": {"all_down": "fail-open", "max_answers": 8, "latency_slack_ms": 5},
            },
        }
        conf["health"] = {"vantage": "us-east-1", "publish_interval_ms": PUBLISH_INTERVAL_MS}
        return conf

    def health_config(self, vantage):
        conf = json.loads(json.dumps(self.conf))
        self.health_ports.setdefault(vantage, fedtest.free_port(ipv6=False))
        conf["health"] = {
            "vantage": vantage,
            "publish_to": ["http://127.0.0.1:%d" % self.ctl_port],
            "publish_interval_ms": PUBLISH_INTERVAL_MS,
            "probe_source": PROBE_SOURCE[vantage],
            "state_file": os.path.join(self.tmp, "health-%s.json" % vantage),
            "control": {"listen": "127.0.0.1:%d" % self.health_ports[vantage],
                        "token_file": conf["dnsd"]["control"]["token_file"]},
            "api": dict(FAST_API),
        }
        return conf

    # ---- members ----
    def start_members(self):
        for m, i in MEMBER_INDEX.items():
            region = fedtest.MEMBERS[m]["region"]
            zone = fedtest.MEMBERS[m]["zone"]
            self.backends[m] = HelloBackend(BACKEND_IP[m], self.port, "%s-web-1" % m, zone).start()
            per_source = {PROBE_SOURCE[v]: RTT[v][m] for v in RTT}
            self.relays[m] = DelayRelay((LB_IP[m], self.port), (BACKEND_IP[m], self.port),
                                        RTT[region][m], per_source).start()
            fk = self.fakes[m]
            fk.start()
            fk.add_service("default", "web",
                           ports=[{"name": "http", "port": self.port, "protocol": "TCP",
                                   "nodePort": 30080}],
                           lb_ingress=[{"ip": LB_IP[m]}])
            fk.set_endpoints("default", "web", ready=2)
        return self

    def stop_backend(self, m):
        self.backends[m].stop()

    def restart_backend(self, m):
        zone = fedtest.MEMBERS[m]["zone"]
        self.backends[m] = HelloBackend(BACKEND_IP[m], self.port, "%s-web-1" % m, zone).start()

    # ---- daemons ----
    def start_dnsd(self):
        self.dnsd = fedtest.start_dnsd(self.tmp, conf=self.conf, dns_port=self.dns_port,
                                       ctl_port=self.ctl_port, config_name="dnsd.json")
        self.ctl = fedtest.Control(self.ctl_port)
        return self.dnsd

    def restart_dnsd(self):
        fedtest.finish(self.dnsd)
        return self.start_dnsd()

    def ns2_config(self):
        """ns1's configuration on ns2's ports, with its own state file."""
        conf = copy.deepcopy(self.conf)
        conf["dnsd"]["listen"] = [l.rsplit(":", 1)[0] + ":%d" % self.ns2_dns_port
                                  for l in conf["dnsd"]["listen"]]
        conf["dnsd"]["state_file"] = os.path.join(self.tmp, "dnsd2-state.json")
        conf["dnsd"]["control"]["listen"] = "127.0.0.1:%d" % self.ns2_ctl_port
        return conf

    def start_ns2(self):
        self.ns2 = fedtest.start_dnsd(self.tmp, conf=self.ns2_config(),
                                      dns_port=self.ns2_dns_port, ctl_port=self.ns2_ctl_port,
                                      config_name="dnsd2.json")
        self.ctl2 = fedtest.Control(self.ns2_ctl_port)
        return self.ns2

    def start_health(self, vantage):
        path = fedtest.write_config(self.tmp, self.health_config(vantage),
                                    "health-%s.conf.json" % vantage)
        log = os.path.join(self.tmp, "health-%s.log" % vantage)
        d = fedtest.start_health(path, log, self.health_ports[vantage], self.tmp)
        self.health[vantage] = d
        return d

    def stop_health(self, vantage, sig=signal.SIGTERM):
        d = self.health.pop(vantage)
        if sig == signal.SIGKILL:
            d.proc.kill()
            d.proc.wait(10)
            fedtest.LIVE.remove(d) if d in fedtest.LIVE else None
            return
        fedtest.finish(d)

    def start(self):
        self.start_members()
        self.start_dnsd()
        for v in self.vantages:
            self.start_health(v)
        return self

    def close(self):
        daemons = list(self.health.values()) + [self.dnsd, self.ns2]
        self.health, self.dnsd, self.ns2 = {}, None, None
        fedtest.close_all(daemons, [x for group in (self.relays, self.backends, self.fakes)
                                    for x in group.values()])

    # ---- observations ----
    def answer(self, region, name=WEB):
        """The members whose addresses a client of @region gets for @name."""
        msg = fedtest.query(self.dns_port, name, "A", source=fedtest.SOURCE[region])
        return sorted(MEMBER_OF_IP.get(a, a) for a in fedtest.addresses(msg))

    def wait_answer(self, region, want, timeout, name=WEB):
        """Polls until @region's answer is [@want]; returns the seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + timeout * fedtest.SLOW
        got = None
        while time.monotonic() < deadline:
            got = self.answer(region, name)
            if got == [want]:
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError("%s clients get %s after %.1f s, expected [%s]\nexplain: %s\n%s"
                             % (region, got, timeout, want,
                                json.dumps(self.explain(region), indent=1),
                                self.logs()))

    def explain(self, region, name=WEB):
        st, doc = self.ctl.explain(name, fedtest.SOURCE[region])
        return doc

    def health_state(self, vantage):
        st, doc = fedtest.http(self.health[vantage].ctl_port, "GET", "/v1/state")
        return doc if st == 200 else None

    def wait_health(self, vantage, pred, timeout, what):
        deadline = time.monotonic() + timeout * fedtest.SLOW
        doc = None
        while time.monotonic() < deadline:
            doc = self.health_state(vantage)
            try:
                if doc is not None and pred(doc):
                    return doc
            except (KeyError, TypeError, AttributeError):
                pass
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s; state:\n%s\n%s"
                             % (what, json.dumps(doc, indent=1), self.logs()))

    def logs(self, tail=3000):
        out = []
        for v, d in self.health.items():
            out.append("--- health %s ---\n%s" % (v, d.log_text()[-tail:]))
        if self.dnsd is not None:
            out.append("--- dnsd ---\n%s" % self.dnsd.log_text()[-tail:])
        if self.ns2 is not None:
            out.append("--- ns2 ---\n%s" % self.ns2.log_text()[-tail:])
        return "\n".join(out)


def entry(doc, member, svc="default/web"):
    return doc["services"][svc]["members"][member]
