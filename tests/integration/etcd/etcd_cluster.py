# SPDX-License-Identifier: Apache-2.0
"""A real etcd cluster on loopback for the distributed mode's tests: Debian's
etcd-server (3.4), N members started by the test with free ports and data
directories under the test's tmp, killed at the end.

    c = EtcdCluster(tmp, n=3).start()
    c.endpoints                     # client URLs, for the etcd section
    c.put("/k", "v"); c.get("/k"); c.compact(); c.revision()
    c.leader()                      # index of the member that leads
    c.kill(i); c.start_member(i)    # SIGKILL and restart with the same data
    c.pause(i); c.resume(i)         # SIGSTOP / SIGCONT
    c.kill_all(); c.start_all()     # the whole cluster down and back
    c.close()

Options: tls=True serves https on the client URLs (a CA and server
certificate made with openssl; client_cert_auth=True also asks clients for
a certificate: c.pki has ca.crt, client.crt, client.key); auth=(user,
password) creates root and that user with readwrite on PREFIX and turns
etcd's authentication on. Everything goes through the JSON gateway with
urllib, as fedgslb does with libcurl.
"""

import base64
import json
import os
import random
import socket
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import fedtest

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
PREFIX = "/fedgslb/"
ROOT_PASSWORD = "root-pa55word-0123"


_HANDED_OUT = fedtest.HANDED_OUT_PORTS  # one record with free_port()


def quiet_port():
    """A free TCP+UDP port on 127.0.0.1 below the kernel's ephemeral range
    (32768-60999): the many outgoing connections of etcd and its clients take
    ports from that range, and one of them could take a port picked there
    before its daemon binds it."""
    rng = random.Random(os.getpid() ^ int(time.monotonic() * 1e6))
    for _ in range(500):
        port = rng.randrange(20000, 32000)
        if port in _HANDED_OUT:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                t.bind(("127.0.0.1", port))
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def available():
    return os.access(ETCD, os.X_OK)


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def unb64(s):
    return base64.b64decode(s).decode()


def prefix_end(p):
    b = bytearray(p.encode())
    b[-1] += 1
    return bytes(b).decode()


class EtcdError(Exception):
    pass


