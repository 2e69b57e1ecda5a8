# SPDX-License-Identifier: Apache-2.0
"""Harness for fedgslb-proxy system tests: Python backends and the proxy.

Backends are threaded http.server instances on loopback (HTTP/1.1 keep-alive)
with a few routes the tests need; the proxy runs from $FEDGSLB_BUILD_DIR with
a generated configuration. Reuses fedtest (processes, ports, control API).
"""

import base64
import hashlib
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fedtest
from fedtest import SLOW, TOKEN, Control, Daemon, free_port, http  # noqa: F401

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _send(self, code, body, ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            total = 0
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                left = n
                while left:
                    left -= len(self.rfile.read(min(left, 65536)))
                total += n
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0"))
        left = n
        while left:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)
        return n - left

    def do_GET(self):
        srv = self.server
        srv.hits += 1
        path = self.path
        if path.startswith("/big"):
            n = int(path.split("=", 1)[1])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = b"x" * 65536
            left = n
            while left:
                b = block[:min(left, len(block))]
                self.wfile.write(b"%x\r\n" % len(b) + b + b"\r\n")
                left -= len(b)
            self.wfile.write(b"0\r\n\r\n")
            return
        if path.startswith("/hang"):
            time.sleep(30)
            return
        if path.startswith("/ws"):
            return self._websocket()
        if path.startswith("/noclen"):
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until-close-body")
            self.close_connection = True
            return
        info = {
            "backend": srv.name, "path": path,
            "xff": self.headers.get("X-Forwarded-For"),
            "xfp": self.headers.get("X-Forwarded-Proto"),
            "via": self.headers.get("Via"),
            "connection": self.headers.get("Connection"),
            "keep_alive": self.headers.get("Keep-Alive"),
            "x_hop": self.headers.get("X-Hop"),
            "te": self.headers.get("TE"),
        }
        self._send(200, json.dumps(info).encode(), "application/json",
                   extra=[("X-Backend", srv.name), ("Keep-Alive", "timeout=5")])

    do_HEAD = do_GET
    do_DELETE = do_GET

    def do_POST(self):
        self.server.hits += 1
        n = self._read_body()
        self._send(200, json.dumps({"backend": self.server.name, "received": n}).encode(),
                   "application/json")

    do_PUT = do_POST

    def _websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        acc = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", acc)
        self.end_headers()
        self.wfile.flush()
        # Echo frames back unmasked until a close frame.
        while True:
            op, payload = ws_read_frame(self.rfile)
            if op is None or op == 8:
                self.wfile.write(ws_frame(8, b"", mask=False))
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(ws_frame(op, payload, mask=False))
            self.wfile.flush()


def ws_frame(op, payload, mask=True):
    hdr = bytes([0x80 | op])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr += bytes([mbit | n])
    elif n < 65536:
        hdr += bytes([mbit | 126]) + n.to_bytes(2, "big")
    else:
        hdr += bytes([mbit | 127]) + n.to_bytes(8, "big")
    if mask:
        key = os.urandom(4)
        return hdr + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return hdr + payload


def ws_read_frame(f):
    h = f.read(2)
    if len(h) < 2:
        return None, None
    op = h[0] & 0x0F
    n = h[1] & 0x7F
    masked = h[1] & 0x80
    if n == 126:
        n = int.from_bytes(f.read(2), "big")
    elif n == 127:
        n = int.from_bytes(f.read(8), "big")
    key = f.read(4) if masked else None
    data = f.read(n)
    if key:
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return op, data


class Backend:
    """A threaded HTTP/1.1 server on 127.0.0.1:port."""

    def __init__(self, name, port=None):
        self.name = name
        self.port = port or free_port(ipv6=False)
        self.srv = None

    def start(self):
        ThreadingHTTPServer.allow_reuse_address = True
        ThreadingHTTPServer.daemon_threads = True
        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.srv.name = self.name
        self.srv.hits = 0
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def hits(self):
        return self.srv.hits if self.srv else 0

    def stop(self):
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"


