# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd as a daemon: --check-config, SIGHUP reload (also under
dnsperf load, without losing a query), SIGTERM, JSON logs."""

import json
import os
import re
import signal
import threading
import time

import dns.rcode
import dns.rdatatype
import pytest

import fedtest
from fedtest import ZONE, query

Z = ZONE + "."


def _check(tmp, conf):
    path = fedtest.write_config(tmp, conf, "check.json")
    exe = fedtest.binary("fedgslb-dnsd")
    p = fedtest.run([exe, "--config", path, "--check-config"], timeout=20)
    return path, p


def _conf(tmp):
    return fedtest.base_config(tmp, fedtest.free_port(), fedtest.free_port(ipv6=False))


def test_check_config_ok(tmp_path):
    path, p = _check(tmp_path, _conf(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("config OK"), repr(p.stdout)


def _set(conf, dotted, value):
    keys = dotted.split(".")
    cur = conf
    for k in keys[:-1]:
        cur = cur[k]
    cur[keys[-1]] = value


BAD = [
    ("dnsd.bogus", 1, "dnsd.bogus", "unknown key"),
    ("bogus", True, "bogus", "unknown key"),
    ("dnsd.control.bogus", "x", "dnsd.control.bogus", "unknown key"),
    ("members.jpn.region", "ap-east-9", "members.jpn.region", 'unknown region "ap-east-9"'),
    ("dnsd.ttl_s", "thirty", "dnsd.ttl_s", ""),
    ("dnsd.max_udp_size", 100, "dnsd.max_udp_size", ""),
    ("dnsd.tcp_idle_timeout_ms", -1, "dnsd.tcp_idle_timeout_ms", ""),
]


@pytest.mark.parametrize("key,value,jpath,reason", BAD, ids=[b[0] for b in BAD])
def test_check_config_error_names_file_path_reason(tmp_path, key, value, jpath, reason):
    conf = _conf(tmp_path)
    _set(conf, key, value)
    path, p = _check(tmp_path, conf)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "config OK" not in p.stdout
    prefix = f"{path}: {jpath}: "
    lines = [ln for ln in p.stderr.splitlines() if prefix in ln]
    assert lines, f"expected a line with {prefix!r}{reason}, got stderr:\n{p.stderr}"
    assert any(ln[ln.index(prefix) + len(prefix):].strip() for ln in lines), "reason is empty"
    if reason:
        assert any(reason in ln for ln in lines), p.stderr


def test_check_config_exact_unknown_key_line(tmp_path):
    conf = _conf(tmp_path)
    conf["dnsd"]["bogus"] = 1
    path, p = _check(tmp_path, conf)
    assert p.returncode == 1
    assert f"{path}: dnsd.bogus: unknown key" in p.stderr.splitlines(), p.stderr


def test_check_config_invalid_json(tmp_path):
    path = os.path.join(str(tmp_path), "broken.json")
    with open(path, "w") as f:
        f.write('{"federation": "myfed",\n  "zone": }\n')
    exe = fedtest.binary("fedgslb-dnsd")
    p = fedtest.run([exe, "--config", path, "--check-config"], timeout=20)
    assert p.returncode == 1
    assert p.stderr.startswith(path + ":") or (path + ":") in p.stderr, p.stderr


def test_check_config_bad_zone_file(tmp_path):
    conf = _conf(tmp_path)
    bad = os.path.join(str(tmp_path), "bad.zone")
    with open(bad, "w") as f:
        f.write(fedtest.zone_text() + "broken IN A not-an-address\n")
    conf["dnsd"]["zone_file"] = bad
    path, p = _check(tmp_path, conf)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "bad.zone" in p.stderr, p.stderr


def test_check_config_missing_zone_file(tmp_path):
    conf = _conf(tmp_path)
    conf["dnsd"]["zone_file"] = os.path.join(str(tmp_path), "nonexistent.zone")
    path, p = _check(tmp_path, conf)
    assert p.returncode == 1
    assert "nonexistent.zone" in p.stderr, p.stderr


def test_check_config_zone_file_of_other_origin(tmp_path):
    conf = _conf(tmp_path)
    other = os.path.join(str(tmp_path), "other.zone")
    with open(other, "w") as f:
        f.write(fedtest.zone_text(zone="other.example.test"))
    conf["dnsd"]["zone_file"] = other
    path, p = _check(tmp_path, conf)
    assert p.returncode == 1, "a zone file for another origin must be refused: " + p.stdout


def test_start_with_bad_config_exits_nonzero(tmp_path):
    conf = _conf(tmp_path)
    conf["dnsd"]["bogus"] = 1
    path = fedtest.write_config(tmp_path, conf, "bad.json")
    exe = fedtest.binary("fedgslb-dnsd")
    p = fedtest.run([exe, "--config", path], timeout=20)
    assert p.returncode != 0
    assert f"{path}: dnsd.bogus: unknown key" in p.stderr


def _wait_for(fn, timeout=10.0):
    deadline = time.monotonic() + timeout * fedtest.SLOW
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(0.1)


def _txt(d, name):
    r = query(d, name, "TXT")
    if r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    return b"".join(r.answer[0][0].strings).decode()


def _zone_file(d):
    return d.conf["dnsd"]["zone_file"]


def test_sighup_reloads_zone(tmp_path):
    d = fedtest.start_dnsd(tmp_path)
    try:
        assert query(d, "reload." + Z, "TXT").rcode() == dns.rcode.NXDOMAIN
        with open(_zone_file(d), "w") as f:
            f.write(fedtest.zone_text(serial=2024010102, extra='reload IN TXT "v2"\n'))
        d.signal(signal.SIGHUP)
        assert _wait_for(lambda: _txt(d, "reload." + Z) == "v2"), d.log_text()
        r = query(d, Z, "SOA")
        assert r.answer[0][0].serial == 2024010102
        assert d.alive()
    finally:
        fedtest.finish(d)


IDLE_S = 3.0
IDLE_CPU_SHARE_MAX = 0.10  # of the idle wall time; a spinning worker takes far more


def test_idle_after_reloads_uses_no_cpu(tmp_path):
    """Each reload hands every worker a new view and wakes it: the worker
    takes the view and sleeps again, so an idle dnsd uses next to no CPU
    afterwards (a wakeup left pending would keep its worker spinning)."""
    d = fedtest.start_dnsd(tmp_path)
    try:
        for i in range(3):
            with open(_zone_file(d), "w") as f:
                f.write(fedtest.zone_text(serial=2024010102 + i, extra=f'reload IN TXT "v{i}"\n'))
            d.signal(signal.SIGHUP)
            assert _wait_for(lambda: _txt(d, "reload." + Z) == f"v{i}"), d.log_text()
        cpu0, t0 = fedtest.cpu_seconds(d.proc.pid), time.monotonic()
        time.sleep(IDLE_S)
        cpu, wall = fedtest.cpu_seconds(d.proc.pid) - cpu0, time.monotonic() - t0
        assert cpu < IDLE_CPU_SHARE_MAX * wall, f"idle dnsd used {cpu:.2f} CPU-s in {wall:.2f} s"
        assert d.alive()
    finally:
        fedtest.finish(d)


def test_sighup_bad_config_keeps_old(tmp_path):
    d = fedtest.start_dnsd(tmp_path)
    try:
        good = open(d.config_path).read()
        # a new zone the bad config would come with must not be picked up either
        with open(_zone_file(d), "w") as f:
            f.write(fedtest.zone_text(serial=2024010103, extra='reload IN TXT "v3"\n'))
        with open(d.config_path, "w") as f:
            f.write(good.replace('"ttl_s": 30', '"ttl_s": 30, "bogus_key": 1'))
        d.signal(signal.SIGHUP)
        time.sleep(1.0 * fedtest.SLOW)
        assert d.alive(), "a bad config on reload must not stop the daemon"
        assert "bogus_key" in d.log_text(), "the refused reload must be logged with the reason"
        r = query(d, "host." + Z, "A")
        assert fedtest.addresses(r) == {"192.0.2.80"}
        assert query(d, "reload." + Z, "TXT").rcode() == dns.rcode.NXDOMAIN
        assert query(d, Z, "SOA").answer[0][0].serial == 2024010101
        # fixed config: the next reload takes it
        with open(d.config_path, "w") as f:
            f.write(good)
        d.signal(signal.SIGHUP)
        assert _wait_for(lambda: _txt(d, "reload." + Z) == "v3"), d.log_text()
    finally:
        fedtest.finish(d)


def test_sighup_bad_zone_keeps_old(tmp_path):
    d = fedtest.start_dnsd(tmp_path)
    try:
        with open(_zone_file(d), "w") as f:
            f.write(fedtest.zone_text(serial=2024010109) + "broken IN A 999.1.2.3\n")
        d.signal(signal.SIGHUP)
        time.sleep(1.0 * fedtest.SLOW)
        assert d.alive()
        assert query(d, Z, "SOA").answer[0][0].serial == 2024010101
        assert fedtest.addresses(query(d, "www." + Z, "A")) == {"192.0.2.80"}
    finally:
        fedtest.finish(d)


def test_sighup_reloads_config(tmp_path):
    d = fedtest.start_dnsd(tmp_path)
    try:
        alias = "shop." + Z
        assert query(d, alias, "A").rcode() == dns.rcode.NXDOMAIN
        conf = d.conf
        conf["services"]["default/web"]["aliases"].append(alias.rstrip("."))
        fedtest.write_config(tmp_path, conf)
        d.signal(signal.SIGHUP)
        assert _wait_for(lambda: query(d, alias, "A").rcode() == dns.rcode.NOERROR), \
            "new alias not served after SIGHUP"
    finally:
        fedtest.finish(d)


def test_sigterm_exits_zero_and_frees_port(tmp_path):
    d = fedtest.start_dnsd(tmp_path)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    code = d.proc.wait(timeout=10 * fedtest.SLOW)
    assert code == 0, d.log_text()
    assert time.monotonic() - t0 < 5 * fedtest.SLOW
    fedtest.finish(d)
    # the ports are free again
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", d.dns_port))


def test_sigint_exits_zero(tmp_path):
    d = fedtest.start_dnsd(tmp_path)
    d.signal(signal.SIGINT)
    assert d.proc.wait(timeout=10 * fedtest.SLOW) == 0
    fedtest.finish(d)


def test_json_log_format(tmp_path):
    d = fedtest.start_dnsd(tmp_path, extra_args=["--log-format", "json"])
    d.signal(signal.SIGHUP)
    time.sleep(0.5 * fedtest.SLOW)
    fedtest.finish(d)
    lines = [ln for ln in d.log_text().splitlines() if ln.strip()]
    assert lines, "no log at all"
    for ln in lines:
        if ln.startswith("==") or "Sanitizer" in ln:
            continue
        doc = json.loads(ln)
        assert "level" in doc and "msg" in doc, ln
    assert fedtest.TOKEN not in d.log_text()


def _parse_dnsperf(out):
    res = {}
    for key in ("Queries sent", "Queries completed", "Queries lost"):
        m = re.search(rf"{key}:\s+(\d+)", out)
        assert m, f"no '{key}' in dnsperf output:\n{out}"
        res[key] = int(m.group(1))
    return res


def test_reload_under_dnsperf_load_loses_nothing(tmp_path):
    d = fedtest.start_dnsd(tmp_path)
    try:
        qfile = os.path.join(str(tmp_path), "queries.txt")
        with open(qfile, "w") as f:
            for n, t in [("host", "A"), ("www", "A"), ("nope", "A"), ("", "SOA"), ("mail", "AAAA"),
                         ("b", "A"), ("host.lab", "A"), ("mid", "TXT"),
                         ("web.default.myfed.svc", "A"), ("web", "AAAA"),
                         ("web.default.myfed.svc.us-east-1", "A")]:
                f.write(f"{n + '.' if n else ''}{ZONE} {t}\n")
        exe = "dnsperf"
        result = {}

        def run_perf():
            result["p"] = fedtest.run([exe, "-s", "127.0.0.1", "-p", str(d.dns_port), "-d", qfile,
                                       "-l", "8", "-Q", "2000", "-t", "3"], timeout=40)

        th = threading.Thread(target=run_perf)
        th.start()
        serials = []
        for i in range(3):
            time.sleep(2.0)
            with open(_zone_file(d), "w") as f:
                f.write(fedtest.zone_text(serial=2024010110 + i,
                                          extra=f'reload IN TXT "load{i}"\n'))
            d.signal(signal.SIGHUP)
            serials.append(2024010110 + i)
        th.join(60)
        p = result["p"]
        assert p.returncode == 0, p.stdout + p.stderr
        res = _parse_dnsperf(p.stdout)
        assert res["Queries sent"] > 2000, p.stdout
        assert res["Queries lost"] == 0, p.stdout
        assert res["Queries completed"] == res["Queries sent"], p.stdout
        assert d.alive()
        assert _wait_for(lambda: query(d, Z, "SOA").answer[0][0].serial == serials[-1])
    finally:
        fedtest.finish(d)
