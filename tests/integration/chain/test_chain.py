# SPDX-License-Identifier: Apache-2.0
"""End to end: fake member clusters + real backends behind delaying relays
-> fedgslb-health (probes, RTT, publishing) -> fedgslb-dnsd -> DNS answers.
One vantage (us-east-1) unless a test says otherwise; see chain.py."""

import signal
import time

import pytest

import chain as ch
from chain import Chain, entry

import fedtest

# A flip needs `fall` failed probes `interval` apart, then a debounced
# publish: the bound is interval x fall + 2 s.
FLIP_BOUND_S = ch.INTERVAL_MS * ch.FALL / 1000.0 + 2.0


@pytest.fixture
def one(tmp_path):
    c = Chain(tmp_path).start()
    try:
        c.wait_health("us-east-1", lambda d: all(
            entry(d, m)["probes"][ch.LB_IP[m]]["state"] == "up" for m in ("usa", "eur", "jpn")),
            timeout=15, what="every member probed up")
        c.wait_answer("us-east-1", "usa", timeout=15)
        yield c
    finally:
        c.close()


def test_nearest_member_by_measured_rtt(one):
    doc = one.wait_health("us-east-1", lambda d: all(
        entry(d, m).get("rtt_ms") is not None for m in ("usa", "eur", "jpn")),
        timeout=10, what="RTT of every member")
    rtt = {m: entry(doc, m)["rtt_ms"] for m in ("usa", "eur", "jpn")}
    # The relay adds 10/40/80 ms for this vantage's source address.
    assert 8 <= rtt["usa"] < 35 and 35 <= rtt["eur"] < 70 and 70 <= rtt["jpn"] < 130, rtt
    assert doc["members"]["eur"]["rtt_ms"] >= 35
    assert entry(doc, "usa")["healthy"] and "probe ok" in entry(doc, "usa")["reason"]
    # us clients are ranked by the measured RTT; eu and ap by the static matrix.
    assert one.answer("us-east-1") == ["usa"]
    assert one.answer("eu-west-1") == ["eur"]
    assert one.answer("ap-northeast-1") == ["jpn"]
    ex = one.explain("us-east-1")
    assert ex["decision"]["decision"]["chosen"] == ["usa"] or "usa" in str(ex["decision"])


def test_backend_failure_moves_clients_and_back(one):
    one.backends["usa"].set_status(500)
    took = one.wait_answer("us-east-1", "eur", timeout=FLIP_BOUND_S + 5)
    assert took <= FLIP_BOUND_S, "fault to changed answer took %.2f s (bound %.1f s)" % (
        took, FLIP_BOUND_S)
    doc = one.health_state("us-east-1")
    e = entry(doc, "usa")
    assert e["healthy"] is False and e["reason"].startswith("probe 2/2 failed: status 500"), e
    # Other regions are not affected.
    assert one.answer("eu-west-1") == ["eur"]
    assert one.answer("ap-northeast-1") == ["jpn"]
    one.backends["usa"].set_status(200)
    took = one.wait_answer("us-east-1", "usa", timeout=FLIP_BOUND_S + 5)
    assert took <= ch.INTERVAL_MS * ch.RISE / 1000.0 + 2.0, took


def test_pending_shortens_ttl_during_a_flip(one):
    one.backends["usa"].set_status(503)
    doc = one.wait_health("us-east-1", lambda d: "status 503" in entry(d, "usa")["reason"],
                          timeout=5, what="usa's probe failing")
    e = entry(doc, "usa")
    # Between the first failure and `fall` failures the entry is pending.
    assert e["pending"] or not e["healthy"], e
    one.wait_answer("us-east-1", "eur", timeout=FLIP_BOUND_S + 5)


def test_added_latency_reranks(one):
    # 60 ms more in front of usa: from us-east-1 it is now 70 ms, eur 40 ms.
    one.relays["usa"].set_delay(70, source=ch.PROBE_SOURCE["us-east-1"])
    doc = one.wait_health("us-east-1", lambda d: entry(d, "usa")["rtt_ms"] >= 60,
                          timeout=20, what="usa RTT to rise by 60 ms")
    assert entry(doc, "usa")["healthy"] is True
    one.wait_answer("us-east-1", "eur", timeout=10)
    one.relays["usa"].set_delay(10, source=ch.PROBE_SOURCE["us-east-1"])
    one.wait_answer("us-east-1", "usa", timeout=20)


def test_control_plane_loss_is_not_an_outage(one):
    one.fakes["usa"].stop()
    doc = one.wait_health("us-east-1", lambda d: d["members"]["usa"]["api"] == "unreachable",
                          timeout=10, what="usa API unreachable")
    e = entry(doc, "usa")
    assert e["healthy"] is True and "API unreachable" in e["reason"], e
    assert one.answer("us-east-1") == ["usa"]
    time.sleep(2 * ch.INTERVAL_MS / 1000.0)
    assert one.answer("us-east-1") == ["usa"]
    # Now the data plane goes too: it leaves.
    one.stop_backend("usa")
    one.wait_answer("us-east-1", "eur", timeout=FLIP_BOUND_S + 5)
    doc = one.health_state("us-east-1")
    # The relay accepts, fails to reach the dead backend and resets: curl
    # reports a refused or a failed connect depending on the moment.
    reason = entry(doc, "usa")["reason"]
    assert any(w in reason for w in ("connection refused", "cannot connect", "reset")), reason


