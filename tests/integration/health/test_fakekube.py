# SPDX-License-Identifier: Apache-2.0
"""Self-test of fakekube: the fake API server behaves as the real one does on
every path and fault the health tests rely on. Real clients (ssl, urllib,
curl) talk to it over loopback."""

import base64
import json
import os
import queue
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

import fakekube


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fakekube"))


@pytest.fixture(scope="module")
def kube(workdir):
    fk = fakekube.FakeKube("usa", workdir)
    fk.bookmark_interval = 0.3
    fk.start()
    yield fk
    fk.stop()


@pytest.fixture
def fk(kube):
    """The shared server, with every fault switched off again afterwards."""
    yield kube
    kube.hang(False)
    kube.garbage(False)
    kube.set_ready(True)
    for r in fakekube.RESOURCES:
        kube.deny(r, False)
    if kube._server is None:
        kube.start()


def ctx_for(fk):
    return ssl.create_default_context(cafile=fk.ca_file)


def get(fk, path, token="default", timeout=5, ctx=None):
    """(status, parsed JSON or raw bytes) for GET path."""
    req = urllib.request.Request(fk.url + path)
    if token == "default":
        token = fk.token
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx or ctx_for(fk)) as r:
            code, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        code, body = e.code, e.read()
    try:
        return code, json.loads(body)
    except ValueError:
        return code, body


class Stream:
    """A raw HTTP/1.1 client for watch streams: parses the chunked framing
    itself (in a reader thread) so partial chunks and abrupt closes are
    visible, and a stalled stream shows up as a TimeoutError from event()."""

    def __init__(self, fk, path, token=None, timeout=5):
        self.timeout = timeout
        raw = socket.create_connection((fk.host, fk.port), timeout=timeout)
        self.sock = ctx_for(fk).wrap_socket(raw, server_hostname=fk.host)
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
               "Accept: application/json\r\n\r\n" % (path, fk.host, fk.port, token or fk.token))
        self.sock.sendall(req.encode())
        self.f = self.sock.makefile("rb")
        self.status = int(self.f.readline().split()[1])
        self.headers = {}
        while True:
            line = self.f.readline().decode().strip()
            if not line:
                break
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        self.sock.settimeout(None)  # the reader thread blocks; event() times out
        self.ended = False  # saw the final zero-length chunk
        self.q = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        buf = b""
        try:
            while True:
                size_line = self.f.readline()
                if not size_line:
                    self.q.put(("eof", "connection closed between chunks"))
                    return
                size = int(size_line.strip(), 16)
                data = self.f.read(size)
                if len(data) < size:
                    self.q.put(("eof", "partial chunk: %r" % data))
                    return
                self.f.read(2)
                if size == 0:
                    self.q.put(("end", None))
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.q.put(("line", line))
        except (OSError, ValueError) as e:
            self.q.put(("eof", "read error: %s" % e))

    def event(self, timeout=None):
        """Next event (dict); None at the clean end of the stream; EOFError on
        a cut; TimeoutError when nothing comes; ValueError on invalid JSON."""
        try:
            kind, val = self.q.get(timeout=timeout or self.timeout)
        except queue.Empty:
            raise TimeoutError("no event")
        if kind == "end":
            self.ended = True
            self.q.put((kind, val))
            return None
        if kind == "eof":
            self.q.put((kind, val))
            raise EOFError(val)
        return json.loads(val)

    def events_until(self, pred, limit=50):
        out = []
        for _ in range(limit):
            ev = self.event()
            if ev is None:
                break
            out.append(ev)
            if pred(ev):
                break
        return out

    def close(self):
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def curl(fk, path, *args, token="default"):
    cmd = ["curl", "-sS", "--max-time", "5", "--cacert", fk.ca_file]
    if token == "default":
        token = fk.token
    if token:
        cmd += ["-H", "Authorization: Bearer " + token]
    cmd += list(args) + ["-w", "\n%{http_code}", fk.url + path]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    body, _, code = r.stdout.rpartition("\n")
    return r.returncode, int(code or 0), body, r.stderr


# -- TLS, auth, RBAC -------------------------------------------------------------


