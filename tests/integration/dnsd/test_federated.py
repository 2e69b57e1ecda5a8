# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd federated answers: 3 members in 3 regions, state pushed by 3
vantages over the control API; every answer is checked with dnspython, a few
with dig/kdig, and /v1/explain must agree with what the wire said."""

import time

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

import fedtest
from fedtest import (ECS4, ECS6, SOURCE, ZONE, endpoint, fed_name, query, rr_lines,
                     soa_in_authority, state_doc)

Z = ZONE + "."
US, EU, AP = "us-east-1", "eu-west-1", "ap-northeast-1"
REGIONS = [US, EU, AP]
OWN = {US: "usa", EU: "eur", AP: "jpn"}
V4 = {"usa": "192.0.2.10", "eur": "192.0.2.20", "jpn": "192.0.2.30"}
V6 = {"usa": "2001:db8:a::10", "jpn": "2001:db8:c::30"}  # eur has no IPv6 LB address
ADDR_MEMBER = {v: k for k, v in list(V4.items()) + list(V6.items())}
CLOUD_HOST = "usa-lb.elb.example.net."
WEB = fed_name("web")
TTL, MIN_TTL = 30, 5
# static latency order from each client region
RANK = {US: ["usa", "eur", "jpn"], EU: ["eur", "usa", "jpn"], AP: ["jpn", "usa", "eur"]}


def ep(member, healthy=True, **kw):
    addrs = [V4[member]] + ([V6[member]] if member in V6 else [])
    return endpoint(addrs, healthy=healthy, **kw)


def services(down=(), pending=(), svc_down=None, cloud_hostname=True, rtt=None):
    """All four services; members in @down unhealthy for every service (or for
    the services listed in svc_down={svc: members})."""
    out = {}
    for svc in ("default/web", "default/closed", "default/sorry", "default/cloud",
                "default/shared"):
        dn = set(down) | set((svc_down or {}).get(svc, ()))
        out[svc] = {}
        for m in ("usa", "eur", "jpn"):
            kw = {"pending": m in pending}
            if rtt and m in rtt:
                kw["rtt"] = rtt[m]
            if svc == "default/cloud" and m == "usa" and cloud_hostname:
                out[svc][m] = endpoint([], hostname=CLOUD_HOST.rstrip("."),
                                       healthy=m not in dn, **kw)
            else:
                out[svc][m] = ep(m, healthy=m not in dn, **kw)
    return out


def push(ctl, per_vantage):
    """PUTs one document per vantage: per_vantage = {vantage: services dict}."""
    for v, svcs in per_vantage.items():
        st, body = ctl.put_state(state_doc(v, svcs))
        assert 200 <= st < 300, f"PUT /v1/state from {v}: {st} {body}"


def push_all(ctl, **kw):
    push(ctl, {v: services(**kw) for v in REGIONS})


@pytest.fixture(autouse=True)
def _reset(ctl):
    """Every test starts from all members healthy and nothing drained."""
    for m in ("usa", "eur", "jpn"):
        ctl.drain(m, on=False)
    push_all(ctl)
    yield


def q_ecs(d, region, name=WEB, rdtype="A", six=False):
    ecs = f"{ECS6[region]}/56" if six else f"{ECS4[region]}/24"
    return query(d, name, rdtype, ecs=ecs)


def q_src(d, region, name=WEB, rdtype="A"):
    return query(d, name, rdtype, source=SOURCE[region])


def final(r, rdtype="A"):
    t = dns.rdatatype.from_text(rdtype)
    return [rr for rr in r.answer if rr.rdtype == t]


def members_of(r, rdtype="A"):
    return {ADDR_MEMBER[a] for a in fedtest.addresses(r, rdtype)}


# ------------------------------------------------------------ client location

@pytest.mark.parametrize("region", REGIONS)
def test_client_region_by_ecs(dnsd, region):
    r = q_ecs(dnsd, region)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    assert fedtest.addresses(r) == {V4[OWN[region]]}, r.to_text()
    assert final(r)[0].ttl == TTL
    o = fedtest.ecs_option(r)
    assert o is not None and o.srclen == 24 and o.address == ECS4[region]
    assert o.scopelen > 0, "a federated answer depends on the client subnet"


@pytest.mark.parametrize("region", REGIONS)
def test_client_region_by_ecs_ipv6(dnsd, region):
    r = q_ecs(dnsd, region, six=True)
    assert fedtest.addresses(r) == {V4[OWN[region]]}, r.to_text()
    o = fedtest.ecs_option(r)
    assert o is not None and o.family == 2 and o.srclen == 56 and o.scopelen > 0


@pytest.mark.parametrize("region", REGIONS)
def test_client_region_by_source_address(dnsd, region):
    r = q_src(dnsd, region)
    assert fedtest.addresses(r) == {V4[OWN[region]]}, r.to_text()
    assert fedtest.ecs_option(r) is None


def test_unknown_client_gets_dnsd_region(dnsd):
    r = query(dnsd, WEB, "A")  # from 127.0.0.1: not in client_networks
    assert fedtest.addresses(r) == {V4["eur"]}, "dnsd.region is eu-west-1"
    r = query(dnsd, WEB, "A", ecs="198.51.100.0/24")
    assert fedtest.addresses(r) == {V4["eur"]}


def test_ecs_wins_over_source(dnsd):
    r = query(dnsd, WEB, "A", source=SOURCE[US], ecs=f"{ECS4[AP]}/24")
    assert fedtest.addresses(r) == {V4["jpn"]}


def test_dig_and_kdig_federated(dnsd):
    port = str(dnsd.dns_port)
    p = fedtest.run(["dig", "@127.0.0.1", "-p", port, "+time=3", "+tries=1",
                     f"+subnet={ECS4[AP]}/24", WEB, "A", "+short"])
    assert p.stdout.split() == [V4["jpn"]], p.stdout + p.stderr
    p = fedtest.run(["dig", "@127.0.0.1", "-p", port, "-b", SOURCE[US], "+time=3", "+tries=1",
                     WEB, "A", "+short"])
    assert p.stdout.split() == [V4["usa"]], p.stdout + p.stderr
    p = fedtest.run(["kdig", "@127.0.0.1", "-p", port, "+time=3", "+retry=0",
                     f"+subnet={ECS4[EU]}/24", WEB, "A"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert V4["eur"] in p.stdout and V4["usa"] not in p.stdout
    assert "CLIENT-SUBNET" in p.stdout.upper() or "ECS" in p.stdout.upper(), p.stdout


# ------------------------------------------------------------ health

@pytest.mark.parametrize("region", REGIONS)
def test_own_member_down_next_lowest_latency(dnsd, ctl, region):
    own = OWN[region]
    push_all(ctl, down=[own])
    r = q_ecs(dnsd, region)
    assert members_of(r) == {RANK[region][1]}, r.to_text()
    assert final(r)[0].ttl == TTL


def test_two_down_last_one_answers(dnsd, ctl):
    push_all(ctl, down=["usa", "eur"])
    for region in REGIONS:
        assert members_of(q_ecs(dnsd, region)) == {"jpn"}


def test_all_down_fail_open(dnsd, ctl):
    push_all(ctl, down=["usa", "eur", "jpn"])
    r = q_ecs(dnsd, EU)
    assert r.rcode() == dns.rcode.NOERROR
    assert fedtest.addresses(r) == set(V4.values()), r.to_text()
    assert final(r)[0].ttl == MIN_TTL
    r6 = q_ecs(dnsd, EU, rdtype="AAAA")
    assert fedtest.addresses(r6, "AAAA") == set(V6.values()), r6.to_text()
    assert final(r6, "AAAA")[0].ttl == MIN_TTL


def test_all_down_fail_closed(dnsd, ctl):
    name = fed_name("closed")
    assert members_of(q_ecs(dnsd, US, name)) == {"usa"}
    push_all(ctl, down=["usa", "eur", "jpn"])
    r = q_ecs(dnsd, US, name)
    assert r.rcode() == dns.rcode.NOERROR, "fail-closed is NODATA, not an error"
    assert not r.answer, r.to_text()
    assert soa_in_authority(r)
    assert r.flags & dns.flags.AA


def test_all_down_sorry_cname(dnsd, ctl):
    name = fed_name("sorry")
    assert members_of(q_ecs(dnsd, AP, name)) == {"jpn"}
    push_all(ctl, down=["usa", "eur", "jpn"])
    r = q_ecs(dnsd, AP, name)
    assert r.rcode() == dns.rcode.NOERROR
    assert len(r.answer) == 2, r.to_text()
    cname, a = r.answer
    assert cname.rdtype == dns.rdatatype.CNAME and cname.name.to_text() == name
    assert cname[0].target.to_text() == "sorry." + Z
    assert a.name.to_text() == "sorry." + Z and {rd.address for rd in a} == {"192.0.2.99"}


def test_one_service_down_does_not_affect_another(dnsd, ctl):
    push_all(ctl, svc_down={"default/closed": ["usa", "eur", "jpn"]})
    assert members_of(q_ecs(dnsd, US)) == {"usa"}
    assert not q_ecs(dnsd, US, fed_name("closed")).answer


def test_pending_gets_min_ttl(dnsd, ctl):
    push_all(ctl, pending=["usa"])
    r = q_ecs(dnsd, US)
    assert members_of(r) == {"usa"}
    assert final(r)[0].ttl == MIN_TTL, "a verdict that may flip gets a short TTL"
    push_all(ctl)
    r = q_ecs(dnsd, US)
    assert members_of(r) == {"usa"} and final(r)[0].ttl == TTL, "pending cleared: full TTL"


# ------------------------------------------------------------ majority of vantages

def test_majority_two_of_three_down(dnsd, ctl):
    push(ctl, {US: services(down=["usa"]), EU: services(down=["usa"]), AP: services()})
    assert members_of(q_ecs(dnsd, US)) == {"eur"}


def test_majority_one_of_three_down_stays_up(dnsd, ctl):
    push(ctl, {US: services(down=["usa"]), EU: services(), AP: services()})
    assert members_of(q_ecs(dnsd, US)) == {"usa"}


def test_measured_rtt_overrides_static_matrix(dnsd, ctl):
    # the us-east-1 vantage measured jpn closer than eur; usa is down
    push(ctl, {US: services(down=["usa"], rtt={"usa": 1.0, "eur": 200.0, "jpn": 10.0}),
               EU: services(down=["usa"]), AP: services(down=["usa"])})
    assert members_of(q_ecs(dnsd, US)) == {"jpn"}
    # eu-west-1 reported no RTT: the static matrix decides there
    assert members_of(q_ecs(dnsd, EU)) == {"eur"}


# ------------------------------------------------------------ levels

def test_regional_name_answers_region_member(dnsd):
    name = fed_name("web", region=EU)
    r = q_ecs(dnsd, US, name)  # a US client asking for the EU regional name
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.A], r.to_text()
    assert members_of(r) == {"eur"}


def test_regional_empty_cnames_global(dnsd, ctl):
    push_all(ctl, down=["eur"])
    name = fed_name("web", region=EU)
    r = q_ecs(dnsd, EU, name)
    assert r.rcode() == dns.rcode.NOERROR
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A], r.to_text()
    assert r.answer[0].name.to_text() == name
    assert r.answer[0][0].target.to_text() == WEB
    assert r.answer[1].name.to_text() == WEB
    assert members_of(r) == {"usa"}, "global answer for an EU client with eur down"


def test_zonal_name_answers_zone_member(dnsd):
    name = fed_name("web", region=US, az="us-east-1a")
    r = q_ecs(dnsd, AP, name)
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.A]
    assert members_of(r) == {"usa"}


def test_zonal_empty_cnames_regional(dnsd):
    name = fed_name("web", region=US, az="us-east-1b")  # no member in us-east-1b
    regional = fed_name("web", region=US)
    r = q_ecs(dnsd, US, name)
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A], r.to_text()
    assert r.answer[0][0].target.to_text() == regional
    assert r.answer[1].name.to_text() == regional
    assert members_of(r) == {"usa"}


def test_zonal_chain_up_two_levels(dnsd, ctl):
    push_all(ctl, down=["usa"])
    name = fed_name("web", region=US, az="us-east-1a")
    regional = fed_name("web", region=US)
    r = q_ecs(dnsd, US, name)
    types = [rr.rdtype for rr in r.answer]
    assert types == [dns.rdatatype.CNAME, dns.rdatatype.CNAME, dns.rdatatype.A], r.to_text()
    assert r.answer[0].name.to_text() == name and r.answer[0][0].target.to_text() == regional
    assert r.answer[1].name.to_text() == regional and r.answer[1][0].target.to_text() == WEB
    assert members_of(r) == {"eur"}


def test_alias_answers_as_global(dnsd):
    alias = "web." + Z
    for region in REGIONS:
        r = q_ecs(dnsd, region, alias)
        assert r.rcode() == dns.rcode.NOERROR
        assert members_of(r) == {OWN[region]}, r.to_text()


@pytest.mark.parametrize("name", ["svc." + Z, "myfed.svc." + Z, "default.myfed.svc." + Z,
                                  "us-east-1." + Z, "svc.us-east-1." + Z,
                                  "default.myfed.svc.us-east-1b.us-east-1." + Z])
def test_names_above_federated_are_nodata(dnsd, name):
    r = query(dnsd, name, "A")
    assert r.rcode() == dns.rcode.NOERROR, f"{name}: empty non-terminal must not be NXDOMAIN"
    assert not r.answer and soa_in_authority(r)


@pytest.mark.parametrize("name", [fed_name("nosuch"), fed_name("web", ns="other"),
                                  fed_name("web", region="eu-central-1"),
                                  "x." + WEB, fed_name("web", region=US, az="us-east-1z")])
def test_unknown_federated_names_nxdomain(dnsd, name):
    r = query(dnsd, name, "A")
    assert r.rcode() == dns.rcode.NXDOMAIN, r.to_text()
    assert soa_in_authority(r)


def test_federated_name_other_type_nodata(dnsd):
    r = q_ecs(dnsd, US, WEB, "TXT")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and soa_in_authority(r)


def test_federated_name_case_insensitive(dnsd):
    r = q_ecs(dnsd, AP, WEB.upper())
    assert members_of(r) == {"jpn"}
    assert r.question[0].name.to_text() == WEB.upper()


def test_slack_shares_deterministically_per_subnet(dnsd, ctl):
    name = fed_name("shared")
    seen = {}
    for i in range(48):
        ecs = f"10.1.{i}.0/24"  # all us-east-1
        a = members_of(query(dnsd, name, "A", ecs=ecs))
        b = members_of(query(dnsd, name, "A", ecs=ecs))
        assert a == b, f"{ecs}: {a} then {b}: not deterministic per subnet"
        assert len(a) == 1, f"{ecs}: one member's addresses per answer, got {a}"
        seen[ecs] = a.pop()
        # another client of the same /24 (hash of the /24, dns_fed.h) gets the same member
        assert members_of(query(dnsd, name, "A", ecs=f"10.1.{i}.128/25")) == {seen[ecs]}
    assert len(set(seen.values())) >= 2, f"tied members never share: {seen}"
    # explain names the same member for a subnet
    for ecs in list(seen)[:4]:
        st, ex = ctl.explain(name, "127.0.0.1", ecs=ecs)
        assert st == 200, ex
        dec = ex["decision"]
        if "rule" not in dec:
            dec = dec["decision"]
        assert dec.get("selected") == seen[ecs], (ecs, dec)


# ------------------------------------------------------------ drains

def test_drain_and_undrain(dnsd, ctl):
    st, body = ctl.drain("usa")
    assert 200 <= st < 300, (st, body)
    assert members_of(q_ecs(dnsd, US)) == {"eur"}
    assert members_of(q_ecs(dnsd, US, fed_name("web", region=US, az="us-east-1a"))) == {"eur"}
    st, body = ctl.drain("usa", on=False)
    assert 200 <= st < 300, (st, body)
    assert members_of(q_ecs(dnsd, US)) == {"usa"}


def test_drain_requires_token_and_known_member(dnsd, ctl):
    st, _ = fedtest.http(dnsd.ctl_port, "PUT", "/v1/members/usa/drain")
    assert st == 401
    assert members_of(q_ecs(dnsd, US)) == {"usa"}
    st, body = ctl.drain("nosuch")
    assert st == 404 and isinstance(body, dict) and body.get("error"), (st, body)


# ------------------------------------------------------------ LB forms

def test_hostname_lb_cname(dnsd):
    name = fed_name("cloud")
    r = q_ecs(dnsd, US, name)
    assert r.rcode() == dns.rcode.NOERROR
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME], r.to_text()
    assert r.answer[0][0].target.to_text() == CLOUD_HOST
    # for an EU client eur (an IP) wins
    assert members_of(q_ecs(dnsd, EU, name)) == {"eur"}
    r6 = q_ecs(dnsd, US, name, "AAAA")
    assert [rr.rdtype for rr in r6.answer] == [dns.rdatatype.CNAME]


def test_aaaa_answers(dnsd):
    r = q_ecs(dnsd, US, rdtype="AAAA")
    assert fedtest.addresses(r, "AAAA") == {V6["usa"]} and final(r, "AAAA")[0].ttl == TTL
    r = q_ecs(dnsd, AP, rdtype="AAAA")
    assert fedtest.addresses(r, "AAAA") == {V6["jpn"]}


def test_aaaa_nodata_when_member_has_none(dnsd):
    r = q_ecs(dnsd, EU, rdtype="AAAA")  # eur is chosen and has no IPv6 address
    assert r.rcode() == dns.rcode.NOERROR
    assert not r.answer, r.to_text()
    assert soa_in_authority(r)


# ------------------------------------------------------------ explain agrees with the wire

SCENARIOS = {
    "us_ecs_healthy": (dict(), WEB, "A", ("ecs", US), {"usa"}),
    "eu_src_healthy": (dict(), WEB, "A", ("src", EU), {"eur"}),
    "ap_src_healthy": (dict(), WEB, "A", ("src", AP), {"jpn"}),
    "default_region": (dict(), WEB, "A", ("src", None), {"eur"}),
    "us_own_down": (dict(down=["usa"]), WEB, "A", ("ecs", US), {"eur"}),
    "eu_own_down": (dict(down=["eur"]), WEB, "A", ("src", EU), {"usa"}),
    "fail_open": (dict(down=["usa", "eur", "jpn"]), WEB, "A", ("ecs", AP), None),
    "fail_closed": (dict(down=["usa", "eur", "jpn"]), fed_name("closed"), "A", ("ecs", US), None),
    "sorry": (dict(down=["usa", "eur", "jpn"]), fed_name("sorry"), "A", ("src", US), None),
    "regional_cname": (dict(down=["eur"]), fed_name("web", region=EU), "A", ("ecs", EU), None),
    "zonal_cname": (dict(), fed_name("web", region=US, az="us-east-1b"), "A", ("ecs", US), None),
    "hostname": (dict(), fed_name("cloud"), "A", ("ecs", US), {"usa"}),
    "aaaa": (dict(), WEB, "AAAA", ("ecs", AP), {"jpn"}),
    "aaaa_nodata": (dict(), WEB, "AAAA", ("ecs", EU), {"eur"}),
    "pending": (dict(pending=["usa"]), WEB, "A", ("src", US), {"usa"}),
    "alias": (dict(), "web." + Z, "A", ("ecs", AP), {"jpn"}),
}


def _chosen_names(chosen):
    if chosen is None:
        return set()
    if isinstance(chosen, str):
        return {chosen}
    if isinstance(chosen, dict):
        if "member" in chosen or "name" in chosen:
            return {chosen.get("member") or chosen.get("name")}
        return set(chosen)
    out = set()
    for c in chosen:
        out |= _chosen_names(c)
    return out


def _rcode_text(v):
    if isinstance(v, int):
        return dns.rcode.to_text(v)
    return str(v).upper()


@pytest.mark.parametrize("case", sorted(SCENARIOS))
def test_explain_agrees_with_dns(dnsd, ctl, case):
    setup, name, rdtype, (how, region), chosen = SCENARIOS[case]
    push_all(ctl, **setup)
    if how == "ecs":
        ecs = f"{ECS4[region]}/24"
        r = query(dnsd, name, rdtype, ecs=ecs)
        st, ex = ctl.explain(name, "127.0.0.1", ecs=ecs)
    else:
        src = SOURCE[region] if region else "127.0.0.1"
        r = query(dnsd, name, rdtype, source=src)
        st, ex = ctl.explain(name, src)
    assert st == 200, (st, ex)
    assert ex["client"]["region"] == (region or fedtest.DEFAULT_REGION), ex["client"]
    assert ex["client"].get("how"), ex["client"]
    resp = ex["response"][rdtype]
    assert _rcode_text(resp["rcode"]) == dns.rcode.to_text(r.rcode()), (resp, r.to_text())
    got = sorted(fedtest.normalize_rr_line(ln) for ln in resp["answer"])
    assert got == rr_lines(r.answer), f"explain: {resp['answer']}\nwire:\n{r.to_text()}"
    dec = ex["decision"]
    if isinstance(dec, dict) and "rule" not in dec and isinstance(dec.get("decision"), dict):
        dec = dec["decision"]  # {"candidates": [...], "decision": {rule, chosen, ttl}}
    assert "rule" in dec and "ttl" in dec, dec
    if chosen is not None:
        assert _chosen_names(dec.get("chosen")) == chosen, dec
        if len(chosen) == 1 and "selected" in dec:
            assert dec["selected"] in chosen, dec
    if r.answer and r.answer[0].rdtype != dns.rdatatype.CNAME:
        assert dec["ttl"] == r.answer[0].ttl, (dec, r.to_text())


def test_explain_scope_and_ecs(dnsd, ctl):
    st, ex = ctl.explain(WEB, "127.0.0.1", ecs=f"{ECS4[AP]}/24")
    assert st == 200
    assert ex["client"]["region"] == AP
    r = query(dnsd, WEB, "A", ecs=f"{ECS4[AP]}/24")
    # the response's scope is what the records written depend on (region,
    # and the subnet hash only for tied members); the location's scope_len
    # is the most any answer for this client may need
    assert ex["response"]["A"]["ecs_scope"] == fedtest.ecs_option(r).scopelen
    assert ex["client"]["scope_len"] >= fedtest.ecs_option(r).scopelen


def test_explain_bad_requests(dnsd, ctl):
    st, body = ctl.explain(WEB, "not-an-ip")
    assert st == 400 and body.get("error"), (st, body)
    st, body = fedtest.http(dnsd.ctl_port, "GET", "/v1/explain?client=127.0.0.1")
    assert st == 400 and body.get("error"), (st, body)


# ------------------------------------------------------------ metrics

def _sum(samples, pred):
    return sum(v for n, labels, v in samples if pred(n, labels))


def _wait_metric(ctl, pred, target, timeout=5.0):
    deadline = time.monotonic() + timeout * fedtest.SLOW
    while True:
        v = _sum(ctl.metrics(), pred)
        if v >= target or time.monotonic() > deadline:
            return v
        time.sleep(0.2)


def test_metrics_queries_by_rcode(dnsd, ctl):
    def is_rcode(code):
        return lambda n, lab: lab.get("rcode", "").upper() == code

    nx0 = _sum(ctl.metrics(), is_rcode("NXDOMAIN"))
    ref0 = _sum(ctl.metrics(), is_rcode("REFUSED"))
    for i in range(3):
        assert query(dnsd, f"nope{i}." + Z, "A").rcode() == dns.rcode.NXDOMAIN
    query(dnsd, "example.com.", "A")
    assert _wait_metric(ctl, is_rcode("NXDOMAIN"), nx0 + 3) >= nx0 + 3
    assert _wait_metric(ctl, is_rcode("REFUSED"), ref0 + 1) >= ref0 + 1
    assert _sum(ctl.metrics(), is_rcode("NOERROR")) > 0


def test_metrics_queries_by_transport_qtype_and_rcode(dnsd, ctl):
    """Each query counts once, under its transport and qtype; each answer
    once under its rcode, and once as ECS-located when ECS placed it."""
    def q(transport, qtype):
        return lambda n, lab: (n == "fedgslb_dns_queries_total" and
                               lab.get("transport") == transport and lab.get("qtype") == qtype)

    preds = {
        "udp A": q("udp", "A"), "udp AAAA": q("udp", "AAAA"), "udp MX": q("udp", "MX"),
        "tcp A": q("tcp", "A"), "tcp AAAA": q("tcp", "AAAA"),
        "NOERROR": lambda n, lab: n == "fedgslb_dns_responses_total" and lab.get("rcode") == "NOERROR",
        "NXDOMAIN": lambda n, lab: n == "fedgslb_dns_responses_total" and lab.get("rcode") == "NXDOMAIN",
        "ecs": lambda n, lab: n == "fedgslb_dns_ecs_queries_total",
    }
    samples = ctl.metrics()
    before = {k: _sum(samples, p) for k, p in preds.items()}
    for _ in range(4):
        q_ecs(dnsd, EU)
    for _ in range(2):
        q_ecs(dnsd, EU, rdtype="AAAA")
    q_src(dnsd, US, rdtype="MX")
    assert query(dnsd, WEB, "A", tcp=True).rcode() == dns.rcode.NOERROR
    assert query(dnsd, "nope-tcp." + Z, "AAAA", tcp=True).rcode() == dns.rcode.NXDOMAIN
    _wait_metric(ctl, preds["NXDOMAIN"], before["NXDOMAIN"] + 1)
    _wait_metric(ctl, preds["NOERROR"], before["NOERROR"] + 8)
    samples = ctl.metrics()
    got = {k: _sum(samples, p) - before[k] for k, p in preds.items()}
    assert got == {"udp A": 4, "udp AAAA": 2, "udp MX": 1, "tcp A": 1, "tcp AAAA": 1,
                   "NOERROR": 8, "NXDOMAIN": 1, "ecs": 6}, got


def test_metrics_region_and_member_apart(dnsd, ctl):
    """An answer counts under its client's region and under the member that
    answered, each by its own index: US clients answered by eur while usa
    is drained."""
    def lab_is(name, key, value):
        return lambda n, lab: n == name and lab.get(key) == value

    preds = {"region US": lab_is("fedgslb_dns_region_answers_total", "region", US),
             "region EU": lab_is("fedgslb_dns_region_answers_total", "region", EU),
             "member usa": lab_is("fedgslb_dns_member_answers_total", "member", "usa"),
             "member eur": lab_is("fedgslb_dns_member_answers_total", "member", "eur")}
    st, body = ctl.drain("usa")
    assert 200 <= st < 300, (st, body)
    samples = ctl.metrics()
    before = {k: _sum(samples, p) for k, p in preds.items()}
    for _ in range(3):
        assert members_of(q_ecs(dnsd, US)) == {"eur"}
    _wait_metric(ctl, preds["member eur"], before["member eur"] + 3)
    samples = ctl.metrics()
    got = {k: _sum(samples, p) - before[k] for k, p in preds.items()}
    assert got == {"region US": 3, "region EU": 0, "member usa": 0, "member eur": 3}, got


def test_metrics_fail_open(dnsd, ctl):
    def is_fo(n, lab):
        return "fail_open" in n and not n.endswith("_created")

    before = _sum(ctl.metrics(), is_fo)
    push_all(ctl, down=["usa", "eur", "jpn"])
    for _ in range(3):
        q_ecs(dnsd, US)
    after = _wait_metric(ctl, is_fo, before + 1)
    assert after > before, "fail-open must show in metrics"


def test_metrics_member_answers_and_fail_closed(dnsd, ctl):
    def member_is(m):
        return lambda n, lab: n == "fedgslb_dns_member_answers_total" and lab.get("member") == m

    def closed(n, lab):
        return n == "fedgslb_dns_fail_closed_total" and lab.get("service") == "default/closed"

    eur0 = _sum(ctl.metrics(), member_is("eur"))
    for _ in range(3):
        assert members_of(q_ecs(dnsd, EU)) == {"eur"}
    assert _wait_metric(ctl, member_is("eur"), eur0 + 3) >= eur0 + 3
    fc0 = _sum(ctl.metrics(), closed)
    push_all(ctl, svc_down={"default/closed": ["usa", "eur", "jpn"]})
    assert not q_ecs(dnsd, US, fed_name("closed")).answer
    assert _wait_metric(ctl, closed, fc0 + 1) >= fc0 + 1, "fail-closed must show in metrics"


def test_healthz_and_state_get(dnsd, ctl):
    st, body = fedtest.http(dnsd.ctl_port, "GET", "/healthz")
    assert st == 200
    st, body = ctl.get("/v1/state")
    assert st == 200 and isinstance(body, dict)
    assert set(body.get("vantages", {})) == set(REGIONS), body.keys()


# ------------------------------------------------------------ ECS off, restart

def test_ecs_disabled_uses_source(tmp_path):
    port, cport = fedtest.free_port(), fedtest.free_port(ipv6=False)
    conf = fedtest.base_config(tmp_path, port, cport, ecs=False)
    d = fedtest.start_dnsd(tmp_path, conf=conf, dns_port=port, ctl_port=cport)
    try:
        c = fedtest.Control(cport)
        push(c, {v: services() for v in REGIONS})
        r = query(d, WEB, "A", source=SOURCE[US], ecs=f"{ECS4[AP]}/24")
        assert members_of(r) == {"usa"}, "with dnsd.ecs false the source address decides"
        o = fedtest.ecs_option(r)
        assert o is None or o.scopelen == 0
    finally:
        fedtest.finish(d)


def test_silent_vantage_expires(tmp_path):
    port, cport = fedtest.free_port(), fedtest.free_port(ipv6=False)
    conf = fedtest.base_config(tmp_path, port, cport)
    conf["health"]["publish_interval_ms"] = 500  # documents expire after 3 x 500 ms
    d = fedtest.start_dnsd(tmp_path, conf=conf, dns_port=port, ctl_port=cport)
    try:
        c = fedtest.Control(cport)
        # two of three vantages say usa is down: outvoted
        push(c, {US: services(down=["usa"]), EU: services(down=["usa"]), AP: services()})
        assert members_of(q_ecs(d, US)) == {"eur"}
        # only ap-northeast-1 keeps publishing: the silent two are dropped
        deadline = time.monotonic() + 6 * fedtest.SLOW
        while time.monotonic() < deadline:
            push(c, {AP: services()})
            st, body = c.get("/v1/state")
            if st == 200 and sorted(body.get("vantages") or {}) == [AP]:
                break
            time.sleep(0.2)
        assert sorted(body.get("vantages") or {}) == [AP], f"vantages did not expire: {body}"
        assert members_of(q_ecs(d, US)) == {"usa"}
        # every vantage silent: the last known state stays (no empty zone)
        time.sleep(4 * 0.5 * fedtest.SLOW)
        st, body = c.get("/v1/state")
        assert sorted(body.get("vantages") or {}) == [AP], body
        assert members_of(q_ecs(d, US)) == {"usa"}
        assert "every vantage silent" in d.log_text()
    finally:
        fedtest.finish(d)


def test_restart_serves_saved_state(tmp_path):
    port, cport = fedtest.free_port(), fedtest.free_port(ipv6=False)
    conf = fedtest.base_config(tmp_path, port, cport)
    d = fedtest.start_dnsd(tmp_path, conf=conf, dns_port=port, ctl_port=cport)
    c = fedtest.Control(cport)
    try:
        push(c, {v: services(down=["usa"], pending=["jpn"]) for v in REGIONS})
        st, _ = c.drain("eur")
        assert 200 <= st < 300
        before = {reg: rr_lines(q_ecs(d, reg).answer) for reg in REGIONS}
        assert {ADDR_MEMBER[ln.split()[-1]] for ln in before[US]} == {"jpn"}
    finally:
        code = d.stop()  # the exit status is checked below, after the restart
    d2 = fedtest.start_dnsd(tmp_path, conf=conf, dns_port=port, ctl_port=cport)
    try:
        after = {reg: rr_lines(q_ecs(d2, reg).answer) for reg in REGIONS}
        assert after == before, "a restart must serve the saved state before any push"
    finally:
        fedtest.finish(d2)
    assert d.sanitizer_report() is None, d.log_text()
    assert code == 0, f"first daemon exit status {code}"


def test_answers_by_region_and_processing_time(dnsd, ctl):
    """Federated answers are counted by the client's region, and every UDP
    query lands in the processing-time histogram (cumulative, +Inf = count)."""
    def snapshot():
        regions, buckets, count = {}, [], None
        for name, labels, v in ctl.metrics():
            if name == "fedgslb_dns_region_answers_total":
                regions[labels["region"]] = v
            elif name == "fedgslb_dns_query_duration_seconds_bucket":
                buckets.append((labels["le"], v))
            elif name == "fedgslb_dns_query_duration_seconds_count":
                count = v
        return regions, buckets, count

    r0, _, c0 = snapshot()
    for _ in range(7):
        q_src(dnsd, "ap-northeast-1")
    for _ in range(3):
        q_ecs(dnsd, "eu-west-1")
    r1, buckets, c1 = snapshot()
    assert r1["ap-northeast-1"] - r0["ap-northeast-1"] == 7
    assert r1["eu-west-1"] - r0["eu-west-1"] == 3
    assert c1 - c0 >= 10
    values = [v for _, v in buckets]
    assert values == sorted(values) and buckets[-1] == ("+Inf", c1)
