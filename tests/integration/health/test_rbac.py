# SPDX-License-Identifier: Apache-2.0
"""conf/rbac/fedgslb-health.yaml grants what fedgslb-health needs in a member
and nothing more:

- every API path template in health/*.c maps to a resource the ClusterRole
  grants list and watch on;
- the real daemon (a proxy-mode member, so Nodes are watched too), run against
  a fakekube that enforces exactly the manifest's rules, gets no 403 and
  syncs; every request it made is covered by a rule;
- the rules hold no wildcard and no write verb, and each granted resource is
  used by the daemon;
- the enforcement itself bites: without the nodes rule the daemon gets 403s."""

import glob
import os
import re

import pytest
import yaml

import health_harness as hh
import fakekube
import fedtest
from health_harness import entry

MANIFEST = os.path.join(fedtest.SOURCE_DIR, "conf", "rbac", "fedgslb-health.yaml")
SVC = "default/web"
READ = {"get", "list", "watch"}
# Granted to everyone by the default ClusterRole system:public-info-viewer.
PUBLIC = {"/readyz", "/healthz", "/livez", "/version"}


def manifest():
    with open(MANIFEST) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    return by_kind


def role_rules():
    return manifest()["ClusterRole"][0]["rules"]


def grants(rules, group, resource, verb):
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
               for r in rules)


def resource_of(path):
    """(group, resource) of an API path as the API server routes it."""
    p = path.strip("/").split("/")
    if p[:2] == ["api", "v1"]:
        rest, group = p[2:], ""
    elif p[0] == "apis" and len(p) >= 3:
        rest, group = p[3:], p[1]
    else:
        return None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    return group, rest[0]


def test_manifest_shape():
    m = manifest()
    sa = m["ServiceAccount"][0]["metadata"]
    binding = m["ClusterRoleBinding"][0]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": "fedgslb-health"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"],
                                    "namespace": sa["namespace"]}]
    for r in role_rules():
        assert "*" not in r["apiGroups"] + r["resources"] + r["verbs"], r
        assert set(r["verbs"]) <= READ, r
        assert "nonResourceURLs" not in r and "resourceNames" not in r


def test_every_path_in_the_code_is_granted():
    paths = set()
    for src in glob.glob(os.path.join(fedtest.SOURCE_DIR, "health", "*.c")):
        with open(src) as f:
            paths |= set(re.findall(r'"(/apis?/[^"?%]*)', f.read()))
    assert paths, "no API path templates found in health/*.c"
    rules = role_rules()
    for p in sorted(paths):
        gr = resource_of(p)
        assert gr is not None, p
        for verb in ("list", "watch"):
            assert grants(rules, gr[0], gr[1], verb), "%s: %s not granted" % (p, verb)


def run_member(tmp, rules):
    fk = fakekube.FakeKube("usa", str(tmp))
    fk.bookmark_interval = 0.5
    fk.rbac_rules = rules
    kc = os.path.join(str(tmp), "kubeconfig.yaml")
    fakekube.write_kubeconfig(kc, [("usa", fk, "token-ca-data")])
    c = hh.Cluster.__new__(hh.Cluster)
    c.tmp, c.fakes, c.kubeconfig = str(tmp), {"usa": fk}, kc
    c.ctl_port = fedtest.free_port(ipv6=False)
    c.conf = hh.health_config(c.tmp, kc, c.ctl_port, members=["usa"],
                              proxy={"usa": "198.51.100.7"})
    c.config_path = fedtest.write_config(c.tmp, c.conf, "health.json")
    c.env = {}
    c.daemon = None
    fk.start()
    fk.add_node("node-a", "10.0.0.1")
    fk.add_service("default", "web")
    fk.set_endpoints("default", "web", ready=2)
    c.start()
    return c, fk


def test_daemon_needs_exactly_the_granted_rules(tmp_path):
    rules = role_rules()
    c, fk = run_member(tmp_path, rules)
    try:
        c.wait(lambda d: entry(d, SVC, "usa") and hh.api(d, "usa") == "ok", timeout=6,
               what="usa synced under the manifest's RBAC")
        fk.set_endpoints("default", "web", ready=3)
        c.wait(lambda d: entry(d, SVC, "usa")["ready_endpoints"] == 3, timeout=3, what="ready=3")
        reqs = list(fk.requests)
    finally:
        c.close()
    assert reqs and not [r for r in reqs if r["status"] == 403], reqs
    used = set()
    for r in reqs:
        if r["path"] in PUBLIC:
            continue
        gr = resource_of(r["path"])
        assert gr is not None, r["path"]
        verb = "watch" if r["watch"] else ("list" if gr[1] == r["path"].rstrip("/").split("/")[-1]
                                           else "get")
        assert grants(rules, gr[0], gr[1], verb), (r, verb)
        used.add(gr)
    granted = {(g, res) for rule in rules for g in rule["apiGroups"] for res in rule["resources"]}
    assert granted == used, "granted but never used: %s" % (granted - used)


def test_enforcement_bites_without_the_nodes_rule(tmp_path):
    rules = [dict(r, resources=[x for x in r["resources"] if x != "nodes"]) for r in role_rules()]
    c, fk = run_member(tmp_path, rules)
    try:
        c.wait_log("resource=nodes", timeout=6)
        denied = [r for r in fk.requests if r["status"] == 403]
    finally:
        c.close()
    assert denied and all(r["path"] == "/api/v1/nodes" for r in denied), denied
