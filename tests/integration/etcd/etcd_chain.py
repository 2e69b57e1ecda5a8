# SPDX-License-Identifier: Apache-2.0
"""The whole chain (tests/integration/chain/chain.py) in the distributed
mode: the three vantages write their documents to a real three-node etcd
cluster on loopback (etcd_cluster.py) and two fedgslb-dnsd (ns1, ns2) watch
it; nobody pushes, and no vantage names a name server.

    c = EtcdChain(tmp).start()
    c.answers("us-east-1")          # {"ns1": [...], "ns2": [...]}
    c.wait_both("us-east-1", "usa", timeout=10)
    c.etcd_status(1)                # ns1's GET /v1/state "etcd" object
"""

import json
import time

import chain
import fedtest
from etcd_cluster import EtcdCluster, quiet_port

REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
WEB = chain.WEB

# Fast enough for the tests: a stopped member is left within ~1 s, retries
# back off from 100 ms to 2 s.
ETCD_TIMING = {"request_timeout_ms": 1000, "check_interval_ms": 1000, "backoff_min_ms": 100,
               "backoff_max_ms": 2000}


class EtcdChain(chain.Chain):
    def __init__(self, tmp, vantages=REGIONS, etcd=None, etcd_section=None):
        self.own_cluster = etcd is None  # started and stopped here
        self.cluster = etcd if etcd is not None else EtcdCluster(str(tmp))
        self._etcd_extra = etcd_section or {}
        super().__init__(tmp, vantages=vantages)
        # Ports away from the ephemeral range the etcd connections draw from.
        self.dns_port, self.ctl_port = quiet_port(), quiet_port()
        self.ns2_dns_port, self.ns2_ctl_port = quiet_port(), quiet_port()
        self.health_ports = {v: quiet_port() for v in vantages}
        self.conf = self._config()

    # ---- configuration ----
    def etcd_section(self):
        sec = {"endpoints": self.cluster.endpoints}
        sec.update(ETCD_TIMING)
        sec.update(self._etcd_extra)
        return sec

    def _config(self):
        conf = chain.Chain._config(self)
        conf["etcd"] = self.etcd_section()
        return conf

    def health_config(self, vantage):
        conf = chain.Chain.health_config(self, vantage)
        del conf["health"]["publish_to"]  # the distributed mode: etcd only
        return conf

    # ---- daemons ----
    def start(self):
        if self.own_cluster:
            self.cluster.start()
        self.start_members()
        self.start_dnsd()
        self.start_ns2()
        for v in self.vantages:
            self.start_health(v)
        return self

    def close(self):
        try:
            chain.Chain.close(self)
        finally:
            if self.own_cluster:
                self.cluster.close()

    def logs(self, tail=3000):
        out = [chain.Chain.logs(self, tail)]
        if self.cluster is not None:
            for i in range(self.cluster.n):
                out.append("--- etcd m%d ---\n%s" % (i, self.cluster.log_text(i, 1200)))
        return "\n".join(out)

    # ---- observations ----
    def answer_ns(self, region, ns):
        port = self.dns_port if ns == 1 else self.ns2_dns_port
        msg = fedtest.query(port, WEB, "A", source=fedtest.SOURCE[region], timeout=1.0)
        return sorted(chain.MEMBER_OF_IP.get(a, a) for a in fedtest.addresses(msg))

    def answers(self, region):
        return {"ns1": self.answer_ns(region, 1), "ns2": self.answer_ns(region, 2)}

    def wait_both(self, region, want, timeout):
        """Polls ns1 and ns2 until both answer [@want] to @region; returns the seconds."""
        t0 = time.monotonic()
        deadline = t0 + timeout * fedtest.SLOW
        got = None
        while time.monotonic() < deadline:
            try:
                got = self.answers(region)
            except Exception as e:  # a timeout is a wrong answer
                got = repr(e)
            if got == {"ns1": [want], "ns2": [want]}:
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError("%s clients get %s after %.1f s, expected [%s]\n%s"
                             % (region, got, timeout, want, self.logs()))

    def state(self, ns):
        port = self.ctl_port if ns == 1 else self.ns2_ctl_port
        st, doc = fedtest.http(port, "GET", "/v1/state", token=fedtest.TOKEN, timeout=2)
        return doc if st == 200 else None

    def etcd_status(self, ns):
        doc = self.state(ns) or {}
        return doc.get("etcd")

    def wait_etcd(self, pred, timeout, what):
        deadline = time.monotonic() + timeout * fedtest.SLOW
        got = None
        while time.monotonic() < deadline:
            got = [self.etcd_status(1), self.etcd_status(2)]
            try:
                if all(g is not None for g in got) and pred(got):
                    return got
            except (KeyError, TypeError):
                pass
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s: %s\n%s"
                             % (what, json.dumps(got, indent=1), self.logs()))

    def settle(self, home):
        """Waits until both name servers hold every vantage and answer each
        region with @home[region] (a fixture's starting point)."""
        self.wait_etcd(lambda s: all(x["vantage_keys"] == len(self.vantages) and x["up"]
                                     for x in s),
                       timeout=30, what="both name servers holding every vantage")
        for r in self.vantages:
            self.wait_both(r, home[r], timeout=20)
        return self
