# SPDX-License-Identifier: Apache-2.0
"""fedgslb-proxy TLS termination: certificates chosen by SNI (curl checks which),
certificates reloaded on SIGHUP (a Python ssl client compares the served
certificate with the files), a bad key rejected at reload, and --check-config
loading the certificates and keys."""

import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

import proxy_harness as ph
from fedtest import SANITIZER_MARKERS, SLOW, finish

NAME = "www.example.test"

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl needed")


make_cert = ph.make_cert
client_context = ph.client_context


def fingerprint_of_file(crt):
    with open(crt) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def served_fingerprint(port, sni=NAME):
    """SHA-256 of the certificate a new TLS connection with SNI @sni gets."""
    with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as raw:
        with client_context().wrap_socket(raw, server_hostname=sni) as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def https_conn(port, sni=NAME):
    return ph.https_conn(port, sni)


def https_get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


def install(src, site):
    """Replaces the files the configuration names with @src's content."""
    shutil.copyfile(src["key"], site["key"])
    shutil.copyfile(src["cert"], site["cert"])


def reload_lines(p):
    return [ln for ln in p.log_text().splitlines()
            if "reload done" in ln or "reload failed" in ln]


def sighup(p):
    """SIGHUP and wait for the proxy's verdict; returns its log line."""
    before = len(reload_lines(p))
    p.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10 * SLOW
    while time.monotonic() < deadline:
        lines = reload_lines(p)
        if len(lines) > before:
            return lines[before]
        time.sleep(0.05)
    raise AssertionError("no reload verdict in the log:\n" + p.log_text()[-3000:])


@pytest.fixture
def site(tmp_path):
    """Certificates A and B for NAME, a default one, and the A/B slot the config names."""
    tmp = str(tmp_path)
    certs = {"a": make_cert(tmp, NAME, "a"), "b": make_cert(tmp, NAME, "b"),
             "default": make_cert(tmp, "default.example.test", "default")}
    slot = {"cert": os.path.join(tmp, "site.crt"), "key": os.path.join(tmp, "site.key")}
    install(certs["a"], slot)
    certs["slot"] = slot
    return certs


@pytest.fixture
def tls_proxy(tmp_path, site):
    b = ph.Backend("b1").start()
    tls = {"certificates": [site["default"], site["slot"]]}
    p = ph.start_proxy(tmp_path, [b], listen_over={"tls": tls})
    yield p
    finish(p)
    b.stop()


@pytest.mark.skipif(not shutil.which("curl"), reason="curl needed")
def test_tls_two_sni_names(tmp_path):
    tmp = str(tmp_path)
    certs = [make_cert(tmp, "a.example.test"), make_cert(tmp, "b.example.test")]
    b = ph.Backend("b1").start()
    p = ph.start_proxy(tmp_path, [b], listen_over={"tls": {"certificates": certs}})
    try:
        for i, name in enumerate(("a.example.test", "b.example.test")):
            r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", certs[i]["cert"],
                                "--resolve", f"{name}:{p.port}:127.0.0.1",
                                f"https://{name}:{p.port}/t"],
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            assert '"xfp": "https"' in r.stdout
        # The wrong CA for a name fails verification: the certificate really differs.
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", certs[0]["cert"],
                            "--resolve", f"b.example.test:{p.port}:127.0.0.1",
                            f"https://b.example.test:{p.port}/t"],
                           capture_output=True, text=True)
        assert r.returncode != 0
    finally:
        finish(p)
        b.stop()


def test_sighup_reloads_certificate(site, tls_proxy):
    p = tls_proxy
    fp_a, fp_b = fingerprint_of_file(site["a"]["cert"]), fingerprint_of_file(site["b"]["cert"])
    fp_default = fingerprint_of_file(site["default"]["cert"])
    assert len({fp_a, fp_b, fp_default}) == 3
    assert served_fingerprint(p.port) == fp_a
    assert served_fingerprint(p.port, "other.example.test") == fp_default

    # A keep-alive connection made before the reload, on certificate A.
    ka = https_conn(p.port)
    ka_sock = ka.sock
    status, body = https_get(ka, "/before")
    assert status == 200 and b'"xfp": "https"' in body
    assert hashlib.sha256(ka_sock.getpeercert(binary_form=True)).hexdigest() == fp_a

    install(site["b"], site["slot"])
    line = sighup(p)
    assert "reload done" in line, line

    # New connections get B (and the default certificate is unchanged).
    assert served_fingerprint(p.port) == fp_b
    assert served_fingerprint(p.port, "other.example.test") == fp_default
    c = https_conn(p.port)
    try:
        assert https_get(c, "/after")[0] == 200
    finally:
        c.close()

    # The old connection still works, on the same socket and certificate A.
    status, body = https_get(ka, "/old-conn-after-reload")
    assert status == 200 and b"/old-conn-after-reload" in body
    assert ka.sock is ka_sock
    assert hashlib.sha256(ka_sock.getpeercert(binary_form=True)).hexdigest() == fp_a
    ka.close()


