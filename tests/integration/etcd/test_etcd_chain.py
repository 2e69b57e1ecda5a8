# SPDX-License-Identifier: Apache-2.0
"""The distributed mode end to end (etcd_chain.py): three vantages write
their documents to a real three-node etcd cluster, two fedgslb-dnsd watch
it. Both name servers answer alike, a backend fault reaches both through
etcd, a vantage that stops goes with its lease, a name server added later
needs nothing from the vantages, pushes are refused, and fedgslbctl status
shows etcd, the consumers and their agreement."""

import json
import os
import signal
import subprocess
import time

import pytest

import chain as ch
import etcd_chain
import etcd_cluster
import fedtest
import test_metrics_doc as metrics_doc
from etcd_chain import REGIONS, EtcdChain

pytestmark = pytest.mark.skipif(not etcd_cluster.available(), reason="etcd-server not installed")

HOME = {"us-east-1": "usa", "eu-west-1": "eur", "ap-northeast-1": "jpn"}
# A flip needs `fall` failed probes `interval` apart, then the debounce and
# one put and one watch event: the push mode's bound holds through etcd.
FLIP_BOUND_S = ch.INTERVAL_MS * ch.FALL / 1000.0 + 2.0


def all_vantages(st):
    return all(s["vantage_keys"] == 3 and s["up"] for s in st)


@pytest.fixture
def bed(tmp_path):
    c = EtcdChain(tmp_path).start()
    try:
        c.wait_etcd(all_vantages, timeout=30, what="both name servers holding three vantages")
        for r in REGIONS:
            c.wait_both(r, HOME[r], timeout=20)
        yield c
    finally:
        c.close()


def test_two_name_servers_agree_and_follow_a_fault(bed):
    # Identical answers for every region, and the same keys at the same revisions.
    for r in REGIONS:
        assert bed.answers(r) == {"ns1": [HOME[r]], "ns2": [HOME[r]]}
    st = bed.wait_etcd(lambda s: s[0]["digest"] == s[1]["digest"], timeout=10, what="agreement")
    assert st[0]["revision"] >= 1 and st[0]["keys"] == 3
    for ns in (1, 2):
        doc = bed.state(ns)
        assert sorted(doc["vantages"]) == sorted(REGIONS)
    # Nobody pushed: the vantages' configurations name no consumer.
    for v in REGIONS:
        assert "publish_to" not in bed.health_config(v)["health"]
    # usa's backend fails: both name servers move us clients to eur.
    bed.backends["usa"].set_status(500)
    took = bed.wait_both("us-east-1", "eur", timeout=FLIP_BOUND_S + 5)
    print("backend fault -> both name servers changed through etcd: %.2f s" % took)
    assert took <= FLIP_BOUND_S * fedtest.SLOW, took
    assert bed.answers("eu-west-1") == {"ns1": ["eur"], "ns2": ["eur"]}
    bed.backends["usa"].set_status(200)
    bed.wait_both("us-east-1", "usa", timeout=FLIP_BOUND_S + 5)
    m = bed.ctl.metrics()
    fams = {n for n, _, _ in m}
    assert {"fedgslb_etcd_up", "fedgslb_etcd_revision", "fedgslb_etcd_events_total"} <= fams
    assert [v for n, _, v in m if n == "fedgslb_etcd_up"] == [1]
    # docs/metrics.md lists the distributed mode's families too (its own test
    # scrapes daemons in the push mode).
    metrics_doc.check("fedgslb-dnsd (etcd)", metrics_doc.scrape(bed.ctl_port))
    got = metrics_doc.check("fedgslb-health (etcd)",
                            metrics_doc.scrape(bed.health_ports["us-east-1"]))
    assert "fedgslb_health_etcd_up" in got


def test_pushes_are_refused(bed):
    doc = fedtest.state_doc("us-east-1", {"default/web": {"usa": fedtest.endpoint(["192.0.2.10"])}},
                            generation=10 ** 12)
    st, body = fedtest.http(bed.ctl_port, "PUT", "/v1/state", doc, token=fedtest.TOKEN)
    assert st == 409, (st, body)
    assert "takes vantage documents from etcd" in body["error"]
    st, body = fedtest.http(bed.ctl_port, "DELETE", "/v1/state/vantages/us-east-1",
                            token=fedtest.TOKEN)
    assert st == 409, (st, body)
    assert sorted(bed.state(1)["vantages"]) == sorted(REGIONS)


