# SPDX-License-Identifier: Apache-2.0
"""fakekube against real kubectl: Debian's kubectl (kubernetes-client, v1.20)
and, when it is a different binary, the kubectl on PATH, each run with a
generated kubeconfig. Whatever these clients reject or show differently from
a real cluster is a fidelity bug of the fake API server."""

import os
import shutil
import subprocess
import time

import pytest

import fakekube

DEBIAN_KUBECTL = ("/usr/local/lib/kubernetes-client/kubectl", "/usr/bin/kubectl")


def _is_debian(path):
    try:
        out = subprocess.run(["dpkg-query", "-S", os.path.realpath(path)],
                             capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return False
    return out.startswith("kubernetes-client:")


def _kubectls():
    """Debian's kubectl first (required), then the one on PATH if different."""
    found = []
    env = os.environ.get("FEDGSLB_KUBECTL")
    if env:
        found.append(env)
    for p in DEBIAN_KUBECTL:
        if os.access(p, os.X_OK) and (p.startswith("/usr/local/lib/") or _is_debian(p)):
            found.append(p)
            break
    other = shutil.which("kubectl")
    if other and os.path.realpath(other) not in [os.path.realpath(f) for f in found]:
        found.append(other)
    return found or ["<no kubectl: run scripts/deps.sh>"]


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("kubectl"))
    fk = fakekube.FakeKube("usa", tmp)
    fk.start()
    fk.add_node("node-a", "10.0.0.1", "203.0.113.1")
    fk.add_node("node-b", "10.0.0.2", ready=False)
    fk.add_service("default", "web", labels={"app": "web", "tier": "front"})
    fk.add_service("shop", "cart", type="ClusterIP", labels={"app": "cart"})
    fk.add_service("shop", "pay", lb_ingress=[], labels={"tier": "back"},
                   ports=[{"name": "https", "port": 443, "nodePort": 30443}])
    fk.set_endpoints("default", "web", ready=5)
    fk.set_endpoints("shop", "pay", ready=0)
    # What kubefedctl join leaves in a host cluster.
    fk.put("kubefedclusters", {
        "metadata": {"name": "usa", "namespace": "kube-federation-system"},
        "spec": {"apiEndpoint": "https://usa.example.test:6443", "caBundle": "",
                 "secretRef": {"name": "usa-xyz12"}},
        "status": {"conditions": [{"type": "Ready", "status": "True",
                                   "reason": "ClusterReady"}]}})
    # And what kubefedctl join, karmadactl join and KubeFed's DNS leave.
    fk.join_kubefed("eur", fk, labels={"topology.kubernetes.io/region": "eu-west-1"})
    fk.join_karmada("member1", fk, region="eu-west-1", zones=["eu-west-1a", "eu-west-1b"],
                    provider="aws")
    fk.join_karmada("member2", fk)
    fk.put("federatedservices", {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": {"spec": {"ports": [{"port": 80}]}},
                 "placement": {"clusters": [{"name": "eur"}]}}})
    fk.put("federatedservices", {"metadata": {"name": "cart", "namespace": "shop"},
                                 "spec": {"placement": {"clusterSelector": {}}}})
    fk.put("domains", {"metadata": {"name": "myfed", "namespace": "kube-federation-system"},
                       "domain": "fed.example.test"})
    fk.put("servicednsrecords", {"metadata": {"name": "web", "namespace": "default"},
                                 "spec": {"domainRef": "myfed", "recordTTL": 300}})
    kc = os.path.join(tmp, "kubeconfig")
    fakekube.write_kubeconfig(kc, [("usa", fk, "token-ca-data")])
    fk.kubeconfig = kc
    fk.tmp = tmp
    yield fk
    fk.stop()


