# SPDX-License-Identifier: Apache-2.0
"""State deltas pushed to fedgslb-dnsd by hand (PUT /v1/state with
"base_generation"): a good one changes the answer; a hostile one (another
base, not JSON, a removal of a service the document lacks, a bad address,
oversized) gets its status and reason while the previous state keeps
serving, and fedgslb_state_deltas_total counts each outcome."""

import json
import socket

import pytest

import fedtest
from fedtest import ECS4, endpoint, fed_name, query, state_doc

US = "us-east-1"
WEB = fed_name("web")
API = fed_name("api")


def us_answer(d, name=WEB):
    return fedtest.addresses(query(d, name, "A", ecs=f"{ECS4[US]}/24"))


def deltas(ctl):
    return {l["result"]: v for n, l, v in ctl.metrics() if n == "fedgslb_state_deltas_total"}


def delta(base, gen, services=None, removed=None, **extra):
    d = {"version": 1, "vantage": US, "base_generation": base, "generation": gen,
         "generated_at": fedtest.now_rfc3339()}
    if services is not None:
        d["services"] = {k: {"port": 80, "members": v} for k, v in services.items()}
    if removed is not None:
        d["removed"] = removed
    d.update(extra)
    return d


@pytest.fixture
def pushed(tmp_path):
    d = fedtest.start_dnsd(tmp_path)
    ctl = fedtest.Control(d.ctl_port)
    doc = state_doc(US, {"default/web": {"usa": endpoint(["192.0.2.10"])},
                         "default/api": {"usa": endpoint(["192.0.2.40"])}}, generation=10)
    st, body = ctl.put_state(doc)
    assert st == 200, (st, body)
    assert us_answer(d) == {"192.0.2.10"}
    try:
        yield d, ctl
    finally:
        fedtest.finish(d)


def held(ctl):
    st, doc = ctl.get("/v1/state")
    assert st == 200, doc
    return doc["vantages"][US]


def test_delta_applies_and_answers_follow(pushed):
    d, ctl = pushed
    st, body = ctl.put_state(delta(10, 11, {"default/web": {"usa": endpoint(["192.0.2.11"])}}))
    assert st == 200, body
    assert us_answer(d) == {"192.0.2.11"}
    assert us_answer(d, API) == {"192.0.2.40"}  # untouched
    st, body = ctl.put_state(delta(11, 12, removed=["default/api"]))
    assert st == 200, body
    assert "default/api" not in held(ctl)["services"]
    assert held(ctl)["generation"] == 12
    assert deltas(ctl) == {"applied": 2, "conflict": 0, "rejected": 0}


def test_refresh_keeps_document(pushed):
    """The held generation and nothing else: the vantage is alive, nothing changes."""
    d, ctl = pushed
    before = held(ctl)
    st, body = ctl.put_state(delta(10, 10))
    assert st == 200, body
    assert held(ctl) == before
    assert deltas(ctl) == {"applied": 1, "conflict": 0, "rejected": 0}
    st, body = ctl.put_state(delta(9, 9))
    assert st == 409, body


@pytest.mark.parametrize("body,status,reason", [
    (delta(9, 11), 409, "base_generation: 9 is not the held generation 10"),
    (delta(10, 10, services={}), 400, "generation: 10 must be greater than base_generation 10"),
    (delta(10, 11, removed=["default/ghost"]), 400, "not a service of the base document"),
    (delta(10, 11, {"default/web": {"usa": endpoint(["0.0.0.0"])}}), 400,
     "services.default/web.members.usa.addresses[0]"),
    (delta(10, 11, removed="default/api"), 400, "removed: must be an array"),
    (delta(10, 11, vantage="eu-west-1"), 409, "no document of this vantage is held"),
    ('{"version": 1, "vantage": "us-east-1", "base_generation": 10,', 400, "invalid JSON"),
    (delta(10, 11, services={"default/web": {"usa": endpoint(["192.0.2.11"])}},
           removed=["default/web"]), 400, "both removed and in services"),
])
def test_hostile_delta_keeps_state(pushed, body, status, reason):
    d, ctl = pushed
    before = held(ctl)
    st, reply = ctl.put_state(body)
    assert st == status, reply
    assert reason in reply["error"], reply
    assert held(ctl) == before
    assert us_answer(d) == {"192.0.2.10"}
    n = deltas(ctl)
    if status == 409:
        assert n["conflict"] == 1 and n["rejected"] == 0
    elif "invalid JSON" not in reason:
        assert n["rejected"] == 1 and n["conflict"] == 0


def test_oversized_delta_refused(pushed):
    """Past the control API's body limit: refused before parsing, state kept."""
    d, ctl = pushed
    body = json.dumps(delta(10, 11, {"default/web": {"usa": endpoint(["192.0.2.11"])}}))
    body = body[:-1] + ', "x": "' + "a" * (80 * 1024 * 1024) + '"}'
    try:
        st, reply = ctl.put_state(body)
        assert st == 413, (st, str(reply)[:200])
    except (ConnectionError, socket.error):
        pass  # the server may close before reading the rest: refused either way
    assert us_answer(d) == {"192.0.2.10"}
    assert held(ctl)["generation"] == 10


def test_delta_without_held_document_is_a_conflict(tmp_path):
    d = fedtest.start_dnsd(tmp_path)
    try:
        ctl = fedtest.Control(d.ctl_port)
        st, reply = ctl.put_state(delta(0, 1, {"default/web": {"usa": endpoint(["192.0.2.11"])}}))
        assert st == 409 and "send the full document" in reply["error"], reply
        assert deltas(ctl)["conflict"] == 1
    finally:
        fedtest.finish(d)
