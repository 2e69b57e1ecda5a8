# SPDX-License-Identifier: Apache-2.0
"""fedgslb-health under API server faults: stream dropped mid-event, API hung,
garbage JSON, 410 Gone (compacted history), API restarted with a new history,
wrong token, wrong CA, forbidden resource. Each gets a clear log line naming
the member (and resource), the last good data stays (marked stale where it
applies), and the checker recovers by itself when the fault ends."""

import os
import signal
import time

import pytest

import health_harness as hh
import fakekube
import fedtest
from health_harness import entry

SVC = "default/web"
MEMBERS = ("usa", "eur", "jpn")


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    c = hh.Cluster(tmp_path_factory.mktemp("hfaults")).start_fakes()
    for fk in c.fakes.values():
        fk.add_service("default", "web")
        fk.set_endpoints("default", "web", ready=2)
    try:
        c.start()
        c.wait(lambda d: all(entry(d, SVC, m) and hh.api(d, m) == "ok" for m in MEMBERS),
               timeout=5, what="initial sync")
        yield c
    finally:
        c.close()


@pytest.fixture
def c(cl):
    """The shared set-up, every member healthy and ok again afterwards."""
    yield cl
    for fk in cl.fakes.values():
        fk.hang(False)
        fk.garbage(False)
        for r in ("services", "endpointslices", "nodes"):
            fk.deny(r, False)
    cl.wait(lambda d: all(hh.api(d, m) == "ok" for m in MEMBERS), timeout=10,
            what="all members ok after the test")


def bump(c, member, ready):
    """Changes the ready count in @member and waits until the state shows it."""
    c.fakes[member].set_endpoints("default", "web", ready=ready)
    return c.wait(lambda d: entry(d, SVC, member)["ready_endpoints"] == ready, timeout=3,
                  what="%s ready=%d" % (member, ready))


def test_stream_dropped_mid_event(c):
    mark = len(c.log())
    n = c.fakes["usa"].drop_streams()
    assert n >= 2
    c.wait_log("member=usa resource=", start=mark)
    text = c.log()[mark:]
    assert "stream dropped" in text or "garbage in watch stream" in text, text
    # The partial event line was not applied; the data is intact, and the
    # watch reconnects by itself (backoff 100..800 ms in the tests).
    doc = c.state()
    assert entry(doc, SVC, "usa")["ready_endpoints"] == 2
    bump(c, "usa", 3)
    bump(c, "usa", 2)


def test_api_hung_marks_stale_keeps_data(c):
    fk = c.fakes["eur"]
    mark = len(c.log())
    fk.hang(True)
    doc = c.wait(lambda d: hh.api(d, "eur") == "unreachable", timeout=4,
                 what="eur unreachable while hung")
    e = entry(doc, SVC, "eur")
    assert e is not None, "last known data dropped"
    assert e["ready_endpoints"] == 2 and e["healthy"] is True
    assert "API unreachable for" in e["reason"] and "last known data" in e["reason"]
    assert doc["members"]["eur"]["last_seen"].endswith("Z")
    hh.validate(doc)
    text = c.log()[mark:]
    assert "member=eur: API health check failed" in text
    assert "member=eur: API server unreachable after 3 failed checks" in text
    # Other members are not affected.
    assert hh.api(doc, "usa") == "ok"
    fk.set_endpoints("default", "web", ready=4)  # happens while hung
    fk.hang(False)
    doc = c.wait(lambda d: hh.api(d, "eur") == "ok"
                 and entry(d, SVC, "eur")["ready_endpoints"] == 4, timeout=5,
                 what="eur recovered with the change made while hung")
    assert "last_seen" not in doc["members"]["eur"]
    assert entry(doc, SVC, "eur")["reason"] == "4 ready endpoints; load balancer 192.0.2.10"
    bump(c, "eur", 2)


def test_garbage_json(c):
    fk = c.fakes["jpn"]
    mark = len(c.log())
    fk.garbage(True)
    fk.set_endpoints("default", "web", ready=7)  # its watch event arrives as garbage
    doc = c.wait(lambda d: hh.api(d, "jpn") == "stale", timeout=3, what="jpn stale on garbage")
    e = entry(doc, SVC, "jpn")
    assert e["ready_endpoints"] == 2, "garbage must not change the last good data"
    assert "API data stale for" in e["reason"] and "last known data" in e["reason"]
    c.wait_log("member=jpn resource=endpointslices: watch failed: garbage in watch stream", start=mark)
    # Relists get garbage too, and are reported.
    c.wait_log("list failed: invalid JSON", start=mark)
    fk.garbage(False)
    c.wait(lambda d: hh.api(d, "jpn") == "ok" and entry(d, SVC, "jpn")["ready_endpoints"] == 7,
           timeout=5, what="jpn recovered after garbage")
    bump(c, "jpn", 2)