def test_everything_down_fails_open(one):
    for m in ("usa", "eur", "jpn"):
        one.backends[m].set_status(500)
    deadline = time.monotonic() + 15 * fedtest.SLOW
    while time.monotonic() < deadline:
        got = one.answer("us-east-1")
        if got == ["eur", "jpn", "usa"]:
            break
        time.sleep(0.1)
    assert got == ["eur", "jpn", "usa"], got
    msg = fedtest.query(one.dns_port, ch.WEB, "A", source=fedtest.SOURCE["us-east-1"])
    assert msg.answer[0].ttl <= 5  # min_ttl_s while failing open
    m = one.ctl.metrics()
    assert sum(v for name, labels, v in m if name == "fedgslb_dns_fail_open_total"
               and labels.get("service") == "default/web") >= 1, m
    ex = one.explain("us-east-1")
    assert "fail" in str(ex["decision"]).lower(), ex


def test_dnsd_restart_serves_state_file_before_next_push(one):
    one.wait_answer("us-east-1", "usa", timeout=5)
    one.backends["usa"].set_status(500)
    one.wait_answer("us-east-1", "eur", timeout=FLIP_BOUND_S + 5)
    one.stop_health("us-east-1")  # no more pushes
    one.restart_dnsd()
    assert one.answer("us-east-1") == ["eur"]


def test_health_restart_resumes_generation(one):
    gen = one.health_state("us-east-1")["generation"]
    one.stop_health("us-east-1")
    one.backends["eur"].set_status(500)  # something to publish after the restart
    one.start_health("us-east-1")
    doc = one.wait_health("us-east-1", lambda d: d["generation"] > gen and
                          entry(d, "eur")["healthy"] is False, timeout=10,
                          what="a newer generation with eur down")
    # dnsd accepted it (a stale generation would be refused with 409).
    st, state = one.ctl.get("/v1/state")
    assert st == 200, state
    log = one.health["us-east-1"].log_text()
    assert "stale generation" not in log and "warn: publish to" not in log, log[-3000:]
    assert doc["generation"] > gen


@pytest.fixture
def three(tmp_path):
    c = Chain(tmp_path, vantages=("us-east-1", "eu-west-1", "ap-northeast-1")).start()
    try:
        for region, member in (("us-east-1", "usa"), ("eu-west-1", "eur"),
                               ("ap-northeast-1", "jpn")):
            c.wait_answer(region, member, timeout=15)
        yield c
    finally:
        c.close()


def test_three_vantages_rank_by_their_own_rtt(three):
    # From eu, usa is 40 ms and jpn 120 ms: drain eur and eu clients go to usa
    # (by eu's own measurements), ap clients stay on jpn.
    st, _ = three.ctl.drain("eur")
    assert st == 200
    three.wait_answer("eu-west-1", "usa", timeout=5)
    assert three.answer("ap-northeast-1") == ["jpn"]
    three.ctl.drain("eur", on=False)
    three.wait_answer("eu-west-1", "eur", timeout=5)
    ex = three.explain("eu-west-1")
    assert "eu-west-1" in str(ex)


def test_one_vantage_disagreeing_is_outvoted(three):
    # Only the us vantage loses its path to eur: 1 of 3 says down.
    three.relays["eur"].block(ch.PROBE_SOURCE["us-east-1"])
    three.wait_health("us-east-1", lambda d: entry(d, "eur")["healthy"] is False,
                      timeout=10, what="us vantage sees eur down")
    time.sleep(1.0)
    assert three.answer("eu-west-1") == ["eur"]
    # A second vantage agrees: now the majority says down.
    three.relays["eur"].block(ch.PROBE_SOURCE["ap-northeast-1"])
    three.wait_answer("eu-west-1", "usa", timeout=FLIP_BOUND_S + 5)


def test_silent_vantage_is_dropped(three):
    three.stop_health("ap-northeast-1", sig=signal.SIGKILL)
    # 3 x publish_interval_ms without a push: dnsd drops the vantage.
    deadline = time.monotonic() + (3 * ch.PUBLISH_INTERVAL_MS / 1000.0 + 5) * fedtest.SLOW
    vantages = None
    while time.monotonic() < deadline:
        st, doc = three.ctl.get("/v1/state")
        vantages = sorted(doc["vantages"]) if st == 200 else doc
        if vantages == ["eu-west-1", "us-east-1"]:
            break
        time.sleep(0.2)
    assert vantages == ["eu-west-1", "us-east-1"], vantages
    # ap clients now rank on the static matrix (or the nearest vantage): still jpn.
    assert three.answer("ap-northeast-1") == ["jpn"]
