# SPDX-License-Identifier: Apache-2.0
"""A federation whose members come from a host cluster's registry
(members_from): a fake host cluster (KubeFed or Karmada objects), fake member
clusters holding default/web behind loopback load-balancer addresses, the
real fedgslb-health watching the host cluster and the members, and the real
fedgslb-dnsd it publishes to, queried with dig.

Probes are off (check type "none"): a member is healthy when its Service has
ready endpoints and a load-balancer address, so what the tests change is the
registry and the Kubernetes data, nothing else."""

import json
import os
import time

import fakekube
import fedtest
from health_harness import FAST_API

# Each member's load balancer (nothing listens there: probes are off).
LB_IP = {"usa": "127.0.1.1", "eur": "127.0.1.2", "jpn": "127.0.1.3", "kor": "127.0.1.4"}
MEMBER_OF_IP = {ip: m for m, ip in LB_IP.items()}
REGION_OF = {"usa": "us-east-1", "eur": "eu-west-1", "jpn": "ap-northeast-1",
             "kor": "ap-northeast-1"}
ZONE_OF = {"usa": "us-east-1a", "eur": "eu-west-1a", "jpn": "ap-northeast-1a",
           "kor": "ap-northeast-1a"}
WEB = fedtest.fed_name("web")
KFS = "kube-federation-system"


class RegistryBed:
    def __init__(self, tmp, source="kubefed", services=None, members_from=None, members=None):
        """@services: the configuration's services (default: default/web);
        @members_from: keys added to members_from; @members: configured
        members (name -> FakeKube made here), default none."""
        self.tmp = str(tmp)
        self.source = source
        self.host = fakekube.FakeKube("host", self.tmp)
        self.host.bookmark_interval = 0.5
        self.fakes = {}
        self.kubeconfig = os.path.join(self.tmp, "host.kubeconfig")
        self.configured = list(members or [])
        for m in self.configured:
            self._make_member(m)
        fakekube.write_kubeconfig(self.kubeconfig, [("host", self.host, "token-ca-data")] +
                                  [(m, self.fakes[m], "token-ca-data") for m in self.configured],
                                  current_context="host")
        self.dns_port = fedtest.free_port()
        self.ctl_port = fedtest.free_port(ipv6=False)
        self.health_port = fedtest.free_port(ipv6=False)
        self.conf = self._config(services, members_from)
        self.dnsd = None
        self.health = None

    # ---- configuration ----
    def _config(self, services, members_from):
        conf = fedtest.base_config(self.tmp, self.dns_port, self.ctl_port)
        conf["members"] = {m: dict(fedtest.MEMBERS.get(m, {"region": REGION_OF[m]}),
                                   kubeconfig=self.kubeconfig, context=m)
                           for m in self.configured}
        conf["members_from"] = dict({"source": self.source, "kubeconfig": self.kubeconfig,
                                     "context": "host"}, **(members_from or {}))
        conf["services"] = services if services is not None else {
            "default/web": {"port": 80, "check": {"type": "none"}}}
        conf["health"] = {
            "vantage": "us-east-1",
            "publish_to": ["http://127.0.0.1:%d" % self.ctl_port],
            "publish_interval_ms": 1000,
            "default_check": {"type": "none"},
            "state_file": os.path.join(self.tmp, "health-state.json"),
            "startup_grace_ms": 5000,
            "control": {"listen": "127.0.0.1:%d" % self.health_port,
                        "token_file": conf["dnsd"]["control"]["token_file"]},
            "api": dict(FAST_API),
        }
        return conf

    # ---- clusters ----
    def _make_member(self, name, ready=2):
        fk = fakekube.FakeKube(name, self.tmp)
        fk.bookmark_interval = 0.5
        fk.start()
        fk.add_service("default", "web",
                       ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
                       lb_ingress=[{"ip": LB_IP[name]}])
        fk.set_endpoints("default", "web", ready=ready)
        self.fakes[name] = fk
        return fk

    def member(self, name, ready=2):
        """The member cluster @name, started with default/web (made once)."""
        return self.fakes.get(name) or self._make_member(name, ready)

    def join(self, name, **kw):
        """Joins member @name to the registry (kubefedctl / karmadactl join)."""
        fk = self.member(name)
        if self.source == "karmada":
            kw.setdefault("region", REGION_OF[name])
            kw.setdefault("zones", [ZONE_OF[name]])
            return self.host.join_karmada(name, fk, **kw)
        kw.setdefault("labels", {"topology.kubernetes.io/region": REGION_OF[name],
                                 "topology.kubernetes.io/zone": ZONE_OF[name]})
        return self.host.join_kubefed(name, fk, **kw)

    def unjoin(self, name):
        if self.source == "karmada":
            self.host.remove("clusters", None, name)
            self.host.remove("secrets", "karmada-cluster", name)
        else:
            self.host.unjoin_kubefed(name)

    # ---- daemons ----
    def start(self):
        self.host.start()
        self.dnsd = fedtest.start_dnsd(self.tmp, conf=self.conf, dns_port=self.dns_port,
                                       ctl_port=self.ctl_port, config_name="dnsd.json")
        self.start_health()
        return self

    def start_health(self):
        path = fedtest.write_config(self.tmp, self.conf, "health.json")
        self.health = fedtest.start_health(path, os.path.join(self.tmp, "health.log"),
                                           self.health_port, self.tmp)
        return self.health

    def close(self):
        daemons = [self.health, self.dnsd]
        self.health = self.dnsd = None
        fedtest.close_all(daemons, [self.host] + list(self.fakes.values()))

    # ---- observations ----
    def log(self):
        return self.health.log_text() if self.health is not None else ""

    def state(self):
        """fedgslb-health's GET /v1/state (None before a document exists)."""
        st, doc = fedtest.http(self.health_port, "GET", "/v1/state")
        return doc if st == 200 else None

    def wait_state(self, pred, timeout=10.0, what="condition"):
        deadline = time.monotonic() + timeout * fedtest.SLOW
        doc = None
        while True:
            doc = self.state()
            try:
                if doc is not None and pred(doc):
                    return doc
            except (KeyError, TypeError, IndexError, AttributeError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %.1fs waiting for %s; state:\n%s\nlog:\n%s"
                                     % (timeout, what, json.dumps(doc, indent=1, sort_keys=True),
                                        self.log()[-5000:]))
            time.sleep(0.05)

    def dig(self, name=WEB, source=None, rdtype="A"):
        """[(ttl, rdata)] of the answer section as dig prints it."""
        argv = ["dig", "@127.0.0.1", "-p", str(self.dns_port), "+norec", "+time=2",
                "+tries=1", "+noall", "+answer", name, rdtype]
        if source:
            argv[1:1] = ["-b", source]
        p = fedtest.run(argv)
        assert p.returncode == 0, (argv, p.stdout, p.stderr)
        out = []
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) >= 5 and f[3] == rdtype:
                out.append((int(f[1]), f[4]))
        return out

    def answer(self, name=WEB, source=None):
        """The members whose load balancer a dig of @name returns."""
        return sorted(MEMBER_OF_IP.get(ip, ip) for _, ip in self.dig(name, source))

    def wait_answer(self, want, name=WEB, source=None, timeout=10.0):
        """Polls dig until the answer is @want (a sorted list of members); returns seconds."""
        t0 = time.monotonic()
        deadline = t0 + timeout * fedtest.SLOW
        got = None
        while time.monotonic() < deadline:
            got = self.answer(name, source)
            if got == sorted(want):
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError("dig %s: %s, want %s after %.1fs; health log:\n%s"
                             % (name, got, sorted(want), timeout, self.log()[-5000:]))