def proxy_config(tmp, port, ctl_port, backends, proxy_over=None, listen_over=None,
                 extra_listen=()):
    tmp = str(tmp)
    token_file = os.path.join(tmp, "control.token")
    fedtest.write_secret(token_file, TOKEN)
    listen = {"address": f"127.0.0.1:{port}", "member": "jpn", "service": "default/web",
              "backends": list(backends)}
    listen.update(listen_over or {})
    proxy = {
        "listen": [listen] + list(extra_listen),
        "state_file": os.path.join(tmp, "proxy-state.json"),
        "control": {"listen": f"127.0.0.1:{ctl_port}", "token_file": token_file},
        "timeouts_ms": {"header": 2000, "idle": 5000, "connect": 1000, "response": 5000,
                        "drain": 5000},
        "access_log": {"format": "json", "path": os.path.join(tmp, "access.log")},
        # fits the descriptor check under the hard RLIMIT_NOFILE of small test hosts
        "max_connections": 1000,
    }
    proxy.update(proxy_over or {})
    return {
        "federation": "myfed",
        "zone": "fed.example.test",
        "regions": {"us-east-1": {"zones": ["us-east-1a"]},
                    "ap-northeast-1": {"zones": ["ap-northeast-1a"]}},
        "members": {
            "usa": {"region": "us-east-1", "zone": "us-east-1a"},
            "jpn": {"region": "ap-northeast-1", "zone": "ap-northeast-1a",
                    "lb": {"mode": "proxy", "address": "127.0.0.1"}},
        },
        "services": {"default/web": {"port": 80,
                                     "check": {"type": "tcp", "interval_ms": 500,
                                               "timeout_ms": 300, "rise": 1, "fall": 2}}},
        # backends and the proxy's address are on loopback
        "allow_addresses": fedtest.ALLOW_LOOPBACK,
        "proxy": proxy,
    }


class Proxy(Daemon):
    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError("proxy exited before ready:\n" + self.log_text())
            try:
                st, _ = http(self.ctl_port, "GET", "/healthz", timeout=0.5)
                if st == 200:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("proxy not ready:\n" + self.log_text())

    def rewrite(self, conf):
        self.conf = conf
        fedtest.write_config(self.tmp, conf, "proxy.json")

    def vm(self, key="VmHWM"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        return 0


def start_proxy(tmp, backends, ready=True, nofile=None, edit=None, **kw):
    """Starts fedgslb-proxy on proxy_config(); @edit(conf) may change it first."""
    exe = fedtest.binary("fedgslb-proxy")
    port = free_port(ipv6=False)
    ctl_port = free_port(ipv6=False)
    conf = proxy_config(tmp, port, ctl_port, [b.addr if isinstance(b, Backend) else b
                                              for b in backends], **kw)
    if edit is not None:
        edit(conf)
    path = fedtest.write_config(tmp, conf, "proxy.json")
    p = Proxy([exe, "--config", path, "--log-level", "info"],
              os.path.join(str(tmp), f"proxy-{port}.log"), cwd=str(tmp), nofile=nofile)
    p.port, p.ctl_port, p.config_path, p.conf, p.tmp = port, ctl_port, path, conf, str(tmp)
    p.start()
    if ready:
        p.wait_ready()
    return p


def make_cert(tmp, name, base=None, ec=False):
    """A self-signed certificate for @name (RSA 2048, or ECDSA P-256 with
    @ec); files base.crt and base.key in @tmp."""
    base = base or name
    crt, key = os.path.join(str(tmp), base + ".crt"), os.path.join(str(tmp), base + ".key")
    kind = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if ec else ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509"] + kind + ["-nodes", "-days", "2",
                    "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name,
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    return {"cert": crt, "key": key}


def client_context(version=None):
    """A TLS client context without verification (tests compare what they
    get themselves); @version pins ssl.TLSVersion.TLSv1_2 or TLSv1_3."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def https_conn(port, sni, version=None, timeout=5.0):
    """An http.client.HTTPSConnection already connected to 127.0.0.1:@port
    with SNI @sni (http.client would resolve the name itself)."""
    import http.client
    ctx = client_context(version)
    c = http.client.HTTPSConnection(sni, port, timeout=timeout * SLOW, context=ctx)
    raw_sock = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    c.sock = ctx.wrap_socket(raw_sock, server_hostname=sni)
    return c


def recv_all(sock):
    """Everything @sock receives until the peer closes."""
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def raw(port, data, timeout=5.0, read_until_close=True):
    """Sends @data on a fresh connection and returns everything read until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
                if not read_until_close:
                    break
        except socket.timeout:
            pass
        return out


def get(port, path="/", timeout=5.0, headers=None):
    """One GET via http.client (new connection); returns (status, headers, body)."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout * SLOW)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()
