# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd control API: PUT /v1/state validation (a bad document is
refused with 400 and a reason and changes no answer), auth, generations."""

import copy
import json

import pytest

import fedtest
from fedtest import ECS4, endpoint, fed_name, query, state_doc

US, EU, AP = "us-east-1", "eu-west-1", "ap-northeast-1"
REGIONS = [US, EU, AP]
WEB = fed_name("web")
V4 = {"usa": "192.0.2.10", "eur": "192.0.2.20", "jpn": "192.0.2.30"}


def svcs(down=()):
    return {"default/web": {m: endpoint([V4[m]], healthy=m not in down) for m in V4}}


def push_gen(ctl, gen, down=(), vantages=REGIONS):
    for v in vantages:
        st, body = ctl.put_state(state_doc(v, svcs(down), generation=gen))
        assert 200 <= st < 300, (v, st, body)


def us_answer(d):
    r = query(d, WEB, "A", ecs=f"{ECS4[US]}/24")
    return fedtest.addresses(r)


_gen = [1000]


def next_gen():
    _gen[0] += 10
    return _gen[0]


@pytest.fixture(autouse=True)
def _baseline(ctl):
    """usa down (so a US client gets eur): changes would be visible."""
    push_gen(ctl, next_gen(), down=["usa"])


def _mutations():
    """(id, function that damages a good document, expected path substring)."""
    def sv(doc):
        return doc["services"]["default/web"]["members"]

    def drop_healthy(doc):
        del sv(doc)["usa"]["healthy"]

    def unknown_member(doc):
        sv(doc)["xyz"] = endpoint(["192.0.2.77"])

    def bad_ip(doc):
        sv(doc)["usa"]["addresses"] = ["300.1.2.3"]

    def ip_with_port(doc):
        sv(doc)["usa"]["addresses"] = ["192.0.2.10:80"]

    def addresses_not_list(doc):
        sv(doc)["usa"]["addresses"] = "192.0.2.10"

    def healthy_string(doc):
        sv(doc)["usa"]["healthy"] = "yes"

    def version_2(doc):
        doc["version"] = 2

    def no_version(doc):
        del doc["version"]

    def unknown_vantage(doc):
        doc["vantage"] = "mars-1"

    def negative_generation(doc):
        doc["generation"] = -5

    def no_generation(doc):
        del doc["generation"]

    def bad_time(doc):
        doc["generated_at"] = "yesterday"

    def ready_negative(doc):
        sv(doc)["usa"]["ready_endpoints"] = -1

    def services_list(doc):
        doc["services"] = []

    return [
        ("healthy_missing", drop_healthy, "healthy"),
        ("unknown_member", unknown_member, "xyz"),
        ("bad_ip", bad_ip, "addresses"),
        ("ip_with_port", ip_with_port, "addresses"),
        ("addresses_not_list", addresses_not_list, "addresses"),
        ("healthy_string", healthy_string, "healthy"),
        ("version_2", version_2, "version"),
        ("no_version", no_version, "version"),
        ("unknown_vantage", unknown_vantage, "vantage"),
        ("negative_generation", negative_generation, "generation"),
        ("no_generation", no_generation, "generation"),
        ("bad_generated_at", bad_time, "generated_at"),
        ("ready_negative", ready_negative, "ready_endpoints"),
        ("services_list", services_list, "services"),
    ]


MUT = _mutations()


@pytest.mark.parametrize("case,mutate,where", MUT, ids=[m[0] for m in MUT])
def test_bad_document_rejected_answers_unchanged(dnsd, ctl, case, mutate, where):
    assert us_answer(dnsd) == {V4["eur"]}
    # the damaged document would bring usa back up from every vantage
    for v in REGIONS:
        doc = state_doc(v, svcs(), generation=next_gen())
        mutate(doc)
        st, body = ctl.put_state(doc)
        assert st == 400, f"{case}: status {st} {body}"
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
        assert where in body["error"], f"{case}: reason should name {where!r}: {body['error']}"
    assert us_answer(dnsd) == {V4["eur"]}, "a refused document must not change answers"


@pytest.mark.parametrize("body", [b"", b"not json", b"[1,2]", b"{\"version\": 1",
                                  b"\xff\xfe\x00garbage", json.dumps({"version": 1}).encode()])
def test_unparseable_document_rejected(dnsd, ctl, body):
    st, resp = fedtest.http(dnsd.ctl_port, "PUT", "/v1/state", body=body, token=fedtest.TOKEN)
    assert st == 400, (st, resp)
    assert isinstance(resp, dict) and resp.get("error")
    assert us_answer(dnsd) == {V4["eur"]}


def test_put_without_token_401(dnsd, ctl):
    doc = state_doc(US, svcs(), generation=next_gen())
    st, body = fedtest.http(dnsd.ctl_port, "PUT", "/v1/state", body=doc)
    assert st == 401, (st, body)
    assert isinstance(body, dict) and body.get("error")
    st, body = fedtest.http(dnsd.ctl_port, "PUT", "/v1/state", body=doc, token="wrong-token")
    assert st == 401, (st, body)
    st, body = fedtest.http(dnsd.ctl_port, "PUT", "/v1/state", body=doc,
                            token=fedtest.TOKEN + "x")
    assert st == 401, (st, body)
    assert us_answer(dnsd) == {V4["eur"]}
    # and the token never shows in the log
    assert fedtest.TOKEN not in dnsd.log_text()


def test_newer_generation_replaces(dnsd, ctl):
    push_gen(ctl, next_gen(), down=[])
    assert us_answer(dnsd) == {V4["usa"]}
    push_gen(ctl, next_gen(), down=["usa"])
    assert us_answer(dnsd) == {V4["eur"]}


def test_older_generation_rejected(dnsd, ctl):
    newest = next_gen()
    push_gen(ctl, newest, down=["usa"])
    for v in REGIONS:
        st, body = ctl.put_state(state_doc(v, svcs(), generation=newest - 5))
        assert st in (400, 409), (st, body)
        assert isinstance(body, dict) and body.get("error")
    assert us_answer(dnsd) == {V4["eur"]}


def test_equal_generation_different_content_rejected(dnsd, ctl):
    g = next_gen()
    push_gen(ctl, g, down=["usa"])
    for v in REGIONS:
        st, body = ctl.put_state(state_doc(v, svcs(), generation=g))
        assert st in (400, 409), (st, body)
    assert us_answer(dnsd) == {V4["eur"]}


def test_generations_are_per_vantage(dnsd, ctl):
    # a low generation from one vantage does not block another vantage's
    g = next_gen()
    st, body = ctl.put_state(state_doc(US, svcs(), generation=g + 1000))
    assert 200 <= st < 300, body
    st, body = ctl.put_state(state_doc(EU, svcs(), generation=g + 1))
    assert 200 <= st < 300, (st, body)
    _gen[0] = g + 1000
    # US and EU now say up, AP says down: majority up
    assert us_answer(dnsd) == {V4["usa"]}


def test_unknown_fields_accepted(dnsd, ctl):
    for v in REGIONS:
        doc = state_doc(v, svcs(), generation=next_gen())
        doc["future_field"] = {"x": 1}
        doc["services"]["default/web"]["members"]["usa"]["weight_hint"] = 3
        st, body = ctl.put_state(doc)
        assert 200 <= st < 300, (st, body)
    assert us_answer(dnsd) == {V4["usa"]}


def test_state_for_unconfigured_service_accepted(dnsd, ctl):
    for v in REGIONS:
        doc = state_doc(v, svcs(), generation=next_gen())
        doc["services"]["other/discovered"] = copy.deepcopy(doc["services"]["default/web"])
        st, body = ctl.put_state(doc)
        assert 200 <= st < 300, (st, body)
    assert us_answer(dnsd) == {V4["usa"]}


def test_unknown_route_404_and_method_405(dnsd, ctl):
    st, body = fedtest.http(dnsd.ctl_port, "GET", "/v1/nosuch")
    assert st == 404
    st, body = fedtest.http(dnsd.ctl_port, "POST", "/v1/state", body={}, token=fedtest.TOKEN)
    assert st in (404, 405), st


def test_metrics_is_prometheus_text(dnsd, ctl):
    st, text = fedtest.http(dnsd.ctl_port, "GET", "/metrics")
    assert st == 200 and isinstance(text, str)
    assert "# TYPE" in text
    samples = fedtest.parse_metrics(text)
    assert samples
    # the accepted generation of every vantage is exported
    gens = {lab.get("vantage") for n, lab, _ in samples if n == "fedgslb_state_generation"}
    assert gens == set(REGIONS), gens


def _table_counters(dnsd):
    st, text = fedtest.http(dnsd.ctl_port, "GET", "/metrics")
    assert st == 200
    got = {n: v for n, _, v in fedtest.parse_metrics(text)}
    return (got["fedgslb_dns_table_builds_total"],
            got["fedgslb_dns_table_incremental_builds_total"],
            got["fedgslb_dns_table_services_built_total"])


def test_a_push_builds_only_the_services_it_changes(dnsd, ctl):
    def two(down):
        s = svcs(down)
        s["other/stable"] = {"usa": endpoint(["192.0.2.40"])}
        return s

    g = next_gen()
    for v in REGIONS:
        st, body = ctl.put_state(state_doc(v, two([]), generation=g))
        assert 200 <= st < 300, (st, body)
    builds0, inc0, built0 = _table_counters(dnsd)
    g = next_gen()
    for v in REGIONS:  # web's usa goes down; other/stable stays as it was
        st, body = ctl.put_state(state_doc(v, two(["usa"]), generation=g))
        assert 200 <= st < 300, (st, body)
    builds1, inc1, built1 = _table_counters(dnsd)
    assert builds1 - builds0 == 3
    assert inc1 - inc0 == 3
    assert built1 - built0 == 3  # web once per push, never other/stable
    assert us_answer(dnsd) == {V4["eur"]}
