# SPDX-License-Identifier: Apache-2.0
"""fakekube -- a faithful fake Kubernetes API server for the health tests.

No real API server can be installed here, so this module serves the few
read paths fedgslb-health uses, the way kube-apiserver serves them: the same
URLs, JSON shapes, list pagination, watch streams (HTTP/1.1 chunked, one JSON
event per line), bookmarks, 401/403/410 Status objects, TLS with a private CA
and optional client-certificate authentication. Standard library only, plus
the `openssl` command for certificates.

API (other tests rely on it; keep it stable)
--------------------------------------------
    fk = FakeKube(name, workdir, token="tok-<name>", tls=True,
                  client_cert_auth=False, host="127.0.0.1", port=0, server_sans=None)
        The port is chosen at construction (port=0: a free one), so url and a
        kubeconfig can be written before start(). With tls=True a CA, a server
        certificate (SAN IP:127.0.0.1, IP:<host>, DNS:localhost) and a client
        certificate (CN=fedgslb-health, O=system:masters) are generated under
        workdir/<name>/. client_cert_auth=True makes the server require a client
        certificate signed by its CA (ssl.CERT_REQUIRED); a verified
        certificate then authenticates the request and no token is needed.
        server_sans: the server certificate's subjectAltName entries instead of
        the default ones, e.g. ["DNS:kubernetes.internal"] for a certificate
        that does not name 127.0.0.1 (tls-server-name tests).
    fk.start(); fk.stop(); fk.restart(new_history=False)
        stop() closes the listening socket and every open connection (watch
        streams included) at once. start() listens again on the same port.
        restart(new_history=True) also restamps every object in a new,
        unrelated resourceVersion sequence and forgets the old history: any
        old resourceVersion then gets 410 Expired (watch: ERROR event), and old
        continue tokens get HTTP 410. Objects survive restarts (etcd does).
    fk.url            "https://127.0.0.1:PORT" ("http://..." when tls=False)
    fk.host, fk.port, fk.name, fk.token, fk.user (the identity in 403 texts)
    fk.ca_file, fk.ca_pem (str), fk.client_cert_file, fk.client_key_file,
    fk.client_cert_pem, fk.client_key_pem (None when tls=False)
    fk.bookmark_interval = 1.0   seconds between BOOKMARK events
    fk.token may be reassigned at run time (token rotation): from then on only
        the new token is accepted (open watch streams stay; drop_streams()).
    fk.tls_server_name = None    when set, kubeconfig entries carry it as the
        cluster's tls-server-name
    fk.token_secret = None       when set, short-lived tokens are accepted too:
        sign_token(secret, expires_at) -> "exp.<unix>.<hmac-sha256>", valid
        until expires_at, then 401 (fk.expired_rejections counts those; the
        test exec plugin exec_plugin.py hands such tokens out)
    fk.resource_version          current global resourceVersion (int)

  Kubeconfig:
    write_kubeconfig(path, [(context_name, fk, style), ...], current_context=None)
        Writes a kubeconfig as kubectl writes one: apiVersion, clusters
        (cluster name = context name), contexts, current-context (default: the
        first member), kind: Config, preferences: {}, users (user name =
        "<context>-admin"). Styles:
          "token-ca-data"  certificate-authority-data + token
          "insecure"       insecure-skip-tls-verify: true + token
          "client-cert"    certificate-authority-data + client-certificate-data
                           + client-key-data
          "token-ca-file"  certificate-authority: <path to fk.ca_file> + token
          "token-file"     certificate-authority-data + tokenFile: <file holding
                           the token, written beside the kubeconfig>
    fk.kubeconfig_entry(context_name, style) -> {"cluster":..., "user":...,
        "context":...} (the named entries as dicts)
    fk.write_kubeconfig_entry(path, context_name=None, style="token-ca-data")
        write_kubeconfig(path, [(context_name or fk.name, fk, style)])

  Objects (each change takes the next global resourceVersion and is recorded
  in the watch history):
    fk.add_service(ns, name, ports=None, type="LoadBalancer", lb_ingress=None,
                   annotations=None, labels=None, ip_family="IPv4") -> obj
        ports default [{"name":"http","port":80,"protocol":"TCP",
        "nodePort":30080}]; targetPort defaults to port; nodePort is dropped
        for ClusterIP. lb_ingress default [{"ip":"192.0.2.10"}] for
        LoadBalancer (pass [] for a pending LB, or [{"hostname":"lb.example"}]).
    fk.modify_service(ns, name, ports=..., type=..., lb_ingress=...,
                      annotations=..., labels=..., mutate=callable(obj)) -> obj
    fk.delete_service(ns, name)     also deletes its EndpointSlices, as the
                                    garbage collector does
    fk.set_endpoints(ns, service, ready=1, not_ready=0, slices=1,
                     family="IPv4", terminating=0, zone=None, port=None) -> [slices]
        Spreads the endpoints over `slices` discovery.k8s.io/v1 EndpointSlices
        named "<service>-<suffix>", labelled kubernetes.io/service-name and
        endpointslice.kubernetes.io/managed-by. Each endpoint has addresses,
        conditions {ready, serving, terminating}, nodeName, zone, targetRef.
        Slice ports mirror the Service's targetPorts (or `port`). Existing
        slices are updated in place (MODIFIED), surplus ones deleted. An empty
        slice has "endpoints": null, as the real controller writes it.
    fk.delete_endpoints(ns, service)
    fk.add_node(name, internal_ip, external_ip=None, ready=True, zone=None)
    fk.set_node_ready(name, ready, status=None)   status: "True"/"False"/"Unknown"
    fk.delete_node(name)
    fk.get(resource, ns, name) -> a copy of the stored object or None
        (resource: any key of RESOURCES)
    fk.put(resource, obj) / fk.remove(resource, ns, name)   any served kind,
        e.g. "kubefedclusters" (core.kubefed.io/v1beta1 KubeFedCluster)

  A host cluster's member registry (the kinds: kubefedclusters, secrets,
  clusters (cluster.karmada.io/v1alpha1, cluster-scoped), federatedservices
  (types.kubefed.io/v1beta1), domains and servicednsrecords
  (multiclusterdns.kubefed.io/v1alpha1)):
    fk.join_kubefed(name, member_fk, ns="kube-federation-system", labels=None,
                    status=None, token=None, secret_ca=False, ca_bundle=True)
        -> the Secret's name; what kubefedctl join writes
    fk.unjoin_kubefed(name, ns=...)
    fk.join_karmada(name, member_fk, region=None, zones=None,
                    secret_ns="karmada-cluster", insecure=False, token=None)
        what karmadactl join (push mode) writes
    fk.set_secret_token(ns, name, token)   a rotated Secret (MODIFIED)

  Faults (each switchable at run time):
    fk.deny(resource, on=True)  requests for that resource -> 403 Forbidden
    fk.rbac_rules = [...]   ClusterRole rules ({"apiGroups","resources","verbs"})
                        the token's user has; anything else -> 403 Forbidden
                        (None: everything allowed). A rule with "namespace"
                        is a Role's: it grants requests in that namespace only.
    fk.drop_streams()   every open watch stream gets a partial event line
                        (inside a chunk) and then an abrupt close; returns how
                        many were dropped
    fk.hang(on)         accepted connections get no answer (not even the TLS
                        handshake) and open watch streams stall until hang(False)
    fk.garbage(on)      lists and watch events are answered with invalid JSON
    fk.set_ready(ok)    /readyz answers 500 when ok is False
    fk.compact()        forgets the event history (and continue tokens): older
                        resourceVersions become "too old"
    fk.open_watches()   number of open watch streams
    fk.requests         list of {"path", "query", "watch", "user", "status", "host"},
                        one per answered API request (fk.clear_requests());
                        host is the request's Host header

Served paths (GET only)
-----------------------
    /api, /api/v1, /apis, /apis/{group}, /apis/{group}/{version}: discovery
    built from RESOURCES (one Kind entry per served resource).
    Accept "application/json;as=Table;v=v1;g=meta.k8s.io" answers lists, gets
    and watch events as meta.k8s.io Tables with kubectl's columns
    (includeObject=None|Metadata|Object).
    /api/v1/services, /api/v1/namespaces/{ns}/services[/{name}]
    /apis/discovery.k8s.io/v1/endpointslices,
    /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices[/{name}]
    /api/v1/nodes[/{name}]
    and the same for every kind of RESOURCES (secrets, kubefedclusters,
    clusters.cluster.karmada.io, federatedservices, domains, servicednsrecords)
    /readyz /healthz /livez /version (no auth; "ok" or JSON)
  List: {"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":
  "N"[,"continue":"...","remainingItemCount":K]},"items":[...]}; items carry
  no kind/apiVersion, as in the real API. ?limit=N&continue=TOKEN paginates a
  consistent snapshot; an expired token -> 410 Status (reason Expired).
  ?labelSelector= (k=v, k==v, k!=v, k in (a,b), k notin (a), k, !k, k>N,
  k<N; comma = and) and ?fieldSelector= (metadata.name, metadata.namespace,
  spec.unschedulable for nodes, type for secrets) filter lists and watches; a malformed
  selector or an unsupported field is 400 BadRequest, as from the API server.
  Watch: ?watch=1|true[&resourceVersion=RV][&allowWatchBookmarks=true]
  [&timeoutSeconds=N]. Without RV (or RV "0") the current objects come first
  as ADDED; with RV the history after RV is replayed, then live events follow.
  A compacted RV gets a 200 stream with one ERROR event carrying a Status
  {"code":410,"reason":"Expired","message":"too old resource version: X (Y)"}
  and the stream ends. timeoutSeconds ends the stream cleanly (final chunk).
  Auth: "Authorization: Bearer <token>" (fk.token, or a signed token when
  fk.token_secret is set) else 401 Status (reason Unauthorized).
"""