def relists(c, member):
    return sum(v for n, lb, v in c.metrics()
               if n == "fedgslb_health_watch_relists_total" and lb["member"] == member)


def test_410_gone_relists(c):
    fk = c.fakes["usa"]
    before = relists(c, "usa")
    mark = len(c.log())
    # While the watch is away, a change happens and the history is compacted:
    # the rewatch from the last seen RV gets an ERROR event with code 410.
    fk.stop()
    fk.set_endpoints("default", "web", ready=5)
    fk.compact()
    fk.start()
    c.wait_log("member=usa resource=services: watch: resourceVersion too old (410 Gone); "
               "relisting", start=mark)
    c.wait(lambda d: entry(d, SVC, "usa")["ready_endpoints"] == 5, timeout=3)
    assert relists(c, "usa") > before
    bump(c, "usa", 2)


def test_api_restarted_with_new_history(c):
    fk = c.fakes["eur"]
    mark = len(c.log())
    fk.stop()
    fk.set_endpoints("default", "web", ready=6)
    time.sleep(0.3)
    fk.start()
    fk.restart(new_history=True)
    doc = c.wait(lambda d: entry(d, SVC, "eur")["ready_endpoints"] == 6
                 and hh.api(d, "eur") == "ok", timeout=5, what="eur after new history")
    assert entry(doc, SVC, "eur")["healthy"]
    text = c.log()[mark:]
    assert "member=eur resource=" in text
    # Events after the restart flow on the new history.
    bump(c, "eur", 2)


def test_wrong_token(c):
    fk = c.fakes["usa"]
    good = fk.token
    mark = len(c.log())
    fk.token = "rotated-on-the-server"
    fk.drop_streams()
    doc = c.wait(lambda d: hh.api(d, "usa") == "unauthorized", timeout=3,
                 what="usa unauthorized")
    e = entry(doc, SVC, "usa")
    assert e["ready_endpoints"] == 2 and e["healthy"] is True
    assert "API unauthorized for" in e["reason"]
    c.wait_log("HTTP 401", start=mark)
    c.wait_log("(credentials rejected)", start=mark)
    assert good not in c.log() and "rotated-on-the-server" not in c.log()
    fk.token = good
    c.wait(lambda d: hh.api(d, "usa") == "ok", timeout=5, what="usa ok with the right token")
    bump(c, "usa", 3)
    bump(c, "usa", 2)


def test_forbidden_resource(c):
    fk = c.fakes["jpn"]
    mark = len(c.log())
    fk.deny("endpointslices")
    fk.drop_streams()
    doc = c.wait(lambda d: hh.api(d, "jpn") == "unauthorized", timeout=3,
                 what="jpn unauthorized on 403")
    assert entry(doc, SVC, "jpn")["ready_endpoints"] == 2
    c.wait_log("member=jpn resource=endpointslices", start=mark)
    c.wait_log("HTTP 403", start=mark)
    fk.deny("endpointslices", False)
    c.wait(lambda d: hh.api(d, "jpn") == "ok", timeout=5, what="jpn ok again")


def test_wrong_ca_then_fixed(c):
    """usa's context trusts eur's CA: TLS verification fails; the data stays
    (stale), and fixing the kubeconfig (SIGHUP) recovers without a gap."""
    mark = len(c.log())
    wrong = os.path.join(c.tmp, "kubeconfig-wrong-ca.yaml")
    fakekube.write_kubeconfig(wrong, [(n, fk, hh.STYLES[n]) for n, fk in c.fakes.items()])
    with open(wrong) as f:
        text = f.read()
    import base64
    good_b64 = base64.b64encode(c.fakes["usa"].ca_pem.encode()).decode()
    bad_b64 = base64.b64encode(c.fakes["eur"].ca_pem.encode()).decode()
    assert good_b64 in text
    with open(c.kubeconfig, "w") as f:
        f.write(text.replace(good_b64, bad_b64, 1))
    c.daemon.signal(signal.SIGHUP)
    doc = c.wait(lambda d: hh.api(d, "usa") == "unreachable", timeout=5,
                 what="usa unreachable with the wrong CA")
    e = entry(doc, SVC, "usa")
    assert e["ready_endpoints"] == 2, "last known data must survive the reload"
    assert "API unreachable for" in e["reason"]
    c.wait_log("member=usa: API health check failed", start=mark)
    log = c.log()[mark:]
    assert "certificate" in log.lower() or "ssl" in log.lower(), log[-2000:]
    with open(c.kubeconfig, "w") as f:
        f.write(text)
    c.daemon.signal(signal.SIGHUP)
    c.wait(lambda d: hh.api(d, "usa") == "ok", timeout=5, what="usa ok with the right CA")
    bump(c, "usa", 3)
    bump(c, "usa", 2)