class EtcdCluster:
    def __init__(self, tmp, n=3, tls=False, client_cert_auth=False, auth=None, name="etcd"):
        self.tmp = str(tmp)
        self.n = n
        self.name = name
        self.tls = tls or client_cert_auth
        self.client_cert_auth = client_cert_auth
        self.auth = auth
        self.token = None
        self.client_ports = [quiet_port() for _ in range(n)]
        self.peer_ports = [quiet_port() for _ in range(n)]
        self.procs = [None] * n
        self.logs = [os.path.join(self.tmp, "%s-m%d.log" % (name, i)) for i in range(n)]
        self.dirs = [os.path.join(self.tmp, "%s-m%d.data" % (name, i)) for i in range(n)]
        self.pki = os.path.join(self.tmp, "%s-pki" % name)
        self.paused = set()
        if self.tls:
            import fakekube
            # clientAuth too: etcd's JSON gateway dials its own gRPC port with the
            # server certificate (etcd-io/etcd#16590)
            fakekube._gen_certs(self.pki, name, "127.0.0.1", server_eku="serverAuth,clientAuth")

    # ---- addresses ----
    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def url(self, i):
        return "%s://127.0.0.1:%d" % (self.scheme, self.client_ports[i])

    @property
    def endpoints(self):
        return [self.url(i) for i in range(self.n)]

    def pem(self, name):
        return os.path.join(self.pki, name)

    # ---- processes ----
    def _argv(self, i):
        cluster = ",".join("m%d=http://127.0.0.1:%d" % (k, self.peer_ports[k])
                           for k in range(self.n))
        argv = [ETCD, "--name", "m%d" % i, "--data-dir", self.dirs[i],
                "--listen-client-urls", self.url(i), "--advertise-client-urls", self.url(i),
                "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer_ports[i],
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.peer_ports[i],
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "%s-%d" % (self.name, os.getpid()),
                "--heartbeat-interval", "100", "--election-timeout", "1000",
                "--logger", "zap", "--log-outputs", "stderr",
                "--snapshot-count", "10000", "--quota-backend-bytes", str(256 << 20)]
        if self.tls:
            argv += ["--cert-file", self.pem("server.crt"), "--key-file", self.pem("server.key")]
        if self.client_cert_auth:
            argv += ["--client-cert-auth", "--trusted-ca-file", self.pem("ca.crt")]
        return argv

    def start_member(self, i):
        assert self.procs[i] is None or self.procs[i].poll() is not None
        log = open(self.logs[i], "ab")
        self.procs[i] = subprocess.Popen(self._argv(i), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.paused.discard(i)
        return self

    def start(self, timeout=30):
        for i in range(self.n):
            self.start_member(i)
        self.wait_healthy(timeout)
        if self.auth is not None:
            self._enable_auth(*self.auth)
        return self

    def start_all(self, timeout=30):
        for i in range(self.n):
            if self.procs[i] is None or self.procs[i].poll() is not None:
                self.start_member(i)
        self.wait_healthy(timeout)
        return self

    def kill(self, i, sig=signal.SIGKILL):
        p = self.procs[i]
        if p is None or p.poll() is not None:
            return
        if i in self.paused:
            p.send_signal(signal.SIGCONT)
            self.paused.discard(i)
        p.send_signal(sig)
        p.wait(15)

    def kill_all(self):
        for i in range(self.n):
            self.kill(i)

    def pause(self, i):
        self.procs[i].send_signal(signal.SIGSTOP)
        self.paused.add(i)

    def resume(self, i):
        self.procs[i].send_signal(signal.SIGCONT)
        self.paused.discard(i)

    def alive(self, i):
        return self.procs[i] is not None and self.procs[i].poll() is None

    def close(self):
        for i in range(self.n):
            try:
                self.kill(i)
            except Exception:  # teardown goes on
                pass

    def log_text(self, i, tail=4000):
        try:
            with open(self.logs[i], errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    # ---- the gateway ----
    def _ctx(self):
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.pem("ca.crt"))
        if self.client_cert_auth:
            ctx.load_cert_chain(self.pem("client.crt"), self.pem("client.key"))
        return ctx

    def call(self, path, body, member=None, timeout=3.0, token=True):
        """POST @body to @path on @member (None: the first that answers)."""
        members = [member] if member is not None else [
            i for i in range(self.n) if self.alive(i) and i not in self.paused]
        last = None
        for i in members:
            headers = {"Content-Type": "application/json"}
            if token and self.token is not None:
                headers["Authorization"] = self.token
            req = urllib.request.Request(self.url(i) + path, data=json.dumps(body).encode(),
                                         headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=timeout, context=self._ctx()) as r:
                    return json.loads(r.read() or b"{}")
            except urllib.error.HTTPError as e:
                text = e.read().decode(errors="replace")
                last = EtcdError("%s %s: HTTP %d %s" % (self.url(i), path, e.code, text))
                if e.code < 500:
                    raise last
            except (OSError, ValueError) as e:
                last = EtcdError("%s %s: %s" % (self.url(i), path, e))
        raise last or EtcdError("no member to ask")

    def health(self, i, timeout=1.0):
        """True when member @i says it is healthy (GET /health: it has a leader and
        serves a linearizable read; no credentials needed)."""
        try:
            with urllib.request.urlopen(self.url(i) + "/health", timeout=timeout,
                                        context=self._ctx()) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def wait_healthy(self, timeout=30):
        deadline = time.monotonic() + timeout * fedtest.SLOW
        while True:
            up = [self.health(i) for i in range(self.n) if self.alive(i) and i not in self.paused]
            if up and all(up):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("etcd cluster not healthy:\n" + "\n".join(
                    "--- m%d ---\n%s" % (i, self.log_text(i, 1500)) for i in range(self.n)))
            time.sleep(0.1)

    def status(self, i, timeout=1.0):
        return self.call("/v3/maintenance/status", {}, member=i, timeout=timeout)

    def leader(self):
        """Index of the leading member (by the members' own status)."""
        ids = {}
        lead = None
        for i in range(self.n):
            if not self.alive(i) or i in self.paused:
                continue
            try:
                st = self.status(i)
            except EtcdError:
                continue
            ids[st["header"]["member_id"]] = i
            lead = st.get("leader", lead)
        return ids.get(lead)

    def put(self, key, value, lease=None):
        body = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self.call("/v3/kv/put", body)["header"]["revision"])

    def get(self, key):
        r = self.call("/v3/kv/range", {"key": b64(key)})
        kvs = r.get("kvs") or []
        return unb64(kvs[0].get("value", "")) if kvs else None

    def get_prefix(self, prefix):
        r = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        return {unb64(kv["key"]): unb64(kv.get("value", "")) for kv in r.get("kvs") or []}

    def delete(self, key):
        return self.call("/v3/kv/deleterange", {"key": b64(key)})

    def revision(self):
        return int(self.call("/v3/kv/range", {"key": b64("x"), "count_only": True})
                   ["header"]["revision"])

    def compact(self, revision=None):
        """Compacts (physically) up to @revision (default: now)."""
        rev = revision or self.revision()
        self.call("/v3/kv/compaction", {"revision": str(rev), "physical": True}, timeout=10)
        return rev

    # ---- auth ----
    def _enable_auth(self, user, password):
        for path, body in (
                ("/v3/auth/user/add", {"name": "root", "password": ROOT_PASSWORD}),
                ("/v3/auth/role/add", {"name": "root"}),
                ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
                ("/v3/auth/user/add", {"name": user, "password": password}),
                ("/v3/auth/role/add", {"name": "fedgslb"}),
                ("/v3/auth/role/grant", {"name": "fedgslb", "perm": {
                    "permType": "READWRITE", "key": b64(PREFIX),
                    "range_end": b64(prefix_end(PREFIX))}}),
                ("/v3/auth/user/grant", {"user": user, "role": "fedgslb"}),
                ("/v3/auth/enable", {})):
            try:
                self.call(path, body)
            except EtcdError as e:
                if "already exists" not in str(e):
                    raise
        self.login("root", ROOT_PASSWORD)

    def login(self, user, password):
        self.token = None
        self.token = self.call("/v3/auth/authenticate",
                               {"name": user, "password": password})["token"]
        return self.token
