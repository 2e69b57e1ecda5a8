# SPDX-License-Identifier: Apache-2.0
"""Members from a host cluster's registry (members_from), end to end: a fake
KubeFed or Karmada host cluster, fake members, the real fedgslb-health and
fedgslb-dnsd, and dig. A join adds a member to dig's answers and an unjoin
takes it out while everything runs; a rotated Secret's token is used; a
member that cannot be placed is reported with its name and the reason."""

import time

import pytest

import fedtest
from registry_harness import KFS, REGION_OF, WEB, RegistryBed
from test_metrics_doc import check as check_metrics_doc


@pytest.fixture
def bed(tmp_path):
    b = RegistryBed(tmp_path)
    yield b
    b.close()


def member_of(doc, name):
    return doc.get("members", {}).get(name)


def test_kubefed_join_and_unjoin_change_dig(bed):
    bed.start()
    # Nothing joined: the service has no member to answer with.
    bed.wait_state(lambda d: d["registry"]["synced"], what="registry synced")
    assert bed.answer() == []
    t0 = time.monotonic()
    bed.join("usa")
    took = bed.wait_answer(["usa"], timeout=10)
    doc = bed.state()
    assert member_of(doc, "usa")["region"] == "us-east-1"
    assert member_of(doc, "usa")["zone"] == "us-east-1a"
    assert doc["registry"]["members"]["usa"]["placed_by"] == "labels"
    assert doc["registry"]["members"]["usa"]["server"] == bed.fakes["usa"].url
    # dnsd knows the member by the document alone: its region name answers.
    assert bed.answer(fedtest.fed_name("web", region="us-east-1")) == ["usa"]
    # A second join: both are members; each region's name answers its own.
    bed.join("eur")
    bed.wait_answer(["eur"], name=fedtest.fed_name("web", region="eu-west-1"))
    # Unjoin usa: its answers go, no restart.
    bed.unjoin("usa")
    bed.wait_answer(["eur"], source=fedtest.SOURCE["us-east-1"])
    bed.wait_state(lambda d: member_of(d, "usa") is None, what="usa gone from the document")
    assert bed.answer(fedtest.fed_name("web", region="us-east-1")) != ["usa"]
    assert "member=usa: left the registry" in bed.log()
    assert took < 10 * fedtest.SLOW, (took, time.monotonic() - t0)


def test_restart_never_announces_registry_members_gone(bed):
    """fedgslb-health restarts while the registry holds usa: the documents it
    publishes wait for the registry (and usa's first list), so dnsd answers
    usa throughout."""
    bed.start()
    bed.join("usa")
    bed.wait_answer(["usa"])
    gen = bed.state()["generation"]
    fedtest.finish(bed.health)
    bed.start_health()
    deadline = time.monotonic() + 3 * fedtest.SLOW
    while time.monotonic() < deadline:
        assert bed.answer() == ["usa"], bed.log()[-3000:]
        time.sleep(0.05)
    doc = bed.wait_state(lambda d: d["generation"] >= gen and member_of(d, "usa") is not None,
                         what="usa in the restarted vantage's document")
    assert doc["members"]["usa"]["api"] == "ok"


def test_rotated_secret_token_is_used(bed):
    """The member's API server takes only the new token after a rotation; the
    registry's Secret carries it, and fedgslb-health reconnects with it."""
    bed.start()
    secret = bed.join("usa")
    bed.wait_answer(["usa"])
    usa = bed.fakes["usa"]
    old, new = usa.token, "tok-usa-rotated-2"
    usa.token = new  # from now on the old token gets 401
    usa.drop_streams()
    # The registry learns the new token from the Secret.
    usa.clear_requests()
    bed.host.set_secret_token(KFS, secret, new)
    bed.wait_state(lambda d: "member=usa: changed in the registry" in bed.log(),
                   what="usa joined again with the new token")
    usa.set_endpoints("default", "web", ready=5)
    doc = bed.wait_state(lambda d: d["services"]["default/web"]["members"]["usa"]
                         ["ready_endpoints"] == 5 and d["members"]["usa"]["api"] == "ok",
                         what="usa's data through the new token")
    assert doc["registry"]["members"]["usa"]["server"] == usa.url
    ok = [r for r in usa.requests if r["status"] == 200 and r["user"] is not None]
    assert ok, usa.requests
    assert old not in bed.log() and new not in bed.log()  # tokens are never logged
    assert bed.answer() == ["usa"]