def test_sighup_bad_key_keeps_old_certificate(tmp_path, site, tls_proxy):
    p = tls_proxy
    fp_a, fp_b = fingerprint_of_file(site["a"]["cert"]), fingerprint_of_file(site["b"]["cert"])
    slot = site["slot"]
    assert served_fingerprint(p.port) == fp_a

    # Certificate B with a damaged key: nothing of the new set is taken.
    shutil.copyfile(site["b"]["cert"], slot["cert"])
    with open(site["b"]["key"]) as f:
        pem = f.read()
    with open(slot["key"], "w") as f:
        f.write(pem[:len(pem) // 2])
    line = sighup(p)
    assert "reload failed" in line and slot["key"] in line and "no private key" in line, line
    assert "keeping the old configuration" in line, line
    assert p.alive()
    assert served_fingerprint(p.port) == fp_a

    # Certificate B with A's key: rejected as a mismatch.
    shutil.copyfile(site["a"]["key"], slot["key"])
    line = sighup(p)
    assert "reload failed" in line and "key does not match certificate" in line, line
    assert slot["key"] in line and slot["cert"] in line, line
    assert served_fingerprint(p.port) == fp_a

    # A missing key file.
    os.unlink(slot["key"])
    line = sighup(p)
    assert "reload failed" in line and slot["key"] in line and "No such file" in line, line
    assert served_fingerprint(p.port) == fp_a

    # The proxy still serves and reloads once the files are right.
    c = https_conn(p.port)
    try:
        assert https_get(c, "/still-serving")[0] == 200
    finally:
        c.close()
    install(site["b"], slot)
    assert "reload done" in sighup(p)
    assert served_fingerprint(p.port) == fp_b


# ---------------------------------------------------------------- --check-config

def check_config(tmp, conf, name="check.json"):
    path = ph.fedtest.write_config(tmp, conf, name)
    r = subprocess.run([ph.fedtest.binary("fedgslb-proxy"), "--check-config", "--config", path],
                       capture_output=True, text=True, timeout=60 * SLOW)
    for m in SANITIZER_MARKERS:
        assert m not in r.stderr, r.stderr
    return path, r


def tls_conf(tmp, port, certs, extra_listen=()):
    return ph.proxy_config(tmp, port, ph.free_port(ipv6=False), ["127.0.0.1:1"],
                           listen_over={"tls": {"certificates": certs}},
                           extra_listen=extra_listen)


def test_check_config_tls(tmp_path, site):
    tmp = str(tmp_path)
    a, b, d = site["a"], site["b"], site["default"]

    # Good files: exit 0 and the "ok" line. The listen port is in use: the
    # check binds nothing.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        path, r = check_config(tmp, tls_conf(tmp, port, [d, a]))
    assert r.returncode == 0, r.stderr
    assert "config OK" in r.stdout and "2 TLS certificates loaded" in r.stdout, r.stdout
    assert r.stderr == ""

    # A key that belongs to another certificate.
    port = ph.free_port(ipv6=False)
    path, r = check_config(tmp, tls_conf(tmp, port, [d, {"cert": b["cert"], "key": a["key"]}]))
    assert r.returncode != 0
    assert "config OK" not in r.stdout
    line = r.stderr.strip()
    assert "\n" not in line, line
    assert line.startswith(path + ": proxy.listen[0].tls.certificates[1].key: "), line
    assert f"{a['key']}: key does not match certificate {b['cert']}" in line, line

    # A missing certificate file.
    missing = os.path.join(tmp, "missing.crt")
    path, r = check_config(tmp, tls_conf(tmp, port, [{"cert": missing, "key": a["key"]}]))
    assert r.returncode != 0
    assert r.stderr.strip() == (f"{path}: proxy.listen[0].tls.certificates[0].cert: {missing}: "
                                "cannot read: No such file or directory"), r.stderr
    # A missing key file.
    missing = os.path.join(tmp, "missing.key")
    path, r = check_config(tmp, tls_conf(tmp, port, [{"cert": a["cert"], "key": missing}]))
    assert r.returncode != 0
    assert "proxy.listen[0].tls.certificates[0].key: " + missing in r.stderr, r.stderr
    assert "No such file or directory" in r.stderr

    # A file that holds no key.
    path, r = check_config(tmp, tls_conf(tmp, port, [{"cert": a["cert"], "key": a["cert"]}]))
    assert r.returncode != 0
    assert f"proxy.listen[0].tls.certificates[0].key: {a['cert']}: no private key" in r.stderr

    # Every listener is checked: the second is wrong, the first is fine.
    second = {"address": f"127.0.0.1:{ph.free_port(ipv6=False)}", "member": "jpn",
              "service": "default/web", "backends": ["127.0.0.1:1"],
              "tls": {"certificates": [{"cert": d["cert"], "key": b["key"]}]}}
    path, r = check_config(tmp, tls_conf(tmp, port, [a], extra_listen=[second]))
    assert r.returncode != 0
    assert r.stderr.strip().startswith(path + ": proxy.listen[1].tls.certificates[0].key: "), \
        r.stderr
    assert "key does not match certificate" in r.stderr

    # Without tls nothing changes: still "config OK".
    conf = ph.proxy_config(tmp, port, ph.free_port(ipv6=False), ["127.0.0.1:1"])
    path, r = check_config(tmp, conf)
    assert r.returncode == 0 and "config OK: 1 proxy listeners" in r.stdout, r.stderr