import base64
import bisect
import calendar
import collections
import copy
import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid

class Kind(collections.namedtuple("Kind", "api_version kind group namespaced singular "
                                              "short_names fields columns")):
    """One served resource: everything discovery, routing, field selectors
    and the Table form need. Indexing [0..3] (apiVersion, kind, group,
    namespaced) is kept for older callers."""

    @property
    def version(self):
        return self.api_version.rsplit("/", 1)[-1]


# Table columns: (name, type, format, description, priority, cell(obj, now)).
# The cells are computed as kube-apiserver's printers (pkg/printers/internalversion)
# compute them; priority 1 columns are the ones `-o wide` adds.
def _age(obj, now):
    ts = obj["metadata"].get("creationTimestamp")
    try:
        secs = max(0, int(now - calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))))
    except (TypeError, ValueError):
        return "<unknown>"
    return _human_duration(secs)


def _human_duration(s):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    if s < 60 * 2:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm%ds" % (m, s % 60) if s % 60 else "%dm" % m
    if m < 60 * 3:
        return "%dm" % m
    h = s // 3600
    if h < 8:
        return "%dh%dm" % (h, m % 60) if m % 60 else "%dh" % h
    if h < 48:
        return "%dh" % h
    if h < 24 * 8:
        return "%dd%dh" % (h // 24, h % 24) if h % 24 else "%dd" % (h // 24)
    if h < 24 * 365 * 2:
        return "%dd" % (h // 24)
    if h < 24 * 365 * 8:
        return "%dy%dd" % (h // 8760, (h // 24) % 365)
    return "%dy" % (h // 8760)


def _svc_external_ip(o):
    spec, ext = o.get("spec", {}), o.get("spec", {}).get("externalIPs") or []
    t = spec.get("type")
    if t == "ExternalName":
        return spec.get("externalName", "")
    if t == "LoadBalancer":
        ips = [i.get("ip") or i.get("hostname") or ""
               for i in (o.get("status", {}).get("loadBalancer", {}).get("ingress") or [])]
        ips += ext
        return ",".join(ips) if ips else "<pending>"
    return ",".join(ext) if ext else "<none>"


def _svc_ports(o):
    out = []
    for p in o.get("spec", {}).get("ports") or []:
        if p.get("nodePort"):
            out.append("%d:%d/%s" % (p["port"], p["nodePort"], p.get("protocol", "TCP")))
        else:
            out.append("%d/%s" % (p["port"], p.get("protocol", "TCP")))
    return ",".join(out) if out else "<none>"


def _more(items, limit=3):
    """printers' listWithMoreString: at most three, then ' + N more...'."""
    s = ",".join(str(x) for x in items[:limit])
    if len(items) > limit:
        return "%s + %d more..." % (s, len(items) - limit)
    return s or "<unset>"


def _slice_ports(o):
    return _more([p["port"] if p.get("port") is not None else (p.get("name") or "*")
                  for p in (o.get("ports") or [])])


def _slice_endpoints(o):
    return _more([a for e in (o.get("endpoints") or []) for a in e.get("addresses") or []])


def _node_status(o):
    st = []
    for c in o.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            st.append("Ready" if c.get("status") == "True" else "NotReady")
    if not st:
        st.append("Unknown")
    if o.get("spec", {}).get("unschedulable"):
        st.append("SchedulingDisabled")
    return ",".join(st)


def _node_roles(o):
    roles = set()
    for k, v in (o["metadata"].get("labels") or {}).items():
        if k.startswith("node-role.kubernetes.io/"):
            roles.add(k[len("node-role.kubernetes.io/"):])
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _node_addr(o, kind):
    for a in o.get("status", {}).get("addresses") or []:
        if a.get("type") == kind:
            return a.get("address", "")
    return "<none>"


def _node_info(key, default="<unknown>"):
    return lambda o, now: o.get("status", {}).get("nodeInfo", {}).get(key) or default


def _selector_text(o):
    sel = o.get("spec", {}).get("selector") or {}
    return ",".join("%s=%s" % kv for kv in sorted(sel.items())) or "<none>"


def _ready(o, default):
    """The status of the Ready condition (KubeFedCluster, Karmada Cluster)."""
    return next((c.get("status", "") for c in (o.get("status") or {}).get("conditions") or []
                 if c.get("type") == "Ready"), default)


_NAME_COL = ("Name", "string", "name",
             "Name must be unique within a namespace. Is required when creating resources, "
             "although some resources may allow a client to request the generation of an "
             "appropriate name automatically.", 0, lambda o, now: o["metadata"]["name"])
_AGE_COL = ("Age", "string", "",
            "CreationTimestamp is a timestamp representing the server time when this object "
            "was created.", 0, _age)

_META_FIELDS = ("metadata.name", "metadata.namespace")

# The served kinds. Adding a kind is one entry here: discovery (/api, /apis,
# /apis/<group>[/<version>]), routing, field selectors and Table output follow.
RESOURCES = {
    "services": Kind("v1", "Service", "", True, "service", ["svc"], _META_FIELDS, [
        _NAME_COL,
        ("Type", "string", "", "The type of the service.", 0,
         lambda o, now: o["spec"].get("type", "ClusterIP")),
        ("Cluster-IP", "string", "", "The cluster IP of the service.", 0,
         lambda o, now: o["spec"].get("clusterIP") or "<none>"),
        ("External-IP", "string", "", "The external IP of the service.", 0,
         lambda o, now: _svc_external_ip(o)),
        ("Port(s)", "string", "", "The ports of the service.", 0,
         lambda o, now: _svc_ports(o)),
        _AGE_COL,
        ("Selector", "string", "", "Route service traffic to pods with label keys and "
         "values matching this selector.", 1, lambda o, now: _selector_text(o)),
    ]),
    "endpointslices": Kind("discovery.k8s.io/v1", "EndpointSlice", "discovery.k8s.io", True,
                           "endpointslice", [], _META_FIELDS, [
        _NAME_COL,
        ("AddressType", "string", "", "The IP protocol for this slice.", 0,
         lambda o, now: o.get("addressType", "")),
        ("Ports", "string", "", "Ports of the endpoints.", 0, lambda o, now: _slice_ports(o)),
        ("Endpoints", "string", "", "First three addresses of the endpoints.", 0,
         lambda o, now: _slice_endpoints(o)),
        _AGE_COL,
    ]),
    "nodes": Kind("v1", "Node", "", False, "node", ["no"],
                  _META_FIELDS + ("spec.unschedulable",), [
        _NAME_COL,
        ("Status", "string", "", "The status of the node", 0, lambda o, now: _node_status(o)),
        ("Roles", "string", "", "The roles of the node", 0, lambda o, now: _node_roles(o)),
        _AGE_COL,
        ("Version", "string", "", "Kubelet Version reported by the node.", 0,
         _node_info("kubeletVersion", "")),
        ("Internal-IP", "string", "", "List of addresses reachable to the node.", 1,
         lambda o, now: _node_addr(o, "InternalIP")),
        ("External-IP", "string", "", "List of addresses reachable to the node.", 1,
         lambda o, now: _node_addr(o, "ExternalIP")),
        ("OS-Image", "string", "", "OS Image reported by the node.", 1,
         _node_info("osImage")),
        ("Kernel-Version", "string", "", "Kernel Version reported by the node.", 1,
         _node_info("kernelVersion")),
        ("Container-Runtime", "string", "", "Container Runtime Version reported by the node.",
         1, _node_info("containerRuntimeVersion")),
    ]),
    # KubeFed's member registry (a CRD in the host cluster): kubefedctl join
    # creates one per member. Printer columns as its CRD declares them.
    "kubefedclusters": Kind("core.kubefed.io/v1beta1", "KubeFedCluster", "core.kubefed.io", True,
                            "kubefedcluster", [], _META_FIELDS, [
        _NAME_COL,
        ("age", "date", "", "", 0, _age),
        ("ready", "string", "", "", 0, lambda o, now: _ready(o, "")),
    ]),
    # The Secrets kubefedctl join / karmadactl join write (token, ca.crt or
    # caBundle). Columns as kube-apiserver prints them.
    "secrets": Kind("v1", "Secret", "", True, "secret", [], _META_FIELDS + ("type",), [
        _NAME_COL,
        ("Type", "string", "", "The type of the secret", 0, lambda o, now: o.get("type", "")),
        ("Data", "integer", "", "The number of data entries in the secret", 0,
         lambda o, now: len(o.get("data") or {})),
        _AGE_COL,
    ]),
    # Karmada's member registry: cluster-scoped Clusters served by
    # karmada-apiserver, printed by Karmada's own table handler.
    "clusters": Kind("cluster.karmada.io/v1alpha1", "Cluster", "cluster.karmada.io", False,
                     "cluster", [], _META_FIELDS, [
        _NAME_COL,
        ("Version", "string", "", "KubernetesVersion represents version of the member cluster.",
         0, lambda o, now: (o.get("status") or {}).get("kubernetesVersion", "")),
        ("Mode", "string", "", "SyncMode describes how a cluster sync resources from karmada "
         "control plane.", 0, lambda o, now: (o.get("spec") or {}).get("syncMode", "")),
        ("Ready", "string", "", "The aggregate readiness state of this cluster for accepting "
         "workloads.", 0, lambda o, now: _ready(o, "Unknown")),
        ("Age", "string", "", _AGE_COL[3], 0, _age),
        ("Zones", "string", "", "Zones represents the failure zones(also called availability "
         "zones) of the member cluster.", 1,
         lambda o, now: ",".join((o.get("spec") or {}).get("zones") or []) or "<none>"),
        ("Region", "string", "", "Region represents the region of the member cluster locate in.",
         1, lambda o, now: (o.get("spec") or {}).get("region") or "<none>"),
        ("Provider", "string", "", "Provider represents the cloud provider name of the member "
         "cluster.", 1, lambda o, now: (o.get("spec") or {}).get("provider") or "<none>"),
        ("API-Endpoint", "string", "", "The API endpoint of the member cluster.", 1,
         lambda o, now: (o.get("spec") or {}).get("apiEndpoint", "")),
        ("Proxy-URL", "string", "", "ProxyURL is the proxy URL for the cluster.", 1,
         lambda o, now: (o.get("spec") or {}).get("proxyURL") or "<none>"),
    ]),
    # KubeFed's federated types are CRDs without printer columns: NAME, AGE.
    "federatedservices": Kind("types.kubefed.io/v1beta1", "FederatedService", "types.kubefed.io",
                              True, "federatedservice", [], _META_FIELDS,
                              [_NAME_COL, ("Age", "date", "", "", 0, _age)]),
    # KubeFed's former multi-cluster DNS (CRDs without printer columns).
    "domains": Kind("multiclusterdns.kubefed.io/v1alpha1", "Domain", "multiclusterdns.kubefed.io",
                    True, "domain", [], _META_FIELDS, [_NAME_COL, ("Age", "date", "", "", 0, _age)]),
    "servicednsrecords": Kind("multiclusterdns.kubefed.io/v1alpha1", "ServiceDNSRecord",
                              "multiclusterdns.kubefed.io", True, "servicednsrecord", [],
                              _META_FIELDS, [_NAME_COL, ("Age", "date", "", "", 0, _age)]),
}

HISTORY_MAX = 20000
SNAPSHOTS_MAX = 64


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _status(code, reason, message, details=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
          "message": message, "reason": reason, "code": code}
    if details:
        st["details"] = details
    return st


def _free_port(host):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        return s.getsockname()[1]


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _gen_certs(d, name, host, sans=None, server_eku="serverAuth"):
    """CA, server and client certificates (EC P-256) in directory d. etcd with
    --client-cert-auth needs server_eku="serverAuth,clientAuth": its JSON
    gateway dials its own gRPC port with the server certificate."""
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
             "-subj", "/CN=fakekube-%s-ca" % name,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    custom = sans is not None
    sans = list(sans) if custom else ["IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes",
                                      "DNS:kubernetes.default.svc"]
    if not custom and host not in ("127.0.0.1", "localhost"):
        sans.append(("IP:" if host.replace(".", "").replace(":", "").isalnum() and
                     any(c.isdigit() for c in host) else "DNS:") + host)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=%s\nsubjectAltName=%s\n" % (server_eku, ",".join(sans)))
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    for who, subj in (("server", "/CN=kube-apiserver"),
                      ("client", "/O=system:masters/CN=fedgslb-health")):
        _openssl("req", "-new", *ec, "-keyout", who + ".key", "-out", who + ".csr",
                 "-subj", subj, cwd=d)
        _openssl("x509", "-req", "-in", who + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", who + ".crt", "-days", "3650",
                 "-extfile", who + ".ext", cwd=d)


_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _check_label_key(k):
    prefix, _, name = k.rpartition("/")
    if (not _LABEL_NAME.match(name) or
            (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))) or
            (k.count("/") > 1)):
        raise ValueError('unable to parse requirement: <nil>: Invalid value: "%s": name part '
                         "must consist of alphanumeric characters, '-', '_' or '.', and must "
                         "start and end with an alphanumeric character" % k)


def _check_label_value(v):
    if v and not _LABEL_NAME.match(v):
        raise ValueError('unable to parse requirement: <nil>: Invalid value: "%s": a valid '
                         "label must be an empty string or consist of alphanumeric characters, "
                         "'-', '_' or '.', and must start and end with an alphanumeric "
                         "character" % v)


_LABEL_TOKENS = re.compile(r"\s*(==|!=|=|\(|\)|,|!|[^\s=!(),<>]+|>|<)")


class _Selector:
    """labelSelector as labels.Parse reads it (=, ==, !=, in, notin, exists,
    !exists, gt, lt) and fieldSelector as fields.ParseSelector reads it
    (=, ==, != on the fields the kind supports). Bad input raises ValueError
    with the API server's message (answered as 400 BadRequest)."""

    def __init__(self, label_sel, field_sel, fields=_META_FIELDS):
        self.labels = self._parse_labels(label_sel or "")
        self.fields = self._parse_fields(field_sel or "", fields)

    @staticmethod
    def _tokens(text):
        out, pos = [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _LABEL_TOKENS.match(text, pos)
            if m is None or m.end() == pos:
                raise ValueError("unable to parse requirement: found '%s', expected: "
                                 "identifier" % text[pos:].strip())
            out.append(m.group(1))
            pos = m.end()
        return out

    @classmethod
    def _parse_labels(cls, text):
        try:
            return cls._parse_labels_raw(text)
        except ValueError as e:
            msg = str(e)
            if not msg.startswith("unable to parse requirement: "):
                msg = "unable to parse requirement: " + msg
            raise ValueError(msg)

    @classmethod
    def _parse_labels_raw(cls, text):
        toks, reqs, i = cls._tokens(text), [], 0

        def want(what):
            if i >= len(toks):
                raise ValueError("found '', expected: %s" % what)
            return toks[i]
        while i < len(toks):
            if toks[i] == "!":
                i += 1
                key = want("identifier")
                _check_label_key(key)
                reqs.append(("!", key, None))
                i += 1
            else:
                key = toks[i]
                if key in ("=", "==", "!=", "(", ")", ",", "<", ">"):
                    raise ValueError("found '%s', expected: !, identifier, or 'end of "
                                     "string'" % key)
                _check_label_key(key)
                i += 1
                if i >= len(toks) or toks[i] == ",":
                    reqs.append(("exists", key, None))
                else:
                    op = toks[i]
                    i += 1
                    if op in ("=", "==", "!=", "<", ">"):
                        val = toks[i] if i < len(toks) and toks[i] != "," else ""
                        if val in ("(", ")", "=", "!=", "!"):
                            raise ValueError("found '%s', expected: identifier" % val)
                        if val:
                            i += 1
                        _check_label_value(val)
                        if op in ("<", ">"):
                            try:
                                val = int(val)
                            except ValueError:
                                raise ValueError("unable to parse requirement: for 'Gt', 'Lt' "
                                                 "operators, the value must be an integer")
                        reqs.append(({"==": "="}.get(op, op), key, val))
                    elif op in ("in", "notin"):
                        if want("'('") != "(":
                            raise ValueError("found '%s', expected: '('" % toks[i])
                        i += 1
                        vals = set()
                        while True:
                            t = want("',', ')' or identifier")
                            if t == ")":
                                i += 1
                                break
                            if t == ",":
                                i += 1
                                continue
                            _check_label_value(t)
                            vals.add(t)
                            i += 1
                        if not vals:
                            raise ValueError("unable to parse requirement: for 'in', 'notin' "
                                             "operators, values set can't be empty")
                        reqs.append((op, key, vals))
                    else:
                        raise ValueError("found '%s', expected: in, notin, =, ==, !=, gt, lt"
                                         % op)
            if i < len(toks):
                if toks[i] != ",":
                    raise ValueError("found '%s', expected: ',' or 'end of string'" % toks[i])
                i += 1
                if i >= len(toks):
                    raise ValueError("found '', expected: !, identifier")
        return reqs

    @staticmethod
    def _parse_fields(text, supported):
        reqs = []
        for part in text.split(",") if text else []:
            for op in ("!=", "==", "="):
                if op in part:
                    k, v = part.split(op, 1)
                    break
            else:
                raise ValueError("invalid selector: '%s'; can't understand '%s'" % (text, part))
            k = k.strip()
            if k not in supported:
                raise ValueError("field label not supported: %s" % k)
            reqs.append(("!=" if op == "!=" else "=", k, v))
        return reqs

    @staticmethod
    def _match(reqs, values):
        for op, k, v in reqs:
            have = values.get(k)
            if op == "=" and have != v:
                return False
            if op == "!=" and have == v:
                return False
            if op == "exists" and have is None:
                return False
            if op == "!" and have is not None:
                return False
            if op == "in" and have not in v:
                return False
            if op == "notin" and have in v:
                return False
            if op in ("<", ">"):
                try:
                    n = int(have)
                except (TypeError, ValueError):
                    return False
                if (op == "<" and not n < v) or (op == ">" and not n > v):
                    return False
        return True

    def match(self, obj):
        md = obj.get("metadata", {})
        if not self._match(self.labels, md.get("labels") or {}):
            return False
        fields = {"metadata.name": md.get("name"), "metadata.namespace": md.get("namespace")}
        if obj.get("kind") == "Secret":
            fields["type"] = obj.get("type", "")
        if "spec" in obj and "unschedulable" in (obj.get("spec") or {}) or obj.get("kind") == "Node":
            fields["spec.unschedulable"] = "true" if obj.get("spec", {}).get(
                "unschedulable") else "false"
        return self._match(self.fields, fields)


VERSION = {"major": "1", "minor": "29", "gitVersion": "v1.29.4",
           "gitCommit": "55019c83b0fd51ef4ced8c29eec2c4847f896e74", "gitTreeState": "clean",
           "buildDate": "2024-04-16T15:03:39Z", "goVersion": "go1.21.9", "compiler": "gc",
           "platform": "linux/amd64"}


def _table_request(accept, q):
    """The Table form asked for in Accept (kubectl get sends
    "application/json;as=Table;v=v1;g=meta.k8s.io,...,application/json"),
    or None. The first acceptable media type wins, as in content negotiation."""
    for mt in accept.split(","):
        params = [x.strip() for x in mt.split(";")]
        if params[0] not in ("application/json", "*/*"):
            continue
        kv = dict(x.split("=", 1) for x in params[1:] if "=" in x)
        if kv.get("as") is None:
            return None  # plain JSON acceptable first
        if kv.get("as") == "Table" and kv.get("g") == "meta.k8s.io" and \
                kv.get("v") in ("v1", "v1beta1"):
            include = q.get("includeObject") or "Metadata"
            if include not in ("None", "Metadata", "Object"):
                raise ValueError("includeObject")
            return {"api_version": "meta.k8s.io/" + kv["v"], "include": include}
    return None


def _table_columns(res):
    return [{"name": c[0], "type": c[1], "format": c[2], "description": c[3],
             "priority": c[4]} for c in RESOURCES[res].columns]


def _table_row(res, obj, table, now):
    row = {"cells": [c[5](obj, now) for c in RESOURCES[res].columns]}
    if table["include"] == "Object":
        row["object"] = dict(obj, kind=RESOURCES[res].kind, apiVersion=RESOURCES[res].api_version)
    elif table["include"] == "Metadata":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                         "metadata": obj["metadata"]}
    return row


def _table(res, objs, table, rv, columns=True):
    now = time.time()
    return {"kind": "Table", "apiVersion": table["api_version"],
            "metadata": {"resourceVersion": str(rv)},
            "columnDefinitions": _table_columns(res) if columns else None,
            "rows": [_table_row(res, o, table, now) for o in objs]}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, fk):
        self.fk = fk
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, _Handler)

    def server_bind(self):
        # HTTPServer.server_bind would look up the FQDN of the address.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def finish_request(self, request, client_address):
        # Runs in the connection's own thread: the TLS handshake happens here,
        # so a slow or hung client never blocks accept().
        fk = self.fk
        conn = request
        fk._track(conn, True)
        try:
            if not fk._wait_unhung():
                return
            if fk._ssl_ctx is not None:
                request.settimeout(10)
                try:
                    conn = fk._ssl_ctx.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                conn.settimeout(None)
                fk._track(request, False)
                fk._track(conn, True)
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            fk._track(conn, False)
            if conn is not request:
                try:
                    conn.close()
                except OSError:
                    pass


