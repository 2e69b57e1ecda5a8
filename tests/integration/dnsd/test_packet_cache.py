# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd's UDP packet cache (dnsd.packet_cache) on real sockets: a
repeated query is answered from the cache (the hit counter rises), clients
of two regions keep their own answers, the query right after a state push
sees the new answer, TCP never uses it, and with entries 0 nothing is
cached. One worker, so that every query meets the same cache."""

import os
import signal
import time

import pytest

import fedtest
from fedtest import ECS4, ECS6, endpoint, fed_name, query, state_doc

US, EU, AP = "us-east-1", "eu-west-1", "ap-northeast-1"
REGIONS = [US, EU, AP]
OWN = {US: "usa", EU: "eur", AP: "jpn"}
V4 = {"usa": "192.0.2.10", "eur": "192.0.2.20", "jpn": "192.0.2.30"}
WEB = fed_name("web")


def push(ctl, down=()):
    for v in REGIONS:
        svcs = {"default/web": {m: endpoint([a], healthy=m not in down) for m, a in V4.items()}}
        st, body = ctl.put_state(state_doc(v, svcs))
        assert 200 <= st < 300, f"PUT /v1/state from {v}: {st} {body}"


def counters(ctl):
    out = {}
    for name, labels, v in ctl.metrics():
        if name == "fedgslb_dns_packet_cache_total":
            out[labels["result"]] = v
    assert set(out) == {"hit", "miss", "insert", "uncacheable"}, out
    return out


def addrs(r):
    return {rd.address for rrset in r.answer for rd in rrset if hasattr(rd, "address")}


def ask(d, region, host="127.0.0.1"):
    ecs = f"{ECS6[region]}/56" if ":" in host else f"{ECS4[region]}/24"
    return query(d, WEB, "A", ecs=ecs, host=host)


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    d = fedtest.start_dnsd(tmp_path_factory.mktemp("pcache"), workers=1,
                           packet_cache={"entries": 1024})
    yield d
    fedtest.finish(d)


@pytest.fixture
def ctl(cached):
    c = fedtest.Control(cached.ctl_port)
    push(c)
    return c


def test_repeats_hit_and_regions_keep_their_answers(cached, ctl):
    hosts = ["127.0.0.1"] + (["::1"] if fedtest.have_ipv6() else [])
    before = counters(ctl)
    n = 0
    for _ in range(5):
        for host in hosts:
            for region in (US, EU, AP):
                assert addrs(ask(cached, region, host)) == {V4[OWN[region]]}, (host, region)
                n += 1
    after = counters(ctl)
    keys = len(hosts) * 3
    assert after["hit"] - before["hit"] >= n - keys, (before, after)
    assert after["hit"] + after["miss"] - before["hit"] - before["miss"] == n
    assert after["miss"] - after["insert"] - after["uncacheable"] == 0


def test_state_push_is_seen_by_the_next_query(cached, ctl):
    for _ in range(3):
        assert addrs(ask(cached, US)) == {V4["usa"]}
    hits = counters(ctl)["hit"]
    push(ctl, down=("usa",))
    # the very next query: the new view's answer, not the cached one
    got = addrs(ask(cached, US))
    assert got and V4["usa"] not in got, got
    for _ in range(3):
        assert addrs(ask(cached, US)) == got
    assert counters(ctl)["hit"] >= hits + 2
    push(ctl)
    assert addrs(ask(cached, US)) == {V4["usa"]}


def test_tcp_does_not_use_it(cached, ctl):
    before = counters(ctl)
    for _ in range(3):
        r = query(cached, WEB, "A", ecs=f"{ECS4[EU]}/24", tcp=True)
        assert addrs(r) == {V4["eur"]}
    assert counters(ctl) == before


def test_reload_keeps_the_size(cached, ctl):
    conf = dict(cached.conf)
    conf["dnsd"] = dict(conf["dnsd"], packet_cache={"entries": 0})
    fedtest.write_config(os.path.dirname(cached.config_path), conf)
    try:
        cached.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10 * fedtest.SLOW
        while "dnsd.packet_cache.entries changed" not in cached.log_text():
            assert time.monotonic() < deadline, cached.log_text()[-2000:]
            time.sleep(0.05)
        assert "needs a restart" in cached.log_text()
        push(ctl)
        ask(cached, AP)
        hits = counters(ctl)["hit"]
        ask(cached, AP)
        assert counters(ctl)["hit"] == hits + 1  # still on until a restart
    finally:
        fedtest.write_config(os.path.dirname(cached.config_path), cached.conf)
        cached.signal(signal.SIGHUP)


def test_entries_zero_is_off(tmp_path):
    d = fedtest.start_dnsd(tmp_path, workers=1, packet_cache={"entries": 0})
    try:
        c = fedtest.Control(d.ctl_port)
        push(c)
        for _ in range(5):
            assert addrs(ask(d, EU)) == {V4["eur"]}
        assert counters(c) == {"hit": 0, "miss": 0, "insert": 0, "uncacheable": 0}
    finally:
        fedtest.finish(d)


def test_bad_entries_is_a_config_error(tmp_path):
    conf = fedtest.base_config(tmp_path, fedtest.free_port(), fedtest.free_port(ipv6=False),
                               packet_cache={"entries": 262145})
    path = fedtest.write_config(tmp_path, conf)
    r = fedtest.run([fedtest.binary("fedgslb-dnsd"), "--config", path, "--check-config"])
    assert r.returncode != 0
    msg = r.stdout + r.stderr
    assert "dnsd.packet_cache.entries" in msg and "federation.json" in msg, msg
    conf["dnsd"]["packet_cache"] = {"entries": 8192, "size": 1}
    fedtest.write_config(tmp_path, conf)
    r = fedtest.run([fedtest.binary("fedgslb-dnsd"), "--config", path, "--check-config"])
    assert r.returncode != 0 and "size" in r.stdout + r.stderr, r.stdout + r.stderr
