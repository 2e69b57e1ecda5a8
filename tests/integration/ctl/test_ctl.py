# SPDX-License-Identifier: Apache-2.0
"""fedgslbctl against a real fedgslb-dnsd on loopback: status (tables and
--json) agrees with the pushed state documents and with what DNS answers,
explain names the chosen member, drain/undrain move a region's answer, and
the errors (wrong token, daemon down, bad config) give the documented exit
codes and messages. Also dnsd's GET /v1/answers and /v1/explain?region=."""

import json

import pytest


from ctl_helper import ctl, row, tables

import fedtest
from fedtest import ECS4, endpoint, fed_name, query, state_doc

US, EU, AP = "us-east-1", "eu-west-1", "ap-northeast-1"
REGIONS = [US, EU, AP]
WEB = fed_name("web")
V4 = {"usa": "192.0.2.10", "eur": "192.0.2.20", "jpn": "192.0.2.30"}
MEMBER_OF = {v: k for k, v in V4.items()}
# RTT (ms) each vantage measures to each member: eu's favours eur.
RTT = {US: {"usa": 1.0, "eur": 80.0, "jpn": 150.0},
       EU: {"usa": 80.0, "eur": 2.0, "jpn": 220.0}}


def services(vantage):
    rtt = RTT[vantage]
    return {
        "default/web": {m: endpoint([V4[m]], rtt=rtt[m], ready=3,
                                    reason=f"probe ok from {vantage}") for m in V4},
        # every member down from every vantage: the fail-open policy answers all
        "default/cloud": {m: endpoint([V4[m]], healthy=False, rtt=rtt[m]) for m in V4},
        "default/closed": {m: endpoint([V4[m]], healthy=False) for m in V4},
    }