def test_unplaced_member_is_reported_then_placed_by_locations(bed):
    bed.start()
    bed.join("usa")
    bed.join("kor", labels={})  # no region labels, no status.region
    doc = bed.wait_state(lambda d: "kor" in d["registry"]["unplaced"] and
                         "usa" in d["registry"]["members"], what="kor reported, usa joined")
    why = doc["registry"]["unplaced"]["kor"]
    assert why.startswith("no region:") and "members_from.locations" in why, why
    assert member_of(doc, "kor") is None
    assert "registry: KubeFedCluster kube-federation-system/kor not used as a member: no " \
           "region" in bed.log()
    # In /metrics too, and every family is in docs/metrics.md.
    st, text = fedtest.http(bed.health_port, "GET", "/metrics", token=fedtest.TOKEN)
    assert st == 200
    metrics = {(n, tuple(sorted(lb.items()))): v for n, lb, v in fedtest.parse_metrics(text)}
    assert metrics[("fedgslb_health_registry_members", (("state", "unplaced"),))] == 1
    assert metrics[("fedgslb_health_registry_members", (("state", "placed"),))] == 1
    assert metrics[("fedgslb_health_registry_synced", ())] == 1
    assert metrics[("fedgslb_health_registry_changes_total", (("change", "join"),))] == 1
    check_metrics_doc("fedgslb-health", text)
    # The operator places it in the configuration; a reload picks it up.
    bed.conf["members_from"]["locations"] = {"kor": {"region": "ap-northeast-1",
                                                     "zone": "ap-northeast-1a"}}
    fedtest.write_config(bed.tmp, bed.conf, "health.json")
    bed.health.signal(1)
    doc = bed.wait_state(lambda d: member_of(d, "kor") is not None, what="kor placed")
    assert doc["members"]["kor"]["region"] == "ap-northeast-1"
    assert doc["registry"]["members"]["kor"]["placed_by"] == "members_from.locations"
    assert "kor" not in doc["registry"]["unplaced"]
    bed.wait_answer(["kor"], name=fedtest.fed_name("web", region="ap-northeast-1"))
    # usa stayed through the reload.
    assert member_of(doc, "usa") is not None


def test_a_name_in_members_and_in_the_registry_is_an_error(tmp_path):
    bed = RegistryBed(tmp_path, members=["jpn"])
    try:
        bed.start()
        bed.join("usa")
        bed.join("jpn")  # jpn is configured too
        doc = bed.wait_state(lambda d: "jpn" in d["registry"]["unplaced"], what="jpn refused")
        assert doc["registry"]["unplaced"]["jpn"] == (
            "also configured as members.jpn: a member comes from members or from the "
            "registry, not both")
        log = bed.log()
        assert "registry: KubeFedCluster kube-federation-system/jpn and members.jpn in " in log
        assert "name the same member" in log
        # The configured jpn is the one answered.
        bed.wait_answer(["jpn"], name=fedtest.fed_name("web", region="ap-northeast-1"))
        assert "jpn" not in doc["registry"]["members"]
    finally:
        bed.close()


def test_karmada_host(tmp_path):
    bed = RegistryBed(tmp_path, source="karmada")
    try:
        bed.start()
        bed.join("usa")
        bed.join("eur", zones=["eu-west-1a", "eu-west-1z"])
        bed.wait_answer(["eur"], name=fedtest.fed_name("web", region="eu-west-1"))
        bed.wait_answer(["usa"], name=fedtest.fed_name("web", region="us-east-1"))
        doc = bed.state()
        assert doc["registry"]["source"] == "karmada"
        assert doc["registry"]["members"]["eur"]["placed_by"] == "spec.region"
        assert doc["members"]["eur"] == dict(doc["members"]["eur"], region="eu-west-1",
                                             zone="eu-west-1a")
        # A region Karmada has but the federation does not: reported.
        bed.join("kor", region="sa-east-1", zones=[])
        doc = bed.wait_state(lambda d: "kor" in d["registry"]["unplaced"], what="kor reported")
        assert doc["registry"]["unplaced"]["kor"] == (
            "region \"sa-east-1\" (spec.region) is not one of the configured regions")
        bed.unjoin("usa")
        bed.wait_answer(["eur"], source=fedtest.SOURCE["us-east-1"])
    finally:
        bed.close()