def test_a_stopped_vantage_goes_with_its_lease(bed):
    key = "/fedgslb/myfed/vantages/ap-northeast-1"
    assert bed.cluster.get(key) is not None
    bed.stop_health("ap-northeast-1", sig=signal.SIGKILL)
    t0 = time.monotonic()
    # The lease is 3 publish intervals (3 s): then the key and the vantage go.
    bed.wait_etcd(lambda s: all(x["vantage_keys"] == 2 for x in s), timeout=15,
                  what="the lease of ap-northeast-1 running out")
    gone = time.monotonic() - t0
    print("vantage killed -> its key gone in both name servers: %.2f s" % gone)
    assert 2.0 <= gone <= 8.0 * fedtest.SLOW, gone
    for ns in (1, 2):
        assert sorted(bed.state(ns)["vantages"]) == ["eu-west-1", "us-east-1"]
    assert bed.cluster.get(key) is None
    # Every vantage gone: the last state stays, answers do not change.
    for v in ("us-east-1", "eu-west-1"):
        bed.stop_health(v, sig=signal.SIGKILL)
    bed.wait_etcd(lambda s: all(x["vantage_keys"] == 0 for x in s), timeout=15,
                  what="every vantage key gone")
    for ns in (1, 2):
        assert len(bed.state(ns)["vantages"]) >= 1
    for r in REGIONS:
        assert bed.answers(r) == {"ns1": [HOME[r]], "ns2": [HOME[r]]}
    # A vantage back: it is the only one held again.
    bed.start_health("eu-west-1")
    bed.wait_etcd(lambda s: all(x["vantage_keys"] == 1 for x in s), timeout=20,
                  what="eu-west-1 back")
    deadline = time.monotonic() + 10 * fedtest.SLOW
    while sorted(bed.state(1)["vantages"]) != ["eu-west-1"]:
        assert time.monotonic() < deadline, bed.state(1)["vantages"].keys()
        time.sleep(0.1)


def test_a_name_server_added_needs_nothing_from_the_vantages(bed):
    before = {v: os.stat(os.path.join(bed.tmp, "health-%s.conf.json" % v)).st_mtime_ns
              for v in REGIONS}
    port, ctl = etcd_cluster.quiet_port(), etcd_cluster.quiet_port()
    conf = bed.ns2_config()
    conf["dnsd"]["listen"] = ["127.0.0.1:%d" % port]
    conf["dnsd"]["state_file"] = os.path.join(bed.tmp, "dnsd3-state.json")
    conf["dnsd"]["control"]["listen"] = "127.0.0.1:%d" % ctl
    ns3 = fedtest.start_dnsd(bed.tmp, conf=conf, dns_port=port, ctl_port=ctl,
                             config_name="dnsd3.json")
    try:
        deadline = time.monotonic() + 15 * fedtest.SLOW
        while True:
            doc = fedtest.http(ctl, "GET", "/v1/state", timeout=2)[1]
            if isinstance(doc, dict) and len(doc.get("vantages", {})) == 3:
                break
            assert time.monotonic() < deadline, doc
            time.sleep(0.1)
        for r in REGIONS:
            msg = fedtest.query(port, etcd_chain.WEB, "A", source=fedtest.SOURCE[r])
            got = sorted(ch.MEMBER_OF_IP.get(a, a) for a in fedtest.addresses(msg))
            assert got == [HOME[r]] == bed.answers(r)["ns1"], (r, got)
        # The vantages keep writing (heartbeats), so two consumers can be one
        # event apart at any instant: they agree once both have applied it.
        deadline = time.monotonic() + 5 * fedtest.SLOW
        while True:
            mine = fedtest.http(ctl, "GET", "/v1/state", timeout=2)[1]["etcd"]["digest"]
            if mine == bed.etcd_status(1)["digest"]:
                break
            assert time.monotonic() < deadline, (mine, bed.etcd_status(1))
            time.sleep(0.05)
        regs = [k for k in bed.cluster.get_prefix("/fedgslb/myfed/consumers/")]
        assert len(regs) == 3 and any(k.endswith(":127.0.0.1:%d" % ctl) for k in regs), regs
    finally:
        fedtest.finish(ns3)
    after = {v: os.stat(os.path.join(bed.tmp, "health-%s.conf.json" % v)).st_mtime_ns
             for v in REGIONS}
    assert before == after


def test_fedgslbctl_status_shows_etcd_and_agreement(bed):
    path = fedtest.write_config(bed.tmp, bed.conf, "fedgslbctl.json")
    ctl = fedtest.binary("fedgslbctl")
    bed.wait_etcd(lambda s: s[0]["digest"] == s[1]["digest"], timeout=10, what="agreement")

    def status(*extra, settled):
        # A snapshot can fall between two consumers applying the same
        # heartbeat; agreement is what a few snapshots in a row settle on.
        for _ in range(20):
            p = subprocess.run([ctl, "--config", path, "status", *extra],
                               capture_output=True, text=True, timeout=30)
            if p.returncode == 0 and settled(p.stdout):
                break
            time.sleep(0.1)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    out = status(settled=lambda o: "agreement: every consumer holds the same keys" in o)
    assert "etcd (/fedgslb/myfed/): 3 of 3 members answer" in out, out
    for url in bed.cluster.endpoints:
        assert url in out
    assert out.count(" yes ") + out.count(" yes\n") >= 1  # one leader
    assert "agreement: every consumer holds the same keys at the same revisions" in out, out
    assert out.count("dnsd@") == 2, out
    rep = json.loads(status("--json", settled=lambda o: json.loads(o)["etcd"]["agree"]))["etcd"]
    assert rep["agree"] is True and rep["healthy"] == 3 and rep["leader"] in bed.cluster.endpoints
    assert len(rep["consumers"]) == 2
    assert len({c["digest"] for c in rep["consumers"]}) == 1
    assert all(c["up"] and c["revision"] >= 1 for c in rep["consumers"])
    # One member down: said so, still a quorum.
    bed.cluster.kill(0)
    p = subprocess.run([ctl, "--config", path, "--timeout-ms", "2000", "status"],
                       capture_output=True, text=True, timeout=30)
    assert "2 of 3 members answer" in p.stdout, p.stdout
    assert "unreachable" in p.stdout
