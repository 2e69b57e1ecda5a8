# SPDX-License-Identifier: Apache-2.0
"""conf/prometheus/fedgslb.rules.yml in Debian's real Prometheus: it scrapes
a dnsd fed by pushed documents (1 s scrape and evaluation, its own loopback
port and a temporary TSDB), and through its HTTP API the member-down alert
must fire after a member fails and resolve after it recovers, in bounded time.

The rules' `for:` durations are shortened to 2 s in the copy the test loads
(minutes in production); everything else is the file as shipped."""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

import fedtest
from uibed import UiBed

RULES = os.path.join(fedtest.SOURCE_DIR, "conf", "prometheus", "fedgslb.rules.yml")


def api(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return json.loads(r.read())


def alerts(port, name):
    doc = api(port, "/api/v1/alerts")
    return [a for a in doc["data"]["alerts"] if a["labels"]["alertname"] == name]


def wait(pred, timeout, what, dump):
    deadline = time.monotonic() + timeout * fedtest.SLOW
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError("timed out (%.0f s) waiting for %s; last: %r\n%s"
                         % (timeout, what, last, dump()))


@pytest.fixture
def prom(tmp_path):
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("prometheus is not installed (scripts/deps.sh)")
    bed = UiBed(tmp_path).start()
    with open(RULES) as f:
        rules = re.sub(r"for: \d+m", "for: 2s", f.read())
    with open(os.path.join(str(tmp_path), "rules.yml"), "w") as f:
        f.write(rules)
    port = fedtest.free_port(ipv6=False)
    conf = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [{"job_name": "fedgslb-dnsd",
                            "static_configs": [{"targets": ["127.0.0.1:%d" % bed.dnsd.ctl_port]}]}],
    }
    path = os.path.join(str(tmp_path), "prometheus.yml")
    with open(path, "w") as f:
        json.dump(conf, f)  # JSON is YAML
    log = open(os.path.join(str(tmp_path), "prometheus.log"), "w")
    p = subprocess.Popen([exe, "--config.file=" + path,
                          "--storage.tsdb.path=" + os.path.join(str(tmp_path), "tsdb"),
                          "--web.listen-address=127.0.0.1:%d" % port,
                          "--log.level=warn"],
                         stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp_path))
    try:
        def ready():
            if p.poll() is not None:
                raise AssertionError("prometheus exited:\n" + open(log.name).read())
            try:
                return api(port, "/api/v1/targets")["data"]["activeTargets"][0]["health"] == "up"
            except (OSError, IndexError, KeyError, ValueError):
                return False
        wait(ready, 30, "prometheus to scrape dnsd", lambda: open(log.name).read())
        yield bed, port, lambda: open(log.name).read()
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
        bed.close()


def test_member_down_fires_and_resolves(prom):
    bed, port, plog = prom

    def dump():
        return "alerts: %s\nprometheus log:\n%s" % (
            json.dumps(api(port, "/api/v1/alerts")["data"]["alerts"], indent=1), plog()[-3000:])

    # All healthy: the rules evaluate (they are loaded) and nothing fires.
    wait(lambda: any(g["rules"] for g in api(port, "/api/v1/rules")["data"]["groups"]), 15,
         "the rules to load", dump)
    time.sleep(3)
    assert alerts(port, "FedgslbMemberDown") == [], dump()

    t0 = time.monotonic()
    bed.fail("usa", ["default/web"])
    fired = wait(lambda: [a for a in alerts(port, "FedgslbMemberDown") if a["state"] == "firing"],
                 20, "FedgslbMemberDown to fire", dump)
    took = time.monotonic() - t0
    assert [(a["labels"]["service"], a["labels"]["member"]) for a in fired] == [
        ("default/web", "usa")], fired
    assert "usa is down for default/web" in fired[0]["annotations"]["summary"]
    # One member of three down: not failing open.
    assert alerts(port, "FedgslbServiceFailOpen") == [], dump()
    print("FedgslbMemberDown fired %.1f s after the failure" % took)

    t0 = time.monotonic()
    bed.recover("usa")
    wait(lambda: alerts(port, "FedgslbMemberDown") == [], 20,
         "FedgslbMemberDown to resolve", dump)
    print("and resolved %.1f s after the recovery" % (time.monotonic() - t0))


def test_dashboard_and_rules_queries_are_valid(prom):
    """Every query of conf/grafana/fedgslb.json runs in Prometheus, and every
    family the dashboard and the rules name is one docs/metrics.md lists."""
    import urllib.parse
    from test_metrics_doc import documented

    bed, port, plog = prom
    with open(os.path.join(fedtest.SOURCE_DIR, "conf", "grafana", "fedgslb.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) > 10
    doc = documented()
    with open(RULES) as f:
        rules = f.read()
    for text in exprs + [rules]:
        for fam in re.findall(r"\b(fedgslb_[a-z0-9_]+)", text):
            assert fam in doc, "%s is not in docs/metrics.md" % fam
    for e in exprs:
        q = e.replace("$__rate_interval", "10s")
        r = api(port, "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
        assert r["status"] == "success", (e, r)
    # The health panel of the page's members has data from this dnsd.
    r = api(port, "/api/v1/query?query=" + urllib.parse.quote(
        'min by (service, member) (fedgslb_member_healthy{job="fedgslb-dnsd"})'))
    assert len(r["data"]["result"]) == 15, r