def test_tls_with_ca_and_health_paths(fk):
    assert get(fk, "/readyz", token=None) == (200, b"ok")
    assert get(fk, "/healthz", token=None) == (200, b"ok")
    assert get(fk, "/livez", token=None) == (200, b"ok")
    code, v = get(fk, "/version")
    assert code == 200 and v["major"] == "1" and v["gitVersion"].startswith("v1.")
    fk.set_ready(False)
    assert get(fk, "/readyz", token=None)[0] == 500
    # Without the fake's CA the certificate does not verify.
    with pytest.raises(urllib.error.URLError) as ei:
        get(fk, "/readyz", ctx=ssl.create_default_context())
    assert "CERTIFICATE_VERIFY_FAILED" in str(ei.value)


def test_unauthorized(fk):
    for token in (None, "wrong"):
        code, st = get(fk, "/api/v1/services", token=token)
        assert code == 401
        assert st == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Failure", "message": "Unauthorized",
                      "reason": "Unauthorized", "code": 401}


def test_forbidden(fk):
    fk.deny("services")
    code, st = get(fk, "/api/v1/services")
    assert code == 403 and st["reason"] == "Forbidden" and st["code"] == 403
    assert st["message"] == (
        'services is forbidden: User "system:serviceaccount:fedgslb-system:fedgslb-health" '
        'cannot list resource "services" in API group "" at the cluster scope')
    code, st = get(fk, "/api/v1/namespaces/web/services?watch=1")
    assert code == 403 and st["message"].endswith(
        'cannot watch resource "services" in API group "" in the namespace "web"')
    fk.deny("endpointslices")
    code, st = get(fk, "/apis/discovery.k8s.io/v1/endpointslices")
    assert code == 403 and st["message"].startswith(
        "endpointslices.discovery.k8s.io is forbidden: ")
    assert 'in API group "discovery.k8s.io" at the cluster scope' in st["message"]
    fk.deny("services", False)
    assert get(fk, "/api/v1/services")[0] == 200


def test_short_lived_signed_tokens(fk):
    fk.token_secret = "k3y"
    try:
        good = fakekube.sign_token("k3y", time.time() + 30)
        assert get(fk, "/api/v1/services", token=good)[0] == 200
        old = fakekube.sign_token("k3y", time.time() - 1)
        before = fk.expired_rejections
        assert get(fk, "/api/v1/services", token=old)[0] == 401
        assert fk.expired_rejections == before + 1
        forged = fakekube.sign_token("other", time.time() + 30)
        assert get(fk, "/api/v1/services", token=forged)[0] == 401
        bad = good[:-1] + ("1" if good[-1] == "0" else "0")
        assert get(fk, "/api/v1/services", token=bad)[0] == 401
    finally:
        fk.token_secret = None


def test_version_needs_no_token_but_discovery_does(fk):
    code, v = get(fk, "/version", token=None)
    assert code == 200 and v["gitVersion"].startswith("v1.")
    assert get(fk, "/api", token=None)[0] == 401
    code, api = get(fk, "/api")
    assert code == 200 and api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    code, groups = get(fk, "/apis")
    assert code == 200 and groups["kind"] == "APIGroupList"
    names = {g["name"] for g in groups["groups"]}
    assert {k.group for k in fakekube.RESOURCES.values() if k.group} == names
    code, rl = get(fk, "/apis/discovery.k8s.io/v1")
    assert code == 200 and [r["name"] for r in rl["resources"]] == ["endpointslices"]
    code, rl = get(fk, "/api/v1")
    core = {r["name"]: r for r in rl["resources"]}
    assert core["services"]["namespaced"] is True and core["nodes"]["namespaced"] is False
    assert core["services"]["verbs"] == ["get", "list", "watch"]
    assert get(fk, "/apis/nope.example.com")[0] == 404


def test_selectors_are_validated(fk):
    for sel, code in (("a in (x,y)", 200), ("!a", 200), ("a notin ()", 400),
                      ("a in x", 400), ("a b", 400), ("a=", 200), ("=x", 400),
                      ("a,", 400), ("in (x)", 400), ("a>1", 200), ("a>x", 400)):
        got = get(fk, "/api/v1/services?labelSelector=" + urllib.request.quote(sel))[0]
        assert got == code, (sel, got)
    code, st = get(fk, "/api/v1/services?fieldSelector=spec.type%3DClusterIP")
    assert code == 400 and st["message"] == "field label not supported: spec.type"
    code, st = get(fk, "/api/v1/services?watch=1&fieldSelector=status.x%3D1")
    assert code == 400
    assert get(fk, "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse")[0] == 200


def test_not_found(fk):
    code, st = get(fk, "/api/v1/pods")
    assert code == 404 and st["reason"] == "NotFound"
    code, st = get(fk, "/api/v1/namespaces/nope/services/missing")
    assert code == 404 and st["message"] == 'services "missing" not found'


