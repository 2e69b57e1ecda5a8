# SPDX-License-Identifier: Apache-2.0
"""fedgslb-health and kubeconfig credentials that change or name the server
differently from its URL:

- tokenFile rotation: the token file is read again for every request, so when
  the API server starts accepting only a new token (and drops the streams),
  the watches reconnect with the new token from the file, without SIGHUP.
- tls-server-name: the API server's certificate names only
  "kubernetes.internal", not the 127.0.0.1 of the URL. With tls-server-name
  the certificate verifies (and the Host header still names the URL's host);
  without it the member's API is reported failing with a log line that says
  why (certificate verification)."""

import os
import time

import pytest

import health_harness as hh
import fakekube
import fedtest
from health_harness import entry

SVC = "default/web"


def make_cluster(tmp, fakes, kubeconfig):
    """A harness Cluster (state polling, logs, teardown) over our own fakes."""
    c = hh.Cluster.__new__(hh.Cluster)
    c.tmp = str(tmp)
    c.fakes = fakes
    c.kubeconfig = kubeconfig
    c.ctl_port = fedtest.free_port(ipv6=False)
    c.conf = hh.health_config(c.tmp, kubeconfig, c.ctl_port, members=list(fakes))
    c.config_path = fedtest.write_config(c.tmp, c.conf, "health.json")
    c.env = {}
    c.daemon = None
    return c


def write_atomic(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def bump(c, member, ready, timeout=3):
    c.fakes[member].set_endpoints("default", "web", ready=ready)
    return c.wait(lambda d: entry(d, SVC, member)["ready_endpoints"] == ready, timeout=timeout,
                  what="%s ready=%d" % (member, ready))


@pytest.fixture
def token_cluster(tmp_path):
    fk = fakekube.FakeKube("usa", str(tmp_path), token="token-A-0123456789")
    fk.bookmark_interval = 0.5
    kc = os.path.join(str(tmp_path), "kubeconfig.yaml")
    fakekube.write_kubeconfig(kc, [("usa", fk, "token-file")])
    c = make_cluster(tmp_path, {"usa": fk}, kc)
    fk.start()
    fk.add_service("default", "web")
    fk.set_endpoints("default", "web", ready=2)
    try:
        c.start()
        c.wait(lambda d: entry(d, SVC, "usa") and hh.api(d, "usa") == "ok", timeout=5,
               what="initial sync")
        yield c
    finally:
        c.close()


def test_token_file_rotation_without_sighup(token_cluster):
    c = token_cluster
    fk = c.fakes["usa"]
    token_file = os.path.join(c.tmp, "usa.token")
    with open(token_file) as f:
        assert f.read().strip() == "token-A-0123456789"
    bump(c, "usa", 3)
    pid = c.daemon.proc.pid

    # Rotate: the file gets token B, the server accepts only B from now on and
    # cuts the open watch streams, which must come back with B.
    mark = len(c.log())
    write_atomic(token_file, "token-B-9876543210\n")
    fk.token = "token-B-9876543210"
    fk.clear_requests()
    assert fk.drop_streams() >= 2
    deadline = time.monotonic() + 5 * fedtest.SLOW
    while time.monotonic() < deadline:
        watches = [r for r in fk.requests if r["watch"] and r["status"] == 200]
        kinds = {r["path"] for r in watches}
        if len(kinds) >= 2:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("watches did not reconnect with the new token: %r\n%s"
                             % (fk.requests, c.log()[mark:][-3000:]))
    assert all(r["user"] == fk.user for r in watches)

    # Changes keep arriving, and the member is ok again (never unauthorized:
    # the file held B before the server asked for it).
    bump(c, "usa", 5)
    bump(c, "usa", 1)
    c.wait(lambda d: hh.api(d, "usa") == "ok", timeout=3, what="usa ok after rotation")
    assert "credentials rejected" not in c.log()[mark:]
    # No reload happened: the same process, and no SIGHUP in its log.
    assert c.daemon.proc.pid == pid and c.daemon.proc.poll() is None
    assert "SIGHUP" not in c.log()[mark:]

    # A second rotation, this time while the streams stay open: the next
    # request (readyz every 200 ms) must already use the new token.
    write_atomic(token_file, "token-C-5555555555\n")
    fk.token = "token-C-5555555555"
    fk.clear_requests()
    deadline = time.monotonic() + 3 * fedtest.SLOW
    while time.monotonic() < deadline:
        if any(r["user"] == fk.user for r in fk.requests):
            break
        time.sleep(0.05)
    fk.drop_streams()
    bump(c, "usa", 4)
    # Secrets never reach the log.
    text = c.log()
    for tok in ("token-A-0123456789", "token-B-9876543210", "token-C-5555555555"):
        assert tok not in text


def test_token_file_rotation_server_first_recovers(token_cluster):
    """The server switches to B before the file is rewritten: requests fail
    with 401 meanwhile (logged as credentials rejected), and the checker
    recovers by itself once the file holds B."""
    c = token_cluster
    fk = c.fakes["usa"]
    token_file = os.path.join(c.tmp, "usa.token")
    mark = len(c.log())
    fk.token = "token-B-9876543210"
    fk.drop_streams()
    c.wait(lambda d: hh.api(d, "usa") in ("unauthorized", "stale"), timeout=5,
           what="usa unauthorized while the file holds the old token")
    c.wait_log("credentials rejected", start=mark)
    fk.set_endpoints("default", "web", ready=7)
    time.sleep(0.3)
    assert entry(c.state(), SVC, "usa")["ready_endpoints"] == 2  # last known data kept
    write_atomic(token_file, "token-B-9876543210\n")
    c.wait(lambda d: hh.api(d, "usa") == "ok" and entry(d, SVC, "usa")["ready_endpoints"] == 7,
           timeout=8, what="usa recovered with the rotated token")
    assert "token-B-9876543210" not in c.log()


# ---------------------------------------------------------------- tls-server-name

@pytest.fixture
def sni_cluster(tmp_path):
    """Two members whose certificates name only kubernetes.internal: "usa" has
    tls-server-name: kubernetes.internal in its kubeconfig, "eur" has not."""
    fakes = {}
    for name in ("usa", "eur"):
        fk = fakekube.FakeKube(name, str(tmp_path), server_sans=["DNS:kubernetes.internal"])
        fk.bookmark_interval = 0.5
        fakes[name] = fk
    fakes["usa"].tls_server_name = "kubernetes.internal"
    kc = os.path.join(str(tmp_path), "kubeconfig.yaml")
    fakekube.write_kubeconfig(kc, [(n, fk, "token-ca-data") for n, fk in fakes.items()])
    c = make_cluster(tmp_path, fakes, kc)
    for fk in fakes.values():
        fk.start()
        fk.add_service("default", "web")
        fk.set_endpoints("default", "web", ready=2)
    try:
        c.start()
        yield c
    finally:
        c.close()


def test_fake_certificate_names_only_kubernetes_internal(sni_cluster):
    out = fedtest.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                       sni_cluster.fakes["usa"].server_cert_file])
    text = out.stdout if isinstance(out.stdout, str) else out.stdout.decode()
    assert "kubernetes.internal" in text
    assert "127.0.0.1" not in text and "localhost" not in text