class _Dropped(Exception):
    pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakekube"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    # -- plumbing --------------------------------------------------------------
    def _send_json(self, code, obj, raw=None):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_text(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _user(self, fk):
        """The authenticated user, or None."""
        if fk.client_cert_auth and fk.tls:
            try:
                cert = self.connection.getpeercert()
            except (AttributeError, ValueError):
                cert = None
            if cert:
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            return v
                return "unknown"
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:].strip() == fk.token:
            return fk.user
        if auth.startswith("Bearer ") and fk._signed_ok(auth[7:].strip()):
            return fk.user
        return None

    def do_POST(self):
        self._send_json(405, _status(405, "MethodNotAllowed",
                                     "the server does not allow this method on the "
                                     "requested resource"))

    do_PUT = do_POST
    do_DELETE = do_POST
    do_PATCH = do_POST

    def do_GET(self):
        fk = self.server.fk
        if not fk._wait_unhung():
            self.close_connection = True
            return
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        path = url.path.rstrip("/") or "/"
        if path in ("/readyz", "/healthz", "/livez"):
            if path == "/readyz" and not fk._ready:
                self._send_text(500, "[-]etcd failed: reason withheld\nreadyz check failed\n")
            else:
                self._send_text(200, "ok")
            return
        if path == "/version":
            # system:public-info-viewer: readable without credentials.
            fk._log(path, q, False, self._user(fk), 200, self.headers.get("Host"))
            self._send_json(200, VERSION)
            return
        user = self._user(fk)
        if user is None:
            fk._log(path, q, False, None, 401, self.headers.get("Host"))
            self._send_json(401, _status(401, "Unauthorized", "Unauthorized"))
            return
        disc = fk._discovery(path, self.headers.get("Host"))
        if disc is not None:
            fk._log(path, q, False, user, 200, self.headers.get("Host"))
            self._send_json(200, disc)
            return
        route = fk._route(path)
        if route is None:
            fk._log(path, q, False, user, 404, self.headers.get("Host"))
            self._send_json(404, _status(404, "NotFound", "the server could not find the "
                                         "requested resource"))
            return
        res, ns, name = route
        watch = q.get("watch", "") in ("1", "true", "True")
        verb = "watch" if watch else ("get" if name else "list")
        if fk._denied(res) or not fk._rbac_allows(res, verb, ns):
            fk._log(path, q, watch, user, 403, self.headers.get("Host"))
            self._send_json(403, fk._forbidden(res, ns, verb, user))
            return
        try:
            table = _table_request(self.headers.get("Accept", ""), q)
        except ValueError:
            fk._log(path, q, watch, user, 400, self.headers.get("Host"))
            self._send_json(400, _status(400, "BadRequest", 'invalid includeObject: "%s"'
                                         % q.get("includeObject")))
            return
        fk._log(path, q, watch, user, 200, self.headers.get("Host"))
        if name and not watch:
            self._get_one(fk, res, ns, name, table)
        elif watch:
            if name:  # a watch of one object is a watch with metadata.name=
                q["fieldSelector"] = ",".join(x for x in (q.get("fieldSelector"),
                                                         "metadata.name=" + name) if x)
            self._watch(fk, res, ns, q, table)
        else:
            self._list(fk, res, ns, q, table)

    # -- get / list -------------------------------------------------------------
    def _get_one(self, fk, res, ns, name, table=None):
        obj = fk.get(res, ns, name)
        if obj is None:
            group = RESOURCES[res].group
            self._send_json(404, _status(404, "NotFound", '%s "%s" not found' % (
                res if not group else "%s.%s" % (res, group), name),
                dict({"name": name, "kind": res}, **({"group": group} if group else {}))))
        elif fk._garbage:
            self._send_json(200, None, raw=fk._garbage_bytes(res))
        elif table is not None:
            self._send_json(200, _table(res, [obj], table, obj["metadata"]["resourceVersion"]))
        else:
            self._send_json(200, obj)

    def _list(self, fk, res, ns, q, table=None):
        try:
            code, body = fk._list(res, ns, q, table)
        except ValueError as e:
            code, body = 400, _status(400, "BadRequest", str(e))
        if code == 200 and fk._garbage:
            self._send_json(200, None, raw=fk._garbage_bytes(res))
        elif isinstance(body, bytes):
            self._send_json(code, None, raw=body)
        else:
            self._send_json(code, body)

    # -- watch ------------------------------------------------------------------
    def _watch(self, fk, res, ns, q, table=None):
        try:
            timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        except ValueError:
            self._send_json(400, _status(400, "BadRequest", "invalid timeoutSeconds"))
            return
        bookmarks = q.get("allowWatchBookmarks", "") in ("1", "true", "True")
        try:
            sel = _Selector(q.get("labelSelector"), q.get("fieldSelector"), RESOURCES[res].fields)
        except ValueError as e:
            self._send_json(400, _status(400, "BadRequest", str(e)))
            return
        rv = q.get("resourceVersion", "")
        if rv not in ("", "0"):
            try:
                if int(rv) < 0:
                    raise ValueError
            except ValueError:
                self._send_json(400, _status(400, "BadRequest",
                                             "invalid resource version: %s" % rv))
                return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        stream = fk._open_stream(self)
        try:
            self._watch_loop(fk, stream, res, ns, sel, rv, timeout, bookmarks, table)
        except _Dropped:
            self.close_connection = True
        except (OSError, ssl.SSLError, ValueError):
            self.close_connection = True
        finally:
            fk._close_stream(stream)

    def _emit(self, fk, stream, lines):
        for line in lines:
            if stream["drop"]:
                self._drop(fk, stream)
                raise _Dropped()
            self._chunk(line)

    def _watch_loop(self, fk, stream, res, ns, sel, rv, timeout, bookmarks, table=None):
        start = time.monotonic()
        deadline = start + timeout if timeout is not None else None
        with fk._cond:
            if rv in ("", "0"):
                pos = fk._rv
                first = [fk._event_line("ADDED", o, res, table)
                         for o in fk._current(res, ns, sel)]
            elif int(rv) < fk._history_start:
                first = [fk._event_line("ERROR", _status(
                    410, "Expired", "too old resource version: %s (%d)"
                    % (rv, fk._history_start)), res)]
                pos = None
            else:
                pos = int(rv)
                first = []
            gen = fk._generation
        self._emit(fk, stream, first)
        if pos is None:
            self._chunk(b"")  # end of stream after the ERROR event
            return
        next_bm = time.monotonic() + fk.bookmark_interval
        while True:
            with fk._cond:
                while True:
                    now = time.monotonic()
                    if stream["drop"] or fk._stopping or gen != fk._generation:
                        break
                    if fk._hanging:
                        fk._cond.wait(0.5)  # a hung server sends nothing at all
                        continue
                    if deadline is not None and now >= deadline:
                        break
                    if (fk._rv > pos or (bookmarks and now >= next_bm)):
                        break
                    waits = [0.5]
                    if deadline is not None:
                        waits.append(deadline - now)
                    if bookmarks:
                        waits.append(max(0.0, next_bm - now))
                    fk._cond.wait(max(0.01, min(waits)))
                if stream["drop"]:
                    lines = None
                elif fk._stopping or gen != fk._generation:
                    raise _Dropped()
                elif deadline is not None and time.monotonic() >= deadline and not fk._hanging:
                    lines = []
                    pos = -1
                else:
                    lines = [fk._event_line(t, o, res, table)
                             for (t, o) in fk._events_after(pos, res, ns, sel)]
                    pos = fk._rv
                    if bookmarks and time.monotonic() >= next_bm:
                        lines.append(fk._event_line("BOOKMARK", {
                            "kind": RESOURCES[res][1], "apiVersion": RESOURCES[res][0],
                            "metadata": {"resourceVersion": str(pos)}}, res))
                        next_bm = time.monotonic() + fk.bookmark_interval
            if lines is None:
                self._drop(fk, stream)
                raise _Dropped()
            if pos == -1:
                self._chunk(b"")  # timeoutSeconds: clean end
                return
            self._emit(fk, stream, lines)

    def _drop(self, fk, stream):
        """A partial event line inside a chunk, then an abrupt close."""
        line = fk._event_line("MODIFIED", {"kind": "Status", "metadata": {},
                                           "message": "x" * 64}, "services")
        try:
            self.wfile.write(b"%x\r\n%s" % (len(line), line[: len(line) // 2]))
            self.wfile.flush()
        except OSError:
            pass
        try:
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
        except OSError:
            pass
        stream["dropped"].set()


class FakeKube:
    """One fake member cluster API server. See the module docstring."""

    def __init__(self, name, workdir, token=None, tls=True, client_cert_auth=False,
                 host="127.0.0.1", port=0, server_sans=None):
        self.name = name
        self.workdir = workdir
        self.token = token if token is not None else "tok-%s" % name
        self.tls = tls
        self.client_cert_auth = client_cert_auth
        self.host = host
        self.port = port or _free_port(host)
        self.user = "system:serviceaccount:fedgslb-system:fedgslb-health"
        self.bookmark_interval = 1.0
        self.tls_server_name = None
        # Short-lived tokens: with token_secret set, "exp.<unix time>.<hmac>"
        # tokens (sign_token()) are accepted until that time; then 401.
        self.token_secret = None
        self.signed_seen = {}  # token -> accepted on its last use
        self.rbac_rules = None  # ClusterRole rules enforced when set (403 otherwise)
        self.expired_rejections = 0
        self.requests = []
        self._cond = threading.Condition()
        self._objects = {}  # (res, ns, name) -> obj (with kind/apiVersion)
        # Indexes kept by _record(), so that set_endpoints() stays cheap with
        # thousands of objects (tests/bench/watch_bench.py).
        self._slice_idx = {}  # (ns, service) -> set of endpointslice keys
        self._node_set = set()  # node names
        self._rv_base = 1000
        self._rv = self._rv_base
        self._history_start = self._rv  # RVs below this are "too old"
        self._hist_rvs = []
        self._hist = []  # (rv, res, type, obj)
        self._snapshots = {}  # id -> (rv, res, [items])
        self._generation = 0  # bumped by stop(): streams of an old server end
        self._streams = []
        self._conns = set()
        self._denied_res = set()
        self._hanging = False
        self._garbage = False
        self._ready = True
        self._stopping = False
        self._server = None
        self._thread = None
        self._ssl_ctx = None
        self._ip_seq = 0
        self.ca_file = self.client_cert_file = self.client_key_file = None
        self.ca_pem = self.client_cert_pem = self.client_key_pem = None
        self.certdir = os.path.join(workdir, name)
        os.makedirs(self.certdir, exist_ok=True)
        if tls:
            _gen_certs(self.certdir, name, host, server_sans)
            self.ca_file = os.path.join(self.certdir, "ca.crt")
            self.client_cert_file = os.path.join(self.certdir, "client.crt")
            self.client_key_file = os.path.join(self.certdir, "client.key")
            self.server_cert_file = os.path.join(self.certdir, "server.crt")
            self.server_key_file = os.path.join(self.certdir, "server.key")
            with open(self.ca_file) as f:
                self.ca_pem = f.read()
            with open(self.client_cert_file) as f:
                self.client_cert_pem = f.read()
            with open(self.client_key_file) as f:
                self.client_key_pem = f.read()

    # -- lifecycle -------------------------------------------------------------
    @property
    def url(self):
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "%s://%s:%d" % ("https" if self.tls else "http", h, self.port)

    @property
    def resource_version(self):
        with self._cond:
            return self._rv

    def _make_ssl(self):
        if not self.tls:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.server_cert_file, self.server_key_file)
        if self.client_cert_auth:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.ca_file)
        return ctx

    def start(self):
        if self._server is not None:
            return self
        self._ssl_ctx = self._make_ssl()
        with self._cond:
            self._stopping = False
        deadline = time.monotonic() + 5
        while True:
            try:
                self._server = _Server((self.host, self.port), self)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fakekube-%s" % self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        srv = self._server
        if srv is None:
            return
        with self._cond:
            self._stopping = True
            self._generation += 1
            self._cond.notify_all()
            conns = list(self._conns)
        srv.shutdown()
        srv.server_close()
        for c in conns:
            try:
                socket.socket.shutdown(c, socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._server = None
        self._thread = None
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            with self._cond:
                if not self._streams:
                    break
            time.sleep(0.01)

    def restart(self, new_history=False):
        self.stop()
        if new_history:
            self._new_history()
        self.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _new_history(self):
        with self._cond:
            # A new, unrelated sequence that starts well above the old one, so
            # that every old RV is "too old" for the new history.
            self._rv_base = self._rv + 100000 + int.from_bytes(os.urandom(2), "big") * 7
            self._rv = self._rv_base
            self._hist_rvs, self._hist = [], []
            self._snapshots.clear()
            for obj in self._objects.values():
                self._rv += 1
                obj["metadata"]["resourceVersion"] = str(self._rv)
            self._history_start = self._rv
            self._generation += 1
            self._cond.notify_all()

    # -- short-lived tokens (exec credential plugins) -------------------------------
    def _signed_ok(self, tok):
        """A token from sign_token(): accepted until it expires."""
        secret = self.token_secret
        if not secret:
            return False
        parts = tok.split(".")
        if len(parts) != 3 or parts[0] != "exp":
            return False
        want = hmac.new(secret.encode(), ("exp.%s" % parts[1]).encode(),
                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, parts[2]):
            return False
        try:
            ok = time.time() < float(parts[1])
        except ValueError:
            return False
        with self._cond:
            self.signed_seen[tok] = ok
            if not ok:
                self.expired_rejections += 1
        return ok

    def sign_token(self, expires_at):
        return sign_token(self.token_secret, expires_at)

    # -- faults -----------------------------------------------------------------
    def deny(self, resource, on=True):
        with self._cond:
            (self._denied_res.add if on else self._denied_res.discard)(resource)

    def hang(self, on):
        with self._cond:
            self._hanging = bool(on)
            self._cond.notify_all()

    def garbage(self, on):
        with self._cond:
            self._garbage = bool(on)

    def set_ready(self, ok):
        self._ready = bool(ok)

    def compact(self):
        with self._cond:
            self._hist_rvs, self._hist = [], []
            self._snapshots.clear()
            self._history_start = self._rv

    def drop_streams(self, timeout=2.0):
        with self._cond:
            streams = list(self._streams)
            for s in streams:
                s["drop"] = True
            self._cond.notify_all()
        for s in streams:
            s["closed"].wait(timeout)
        return len(streams)

    def open_watches(self):
        with self._cond:
            return len(self._streams)

    def clear_requests(self):
        with self._cond:
            self.requests = []

    # -- internals used by the handler -------------------------------------------
    def _track(self, conn, add):
        with self._cond:
            (self._conns.add if add else self._conns.discard)(conn)

    def _wait_unhung(self):
        """Blocks while hanging; False when the server stops meanwhile."""
        with self._cond:
            gen = self._generation
            while self._hanging and not self._stopping and gen == self._generation:
                self._cond.wait(0.5)
            return not self._stopping and gen == self._generation

    def _log(self, path, q, watch, user, status, host=None):
        with self._cond:
            self.requests.append({"path": path, "query": dict(q), "watch": watch,
                                  "user": user, "status": status, "host": host})
            if len(self.requests) > 10000:
                del self.requests[:5000]

    def _rbac_allows(self, res, verb, ns=None):
        """With fk.rbac_rules set, only what a rule grants (ClusterRole rules:
        apiGroups, resources, verbs; "*" matches all). A rule with a
        "namespace" key is a Role's: it grants requests in that namespace only
        (never a request across namespaces)."""
        rules = self.rbac_rules
        if rules is None:
            return True
        group = RESOURCES[res].group
        for r in rules:
            if "namespace" in r and r["namespace"] != ns:
                continue
            if ((group in r.get("apiGroups", []) or "*" in r.get("apiGroups", [])) and
                    (res in r.get("resources", []) or "*" in r.get("resources", [])) and
                    (verb in r.get("verbs", []) or "*" in r.get("verbs", []))):
                return True
        return False

    def _denied(self, res):
        with self._cond:
            return res in self._denied_res

    def _forbidden(self, res, ns, verb, user):
        group = RESOURCES[res][2]
        where = ('in the namespace "%s"' % ns) if ns else "at the cluster scope"
        msg = '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s' % (
            res if not group else "%s.%s" % (res, group), user, verb, res, group, where)
        return _status(403, "Forbidden", msg,
                       {"kind": res} if not group else {"group": group, "kind": res})

    @staticmethod
    def _route(path):
        p = path.strip("/").split("/")
        if p[:2] == ["api", "v1"]:
            rest, gv = p[2:], "v1"
        elif len(p) >= 3 and p[0] == "apis":
            rest, gv = p[3:], "%s/%s" % (p[1], p[2])
        else:
            return None
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns = rest[1]
            rest = rest[2:]
        if not rest or len(rest) > 2:
            return None
        res = rest[0]
        kind = RESOURCES.get(res)
        if kind is None or kind.api_version != gv:
            return None
        if ns is not None and not kind.namespaced:
            return None
        name = rest[1] if len(rest) == 2 else None
        if name is not None and kind.namespaced and ns is None:
            return None
        return res, ns, name

    def _discovery(self, path, host):
        """The legacy discovery documents (/api, /api/v1, /apis, /apis/<g>,
        /apis/<g>/<v>) built from RESOURCES, or None for other paths."""
        groups = collections.OrderedDict()
        for k in RESOURCES.values():
            if k.group:
                groups.setdefault(k.group, []).append(k.version)
        addr = [{"clientCIDR": "0.0.0.0/0", "serverAddress": "%s:%d" % (self.host, self.port)}]
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": addr}
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [self._api_group(g, vs) for g, vs in groups.items()]}
        p = path.strip("/").split("/")
        if p == ["api", "v1"]:
            return self._resource_list("v1")
        if len(p) == 2 and p[0] == "apis" and p[1] in groups:
            return dict(self._api_group(p[1], groups[p[1]]), kind="APIGroup", apiVersion="v1")
        if len(p) == 3 and p[0] == "apis" and p[1] in groups and p[2] in groups[p[1]]:
            return self._resource_list("%s/%s" % (p[1], p[2]))
        return None

    @staticmethod
    def _api_group(group, versions):
        vs = [{"groupVersion": "%s/%s" % (group, v), "version": v}
              for v in sorted(set(versions))]
        return {"name": group, "versions": vs, "preferredVersion": vs[0]}

    @staticmethod
    def _resource_list(gv):
        out = []
        for res, k in sorted(RESOURCES.items()):
            if k.api_version != gv:
                continue
            e = {"name": res, "singularName": k.singular, "namespaced": k.namespaced,
                 "kind": k.kind, "verbs": ["get", "list", "watch"]}
            if k.short_names:
                e["shortNames"] = list(k.short_names)
            if k.group == "":
                e["storageVersionHash"] = base64.b64encode(hashlib.sha256(
                    res.encode()).digest()[:8]).decode()
            out.append(e)
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": out}

    def _garbage_bytes(self, res):
        return (b'{"kind":"%sList","apiVersion":"v1","metadata":{"resourceVersion":"%d"},'
                b'"items":[{"metadata":{"name":"x",,\x00\xff}}' %
                (RESOURCES[res][1].encode(), self._rv))

    @staticmethod
    def _strip_shallow(obj):
        """The object without kind/apiVersion, sharing its values (lock held)."""
        return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}

    def _current(self, res, ns, sel):
        """Matching objects sorted by (namespace, name); lock held."""
        out = []
        for (r, n, _), o in sorted(self._objects.items(), key=lambda kv: kv[0]):
            if r == res and (ns is None or n == ns) and sel.match(o):
                out.append(o)
        return out

    def _list(self, res, ns, q, table=None):
        sel = _Selector(q.get("labelSelector"), q.get("fieldSelector"), RESOURCES[res].fields)
        limit = q.get("limit", "")
        try:
            limit = int(limit) if limit else 0
        except ValueError:
            raise ValueError("invalid limit: %s" % limit)
        apiv, kind = RESOURCES[res][0], RESOURCES[res][1]
        mode = "json" if table is None else "table/" + table["include"]
        with self._cond:
            cont = q.get("continue")
            if cont:
                try:
                    tok = json.loads(base64.urlsafe_b64decode(cont.encode()))
                    sid, offset, rv = tok["id"], int(tok["start"]), int(tok["rv"])
                except (ValueError, KeyError, TypeError):
                    raise ValueError("invalid continue token")
                snap = self._snapshots.get(sid)
                if snap is None or snap[1] != res or snap[3] != mode:
                    return 410, _status(
                        410, "Expired",
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue "
                        "parameter.")
                items = snap[2]
            else:
                rv = self._rv
                # Each item is encoded once, under the lock (a consistent
                # snapshot); pages are then joined from the encoded items.
                cur = self._current(res, ns, sel)
                if table is None:
                    items = [json.dumps(self._strip_shallow(o)) for o in cur]
                else:
                    now = time.time()
                    items = [json.dumps(_table_row(res, o, table, now)) for o in cur]
                offset = 0
                sid = None
            page = items[offset:offset + limit] if limit > 0 else items[offset:]
            end = offset + len(page)
            md = {"resourceVersion": str(rv)}
            if end < len(items):
                if sid is None:
                    sid = uuid.uuid4().hex
                    self._snapshots[sid] = (rv, res, items, mode)
                    while len(self._snapshots) > SNAPSHOTS_MAX:
                        self._snapshots.pop(next(iter(self._snapshots)))
                md["continue"] = base64.urlsafe_b64encode(json.dumps(
                    {"v": "meta.k8s.io/v1", "rv": rv, "start": end, "id": sid}).encode()).decode()
                md["remainingItemCount"] = len(items) - end
            if table is not None:
                head = json.dumps({"kind": "Table", "apiVersion": table["api_version"],
                                   "metadata": md,
                                   "columnDefinitions": _table_columns(res)})
                return 200, ('%s,"rows":[%s]}' % (head[:-1], ",".join(page))).encode()
            head = json.dumps({"kind": kind + "List", "apiVersion": apiv, "metadata": md})
            return 200, ('%s,"items":[%s]}' % (head[:-1], ",".join(page))).encode()

    def _events_after(self, pos, res, ns, sel):
        i = bisect.bisect_right(self._hist_rvs, pos)
        out = []
        for rv, r, t, o in self._hist[i:]:
            if r != res:
                continue
            if ns is not None and o["metadata"].get("namespace") != ns:
                continue
            if sel.match(o):
                out.append((t, o))
        return out

    def _event_line(self, etype, obj, res, table=None):
        if self._garbage and etype != "ERROR":
            return b'{"type":"%s","object":{"kind":"%s",,"metadata":{\xff\n' % (
                etype.encode(), RESOURCES[res][1].encode())
        if table is not None and etype in ("ADDED", "MODIFIED", "DELETED"):
            # As the API server does: column definitions with the first
            # event of the stream only.
            first = not table.get("sent_columns")
            table["sent_columns"] = True
            obj = _table(res, [obj], table, obj["metadata"]["resourceVersion"],
                         columns=first)
        return json.dumps({"type": etype, "object": obj}).encode() + b"\n"

    def _open_stream(self, handler):
        s = {"handler": handler, "drop": False, "closed": threading.Event(),
             "dropped": threading.Event()}
        with self._cond:
            self._streams.append(s)
        return s

    def _close_stream(self, s):
        with self._cond:
            if s in self._streams:
                self._streams.remove(s)
        s["closed"].set()

    def _index(self, res, etype, obj):
        md = obj["metadata"]
        if res == "nodes":
            (self._node_set.discard if etype == "DELETED" else self._node_set.add)(md["name"])
        elif res == "endpointslices":
            svc = (md.get("labels") or {}).get("kubernetes.io/service-name")
            keys = self._slice_idx.setdefault((md.get("namespace"), svc), set())
            key = (res, md.get("namespace"), md["name"])
            (keys.discard if etype == "DELETED" else keys.add)(key)

    def _record(self, res, etype, obj):
        """Stores a change: takes the next RV; lock held."""
        self._index(res, etype, obj)
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        snap = copy.deepcopy(obj)
        self._hist_rvs.append(self._rv)
        self._hist.append((self._rv, res, etype, snap))
        if len(self._hist) > HISTORY_MAX:
            cut = len(self._hist) - HISTORY_MAX // 2
            self._history_start = self._hist_rvs[cut]
            del self._hist[:cut]
            del self._hist_rvs[:cut]
        self._cond.notify_all()

    def _meta(self, name, ns=None, labels=None, annotations=None, generate_name=None):
        md = {"name": name}
        if generate_name:
            md["generateName"] = generate_name
        if ns is not None:
            md["namespace"] = ns
        md.update({"uid": str(uuid.uuid4()), "resourceVersion": "0",
                   "creationTimestamp": _now()})
        md["labels"] = dict(labels or {})
        md["annotations"] = dict(annotations or {})
        return md

    # -- objects: services ----------------------------------------------------------
    def get(self, resource, ns, name):
        with self._cond:
            o = self._objects.get((resource, ns if RESOURCES[resource][3] else None, name))
            return copy.deepcopy(o) if o is not None else None

    def _cluster_ip(self, family):
        self._ip_seq += 1
        n = self._ip_seq
        if family == "IPv6":
            return "fd00:10:96::%x" % (n + 0x100)
        return "10.96.%d.%d" % ((n // 250) % 256, n % 250 + 2)

    @staticmethod
    def _svc_ports(ports, stype):
        out = []
        for i, p in enumerate(ports):
            q = {"name": p.get("name", "port-%d" % i) if len(ports) > 1 or "name" in p
                 else None,
                 "protocol": p.get("protocol", "TCP"), "port": int(p["port"]),
                 "targetPort": p.get("targetPort", int(p["port"]))}
            if q["name"] is None:
                del q["name"]
            if stype in ("NodePort", "LoadBalancer"):
                q["nodePort"] = int(p.get("nodePort", 30000 + (int(p["port"]) * 7 + i) % 2767))
            out.append(q)
        return out

    def _build_service(self, obj, ports, stype, lb_ingress):
        spec = obj["spec"]
        spec["ports"] = self._svc_ports(ports, stype)
        spec["type"] = stype
        for k in ("externalTrafficPolicy", "allocateLoadBalancerNodePorts"):
            spec.pop(k, None)
        if stype in ("NodePort", "LoadBalancer"):
            spec["externalTrafficPolicy"] = "Cluster"
        if stype == "LoadBalancer":
            spec["allocateLoadBalancerNodePorts"] = True
            obj["status"] = {"loadBalancer": {"ingress": copy.deepcopy(lb_ingress)}
                             if lb_ingress else {}}
        else:
            obj["status"] = {"loadBalancer": {}}

    def add_service(self, ns, name, ports=None, type="LoadBalancer", lb_ingress=None,
                    annotations=None, labels=None, ip_family="IPv4"):
        if ports is None:
            ports = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
        if lb_ingress is None:
            lb_ingress = [{"ip": "192.0.2.10"}] if type == "LoadBalancer" else []
        with self._cond:
            if ("services", ns, name) in self._objects:
                raise KeyError("service %s/%s exists" % (ns, name))
            cip = self._cluster_ip(ip_family)
            obj = {"kind": "Service", "apiVersion": "v1",
                   "metadata": self._meta(name, ns, labels, annotations),
                   "spec": {"selector": {"app": name}, "clusterIP": cip,
                            "clusterIPs": [cip], "sessionAffinity": "None",
                            "ipFamilies": [ip_family], "ipFamilyPolicy": "SingleStack",
                            "internalTrafficPolicy": "Cluster"}}
            self._build_service(obj, ports, type, lb_ingress)
            self._objects[("services", ns, name)] = obj
            self._record("services", "ADDED", obj)
            return copy.deepcopy(obj)

    def modify_service(self, ns, name, ports=None, type=None, lb_ingress=None,
                       annotations=None, labels=None, mutate=None):
        with self._cond:
            obj = self._objects[("services", ns, name)]
            stype = type or obj["spec"]["type"]
            if ports is None:
                ports = obj["spec"]["ports"]
            if lb_ingress is None:
                lb_ingress = obj["status"].get("loadBalancer", {}).get("ingress", [])
                if stype == "LoadBalancer" and obj["spec"]["type"] != "LoadBalancer":
                    lb_ingress = [{"ip": "192.0.2.10"}]
            self._build_service(obj, ports, stype, lb_ingress)
            if annotations is not None:
                obj["metadata"]["annotations"] = dict(annotations)
            if labels is not None:
                obj["metadata"]["labels"] = dict(labels)
            if mutate is not None:
                mutate(obj)
            self._record("services", "MODIFIED", obj)
            return copy.deepcopy(obj)

    def delete_service(self, ns, name):
        with self._cond:
            obj = self._objects.pop(("services", ns, name))
            self._record("services", "DELETED", obj)
            self._delete_slices_locked(ns, name)

    # -- objects: endpoint slices -------------------------------------------------------
    def _slices_of(self, ns, service):
        out = []
        for k in self._slice_idx.get((ns, service), ()):
            o = self._objects.get(k)
            if o is not None and (o["metadata"].get("labels") or {}).get(
                    "kubernetes.io/service-name") == service:
                out.append((k, o))
        return sorted(out)

    def _delete_slices_locked(self, ns, service):
        for k, o in self._slices_of(ns, service):
            del self._objects[k]
            self._record("endpointslices", "DELETED", o)

    def _node_names(self):
        names = sorted(n for n in self._node_set if ("nodes", None, n) in self._objects)
        return names or ["node-1", "node-2", "node-3"]

    def _endpoint(self, ns, service, family, s, i, cond, zone, nodes):
        h = hashlib.sha1(("%s/%s/%d/%d" % (ns, service, s, i)).encode()).hexdigest()
        if family == "IPv6":
            addr = "fd00:10:244:%x::%x" % (s + 1, i + 1)
        else:
            addr = "10.244.%d.%d" % (s + 1, i + 1)
        node = nodes[(s + i) % len(nodes)]
        ep = {"addresses": [addr], "conditions": cond, "nodeName": node,
              "targetRef": {"kind": "Pod", "namespace": ns,
                            "name": "%s-%s-%s" % (service, h[:10], h[10:15]),
                            "uid": str(uuid.UUID(h[:32]))}}
        ep["zone"] = zone or self._node_zone(node)
        return ep

    def _node_zone(self, node):
        o = self._objects.get(("nodes", None, node))
        if o is not None:
            return o["metadata"]["labels"].get("topology.kubernetes.io/zone", "zone-a")
        return "zone-a"

    def _slice_ports(self, ns, service, port):
        if port is not None:
            return [{"name": "http", "protocol": "TCP", "port": int(port)}]
        svc = self._objects.get(("services", ns, service))
        if svc is None:
            return [{"name": "http", "protocol": "TCP", "port": 8080}]
        out = []
        for p in svc["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            out.append({"name": p.get("name", ""), "protocol": p.get("protocol", "TCP"),
                        "port": tp if isinstance(tp, int) else p["port"]})
        return out

    def set_endpoints(self, ns, service, ready=1, not_ready=0, slices=1, family="IPv4",
                      terminating=0, zone=None, port=None):
        slices = max(1, int(slices))
        conds = ([{"ready": True, "serving": True, "terminating": False}] * ready +
                 [{"ready": False, "serving": False, "terminating": False}] * not_ready +
                 [{"ready": False, "serving": True, "terminating": True}] * terminating)
        with self._cond:
            nodes = self._node_names()
            ports = self._slice_ports(ns, service, port)
            existing = self._slices_of(ns, service)
            svc = self._objects.get(("services", ns, service))
            out = []
            for s in range(slices):
                mine = [(i, c) for i, c in enumerate(conds) if i % slices == s]
                eps = [self._endpoint(ns, service, family, s, i, dict(c), zone, nodes)
                       for i, c in mine]
                if s < len(existing):
                    obj = existing[s][1]
                    etype = "MODIFIED"
                else:
                    sfx = hashlib.sha1(("%s/%s/%d/%s" % (ns, service, s, uuid.uuid4()))
                                       .encode()).hexdigest()[:5]
                    labels = {"kubernetes.io/service-name": service,
                              "endpointslice.kubernetes.io/managed-by":
                                  "endpointslice-controller.k8s.io"}
                    obj = {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                           "metadata": self._meta("%s-%s" % (service, sfx), ns, labels,
                                                  generate_name=service + "-")}
                    if svc is not None:
                        obj["metadata"]["ownerReferences"] = [{
                            "apiVersion": "v1", "kind": "Service", "name": service,
                            "uid": svc["metadata"]["uid"], "controller": True,
                            "blockOwnerDeletion": True}]
                    etype = "ADDED"
                    self._objects[("endpointslices", ns, obj["metadata"]["name"])] = obj
                obj["metadata"]["annotations"] = {
                    "endpoints.kubernetes.io/last-change-trigger-time": _now()}
                obj["addressType"] = family
                obj["endpoints"] = eps if eps else None
                obj["ports"] = copy.deepcopy(ports)
                self._record("endpointslices", etype, obj)
                out.append(copy.deepcopy(obj))
            for k, o in existing[slices:]:
                del self._objects[k]
                self._record("endpointslices", "DELETED", o)
            return out

    def delete_endpoints(self, ns, service):
        with self._cond:
            self._delete_slices_locked(ns, service)

    # -- objects: nodes -------------------------------------------------------------------
    @staticmethod
    def _node_conditions(status):
        t = _now()
        reason, msg = {
            "True": ("KubeletReady", "kubelet is posting ready status"),
            "False": ("KubeletNotReady", "container runtime network not ready"),
            "Unknown": ("NodeStatusUnknown", "Kubelet stopped posting node status."),
        }[status]
        conds = []
        for ctype, r, m in (("MemoryPressure", "KubeletHasSufficientMemory",
                             "kubelet has sufficient memory available"),
                            ("DiskPressure", "KubeletHasNoDiskPressure",
                             "kubelet has no disk pressure"),
                            ("PIDPressure", "KubeletHasSufficientPID",
                             "kubelet has sufficient PID available")):
            conds.append({"type": ctype, "status": "False", "lastHeartbeatTime": t,
                          "lastTransitionTime": t, "reason": r, "message": m})
        conds.append({"type": "Ready", "status": status, "lastHeartbeatTime": t,
                      "lastTransitionTime": t, "reason": reason, "message": msg})
        return conds

    def add_node(self, name, internal_ip, external_ip=None, ready=True, zone=None):
        zone = zone or "%s-zone-a" % self.name
        with self._cond:
            if ("nodes", None, name) in self._objects:
                raise KeyError("node %s exists" % name)
            labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                      "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                      "beta.kubernetes.io/arch": "amd64",
                      "node.kubernetes.io/instance-type": "m5.large",
                      "topology.kubernetes.io/region": "%s-region" % self.name,
                      "topology.kubernetes.io/zone": zone}
            addrs = [{"type": "InternalIP", "address": internal_ip}]
            if external_ip:
                addrs.append({"type": "ExternalIP", "address": external_ip})
            addrs.append({"type": "Hostname", "address": name})
            n = sum(1 for k in self._objects if k[0] == "nodes")
            obj = {"kind": "Node", "apiVersion": "v1",
                   "metadata": self._meta(name, None, labels, {
                       "node.alpha.kubernetes.io/ttl": "0",
                       "volumes.kubernetes.io/controller-managed-attach-detach": "true"}),
                   "spec": {"podCIDR": "10.244.%d.0/24" % n, "podCIDRs": ["10.244.%d.0/24" % n],
                            "providerID": "fake://%s/%s" % (self.name, name)},
                   "status": {"addresses": addrs,
                              "conditions": self._node_conditions("True" if ready else "False"),
                              "capacity": {"cpu": "2", "memory": "8023104Ki", "pods": "110"},
                              "allocatable": {"cpu": "2", "memory": "7920704Ki", "pods": "110"},
                              "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                              "nodeInfo": {"kubeletVersion": "v1.29.4",
                                           "kubeProxyVersion": "v1.29.4",
                                           "containerRuntimeVersion": "containerd://1.7.13",
                                           "operatingSystem": "linux",
                                           "architecture": "amd64",
                                           "osImage": "Debian GNU/Linux 12 (bookworm)",
                                           "kernelVersion": "6.1.0-18-amd64",
                                           "machineID": uuid.uuid4().hex,
                                           "systemUUID": str(uuid.uuid4()),
                                           "bootID": str(uuid.uuid4())}}}
            if not ready:
                obj["spec"]["taints"] = [{"key": "node.kubernetes.io/not-ready",
                                          "effect": "NoSchedule"}]
            self._objects[("nodes", None, name)] = obj
            self._record("nodes", "ADDED", obj)
            return copy.deepcopy(obj)

    def set_node_ready(self, name, ready, status=None):
        status = status or ("True" if ready else "False")
        with self._cond:
            obj = self._objects[("nodes", None, name)]
            obj["status"]["conditions"] = self._node_conditions(status)
            obj["spec"].pop("taints", None)
            if status != "True":
                key = ("node.kubernetes.io/unreachable" if status == "Unknown"
                       else "node.kubernetes.io/not-ready")
                obj["spec"]["taints"] = [{"key": key, "effect": "NoSchedule",
                                          "timeAdded": _now()}]
            self._record("nodes", "MODIFIED", obj)
            return copy.deepcopy(obj)

    def delete_node(self, name):
        with self._cond:
            obj = self._objects.pop(("nodes", None, name))
            self._record("nodes", "DELETED", obj)

    # -- objects of any kind ---------------------------------------------------------------
    def put(self, resource, obj):
        """Creates or replaces an object of any served kind (ADDED or MODIFIED);
        metadata gets uid, creationTimestamp and the next resourceVersion."""
        k = RESOURCES[resource]
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        ns = md.get("namespace") if k.namespaced else None
        if k.namespaced and not ns:
            raise ValueError("namespaced kind %s needs metadata.namespace" % resource)
        with self._cond:
            key = (resource, ns, md["name"])
            old = self._objects.get(key)
            md.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
            md.setdefault("creationTimestamp",
                          old["metadata"]["creationTimestamp"] if old else _now())
            obj["kind"], obj["apiVersion"] = k.kind, k.api_version
            self._objects[key] = obj
            self._record(resource, "MODIFIED" if old else "ADDED", obj)
            return copy.deepcopy(obj)

    def remove(self, resource, ns, name):
        with self._cond:
            obj = self._objects.pop((resource, ns if RESOURCES[resource].namespaced else None,
                                     name))
            self._record(resource, "DELETED", obj)

    # -- a host cluster's member registry ------------------------------------------------
    def join_kubefed(self, name, member, ns="kube-federation-system", labels=None, status=None,
                     token=None, secret_ca=False, ca_bundle=True, api_endpoint=None):
        """What `kubefedctl join NAME` leaves in this (host) cluster for @member
        (a FakeKube): a Secret "<name>-xxxxx" holding the member's token, and
        the KubeFedCluster NAME (apiEndpoint, caBundle, secretRef). labels and
        status (e.g. {"region": ..., "zones": [...]}) are set on the object;
        secret_ca=True also puts ca.crt in the Secret. Returns the Secret name."""
        b64 = lambda v: base64.b64encode(v.encode()).decode()  # noqa: E731
        secret = "%s-%s" % (name, hashlib.sha1(name.encode()).hexdigest()[:5])
        data = {"token": b64(token if token is not None else member.token)}
        if secret_ca and member.ca_pem:
            data["ca.crt"] = b64(member.ca_pem)
        self.put("secrets", {"metadata": {"name": secret, "namespace": ns,
                                          "generateName": name + "-"},
                             "type": "Opaque", "data": data})
        spec = {"apiEndpoint": api_endpoint or member.url, "secretRef": {"name": secret}}
        if ca_bundle and member.ca_pem:
            spec["caBundle"] = b64(member.ca_pem)
        st = {"conditions": [{"type": "Ready", "status": "True", "reason": "ClusterReady",
                              "message": "/healthz responded with ok",
                              "lastProbeTime": _now(), "lastTransitionTime": _now()}]}
        st.update(status or {})
        self.put("kubefedclusters", {"metadata": {"name": name, "namespace": ns,
                                                  "labels": dict(labels or {})},
                                     "spec": spec, "status": st})
        return secret

    def unjoin_kubefed(self, name, ns="kube-federation-system"):
        """`kubefedctl unjoin NAME`: the KubeFedCluster and its Secret go."""
        obj = self.get("kubefedclusters", ns, name)
        self.remove("kubefedclusters", ns, name)
        if obj is not None and self.get("secrets", ns, obj["spec"]["secretRef"]["name"]):
            self.remove("secrets", ns, obj["spec"]["secretRef"]["name"])

    def join_karmada(self, name, member, region=None, zones=None, secret_ns="karmada-cluster",
                     insecure=False, token=None, provider=None):
        """What `karmadactl join NAME` (push mode) leaves in this Karmada control
        plane: the Secret secret_ns/NAME (token, caBundle) and the cluster-scoped
        Cluster NAME (apiEndpoint, secretRef, syncMode Push, region, zones)."""
        b64 = lambda v: base64.b64encode(v.encode()).decode()  # noqa: E731
        data = {"token": b64(token if token is not None else member.token)}
        if member.ca_pem:
            data["caBundle"] = b64(member.ca_pem)
        self.put("secrets", {"metadata": {"name": name, "namespace": secret_ns},
                             "type": "Opaque", "data": data})
        spec = {"syncMode": "Push", "apiEndpoint": member.url,
                "secretRef": {"namespace": secret_ns, "name": name},
                "impersonatorSecretRef": {"namespace": secret_ns, "name": name + "-impersonator"},
                "insecureSkipTLSVerification": bool(insecure)}
        if region:
            spec["region"] = region
        if zones:
            spec["zones"] = list(zones)
        if provider:
            spec["provider"] = provider
        self.put("clusters", {"metadata": {"name": name}, "spec": spec,
                              "status": {"kubernetesVersion": VERSION["gitVersion"],
                                         "conditions": [{"type": "Ready", "status": "True",
                                                         "reason": "ClusterReady"}]}})

    def set_secret_token(self, ns, name, token):
        """Rotates a Secret's token (the object is MODIFIED)."""
        obj = self.get("secrets", ns, name)
        obj["data"]["token"] = base64.b64encode(token.encode()).decode()
        obj["metadata"].pop("resourceVersion", None)
        self.put("secrets", obj)

    # -- kubeconfig ---------------------------------------------------------------------
    def kubeconfig_entry(self, context_name, style="token-ca-data", token_file=None):
        user = "%s-admin" % context_name
        b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
        cluster = {"server": self.url}
        if self.tls_server_name:
            cluster["tls-server-name"] = self.tls_server_name
        u = {}
        if style == "insecure":
            cluster["insecure-skip-tls-verify"] = True
        elif style == "token-ca-file":
            cluster["certificate-authority"] = self.ca_file
        elif self.tls:
            cluster["certificate-authority-data"] = b64(self.ca_pem)
        if style == "client-cert":
            u["client-certificate-data"] = b64(self.client_cert_pem)
            u["client-key-data"] = b64(self.client_key_pem)
        elif style == "token-file":
            u["tokenFile"] = token_file or "%s.token" % context_name
        elif style in ("token-ca-data", "insecure", "token-ca-file"):
            u["token"] = self.token
        else:
            raise ValueError("unknown kubeconfig style %r" % style)
        return {"cluster": {"name": context_name, "cluster": cluster},
                "user": {"name": user, "user": u},
                "context": {"name": context_name,
                            "context": {"cluster": context_name, "user": user}}}

    def write_kubeconfig_entry(self, path, context_name=None, style="token-ca-data"):
        write_kubeconfig(path, [(context_name or self.name, self, style)])
        return path


