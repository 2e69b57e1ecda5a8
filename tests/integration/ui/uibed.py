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