def test_tls_server_name_verifies_and_keeps_host(sni_cluster):
    c = sni_cluster
    fk = c.fakes["usa"]
    with open(c.kubeconfig) as f:
        assert "tls-server-name: kubernetes.internal" in f.read()
    c.wait(lambda d: entry(d, SVC, "usa")["ready_endpoints"] == 2 and hh.api(d, "usa") == "ok",
           timeout=5, what="usa synced through tls-server-name")
    bump(c, "usa", 4)
    # The API server saw its own address in Host, not kubernetes.internal.
    hosts = {r["host"] for r in fk.requests}
    assert hosts == {"127.0.0.1:%d" % fk.port}, hosts
    assert any(r["watch"] for r in fk.requests)


def test_without_tls_server_name_verification_fails_clearly(sni_cluster):
    c = sni_cluster
    doc = c.wait(lambda d: hh.api(d, "eur") == "unreachable", timeout=5,
                 what="eur unreachable: certificate does not name 127.0.0.1")
    assert entry(doc, SVC, "eur") is None  # never listed: no data to keep
    assert hh.api(doc, "usa") == "ok"
    text = c.log()
    lines = [ln for ln in text.splitlines() if "member=eur" in ln]
    assert lines, text[-3000:]
    # The reason names the certificate check (curl/OpenSSL wording).
    assert any(("certificate" in ln.lower() or "ssl" in ln.lower()) and
               ("127.0.0.1" in ln or "subject" in ln.lower() or "verif" in ln.lower())
               for ln in lines), "\n".join(lines[-10:])
    # The server never answered an API request from eur: the handshake failed.
    assert c.fakes["eur"].requests == []