def test_curl_real_client(fk):
    fk.add_service("curlns", "curlsvc")
    rc, code, body, err = curl(fk, "/api/v1/namespaces/curlns/services")
    assert rc == 0, err
    assert code == 200
    lst = json.loads(body)
    assert lst["kind"] == "ServiceList" and lst["apiVersion"] == "v1"
    assert [s["metadata"]["name"] for s in lst["items"]] == ["curlsvc"]
    rc, code, body, err = curl(fk, "/api/v1/services", token="bad")
    assert rc == 0 and code == 401


# -- objects and lists ------------------------------------------------------------------


def test_objects_are_realistic(fk):
    svc = fk.add_service("objs", "web", annotations={"fedgslb.io/weight": "3"})
    md = svc["metadata"]
    assert md["namespace"] == "objs" and len(md["uid"]) == 36
    assert int(md["resourceVersion"]) == fk.resource_version
    assert md["creationTimestamp"].endswith("Z") and md["annotations"]["fedgslb.io/weight"] == "3"
    assert svc["spec"]["type"] == "LoadBalancer" and svc["spec"]["ipFamilies"] == ["IPv4"]
    assert svc["spec"]["clusterIPs"] == [svc["spec"]["clusterIP"]]
    assert svc["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 80,
                                     "targetPort": 80, "nodePort": 30080}]
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.10"}]
    h = fk.add_service("objs", "byname", lb_ingress=[{"hostname": "lb.example"}])
    assert h["status"]["loadBalancer"]["ingress"] == [{"hostname": "lb.example"}]
    c = fk.add_service("objs", "internal", type="ClusterIP")
    assert "nodePort" not in c["spec"]["ports"][0] and c["status"] == {"loadBalancer": {}}

    fk.add_node("objs-n1", "10.0.0.1", "203.0.113.1")
    slices = fk.set_endpoints("objs", "web", ready=3, not_ready=2, slices=2)
    assert len(slices) == 2
    eps = [e for s in slices for e in s["endpoints"]]
    assert sum(e["conditions"]["ready"] for e in eps) == 3 and len(eps) == 5
    s0 = slices[0]
    assert s0["addressType"] == "IPv4" and s0["ports"][0]["port"] == 80
    assert s0["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    assert s0["metadata"]["ownerReferences"][0]["uid"] == md["uid"]
    assert set(eps[0]) >= {"addresses", "conditions", "nodeName", "zone", "targetRef"}
    assert set(eps[0]["conditions"]) == {"ready", "serving", "terminating"}
    v6 = fk.set_endpoints("objs", "byname", ready=1, family="IPv6")
    assert ":" in v6[0]["endpoints"][0]["addresses"][0] and v6[0]["addressType"] == "IPv6"
    empty = fk.set_endpoints("objs", "internal", ready=0)
    assert empty[0]["endpoints"] is None

    code, lst = get(fk, "/apis/discovery.k8s.io/v1/namespaces/objs/endpointslices"
                        "?labelSelector=kubernetes.io/service-name%3Dweb")
    assert code == 200 and lst["kind"] == "EndpointSliceList"
    assert lst["apiVersion"] == "discovery.k8s.io/v1" and len(lst["items"]) == 2
    assert "kind" not in lst["items"][0]  # list items carry no kind, as for real
    code, nodes = get(fk, "/api/v1/nodes")
    n = [x for x in nodes["items"] if x["metadata"]["name"] == "objs-n1"][0]
    assert {"type": "ExternalIP", "address": "203.0.113.1"} in n["status"]["addresses"]
    ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "True"
    fk.set_node_ready("objs-n1", False)
    code, one = get(fk, "/api/v1/nodes/objs-n1")
    assert [c for c in one["status"]["conditions"] if c["type"] == "Ready"][0]["status"] == "False"
    fk.delete_service("objs", "web")  # takes its slices along
    assert get(fk, "/apis/discovery.k8s.io/v1/namespaces/objs/endpointslices"
                   "?labelSelector=kubernetes.io/service-name%3Dweb")[1]["items"] == []
    fk.delete_node("objs-n1")


def test_list_pagination_and_expired_continue(fk):
    for i in range(5):
        fk.add_service("pages", "svc-%d" % i)
    names, cont, pages = [], None, 0
    first_rv = None
    while True:
        path = "/api/v1/namespaces/pages/services?limit=2"
        if cont:
            path += "&continue=" + cont
        code, lst = get(fk, path)
        assert code == 200
        first_rv = first_rv or lst["metadata"]["resourceVersion"]
        assert lst["metadata"]["resourceVersion"] == first_rv  # one snapshot
        names += [s["metadata"]["name"] for s in lst["items"]]
        pages += 1
        if pages == 1:
            fk.add_service("pages", "svc-late")  # not in this consistent list
            assert lst["metadata"]["remainingItemCount"] == 3
        cont = lst["metadata"].get("continue")
        if not cont:
            break
    assert names == ["svc-%d" % i for i in range(5)] and pages == 3

    code, lst = get(fk, "/api/v1/namespaces/pages/services?limit=2")
    cont = lst["metadata"]["continue"]
    fk.compact()
    code, st = get(fk, "/api/v1/namespaces/pages/services?limit=2&continue=" + cont)
    assert code == 410 and st["reason"] == "Expired" and st["code"] == 410
    code, st = get(fk, "/api/v1/services?continue=garbage!")
    assert code == 400


# -- watch --------------------------------------------------------------------------


def test_watch_replay_live_bookmark_timeout(fk):
    fk.add_service("watch", "a")
    rv0 = fk.resource_version
    fk.add_service("watch", "b")
    fk.modify_service("watch", "a", lb_ingress=[{"ip": "192.0.2.99"}])
    fk.add_service("other", "c")  # another namespace: filtered out
    s = Stream(fk, "/api/v1/namespaces/watch/services?watch=1&resourceVersion=%d"
                   "&allowWatchBookmarks=true&timeoutSeconds=3" % rv0)
    try:
        assert s.status == 200 and s.headers["transfer-encoding"] == "chunked"
        evs = [s.event(), s.event()]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [
            ("ADDED", "b"), ("MODIFIED", "a")]
        assert evs[0]["object"]["kind"] == "Service"  # watch objects carry kind
        assert evs[1]["object"]["status"]["loadBalancer"]["ingress"][0]["ip"] == "192.0.2.99"
        fk.delete_service("watch", "b")
        ev = s.event()
        assert ev["type"] == "DELETED" and ev["object"]["metadata"]["name"] == "b"
        assert int(ev["object"]["metadata"]["resourceVersion"]) == fk.resource_version
        bm = s.events_until(lambda e: e["type"] == "BOOKMARK")[-1]
        assert bm["type"] == "BOOKMARK"
        assert bm["object"] == {"kind": "Service", "apiVersion": "v1",
                                "metadata": {"resourceVersion": str(fk.resource_version)}}
        t0 = time.monotonic()
        rest = s.events_until(lambda e: False)
        assert all(e["type"] == "BOOKMARK" for e in rest)
        assert s.ended and time.monotonic() - t0 < 3.5  # timeoutSeconds: clean end
    finally:
        s.close()


def test_watch_without_rv_lists_first(fk):
    fk.add_node("wn-1", "10.0.0.7")
    s = Stream(fk, "/api/v1/nodes?watch=true&timeoutSeconds=1")
    try:
        evs = s.events_until(lambda e: False)
        assert ("ADDED", "wn-1") in [(e["type"], e["object"]["metadata"]["name"]) for e in evs]
        assert s.ended
    finally:
        s.close()
    fk.delete_node("wn-1")


def test_watch_label_selector(fk):
    rv = fk.resource_version
    fk.set_endpoints("sel", "one", ready=1)
    fk.set_endpoints("sel", "two", ready=1)
    s = Stream(fk, "/apis/discovery.k8s.io/v1/endpointslices?watch=1&resourceVersion=%d"
                   "&labelSelector=kubernetes.io/service-name%%3Dtwo&timeoutSeconds=1" % rv)
    try:
        evs = s.events_until(lambda e: False)
        assert [e["object"]["metadata"]["labels"]["kubernetes.io/service-name"]
                for e in evs] == ["two"]
    finally:
        s.close()


def test_watch_too_old_rv_gets_error_event(fk):
    rv = fk.resource_version
    fk.add_service("old", "x")
    fk.compact()
    s = Stream(fk, "/api/v1/services?watch=1&resourceVersion=%d" % rv)
    try:
        assert s.status == 200
        ev = s.event()
        assert ev["type"] == "ERROR"
        st = ev["object"]
        assert st["kind"] == "Status" and st["code"] == 410 and st["reason"] == "Expired"
        assert st["message"] == "too old resource version: %d (%d)" % (rv, fk.resource_version)
        assert s.event() is None and s.ended
    finally:
        s.close()
    # The current RV is still fine after a compaction.
    s = Stream(fk, "/api/v1/services?watch=1&resourceVersion=%d&timeoutSeconds=1"
                   % fk.resource_version)
    try:
        fk.add_service("old", "y")
        ev = s.event()
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "y"
    finally:
        s.close()


@pytest.mark.parametrize("res", sorted(fakekube.RESOURCES))
def test_every_kind_lists_and_watches_like_services(fk, res):
    """List with resourceVersion and pagination, watch from it with
    bookmarks, and 410 for a compacted RV: the same for every served kind."""
    k = fakekube.RESOURCES[res]
    base = "/api/v1" if k.group == "" else "/apis/" + k.api_version
    ns = "kinds-" + res[:8]
    objs = [{"metadata": dict({"name": "%s-%d" % (res[:8], i)},
                              **({"namespace": ns} if k.namespaced else {}))}
            for i in range(3)]
    for o in objs:
        fk.put(res, o)
    path = base + ("/namespaces/%s/" % ns if k.namespaced else "/") + res
    code, page = get(fk, path + "?limit=2")
    assert code == 200 and page["kind"] == k.kind + "List" and page["apiVersion"] == k.api_version
    rv = page["metadata"]["resourceVersion"]
    assert page["metadata"]["continue"] and len(page["items"]) == 2
    code, rest = get(fk, path + "?limit=2&continue=" + page["metadata"]["continue"])
    assert code == 200 and len(rest["items"]) >= 1 and rest["metadata"]["resourceVersion"] == rv
    s = Stream(fk, path + "?watch=1&resourceVersion=%s&allowWatchBookmarks=true"
                          "&timeoutSeconds=3" % rv)
    try:
        fk.remove(res, ns if k.namespaced else None, objs[0]["metadata"]["name"])
        # A bookmark may come first when the machine is slow (as from a real
        # API server): the first event that is not one is the deletion.
        ev = s.events_until(lambda e: e["type"] != "BOOKMARK")[-1]
        assert ev["type"] == "DELETED" and ev["object"]["kind"] == k.kind
        bm = s.events_until(lambda e: e["type"] == "BOOKMARK")[-1]
        assert bm["object"]["kind"] == k.kind and bm["object"]["apiVersion"] == k.api_version
    finally:
        s.close()
    fk.compact()
    s = Stream(fk, path + "?watch=1&resourceVersion=%s" % rv)
    try:
        ev = s.event()
        assert ev["type"] == "ERROR" and ev["object"]["code"] == 410
    finally:
        s.close()
    for o in objs[1:]:
        fk.remove(res, ns if k.namespaced else None, o["metadata"]["name"])


def test_drop_streams_cuts_mid_event(fk):
    s = Stream(fk, "/api/v1/services?watch=1&resourceVersion=%d" % fk.resource_version)
    try:
        deadline = time.monotonic() + 2
        while fk.open_watches() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fk.drop_streams() >= 1
        with pytest.raises(EOFError) as ei:
            s.event()
        assert "partial chunk" in str(ei.value)
        assert fk.open_watches() == 0
    finally:
        s.close()


def test_hang(fk):
    fk.hang(True)
    t0 = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        get(fk, "/api/v1/services", timeout=0.5)
    assert time.monotonic() - t0 < 3
    rc, code, _, _ = curl(fk, "/readyz", "--max-time", "1", token=None)
    assert rc == 28  # curl: operation timed out
    fk.hang(False)
    assert get(fk, "/api/v1/services")[0] == 200


def test_hang_stalls_open_streams(fk):
    s = Stream(fk, "/api/v1/services?watch=1&resourceVersion=%d&allowWatchBookmarks=true"
                   % fk.resource_version, timeout=1.0)
    try:
        fk.hang(True)
        fk.add_service("hang", "z")
        seen = []
        with pytest.raises(TimeoutError):
            for _ in range(100):  # at most a bookmark sent before hang(True)
                seen.append(s.event())
        assert all(e["type"] == "BOOKMARK" for e in seen)
        fk.hang(False)
        ev = s.events_until(lambda e: e["type"] == "ADDED")[-1]
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "z"
    finally:
        fk.hang(False)
        s.close()


def test_garbage(fk):
    fk.add_service("garb", "g")
    fk.garbage(True)
    code, body = get(fk, "/api/v1/services")
    assert code == 200 and isinstance(body, bytes)
    with pytest.raises(ValueError):
        json.loads(body)
    s = Stream(fk, "/api/v1/namespaces/garb/services?watch=1&timeoutSeconds=1")
    try:
        with pytest.raises(ValueError):
            s.event()
    finally:
        s.close()
    fk.garbage(False)
    code, body = get(fk, "/api/v1/namespaces/garb/services")
    assert code == 200 and body["items"][0]["metadata"]["name"] == "g"


def test_stop_start_and_new_history(fk):
    port = fk.port
    fk.add_service("hist", "h")
    old_rv = fk.resource_version
    s = Stream(fk, "/api/v1/services?watch=1&resourceVersion=%d" % old_rv)
    t0 = time.monotonic()
    fk.stop()
    assert time.monotonic() - t0 < 3
    with pytest.raises(EOFError):
        s.event()  # the stream ends with the server
    s.close()
    with pytest.raises(urllib.error.URLError):
        get(fk, "/readyz", token=None, timeout=1)
    fk.start()
    assert fk.port == port and get(fk, "/readyz", token=None)[0] == 200

    fk.restart(new_history=True)
    assert fk.port == port
    code, lst = get(fk, "/api/v1/namespaces/hist/services")
    new_rv = int(lst["metadata"]["resourceVersion"])
    assert new_rv > old_rv + 1000  # an unrelated sequence
    assert int(lst["items"][0]["metadata"]["resourceVersion"]) > old_rv + 1000
    s = Stream(fk, "/api/v1/services?watch=1&resourceVersion=%d" % old_rv)
    try:
        ev = s.event()
        assert ev["type"] == "ERROR" and ev["object"]["code"] == 410
    finally:
        s.close()


# -- client certificates and kubeconfig -----------------------------------------------


def test_client_cert_auth(workdir):
    fk = fakekube.FakeKube("jpn", workdir, client_cert_auth=True)
    with fk:
        rc, code, body, err = curl(fk, "/api/v1/services", "--cert", fk.client_cert_file,
                                   "--key", fk.client_key_file, token=None)
        assert rc == 0 and code == 200, err
        assert json.loads(body)["kind"] == "ServiceList"
        rc, code, _, _ = curl(fk, "/api/v1/services", token=None)
        assert rc != 0 or code != 200  # no certificate: the handshake fails
        fk.deny("nodes")
        rc, code, body, _ = curl(fk, "/api/v1/nodes", "--cert", fk.client_cert_file,
                                 "--key", fk.client_key_file, token=None)
        assert code == 403 and 'User "fedgslb-health"' in json.loads(body)["message"]


def test_plain_http(workdir):
    fk = fakekube.FakeKube("plain", workdir, tls=False)
    with fk:
        assert fk.url.startswith("http://") and fk.ca_file is None
        with urllib.request.urlopen(fk.url + "/readyz", timeout=5) as r:
            assert r.read() == b"ok"


def test_write_kubeconfig(kube, workdir):
    path = os.path.join(workdir, "kubeconfig.yaml")
    fakekube.write_kubeconfig(path, [("usa", kube, "token-ca-data"),
                                     ("eur", kube, "insecure"),
                                     ("jpn", kube, "client-cert"),
                                     ("aus", kube, "token-file"),
                                     ("bra", kube, "token-ca-file")])
    text = open(path).read()
    assert text.startswith("apiVersion: v1\nclusters:\n- cluster:\n")
    assert "current-context: usa\n" in text and "kind: Config\n" in text
    assert "    insecure-skip-tls-verify: true\n" in text
    with open(os.path.join(workdir, "aus.token")) as f:
        assert f.read().strip() == kube.token
    try:
        import yaml
    except ImportError:
        return
    doc = yaml.safe_load(text)
    clusters = {c["name"]: c["cluster"] for c in doc["clusters"]}
    users = {u["name"]: u["user"] for u in doc["users"]}
    assert clusters["usa"]["server"] == kube.url
    assert base64.b64decode(clusters["usa"]["certificate-authority-data"]).decode() == kube.ca_pem
    assert users["usa-admin"] == {"token": kube.token}
    assert base64.b64decode(users["jpn-admin"]["client-key-data"]).decode() == kube.client_key_pem
    assert clusters["bra"]["certificate-authority"] == kube.ca_file
    assert {c["name"]: c["context"] for c in doc["contexts"]}["eur"] == {
        "cluster": "eur", "user": "eur-admin"}
