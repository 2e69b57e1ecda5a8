# SPDX-License-Identifier: Apache-2.0
"""conf/rbac/fedgslb-health.yaml grants what fedgslb-health needs in a member,
and conf/rbac/fedgslb-health-host.yaml what it needs in the host cluster of
members_from (its registry), and nothing more:

- every API path template in health/*.c maps to a resource the ClusterRole
  grants list and watch on;
- the real daemon (a proxy-mode member, so Nodes are watched too), run against
  a fakekube that enforces exactly the manifest's rules, gets no 403 and
  syncs; every request it made is covered by a rule;
- the rules hold no wildcard and no write verb, and each granted resource is
  used by the daemon;
- the enforcement itself bites: without the nodes rule the daemon gets 403s;
- in a host cluster (KubeFed, then Karmada) the registry runs under exactly
  the host manifest's ClusterRole and Roles (each Role only in its
  namespace): no 403, every request covered, every grant used, Secrets read
  only in the Roles' namespaces, and without the Secrets rule it is 403."""

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
HOST_MANIFEST = os.path.join(fedtest.SOURCE_DIR, "conf", "rbac", "fedgslb-health-host.yaml")
SVC = "default/web"
READ = {"get", "list", "watch"}
# Granted to everyone by the default ClusterRole system:public-info-viewer.
PUBLIC = {"/readyz", "/healthz", "/livez", "/version"}


def manifest(path=MANIFEST):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    return by_kind


def role_rules():
    return manifest()["ClusterRole"][0]["rules"]


def host_rules():
    """The host manifest's rules as fakekube enforces them: the ClusterRole's
    everywhere, each Role's in its namespace only."""
    m = manifest(HOST_MANIFEST)
    rules = [dict(r) for r in m["ClusterRole"][0]["rules"]]
    for role in m["Role"]:
        rules += [dict(r, namespace=role["metadata"]["namespace"]) for r in role["rules"]]
    return rules


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


def test_host_manifest_shape():
    m = manifest(HOST_MANIFEST)
    sa = m["ServiceAccount"][0]["metadata"]
    for b in m["ClusterRoleBinding"] + m["RoleBinding"]:
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"],
                                  "namespace": sa["namespace"]}]
        kind = "ClusterRole" if b["kind"] == "ClusterRoleBinding" else "Role"
        assert b["roleRef"]["kind"] == kind
        assert b["roleRef"]["name"] in [r["metadata"]["name"] for r in m[kind]]
        if kind == "Role":
            assert b["metadata"]["namespace"] in [r["metadata"]["namespace"] for r in m[kind]
                                                  if r["metadata"]["name"] == b["roleRef"]["name"]]
    for r in host_rules():
        assert "*" not in r["apiGroups"] + r["resources"] + r["verbs"], r
        assert set(r["verbs"]) <= READ, r
        # Secrets only in the registries' namespaces, never cluster-wide.
        assert "secrets" not in r["resources"] or r.get("namespace") in (
            "kube-federation-system", "karmada-cluster"), r


def test_every_path_in_the_code_is_granted():
    """Every collection path of health/*.c: a member's kinds by the member
    manifest, the registry's by the host manifest."""
    paths = set()
    for src in glob.glob(os.path.join(fedtest.SOURCE_DIR, "health", "*.c")):
        with open(src) as f:
            paths |= set(re.findall(r'"(/apis?/[^"?%]*)', f.read()))
    assert paths, "no API path templates found in health/*.c"
    member, host = role_rules(), host_rules()
    member_kinds = {(g, res) for r in member for g in r["apiGroups"] for res in r["resources"]}
    registry = 0
    for p in sorted(paths):
        gr = resource_of(p)
        assert gr is not None, p
        rules = member if gr in member_kinds else host
        registry += rules is host
        for verb in ("list", "watch"):
            assert grants(rules, gr[0], gr[1], verb), "%s: %s not granted" % (p, verb)
    assert registry >= 6, paths  # kubefedclusters, clusters, secrets, and the three services'



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


# ---- the host cluster (members_from) ----

def grants_request(rules, req):
    """Whether @rules grant the request fakekube logged (its verb and namespace)."""
    gr = resource_of(req["path"])
    p = req["path"].strip("/").split("/")
    ns = p[p.index("namespaces") + 1] if "namespaces" in p else None
    name = req["query"].get("fieldSelector", "")
    verb = "watch" if req["watch"] else "list"
    if not name and p[-1] != gr[1]:
        verb = "get"
    return any((gr[0] in r["apiGroups"] and gr[1] in r["resources"] and verb in r["verbs"] and
                r.get("namespace", ns) == ns) for r in rules), gr


def run_host(tmp, source, rules):
    from registry_harness import RegistryBed
    bed = RegistryBed(tmp, source=source, services={} if source == "kubefed" else None)
    bed.host.rbac_rules = rules
    bed.start()
    bed.join("usa")
    return bed


@pytest.mark.parametrize("source", ["kubefed", "karmada"])
def test_registry_needs_exactly_the_host_rules(tmp_path, source):
    rules = host_rules()
    bed = run_host(tmp_path, source, rules)
    try:
        bed.wait_state(lambda d: d["registry"]["synced"] and "usa" in d["members"],
                       what="usa joined under the host manifest's RBAC")
        reqs = [r for r in bed.host.requests if r["path"] not in PUBLIC]
    finally:
        bed.close()
    assert reqs and not [r for r in reqs if r["status"] == 403], reqs
    used = set()
    for r in reqs:
        ok, gr = grants_request(rules, r)
        assert ok, r
        used.add(gr)
    want = {("", "secrets")} | ({("core.kubefed.io", "kubefedclusters"),
                                  ("types.kubefed.io", "federatedservices"),
                                  ("multiclusterdns.kubefed.io", "servicednsrecords"),
                                  ("multiclusterdns.kubefed.io", "domains")}
                                 if source == "kubefed" else {("cluster.karmada.io", "clusters")})
    assert used == want, used


def test_host_enforcement_bites_without_the_secrets_rule(tmp_path):
    rules = [r for r in host_rules() if "secrets" not in r["resources"]]
    bed = run_host(tmp_path, "kubefed", rules)
    try:
        doc = bed.wait_state(lambda d: "HTTP 403" in d["registry"]["pending"]["usa"],
                             what="usa waiting for a Secret it may not read")
        assert doc["registry"]["pending"]["usa"].startswith(
            "waiting for Secret kube-federation-system/usa-")
        assert doc["registry"]["pending"]["usa"].endswith(
            ": its list failed: HTTP 403 (not granted: conf/rbac/fedgslb-health-host.yaml)")
        bed.wait_state(lambda d: any(r["status"] == 403 for r in bed.host.requests),
                       what="a 403")
        denied = [r for r in bed.host.requests if r["status"] == 403]
    finally:
        bed.close()
    assert denied and all(r["path"].endswith("/secrets") for r in denied), denied
    assert "usa" not in doc["members"]