@pytest.fixture(params=_kubectls())
def kubectl(request, kube):
    exe = request.param
    assert os.access(exe, os.X_OK), exe

    def run(*args, ok=True, timeout=20):
        # HOME and the cache dir in tmp: no discovery cache carried between runs.
        env = dict(os.environ, HOME=kube.tmp, KUBECONFIG=kube.kubeconfig)
        p = subprocess.run([exe, "--cache-dir", os.path.join(kube.tmp, "cache-%d" % time.time_ns()),
                            *args], capture_output=True, text=True, timeout=timeout, env=env)
        if ok:
            assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
        return p
    run.exe = exe
    kube.clear_requests()
    return run


def table(text):
    """kubectl's column output as a list of rows (lists of cells)."""
    return [line.split() for line in text.strip().splitlines()]


def test_get_services_all_namespaces(kubectl):
    rows = table(kubectl("get", "services", "-A").stdout)
    assert rows[0] == ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    by = {(r[0], r[1]): r for r in rows[1:]}
    assert sorted(by) == [("default", "web"), ("shop", "cart"), ("shop", "pay")]
    assert by[("default", "web")][2:6] == ["LoadBalancer", by[("default", "web")][3],
                                          "192.0.2.10", "80:30080/TCP"]
    assert by[("default", "web")][3].startswith("10.96.")
    assert by[("shop", "cart")][2] == "ClusterIP" and by[("shop", "cart")][4:6] == ["<none>",
                                                                                   "80/TCP"]
    assert by[("shop", "pay")][4:6] == ["<pending>", "443:30443/TCP"]
    assert all(r[6].endswith("s") or r[6].endswith("m") for r in rows[1:])


def test_get_services_wide_shows_selector(kubectl):
    rows = table(kubectl("get", "svc", "-n", "default", "-o", "wide").stdout)
    assert rows[0][-1] == "SELECTOR" and rows[1][0] == "web" and rows[1][-1] == "app=web"