@pytest.fixture(scope="module")
def dnsd(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ctl")
    d = fedtest.start_dnsd(tmp)
    c = fedtest.Control(d.ctl_port)
    for v in (US, EU):
        st, body = c.put_state(state_doc(v, services(v), member_rtt=RTT[v]))
        assert st == 200, (v, st, body)
    d.tmp = tmp
    yield d
    fedtest.finish(d)


@pytest.fixture(scope="module")
def control(dnsd):
    return fedtest.Control(dnsd.ctl_port)


def status_json(dnsd):
    p = ctl("--json", "status", config=dnsd.config_path)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def dns_member(dnsd, region):
    r = query(dnsd, WEB, "A", ecs=f"{ECS4[region]}/24")
    addrs = fedtest.addresses(r)
    assert len(addrs) == 1, r.to_text()
    return MEMBER_OF[addrs.pop()]


# ------------------------------------------------------------ status

def test_status_table(dnsd):
    p = ctl("status", config=dnsd.config_path)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert f"dnsd http://127.0.0.1:{dnsd.ctl_port}" in p.stdout
    members, answers = tables(p.stdout)
    for m in V4:
        r = row(members, SERVICE="default/web", MEMBER=m)
        assert r["HEALTHY"] == "yes" and r["VOTES"] == "2/0", r
        assert float(r[f"RTT:{US}"]) == RTT[US][m], r
        assert float(r[f"RTT:{EU}"]) == RTT[EU][m], r
        assert f"RTT:{AP}" not in r  # no vantage there: no column
        assert r["READY"] == "3" and r["FLAGS"] == "-", r
        assert r["REASON"].startswith("probe ok from"), r
        r = row(members, SERVICE="default/cloud", MEMBER=m)
        assert r["HEALTHY"] == "no" and r["VOTES"] == "0/2", r
        assert r["REASON"] == "probe 3/3 failed: connect timeout", r
    web = row(answers, SERVICE="default/web")
    # us and eu by their vantages' RTT, ap by the static matrix (no vantage in ap)
    assert (web[US], web[EU], web[AP]) == ("usa", "eur", "jpn"), web
    assert all(row(answers, SERVICE="default/cloud")[r] == "fail-open" for r in REGIONS)
    assert all(row(answers, SERVICE="default/closed")[r] == "fail-closed" for r in REGIONS)


def test_status_json_matches_state_and_dns(dnsd):
    doc = status_json(dnsd)
    assert doc["dnsd"] == f"http://127.0.0.1:{dnsd.ctl_port}"
    assert doc["vantages"] == [US, EU]
    assert doc["regions"] == REGIONS
    svcs = {s["service"]: s for s in doc["services"]}
    web = svcs["default/web"]
    assert web["configured"] is True
    for m in web["members"]:
        name = m["member"]
        assert m["healthy"] and m["present"] and not m["pending"] and not m["draining"], m
        assert m["votes_up"] == 2 and m["votes_down"] == 0, m
        assert m["ready_endpoints"] == 3
        assert m["rtt_ms"] == {US: RTT[US][name], EU: RTT[EU][name]}, m
    for region in REGIONS:
        ans = web["answers"][region]
        assert ans["fail_open"] is False
        assert ans["text"] == ans["member"]
        assert ans["member"] == dns_member(dnsd, region), (region, ans)
    assert all(svcs["default/cloud"]["answers"][r]["fail_open"] for r in REGIONS)
    assert not any(m["healthy"] for m in svcs["default/closed"]["members"])


def test_status_url_without_config(dnsd, tmp_path):
    """--dnsd alone works from a directory without conf/federation.json."""
    p = ctl("--dnsd", f"http://127.0.0.1:{dnsd.ctl_port}/", "--json", "status", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["regions"] == REGIONS


# ------------------------------------------------------------ explain

def test_explain_client(dnsd):
    p = ctl("explain", WEB, "--client", "10.2.3.4", config=dnsd.config_path)
    assert p.returncode == 0, p.stderr
    assert "client  10.2.3.4 -> region eu-west-1" in p.stdout, p.stdout
    assert "answer  eur  [best latency" in p.stdout, p.stdout
    ranking = tables(p.stdout)[0]
    assert [r["MEMBER"] for r in ranking] == ["eur", "usa", "jpn"]
    assert row(ranking, MEMBER="eur")["STATUS"] == "chosen"
    assert row(ranking, MEMBER="eur")["RTT_SOURCE"] == "measured by vantage eu-west-1"
    assert f"IN A {V4['eur']}" in p.stdout


def test_explain_ecs_and_json(dnsd):
    p = ctl("--json", "explain", WEB, "--client", f"{ECS4[US]}/24", config=dnsd.config_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["client"]["region"] == US and doc["client"]["ecs_prefix"] == 24
    assert doc["decision"]["decision"]["selected"] == "usa"
    assert doc["response"]["A"]["answer"][0].endswith(V4["usa"])


def test_explain_region(dnsd):
    p = ctl("explain", WEB, "--region", AP, config=dnsd.config_path)
    assert p.returncode == 0, p.stderr
    assert "region ap-northeast-1 (region parameter)" in p.stdout
    assert "answer  jpn" in p.stdout
    assert row(tables(p.stdout)[0], MEMBER="jpn")["RTT_SOURCE"].startswith("static")


def test_explain_bad_client(dnsd):
    p = ctl("explain", WEB, "--client", "not-an-ip", config=dnsd.config_path)
    assert p.returncode == 3
    assert "400 client: not a numeric IP address" in p.stderr


# ------------------------------------------------------------ drain

def test_drain_moves_the_answer(dnsd):
    p = ctl("drain", "eur", config=dnsd.config_path)
    assert p.returncode == 0, p.stderr
    try:
        assert "eur drained" in p.stdout
        members, answers = tables(ctl("status", config=dnsd.config_path).stdout)
        assert row(members, SERVICE="default/web", MEMBER="eur")["FLAGS"] == "draining"
        # eu's next best by its RTT row is usa (80 ms) before jpn (220 ms)
        assert row(answers, SERVICE="default/web")[EU] == "usa"
        assert dns_member(dnsd, EU) == "usa"
        doc = status_json(dnsd)
        web = next(s for s in doc["services"] if s["service"] == "default/web")
        assert next(m for m in web["members"] if m["member"] == "eur")["draining"] is True
    finally:
        p = ctl("undrain", "eur", config=dnsd.config_path)
    assert p.returncode == 0, p.stderr
    assert "eur undrained" in p.stdout
    members, answers = tables(ctl("status", config=dnsd.config_path).stdout)
    assert row(members, SERVICE="default/web", MEMBER="eur")["FLAGS"] == "-"
    assert row(answers, SERVICE="default/web")[EU] == "eur"
    assert dns_member(dnsd, EU) == "eur"


def test_drain_unknown_member(dnsd):
    p = ctl("drain", "mars", config=dnsd.config_path)
    assert p.returncode == 3
    assert 'unknown member "mars"' in p.stderr


def test_wrong_token(dnsd, tmp_path):
    bad = tmp_path / "bad.token"
    bad.write_text("not-the-token-4242\n")
    bad.chmod(0o600)
    p = ctl("--token-file", bad, "drain", "eur", config=dnsd.config_path)
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert ("fedgslbctl: token rejected by dnsd (check --token-file / "
            "dnsd.control.token_file)") in p.stderr
    assert "not-the-token-4242" not in p.stdout + p.stderr
    assert all(not m["draining"] for s in status_json(dnsd)["services"] for m in s["members"])


def test_token_file_right(dnsd, tmp_path):
    good = tmp_path / "good.token"
    fedtest.write_secret(good, fedtest.TOKEN)
    url = f"http://127.0.0.1:{dnsd.ctl_port}"
    p = ctl("--dnsd", url, "--token-file", good, "undrain", "jpn", cwd=tmp_path)
    assert p.returncode == 0, p.stderr


# ------------------------------------------------------------ errors

def test_daemon_stopped(tmp_path):
    d = fedtest.start_dnsd(tmp_path)
    fedtest.finish(d)
    p = ctl("status", config=d.config_path)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr.strip() == (f"fedgslbctl: cannot reach dnsd control API at "
                                f"http://127.0.0.1:{d.ctl_port}: connection refused")
    p = ctl("drain", "eur", config=d.config_path)
    assert p.returncode == 2 and "cannot reach" in p.stderr


def test_check_config(dnsd, tmp_path):
    p = ctl("check-config", config=dnsd.config_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "ok: 3 regions, 3 members, 5 services\n"
    conf = json.loads(open(dnsd.config_path).read())
    conf["members"]["usa"]["region"] = "mars-1"
    broken = fedtest.write_config(tmp_path, conf, "broken.json")
    p = ctl("check-config", config=broken)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr.strip() == (f'fedgslbctl: {broken}: members.usa.region: unknown region '
                                f'"mars-1"')
    # the environment variable names the config too; a status on it fails the same way
    p = ctl("status", env={"FEDGSLB_CONFIG": broken})
    assert p.returncode == 1 and "members.usa.region" in p.stderr


def test_missing_default_config(tmp_path):
    p = ctl("check-config", cwd=tmp_path)
    assert p.returncode == 1
    assert "conf/federation.json" in p.stderr


def test_usage_errors():
    for args, text in [((), "no command"), (("frobnicate",), 'unknown command "frobnicate"'),
                       (("explain", WEB), "give --client IP or --region R"),
                       (("status", "--timeout-ms", "x"), "--timeout-ms")]:
        p = ctl(*args)
        assert p.returncode == 1, (args, p.stderr)
        assert text in p.stderr, (args, p.stderr)
    p = ctl("--help")
    assert p.returncode == 0 and "usage: fedgslbctl" in p.stdout


# ------------------------------------------------------------ dnsd additions

def test_dnsd_answers_endpoint(dnsd, control):
    st, doc = control.get("/v1/answers")
    assert st == 200, doc
    web = doc["services"]["default/web"]
    assert list(web["regions"]) == REGIONS
    assert web["regions"][EU]["member"] == "eur" and web["regions"][EU]["chosen"] == ["eur"]
    assert web["regions"][EU]["rule"] == "best latency"
    assert web["members"]["usa"]["reason"] == "probe ok from eu-west-1" or \
        web["members"]["usa"]["reason"] == "probe ok from us-east-1"
    cloud = doc["services"]["default/cloud"]["regions"][US]
    assert cloud["fail_open"] is True and cloud["member"] is None
    assert sorted(cloud["chosen"]) == sorted(V4)
    closed = doc["services"]["default/closed"]["regions"][US]
    assert closed["chosen"] == [] and closed["fail_open"] is False
    sorry = doc["services"]["default/sorry"]["regions"][US]
    assert sorry["cname"] == f"sorry.{fedtest.ZONE}"
    assert isinstance(doc["view_serial"], int)
    st, body = control.get("/v1/answers/x")
    assert st == 404


def test_dnsd_explain_region(dnsd, control):
    st, doc = fedtest.http(dnsd.ctl_port, "GET", f"/v1/explain?name={WEB}&region={US}")
    assert st == 200, doc
    assert doc["client"]["region"] == US and doc["client"]["address"] is None
    assert doc["decision"]["decision"]["selected"] == "usa"
    assert doc["response"] is None
    # the same decision as for an address in that region
    st, by_addr = control.explain(WEB, "127.0.0.1", ecs=f"{ECS4[US]}/24")
    assert by_addr["decision"]["candidates"] == doc["decision"]["candidates"]
    for q, reason in [(f"name={WEB}&region=mars-1", 'unknown region "mars-1"'),
                      (f"name={WEB}&region={US}&client=127.0.0.1", "not both"),
                      (f"name={WEB}&region={US}&ecs=24", "ecs"),
                      (f"region={US}", "name")]:
        st, body = fedtest.http(dnsd.ctl_port, "GET", "/v1/explain?" + q)
        assert st == 400 and reason in body["error"], (q, st, body)


def test_state_command(dnsd, tmp_path):
    p = ctl("state", config=dnsd.config_path)
    assert p.returncode == 0, p.stderr
    assert sorted(json.loads(p.stdout)["vantages"]) == sorted([US, EU])
    # --health URL is used for "state health" (dnsd stands in for it here)
    p = ctl("--health", f"http://127.0.0.1:{dnsd.ctl_port}", "state", "health", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "vantages" in json.loads(p.stdout)
    # the test config has no health.control section
    p = ctl("state", "health", config=dnsd.config_path)
    assert p.returncode == 1 and "no health.control section" in p.stderr
