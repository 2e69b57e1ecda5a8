# SPDX-License-Identifier: Apache-2.0
"""State deltas through the real chain (fake member clusters -> fedgslb-health
-> fedgslb-dnsd): with several services a change to one reaches dnsd as a
delta (fedgslb_state_deltas_total{result="applied"}, and the publisher's
fedgslb_health_publish_deltas_total), the answers follow, and a name server
that lost the base answers 409 and gets the whole document at once."""

import time

import pytest

import chain as ch
from chain import Chain, entry

import fedtest

APPS = ["default/app%d" % i for i in range(8)]


class DeltaChain(Chain):
    """The chain with eight more services on the same load balancers."""

    def _config(self):
        conf = super()._config()
        for key in APPS:
            conf["services"][key] = dict(conf["services"]["default/web"])
        return conf

    def start_members(self):
        super().start_members()
        for m, fk in self.fakes.items():
            for key in APPS:
                ns, name = key.split("/")
                fk.add_service(ns, name,
                               ports=[{"name": "http", "port": self.port, "protocol": "TCP",
                                       "nodePort": 30081}],
                               lb_ingress=[{"ip": ch.LB_IP[m]}])
                fk.set_endpoints(ns, name, ready=2)
        return self


def dnsd_deltas(c):
    return {l["result"]: v for n, l, v in c.ctl.metrics() if n == "fedgslb_state_deltas_total"}


def health_deltas(c):
    st, text = fedtest.http(c.health_ports["us-east-1"], "GET", "/metrics",
                            token=fedtest.TOKEN)
    assert st == 200, text
    return sum(v for n, l, v in fedtest.parse_metrics(text)
               if n == "fedgslb_health_publish_deltas_total")


def held(c):
    st, doc = c.ctl.get("/v1/state")
    assert st == 200, doc
    return doc["vantages"].get("us-east-1")


def wait_for(pred, timeout, what, c):
    deadline = time.monotonic() + timeout * fedtest.SLOW
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s\n%s" % (what, c.logs()))


def settled(c):
    doc, mine = held(c), c.health_state("us-east-1")
    return (doc is not None and mine is not None and doc["generation"] == mine["generation"] and
            all(entry(doc, m, key)["healthy"] and not entry(doc, m, key)["pending"]
                for m in ("usa", "eur", "jpn") for key in APPS))


@pytest.fixture
def delta_chain(tmp_path):
    c = DeltaChain(tmp_path).start()
    try:
        c.wait_health("us-east-1", lambda d: all(
            entry(d, m, key)["healthy"] for m in ("usa", "eur", "jpn") for key in APPS),
            timeout=20, what="every service healthy")
        c.wait_answer("us-east-1", "usa", timeout=15)
        # Settled: dnsd holds the document health serves, every verdict final in it.
        wait_for(lambda: settled(c), 10, "dnsd holding health's settled document", c)
        yield c
    finally:
        c.close()


def test_one_service_change_goes_as_a_delta(delta_chain):
    c = delta_chain
    before = dnsd_deltas(c)["applied"]
    c.fakes["usa"].set_endpoints("default", "app3", ready=5)
    doc = wait_for(lambda: (held(c) or {}).get("services", {}).get("default/app3", {})
                   .get("members", {}).get("usa", {}).get("ready_endpoints") == 5 and held(c),
                   10, "app3's new endpoint count at dnsd", c)
    wait_for(lambda: dnsd_deltas(c)["applied"] > before, 5, "a delta applied", c)
    assert dnsd_deltas(c)["rejected"] == 0
    assert health_deltas(c) > 0
    # What dnsd holds is the vantage's document, whatever way it came.
    want = c.wait_health("us-east-1", lambda d: d["generation"] == doc["generation"],
                         timeout=5, what="the same generation at health")
    assert doc["services"] == want["services"]

    # The answers follow a verdict that arrives as a delta.
    applied = dnsd_deltas(c)["applied"]
    c.backends["usa"].set_status(500)
    c.wait_answer("us-east-1", "eur", timeout=ch.INTERVAL_MS * ch.FALL / 1000.0 + 7)
    assert dnsd_deltas(c)["applied"] > applied
    c.backends["usa"].set_status(200)
    c.wait_answer("us-east-1", "usa", timeout=ch.INTERVAL_MS * ch.RISE / 1000.0 + 7)


def test_lost_base_gets_the_whole_document(delta_chain):
    c = delta_chain
    # The operator forgets the vantage: the name server no longer holds the base.
    st, body = fedtest.http(c.ctl_port, "DELETE", "/v1/state/vantages/us-east-1",
                            token=fedtest.TOKEN)
    assert st == 200, body
    assert held(c) is None
    c.fakes["usa"].set_endpoints("default", "app5", ready=4)
    doc = wait_for(lambda: (held(c) or {}).get("services", {}).get("default/app5", {})
                   .get("members", {}).get("usa", {}).get("ready_endpoints") == 4 and held(c),
                   10, "the whole document back at dnsd", c)
    assert dnsd_deltas(c)["conflict"] >= 1
    assert len(doc["services"]) == 1 + len(APPS)
    assert "refused" in c.health["us-east-1"].log_text()
    c.wait_answer("us-east-1", "usa", timeout=5)