def test_endpointslices_columns_and_yaml(kubectl):
    rows = table(kubectl("get", "endpointslices", "-A").stdout)
    assert rows[0] == ["NAMESPACE", "NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    by = {r[1].rsplit("-", 1)[0]: r for r in rows[1:]}
    assert by["web"][2:4] == ["IPv4", "80"]
    # first three addresses, then the count of the others
    assert by["web"][4] == "10.244.1.1,10.244.1.2,10.244.1.3" and by["web"][5:7] == ["+", "2"]
    assert by["pay"][4] == "<unset>"
    out = kubectl("get", "endpointslices", "-A", "-o", "yaml").stdout
    assert out.startswith("apiVersion: v1\nitems:\n")
    assert "kind: EndpointSlice" in out and "apiVersion: discovery.k8s.io/v1" in out
    assert "kubernetes.io/service-name: web" in out and "kind: List" in out


def test_nodes_wide(kubectl):
    rows = table(kubectl("get", "nodes", "-o", "wide").stdout)
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP",
                       "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    by = {r[0]: r for r in rows[1:]}
    assert by["node-a"][1:3] == ["Ready", "<none>"] and by["node-a"][4:7] == [
        "v1.29.4", "10.0.0.1", "203.0.113.1"]
    assert by["node-b"][1] == "NotReady" and by["node-b"][6] == "<none>"
    assert table(kubectl("get", "nodes").stdout)[0] == ["NAME", "STATUS", "ROLES", "AGE",
                                                        "VERSION"]


@pytest.mark.parametrize("sel,want", [
    ("tier=front", ["web"]),
    ("tier==front", ["web"]),
    ("tier!=front", ["cart", "pay"]),
    ("tier in (front,back)", ["pay", "web"]),
    ("tier notin (front)", ["cart", "pay"]),
    ("tier", ["pay", "web"]),
    ("!tier", ["cart"]),
    ("app,tier=front", ["web"]),
    ("app=nothing", []),
])
def test_label_selectors(kubectl, kube, sel, want):
    p = kubectl("get", "services", "-A", "-l", sel, "-o", "name")
    assert sorted(x.split("/", 1)[1] for x in p.stdout.split()) == want
    assert any(r["query"].get("labelSelector") == sel for r in kube.requests)


def test_field_selectors(kubectl):
    p = kubectl("get", "services", "-A", "--field-selector", "metadata.namespace=shop",
                "-o", "name")
    assert sorted(p.stdout.split()) == ["service/cart", "service/pay"]
    p = kubectl("get", "services", "-A", "--field-selector",
                "metadata.namespace!=shop,metadata.name=web", "-o", "name")
    assert p.stdout.split() == ["service/web"]
    p = kubectl("get", "services", "-A", "--field-selector", "spec.type=LoadBalancer", ok=False)
    assert p.returncode != 0
    assert "(BadRequest)" in p.stderr and "field label not supported: spec.type" in p.stderr


def test_bad_label_selector_is_400(kubectl):
    p = kubectl("get", "services", "-A", "-l", "tier in front", ok=False)
    assert p.returncode != 0 and "(BadRequest)" in p.stderr, p.stderr
    assert "unable to parse requirement" in p.stderr


def test_chunked_list(kubectl, kube):
    rows = table(kubectl("get", "services", "-A", "--chunk-size=1").stdout)
    assert [r[1] for r in rows[1:]] == ["web", "cart", "pay"]
    lists = [r for r in kube.requests if r["path"] == "/api/v1/services"]
    assert len(lists) == 3 and lists[0]["query"].get("limit") == "1"
    assert all(r["query"].get("continue") for r in lists[1:])


def test_watch_is_bounded_and_sees_changes(kubectl, kube):
    env = dict(os.environ, HOME=kube.tmp, KUBECONFIG=kube.kubeconfig)
    p = subprocess.Popen([kubectl.exe, "get", "services", "-n", "shop", "--watch",
                          "--request-timeout=3s"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(r["watch"] for r in kube.requests):
            time.sleep(0.05)
        kube.modify_service("shop", "cart", type="NodePort",
                            ports=[{"port": 80, "nodePort": 31080}])
        out, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    rows = table(out)
    assert rows[0][:2] == ["NAME", "TYPE"]
    assert ["cart", "NodePort"] == rows[-1][:2] and rows[-1][4] == "80:31080/TCP", out
    w = [r for r in kube.requests if r["watch"]]
    assert w and w[0]["query"].get("resourceVersion"), w
    kube.modify_service("shop", "cart", type="ClusterIP", ports=[{"port": 80}])


def test_raw_version_without_token(kubectl, kube):
    assert '"gitVersion": "v1.29.4"' in kubectl("get", "--raw", "/version").stdout
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=kube.ca_file)
    with urllib.request.urlopen(kube.url + "/version", context=ctx, timeout=5) as r:
        assert r.status == 200


def test_api_resources(kubectl):
    rows = table(kubectl("api-resources").stdout)
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    got = {r[0]: r[1:] for r in rows[1:]}
    assert got["services"] == ["svc", "v1", "true", "Service"]
    assert got["nodes"] == ["no", "v1", "false", "Node"]
    assert got["endpointslices"] == ["discovery.k8s.io/v1", "true", "EndpointSlice"]
    assert got["kubefedclusters"] == ["core.kubefed.io/v1beta1", "true", "KubeFedCluster"]
    assert got["clusters"] == ["cluster.karmada.io/v1alpha1", "false", "Cluster"]
    assert got["federatedservices"] == ["types.kubefed.io/v1beta1", "true", "FederatedService"]
    assert got["servicednsrecords"] == ["multiclusterdns.kubefed.io/v1alpha1", "true",
                                        "ServiceDNSRecord"]
    assert got["secrets"] == ["v1", "true", "Secret"]


def test_added_kind_kubefedclusters(kubectl):
    """A kind added by one RESOURCES entry: discovery, routing and Table output."""
    rows = table(kubectl("-n", "kube-federation-system", "get", "kubefedclusters").stdout)
    assert rows[0] == ["NAME", "AGE", "READY"] and rows[2][0] == "usa" and rows[2][2] == "True"
    out = kubectl("-n", "kube-federation-system", "get", "kubefedcluster", "usa",
                  "-o", "jsonpath={.spec.apiEndpoint}").stdout
    assert out == "https://usa.example.test:6443"


def test_get_kubefedclusters_all_namespaces(kubectl):
    rows = table(kubectl("get", "kubefedclusters", "-A").stdout)
    assert rows[0] == ["NAMESPACE", "NAME", "AGE", "READY"]
    assert [r[:2] for r in rows[1:]] == [["kube-federation-system", "eur"],
                                         ["kube-federation-system", "usa"]]
    assert all(r[3] == "True" for r in rows[1:])
    out = kubectl("get", "kubefedclusters", "-n", "kube-federation-system", "eur", "-o",
                  "jsonpath={.spec.secretRef.name} {.metadata.labels}").stdout
    assert out.startswith("eur-") and "topology.kubernetes.io/region" in out
    # The Secret kubefedctl join wrote, as kubectl shows Secrets.
    rows = table(kubectl("get", "secrets", "-n", "kube-federation-system").stdout)
    assert rows[0] == ["NAME", "TYPE", "DATA", "AGE"]
    assert [r[0].startswith("eur-") and r[1:3] for r in rows[1:]] == [["Opaque", "1"]]


def test_get_karmada_clusters(kubectl):
    rows = table(kubectl("get", "clusters.cluster.karmada.io").stdout)
    assert rows[0] == ["NAME", "VERSION", "MODE", "READY", "AGE"]
    assert [r[:4] for r in rows[1:]] == [["member1", "v1.29.4", "Push", "True"],
                                         ["member2", "v1.29.4", "Push", "True"]]
    rows = table(kubectl("get", "clusters.cluster.karmada.io", "-o", "wide").stdout)
    assert rows[0] == ["NAME", "VERSION", "MODE", "READY", "AGE", "ZONES", "REGION", "PROVIDER",
                       "API-ENDPOINT", "PROXY-URL"]
    by = {r[0]: r for r in rows[1:]}
    assert by["member1"][5:] == ["eu-west-1a,eu-west-1b", "eu-west-1", "aws",
                                 by["member1"][8], "<none>"]
    assert by["member1"][8].startswith("https://127.0.0.1:")
    assert by["member2"][5:8] == ["<none>", "<none>", "<none>"]
    # Cluster-scoped: no namespace column even with -A, and no namespace path.
    assert table(kubectl("get", "clusters.cluster.karmada.io", "-A").stdout)[0][0] == "NAME"
    out = kubectl("get", "clusters.cluster.karmada.io", "member1", "-o",
                  "jsonpath={.spec.secretRef.namespace}/{.spec.secretRef.name}").stdout
    assert out == "karmada-cluster/member1"


def test_get_federatedservices_and_dns_records(kubectl):
    rows = table(kubectl("get", "federatedservices", "-A").stdout)
    assert rows[0] == ["NAMESPACE", "NAME", "AGE"]
    assert [r[:2] for r in rows[1:]] == [["default", "web"], ["shop", "cart"]]
    out = kubectl("get", "federatedservices", "-n", "default", "web", "-o",
                  "jsonpath={.spec.placement.clusters[*].name}").stdout
    assert out == "eur"
    rows = table(kubectl("get", "servicednsrecords", "-A").stdout)
    assert rows[0] == ["NAMESPACE", "NAME", "AGE"] and rows[1][:2] == ["default", "web"]
    rows = table(kubectl("get", "domains.multiclusterdns.kubefed.io", "-A").stdout)
    assert rows[1][:2] == ["kube-federation-system", "myfed"]


def test_get_one_and_not_found(kubectl):
    rows = table(kubectl("get", "service", "web", "-n", "default").stdout)
    assert rows[1][0] == "web"
    p = kubectl("get", "service", "nope", "-n", "default", ok=False)
    assert 'services "nope" not found' in p.stderr
    p = kubectl("get", "endpointslice", "nope", "-n", "default", ok=False)
    assert 'endpointslices.discovery.k8s.io "nope" not found' in p.stderr
