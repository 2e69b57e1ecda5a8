# SPDX-License-Identifier: Apache-2.0
"""A small testbed for the status page, the metrics and the alert rules:
fedgslb-dnsd fed by pushed state documents from all three vantages (no
member clusters needed), with helpers to make a member fail and recover.

Run it by hand to look at the page: python3 uibed.py [seconds]
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import fedtest  # noqa: E402

MEMBER_IP = {"usa": "192.0.2.11", "eur": "192.0.2.12", "jpn": "192.0.2.13"}
VANTAGES = ("us-east-1", "eu-west-1", "ap-northeast-1")
# Measured RTT (ms) from each vantage to each member.
RTT = {
    "us-east-1": {"usa": 12, "eur": 78, "jpn": 160},
    "eu-west-1": {"usa": 81, "eur": 9, "jpn": 231},
    "ap-northeast-1": {"usa": 158, "eur": 224, "jpn": 7},
}
SERVICES = ("default/web", "default/closed", "default/sorry", "default/cloud", "default/shared")


class UiBed:
    """dnsd on loopback; `down` is {member: set of services} reported unhealthy."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.down = {}
        self.dnsd = None

    def start(self):
        self.dnsd = fedtest.start_dnsd(self.tmp)
        self.ctl = fedtest.Control(self.dnsd.ctl_port)
        self.push_all()
        return self

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.dnsd.ctl_port

    def doc(self, vantage):
        services = {}
        for svc in SERVICES:
            eps = {}
            for m, ip in MEMBER_IP.items():
                bad = svc in self.down.get(m, ())
                eps[m] = fedtest.endpoint([ip], healthy=not bad, rtt=RTT[vantage][m],
                                          reason=None if not bad else
                                          "probe 3/3 failed: connect timeout")
            services[svc] = eps
        return fedtest.state_doc(vantage, services, member_rtt=RTT[vantage])

    def push_all(self):
        for v in VANTAGES:
            st, body = self.ctl.put_state(self.doc(v))
            assert st == 200, (st, body)

    def fail(self, member, services=SERVICES):
        self.down[member] = set(services)
        self.push_all()

    def recover(self, member):
        self.down.pop(member, None)
        self.push_all()

    def close(self):
        if self.dnsd is not None:
            fedtest.finish(self.dnsd)


def drain_intent(ident, member="jpn", author="alice", reason="peer test"):
    """A drain intent as fedgslbctl writes it (PUT /v1/intents/ID)."""
    return {"id": ident, "kind": "drain", "member": member, "author": author,
            "reason": reason, "created_at": "2026-11-21T06:00:00Z"}


class PeerBed:
    """Name servers of one deployment file (fedgslb-dnsd --instance NAME),
    each fed the same vantage documents; `start` runs some of them."""

    def __init__(self, tmp, names=("ns1", "ns2")):
        self.tmp = str(tmp)
        self.ports = {n: (fedtest.free_port(ipv6=False), fedtest.free_port(ipv6=False))
                      for n in names}
        first = self.ports[names[0]]
        conf = fedtest.base_config(self.tmp, first[0], first[1], ipv6=False)
        d = conf["dnsd"]
        region = d.pop("region")
        for k in ("listen", "state_file"):
            d.pop(k)
        d["control"].pop("listen")
        conf["deployment"] = {"name_servers": {
            n: {"listen": ["127.0.0.1:%d" % dns], "control": "127.0.0.1:%d" % ctlp,
                "region": region, "state_file": os.path.join(self.tmp, n + "-state.json")}
            for n, (dns, ctlp) in self.ports.items()}}
        self.path = fedtest.write_config(self.tmp, conf, "deployment.json")
        self.ns = {}
        # one document per vantage, the same for every name server
        self.docs = {v: UiBed(tmp).doc(v) for v in VANTAGES}

    def start(self, *names):
        for n in names:
            dns, ctlp = self.ports[n]
            d = fedtest.Daemon([fedtest.binary("fedgslb-dnsd"), "--config", self.path,
                                "--instance", n],
                               os.path.join(self.tmp, n + ".log"), cwd=self.tmp)
            d.dns_port, d.ctl_port, d.config_path = dns, ctlp, self.path
            d.start()
            d.wait_ready()
            self.ns[n] = d
            for v in VANTAGES:
                st, body = fedtest.http(ctlp, "PUT", "/v1/state", body=self.docs[v],
                                        token=fedtest.TOKEN)
                assert st == 200, (n, st, body)
        return self

    def url(self, name):
        return "http://127.0.0.1:%d" % self.ports[name][1]

    def put_intent(self, name, intent):
        return fedtest.http(self.ports[name][1], "PUT", "/v1/intents/" + intent["id"],
                            body=intent, token=fedtest.TOKEN)

    def peers(self, name):
        st, doc = fedtest.http(self.ports[name][1], "GET", "/v1/peers", token=fedtest.TOKEN)
        assert st == 200, (st, doc)
        return doc

    def stop(self, name):
        fedtest.finish(self.ns.pop(name))

    def close(self):
        for n in list(self.ns):
            self.stop(n)


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("FEDGSLB_BUILD_DIR", os.path.join(fedtest.SOURCE_DIR, "build"))
        bed = UiBed(tmp).start()
        print("status page: %s/ui/" % bed.base_url, flush=True)
        try:
            end = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 600)
            while time.monotonic() < end:
                time.sleep(5)
                bed.push_all()  # keep the vantages fresh
        finally:
            bed.close()
