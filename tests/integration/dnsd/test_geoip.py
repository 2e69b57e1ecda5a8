# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd with a GeoIP database (dnsd.geoip), written here with
tests/geoip/write_mmdb.pl (Debian's libmaxmind-db-writer-perl), never
downloaded: which region each client gets (ECS from every kind of network,
and the source address), the ECS scope echoed, the explain text; a database
replaced under dnsperf load changes answers without a lost query; a truncated
file keeps the previous database; --check-config on a missing file."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

import fedtest
from fedtest import ZONE, addresses, ecs_option, endpoint, fed_name, query, state_doc

US, EU, AP = "us-east-1", "eu-west-1", "ap-northeast-1"
REGIONS = [US, EU, AP]
OWN = {US: "usa", EU: "eur", AP: "jpn"}
V4 = {"usa": "192.0.2.10", "eur": "192.0.2.20", "jpn": "192.0.2.30"}
WEB = fed_name("web")
LOCATION = {US: [38.9, -77.0], EU: [53.3, -6.3], AP: [35.7, 139.7]}

# Countries, continents, coordinates; a network nested in another; one over a
# client network; an IPv4-mapped range; IPv6; the test's own source address.
NETWORKS = [
    {"cidr": "203.0.112.0/20", "country": "JP", "continent": "AS", "location": [35.68, 139.69]},
    {"cidr": "203.0.113.0/24", "country": "KR", "continent": "AS", "location": [37.56, 126.97]},
    {"cidr": "198.51.100.0/24", "country": "FR", "continent": "EU", "location": [48.86, 2.35]},
    {"cidr": "100.64.0.0/16", "location": [-23.5, -46.6]},            # Sao Paulo
    {"cidr": "100.65.0.0/16", "location": [-33.9, 151.2]},            # Sydney
    {"cidr": "100.66.0.0/16", "location": [-1.29, 36.82]},            # Nairobi
    {"cidr": "100.67.0.0/16", "location": [64.1, -21.9]},             # Reykjavik
    {"cidr": "10.1.0.0/16", "country": "JP", "continent": "AS"},      # a client network too
    {"cidr": "2001:db8:7::/48", "country": "AU", "continent": "OC", "location": [-33.9, 151.2]},
    {"cidr": "2001:db8:8::/48", "country": "DE", "continent": "EU"},
    {"cidr": "::ffff:198.18.0.0/112", "country": "DE", "continent": "EU"},
    {"cidr": "127.0.9.0/24", "country": "JP", "continent": "AS"},
]
GEO_MAP = {"JP": AP, "KR": US, "EU": EU}


def write_db(tmp, networks, name):
    spec = os.path.join(str(tmp), name + ".json")
    out = os.path.join(str(tmp), name)
    with open(spec, "w") as f:
        json.dump({"ip_version": 6, "alias_ipv6_to_ipv4": False, "networks": networks}, f)
    subprocess.run(["perl", os.path.join(fedtest.SOURCE_DIR, "tests/geoip/write_mmdb.pl"),
                    spec, out], check=True)
    return out


def geo_conf(tmp, dns_port, ctl_port, db, client_networks=True, **over):
    conf = fedtest.base_config(tmp, dns_port, ctl_port)
    for r, loc in LOCATION.items():
        conf["regions"][r]["location"] = loc
    if not client_networks:
        conf["client_networks"] = []
    conf["dnsd"]["geoip"] = {"path": db, "required": True}
    conf["dnsd"]["geo_map"] = GEO_MAP
    conf["dnsd"].update(over)
    return conf


def push_all(ctl):
    for v in REGIONS:
        svcs = {"default/web": {m: endpoint([V4[m]]) for m in ("usa", "eur", "jpn")}}
        st, body = ctl.put_state(state_doc(v, svcs))
        assert 200 <= st < 300, (st, body)


@pytest.fixture(scope="module")
def geo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("geoip")
    db = write_db(tmp, NETWORKS, "geo.mmdb")
    dns_port, ctl_port = fedtest.free_port(), fedtest.free_port(ipv6=False)
    d = fedtest.start_dnsd(tmp, conf=geo_conf(tmp, dns_port, ctl_port, db),
                           dns_port=dns_port, ctl_port=ctl_port)
    d.tmp, d.db = tmp, db
    ctl = fedtest.Control(d.ctl_port)
    push_all(ctl)
    d.ctl = ctl
    yield d
    fedtest.finish(d)


def placed(d, ecs=None, source=None):
    """(region from the wire, ECS scope echoed, explain's client object)."""
    msg = query(d, WEB, "A", ecs=ecs, source=source)
    member = {v: k for k, v in V4.items()}[sorted(addresses(msg))[0]]
    region = next(r for r, m in OWN.items() if m == member)
    opt = ecs_option(msg)
    if source is not None:
        st, doc = d.ctl.explain(WEB, source)
    else:
        st, doc = d.ctl.explain(WEB, None, ecs=ecs)
    assert st == 200, (st, doc)
    client = doc["client"]
    assert client["region"] == region, (client, region)
    return region, (opt.scopelen if opt is not None else None), client


CASES = [
    # ecs, region, scope, placement text
    ("203.0.113.7/32", US, 24, "GeoIP KR 203.0.113.0/24 -> us-east-1 (geo_map)"),
    ("203.0.120.1/32", AP, 21, "GeoIP JP 203.0.120.0/21 -> ap-northeast-1 (geo_map)"),
    ("198.51.100.0/24", EU, 24, "GeoIP EU 198.51.100.0/24 -> eu-west-1 (geo_map)"),
    ("100.64.9.0/24", US, 16, "GeoIP -23.5,-46.6 100.64.0.0/16 -> us-east-1 (nearest, 7"),
    ("100.65.9.0/24", AP, 16, "GeoIP -33.9,151.2 100.65.0.0/16 -> ap-northeast-1 (nearest, "),
    ("100.66.9.0/24", EU, 16, "GeoIP -1.3,36.8 100.66.0.0/16 -> eu-west-1 (nearest, "),
    ("100.67.9.0/24", EU, 16, "GeoIP 64.1,-21.9 100.67.0.0/16 -> eu-west-1 (nearest, "),
    ("10.1.2.0/24", US, 16, "client_networks 10.1.0.0/16"),
    ("2001:db8:7:100::/56", AP, 48, "GeoIP -33.9,151.2 2001:db8:7::/48 -> ap-northeast-1"),
    ("2001:db8:8:100::/56", EU, 48, "GeoIP EU 2001:db8:8::/48 -> eu-west-1 (geo_map)"),
    ("198.18.5.0/24", EU, 16, "GeoIP EU 198.18.0.0/16 -> eu-west-1 (geo_map)"),
    ("::ffff:198.18.5.0/120", EU, 112, "GeoIP EU 198.18.0.0/16 -> eu-west-1 (geo_map)"),
    # a source shorter than the networks inside it: cm_lpm's rule, scope 24 > 20
    ("203.0.112.0/20", fedtest.DEFAULT_REGION, 24, "default region"),
    ("8.8.8.0/24", fedtest.DEFAULT_REGION, None, "default region"),
]


@pytest.mark.parametrize("ecs,region,scope,text", CASES)
def test_ecs_placement(geo, ecs, region, scope, text):
    got, got_scope, client = placed(geo, ecs=ecs)
    assert got == region, client
    if scope is not None:
        assert got_scope == scope, (ecs, got_scope, client)
    assert client["placement"].startswith(text), client


def test_source_address_placement(geo):
    """No ECS: the source address 127.0.9.9 is in the database's 127.0.9.0/24."""
    msg = query(geo, WEB, "A", source="127.0.9.9", edns=0)
    assert addresses(msg) == {V4["jpn"]}
    st, doc = geo.ctl.explain(WEB, "127.0.9.9")
    assert st == 200, doc
    client = doc["client"]
    assert client["placed_by"] == "geo_map"
    assert client["placement"] == "GeoIP JP 127.0.9.0/24 -> ap-northeast-1 (geo_map)"


def test_placement_metric(geo):
    """Answers are counted by what placed the client (after the cases above)."""
    def counts():
        return {lbl["source"]: v for n, lbl, v in geo.ctl.metrics()
                if n == "fedgslb_dns_client_placement_total"}

    before = counts()
    for ecs, want in (("203.0.113.7/32", "geo_map"), ("100.64.9.0/24", "nearest"),
                      ("10.1.2.0/24", "client_networks"), ("8.8.8.0/24", "default")):
        placed(geo, ecs=ecs)
        after = counts()
        assert after[want] == before[want] + 1, (ecs, want, before, after)
        before = after


def test_topology_has_locations(geo):
    """The status page draws regions where regions.*.location puts them."""
    st, doc = geo.ctl.get("/v1/topology")
    assert st == 200, doc
    loc = doc["regions"][AP]["location"]
    assert (loc["latitude"], loc["longitude"]) == tuple(LOCATION[AP])


def test_ctl_explain_text(geo):
    env = {k: v for k, v in os.environ.items() if k != "FEDGSLB_CONFIG"}
    p = fedtest.run([fedtest.binary("fedgslbctl"), "--config", geo.config_path, "explain", WEB,
                     "--client", "203.0.113.7"], env=env)
    assert p.returncode == 0, p.stderr
    assert "GeoIP KR 203.0.113.0/24 -> us-east-1 (geo_map)" in p.stdout, p.stdout


def dnsperf(port, ecs_hex, seconds=4, qps=3000):
    qfile = os.path.join("/tmp", f"geo-dnsperf-{port}.txt")
    with open(qfile, "w") as f:
        f.write(f"{WEB} A\n")
    p = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile,
                          "-l", str(seconds), "-Q", str(qps), "-t", "2", "-E", f"8:{ecs_hex}"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p


def test_replaced_database_under_load(geo):
    """198.51.100.0/24 moves from FR (EU) to JP: renamed into place, picked up
    on the 1 s tick by the build thread, not a query lost."""
    assert placed(geo, ecs="198.51.100.0/24")[0] == EU
    nets = [dict(n) for n in NETWORKS]
    for n in nets:
        if n["cidr"] == "198.51.100.0/24":
            n.update(country="JP", continent="AS")
    new = write_db(geo.tmp, nets, "geo-v2.mmdb")
    # ECS 198.51.100.0/24: family 1, source 24, scope 0, address 3 bytes
    perf = dnsperf(geo.dns_port, "000118" + "00" + "c63364")
    time.sleep(1.0)
    os.rename(new, geo.db)
    def region_now():
        try:
            return placed(geo, ecs="198.51.100.0/24")[0]
        except AssertionError:  # the query and its explain straddled the swap
            return None

    deadline = time.time() + 5 * fedtest.SLOW
    while time.time() < deadline and region_now() != AP:
        time.sleep(0.2)
    out, _ = perf.communicate(timeout=30)
    assert placed(geo, ecs="198.51.100.0/24")[0] == AP
    m = re.search(r"Queries lost:\s+(\d+)", out)
    assert m is not None, out
    assert int(m.group(1)) == 0, out
    done = re.search(r"Queries completed:\s+(\d+)", out)
    assert done is not None and int(done.group(1)) >= 3000, out  # the load ran throughout
    print(out)
    assert "geoip: reloaded" in geo.log_text()


def test_truncated_database_keeps_the_previous(geo):
    before = placed(geo, ecs="203.0.113.7/32")
    half = os.path.join(str(geo.tmp), "half.mmdb")
    with open(geo.db, "rb") as f:
        data = f.read()
    with open(half, "wb") as f:
        f.write(data[: len(data) // 2])
    os.rename(half, geo.db)
    deadline = time.time() + 5
    while time.time() < deadline and "keeping the previous database" not in geo.log_text():
        time.sleep(0.2)
    log = geo.log_text()
    assert "keeping the previous database" in log
    assert geo.db in log  # the error names the file
    geo.signal(signal.SIGHUP)  # the configuration reload must not drop it either
    time.sleep(1.5)
    assert placed(geo, ecs="203.0.113.7/32") == before
    assert geo.alive()
    m = {(n, tuple(sorted(lb.items()))): v for n, lb, v in geo.ctl.metrics()}
    assert m[("fedgslb_geoip_reloads_total", (("result", "failure"),))] >= 1
    assert m[("fedgslb_geoip_networks", ())] == 14  # the previous database, still in service


def test_only_geoip_every_continent(tmp_path):
    """No client_networks: clients from every continent get their nearest region."""
    cities = {  # (lat, lon) -> region expected
        "100.64.0.0/16": ([40.7, -74.0], US),     # New York
        "100.65.0.0/16": ([-23.5, -46.6], US),    # Sao Paulo
        "100.66.0.0/16": ([51.5, -0.13], EU),     # London
        "100.67.0.0/16": ([6.5, 3.4], EU),        # Lagos
        "100.68.0.0/16": ([28.6, 77.2], AP),      # Delhi
        "100.69.0.0/16": ([-33.9, 151.2], AP),    # Sydney
        "100.70.0.0/16": ([-77.8, 166.7], AP),    # McMurdo, Antarctica
        "100.71.0.0/16": ([21.3, -157.9], US),    # Honolulu (over the antimeridian: no)
        "100.72.0.0/16": ([64.8, -147.7], AP),    # Fairbanks: 6100 km to Tokyo, 5400 to DC?
    }
    nets = [{"cidr": c, "location": loc} for c, (loc, _) in cities.items()]
    db = write_db(tmp_path, nets, "world.mmdb")
    dns_port, ctl_port = fedtest.free_port(), fedtest.free_port(ipv6=False)
    conf = geo_conf(tmp_path, dns_port, ctl_port, db, client_networks=False)
    conf["dnsd"]["geo_map"] = {}
    d = fedtest.start_dnsd(tmp_path, conf=conf, dns_port=dns_port, ctl_port=ctl_port)
    try:
        d.ctl = fedtest.Control(ctl_port)
        push_all(d.ctl)
        for cidr, (loc, _) in cities.items():
            region, scope, client = placed(d, ecs=cidr.replace(".0.0/16", ".1.0/24"))
            # the expected region is the true nearest, computed here independently
            want = min(LOCATION, key=lambda r: haversine(loc, LOCATION[r]))
            assert region == want, (cidr, client)
            assert client["placed_by"] == "nearest", client
            assert scope == 16
    finally:
        fedtest.finish(d)


def haversine(a, b):
    from math import asin, cos, radians, sin, sqrt
    la1, lo1, la2, lo2 = map(radians, (a[0], a[1], b[0], b[1]))
    h = sin((la2 - la1) / 2) ** 2 + cos(la1) * cos(la2) * sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371.0088 * asin(sqrt(h))


def check_config(tmp, conf):
    path = fedtest.write_config(tmp, conf, "check.json")
    return subprocess.run([fedtest.binary("fedgslb-dnsd"), "--config", path, "--check-config"],
                          capture_output=True, text=True, timeout=30)


def test_check_config_missing_database(tmp_path):
    missing = os.path.join(str(tmp_path), "nope.mmdb")
    conf = geo_conf(tmp_path, fedtest.free_port(), fedtest.free_port(ipv6=False), missing)
    p = check_config(tmp_path, conf)
    assert p.returncode != 0
    assert "nope.mmdb" in p.stderr, p.stderr
    conf["dnsd"]["geoip"]["required"] = False
    p = check_config(tmp_path, conf)
    assert p.returncode == 0, p.stderr
    assert "nope.mmdb" in p.stderr, p.stderr


def test_check_config_bad_geo_map(tmp_path):
    db = write_db(tmp_path, NETWORKS[:1], "one.mmdb")
    conf = geo_conf(tmp_path, fedtest.free_port(), fedtest.free_port(ipv6=False), db)
    conf["dnsd"]["geo_map"] = {"NA": US}
    p = check_config(tmp_path, conf)
    assert p.returncode != 0 and "dnsd.geo_map.NA" in p.stderr and "ambiguous" in p.stderr, p.stderr
    conf["dnsd"]["geo_map"] = {"continent:NA": "mars-1"}
    p = check_config(tmp_path, conf)
    assert p.returncode != 0 and "unknown region" in p.stderr, p.stderr
    conf["dnsd"]["geo_map"] = {"continent:NA": US, "JP-13": AP, "country:NA": EU}
    assert check_config(tmp_path, conf).returncode == 0
