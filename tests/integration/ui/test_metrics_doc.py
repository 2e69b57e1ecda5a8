# SPDX-License-Identifier: Apache-2.0
"""docs/metrics.md lists every metric family every daemon emits: scrape the
real /metrics of fedgslb-dnsd and fedgslb-health (the chain harness: fake
member clusters, one vantage) and of fedgslb-proxy, and fail on a family the
doc does not list, or lists with another type."""

import os
import re

import pytest

import fedtest
from chain import Chain, entry
import proxy_harness as ph

DOC = os.path.join(fedtest.SOURCE_DIR, "docs", "metrics.md")


def documented():
    """{family: type} from the doc's tables: | `name` | type | labels | ..."""
    out = {}
    with open(DOC) as f:
        for line in f:
            m = re.match(r"\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*(counter|gauge|histogram|summary)\s*\|",
                         line)
            if m:
                out[m.group(1)] = m.group(2)
    return out


def emitted(text):
    """{family: type} from the # TYPE lines of an exposition, and the label
    names seen per family (for the failure message)."""
    types, labels = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ.strip()
        elif line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][\w:]*", line).group(0)
            labels.setdefault(name, set()).update(re.findall(r'(\w+)="', line.split("}")[0]))
    return types, labels


def check(daemon, text):
    doc = documented()
    types, labels = emitted(text)
    missing = sorted(n for n in types if n not in doc)
    wrong = sorted("%s is a %s, the doc says %s" % (n, t, doc[n])
                   for n, t in types.items() if n in doc and doc[n] != t)
    assert not missing, "%s emits families missing from docs/metrics.md:\n%s" % (
        daemon, "\n".join("  %s (%s; labels %s)" % (n, types[n], sorted(labels.get(n, ())))
                          for n in missing))
    assert not wrong, "\n".join(wrong)
    return types


def scrape(port):
    st, text = fedtest.http(port, "GET", "/metrics", token=fedtest.TOKEN)
    assert st == 200, (st, text)
    return text


def test_doc_lists_the_families_of_dnsd_and_health(tmp_path):
    c = Chain(tmp_path).start()
    try:
        c.wait_health("us-east-1", lambda d: all(
            entry(d, m)["healthy"] for m in ("usa", "eur", "jpn")),
            timeout=15, what="every member healthy")
        c.wait_answer("us-east-1", "usa", timeout=15)
        got = check("fedgslb-dnsd", scrape(c.ctl_port))
        # The families the alert rules use are there, with samples.
        for fam in ("fedgslb_member_healthy", "fedgslb_vantage_member_healthy",
                    "fedgslb_vantage_member_rtt_seconds", "fedgslb_reloads_total",
                    "fedgslb_state_write_failures_total", "fedgslb_service_fail_open"):
            assert fam in got, fam
        check("fedgslb-health", scrape(c.health_ports["us-east-1"]))
    finally:
        c.close()


def test_doc_lists_the_families_of_the_proxy(tmp_path):
    b = ph.Backend("b1").start()
    p = ph.start_proxy(tmp_path, [b])
    try:
        ph.get(p.port, "/")  # so that the per-backend families have samples
        check("fedgslb-proxy", scrape(p.ctl_port))
    finally:
        fedtest.finish(p)
        b.stop()


def test_the_check_fails_on_an_undocumented_family():
    with pytest.raises(AssertionError, match="fedgslb_made_up_total"):
        check("test", "# TYPE fedgslb_made_up_total counter\nfedgslb_made_up_total 1\n")