def sign_token(secret, expires_at):
    """A token FakeKube accepts (token_secret == secret) until expires_at (Unix time)."""
    body = "exp.%d" % int(expires_at)
    return "%s.%s" % (body, hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest())


def _yaml_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    s = str(v)
    safe = all(c.isalnum() or c in "-_./:+=" for c in s) and s and not s[0] in "-:" \
        and s.lower() not in ("true", "false", "yes", "no", "on", "off", "null", "y", "n", "~")
    return s if safe else json.dumps(s)


def write_kubeconfig(path, members, current_context=None):
    """members: [(context_name, FakeKube, style)]; see the module docstring."""
    clusters, users, contexts = [], [], []
    kdir = os.path.dirname(os.path.abspath(path))
    for ctx, fk, style in members:
        e = fk.kubeconfig_entry(ctx, style)
        if style == "token-file":
            with open(os.path.join(kdir, e["user"]["user"]["tokenFile"]), "w") as f:
                f.write(fk.token + "\n")
        clusters.append(e["cluster"])
        users.append(e["user"])
        contexts.append(e["context"])
    cur = current_context if current_context is not None else (
        members[0][0] if members else "")
    out = ["apiVersion: v1", "clusters:"]
    for c in clusters:
        out.append("- cluster:")
        for k in sorted(c["cluster"]):
            out.append("    %s: %s" % (k, _yaml_scalar(c["cluster"][k])))
        out.append("  name: %s" % _yaml_scalar(c["name"]))
    out.append("contexts:")
    for c in contexts:
        out.append("- context:")
        for k in sorted(c["context"]):
            out.append("    %s: %s" % (k, _yaml_scalar(c["context"][k])))
        out.append("  name: %s" % _yaml_scalar(c["name"]))
    out.append("current-context: %s" % (_yaml_scalar(cur) if cur else '""'))
    out.append("kind: Config")
    out.append("preferences: {}")
    out.append("users:")
    for u in users:
        out.append("- name: %s" % _yaml_scalar(u["name"]))
        out.append("  user:")
        for k in sorted(u["user"]):
            out.append("    %s: %s" % (k, _yaml_scalar(u["user"][k])))
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path
