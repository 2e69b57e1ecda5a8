# SPDX-License-Identifier: Apache-2.0
"""Services from the host cluster (members_from.services): KubeFed's
FederatedServices, their placement limiting the members dig answers with,
and KubeFed's former multi-cluster DNS (Domain, ServiceDNSRecord): the record
TTL seen in dig, allowServiceWithoutEndpoints answering a member whose
Service has no ready endpoints. The configuration lists no service at all."""

import time

import pytest

import fedtest
from registry_harness import KFS, WEB, RegistryBed

EU = fedtest.SOURCE["eu-west-1"]  # an eu-west-1 client: eur is its nearest member


@pytest.fixture
def bed(tmp_path):
    b = RegistryBed(tmp_path, services={})
    yield b
    b.close()


def wait_until(pred, timeout):
    deadline = time.monotonic() + timeout * fedtest.SLOW
    while not pred():
        assert time.monotonic() < deadline, "condition not met in %.1fs" % timeout
        time.sleep(0.05)


def fedsvc(placement):
    return {"metadata": {"name": "web", "namespace": "default"},
            "spec": {"template": {"spec": {"ports": [{"name": "http", "port": 80}]}},
                     "placement": placement}}


def record(**spec):
    return {"metadata": {"name": "web", "namespace": "default"},
            "spec": dict({"domainRef": fedtest.FEDERATION}, **spec)}


def domain(name=fedtest.FEDERATION, zone=fedtest.ZONE):
    return {"metadata": {"name": name, "namespace": KFS}, "domain": zone}


def test_federated_service_placement_limits_answers(bed):
    bed.start()
    bed.join("usa")
    bed.join("eur", labels={"topology.kubernetes.io/region": "eu-west-1",
                            "topology.kubernetes.io/zone": "eu-west-1a", "tier": "gold"})
    bed.wait_state(lambda d: len(d["members"]) == 2, what="both members")
    # No FederatedService yet: nothing configured, nothing annotated: no name.
    assert bed.answer(source=EU) == []
    # Placed in usa only: the eu client gets usa although eur is nearer.
    bed.host.put("federatedservices", fedsvc({"clusters": [{"name": "usa"}]}))
    bed.wait_answer(["usa"], source=EU)
    doc = bed.state()
    assert doc["services"]["default/web"]["placement"] == ["usa"]
    assert doc["services"]["default/web"]["port"] == 80
    # eur still reports the Service: dnsd leaves it out by the placement.
    assert doc["services"]["default/web"]["members"]["eur"]["healthy"] is True
    st, ex = fedtest.http(bed.ctl_port, "GET", "/v1/explain?name=%s&region=eu-west-1" % WEB)
    assert st == 200 and "not in the service's placement" in str(ex), ex
    # A clusterSelector instead: the gold members.
    bed.host.put("federatedservices", fedsvc({"clusterSelector": {"matchLabels":
                                                                  {"tier": "gold"}}}))
    bed.wait_answer(["eur"], source=EU)
    bed.wait_answer(["eur"], source=fedtest.SOURCE["us-east-1"])
    # Clusters win over the selector, even an empty list: placed nowhere.
    bed.host.put("federatedservices", fedsvc({"clusters": [],
                                              "clusterSelector": {"matchLabels": {}}}))
    bed.wait_answer([], source=EU)
    # An empty selector: every registry member; the eu client gets its own.
    bed.host.put("federatedservices", fedsvc({"clusterSelector": {}}))
    bed.wait_answer(["eur"], source=EU)
    bed.wait_answer(["usa"], source=fedtest.SOURCE["us-east-1"])
    # The FederatedService goes: so does the name.
    bed.host.remove("federatedservices", "default", "web")
    bed.wait_answer([], source=EU)


def test_service_dns_record_ttl_and_endpoints(bed):
    bed.start()
    bed.join("usa")
    bed.join("eur")
    bed.member("eur").set_endpoints("default", "web", ready=0)
    bed.host.put("domains", domain())
    bed.host.put("servicednsrecords", record(recordTTL=7))
    doc = bed.wait_state(lambda d: d["services"]["default/web"]["members"]["eur"]["reason"] ==
                         "0 ready endpoints" and "usa" in d["services"]["default/web"]["members"],
                         what="eur reported without ready endpoints")
    assert doc["services"]["default/web"]["ttl_s"] == 7
    assert "placement" not in doc["services"]["default/web"]  # every member
    bed.wait_answer(["usa"], source=EU)  # eur has no ready endpoint
    # dnsd.ttl_s is 30; min_ttl_s (5) while usa's first data is still coming in.
    wait_until(lambda: {t for t, _ in bed.dig(source=EU)} == {7}, timeout=5)
    # allowServiceWithoutEndpoints: eur is answered without endpoints.
    bed.host.put("servicednsrecords", record(recordTTL=7, allowServiceWithoutEndpoints=True))
    bed.wait_answer(["eur"], source=EU)
    doc = bed.state()
    assert doc["services"]["default/web"]["allow_without_endpoints"] is True
    assert doc["services"]["default/web"]["members"]["eur"]["healthy"] is True
    # A TTL change is seen in dig at once (dnsd rebuilds on the new document).
    bed.host.put("servicednsrecords", record(recordTTL=120, allowServiceWithoutEndpoints=True))
    bed.wait_state(lambda d: d["services"]["default/web"]["ttl_s"] == 120, what="ttl 120")
    wait_until(lambda: {t for t, _ in bed.dig(source=EU)} == {120}, timeout=5)


def test_records_of_another_federation_are_skipped_and_reported(bed):
    bed.start()
    bed.join("usa")
    bed.host.put("domains", domain(name="otherfed", zone="other.example"))
    bed.host.put("servicednsrecords", dict(record(dnsPrefix="www"),
                                           spec={"domainRef": "otherfed", "recordTTL": 9}))
    # The Domain and the record come by two watches: wait for both.
    other = ("ServiceDNSRecord default/web: its names are web.default.otherfed.svc.other.example, "
             "not this federation's (federation myfed, zone fed.example.test): skipped")
    doc = bed.wait_state(lambda d: d["registry"]["notes"] == [other], what="the note")
    assert "default/web" not in doc["services"]
    # This federation's Domain, and a prefix that cannot be served as such.
    bed.host.put("domains", domain())
    bed.host.put("servicednsrecords", record(recordTTL=9, dnsPrefix="www"))
    prefix = ("ServiceDNSRecord default/web: dnsPrefix www.fed.example.test is not served: list "
              "it in services.default/web.aliases")
    bed.wait_state(lambda d: d["registry"]["notes"] == [prefix] and "default/web" in
                   d["services"], what="the prefix note and default/web")
    bed.wait_answer(["usa"])
    wait_until(lambda: {t for t, _ in bed.dig()} == {9}, timeout=5)
