# SPDX-License-Identifier: Apache-2.0
"""The distributed mode against a guarded etcd: client URLs on TLS asking for
a client certificate (--client-cert-auth), and etcd's own authentication (a
user with readwrite on /fedgslb/ only). fedgslb-health and fedgslb-dnsd get
through with the right settings, are refused with the wrong ones (and say
why in their logs and GET /v1/state), and authenticate again when etcd
forgets their token (a restart of the whole cluster)."""

import os
import shutil
import time

import pytest

import etcd_cluster
import fedtest
from etcd_chain import EtcdChain
from etcd_cluster import EtcdCluster

pytestmark = [
    pytest.mark.skipif(not etcd_cluster.available(), reason="etcd-server not installed"),
    pytest.mark.skipif(not shutil.which("openssl"), reason="openssl needed"),
]

USER, PASSWORD = "fedgslb", "fed-pa55word-0123456"
ONE = ("us-east-1",)


def start(tmp, cluster, section, vantages=ONE):
    c = EtcdChain(tmp, vantages=vantages, etcd=cluster, etcd_section=section)
    c.start_members()
    c.start_dnsd()
    c.start_ns2()
    for v in vantages:
        c.start_health(v)
    return c


def extra_dnsd(c, name, etcd_change):
    """One more fedgslb-dnsd with ns2's configuration, the etcd section changed
    by @etcd_change, on its own ports and state file. Returns (daemon, ctl port)."""
    conf = c.ns2_config()
    etcd_change(conf["etcd"])
    port, ctl = etcd_cluster.quiet_port(), etcd_cluster.quiet_port()
    conf["dnsd"]["listen"] = ["127.0.0.1:%d" % port]
    conf["dnsd"]["control"]["listen"] = "127.0.0.1:%d" % ctl
    conf["dnsd"]["state_file"] = os.path.join(c.tmp, "%s-state.json" % name)
    d = fedtest.start_dnsd(c.tmp, conf=conf, dns_port=port, ctl_port=ctl,
                           config_name="%s.json" % name)
    return d, ctl


def wait_log(d, text, timeout=15):
    deadline = time.monotonic() + timeout * fedtest.SLOW
    while text not in d.log_text():
        assert time.monotonic() < deadline, "%r not logged:\n%s" % (text, d.log_text()[-3000:])
        time.sleep(0.1)


def test_tls_with_client_certificates(tmp_path):
    cl = EtcdCluster(str(tmp_path), client_cert_auth=True).start()
    good = {"tls": {"ca_file": cl.pem("ca.crt"), "certificate": cl.pem("client.crt"),
                    "key": cl.pem("client.key")}}
    c = start(tmp_path, cl, good)
    try:
        assert all(e.startswith("https://") for e in c.conf["etcd"]["endpoints"])
        c.wait_etcd(lambda s: all(x["vantage_keys"] == 1 and x["up"] for x in s), timeout=30,
                    what="both name servers reading us-east-1's document over TLS")
        c.wait_both("us-east-1", "usa", timeout=15)
        c.backends["usa"].set_status(500)
        c.wait_both("us-east-1", "eur", timeout=10)
        c.backends["usa"].set_status(200)
        # Without the client certificate: the TLS handshake is refused; said so.
        d, ctl = extra_dnsd(c, "nocert", lambda e: e.update(tls={"ca_file": cl.pem("ca.crt")}))
        try:
            wait_log(d, "etcd: list failed")
            st = fedtest.http(ctl, "GET", "/v1/state", timeout=2)[1]["etcd"]
            assert st["up"] is False and st["synced"] is False and st["last_error"], st
            m = {n: v for n, _, v in fedtest.Control(ctl).metrics()}
            assert m["fedgslb_etcd_up"] == 0 and m["fedgslb_etcd_failures_total"] >= 1
        finally:
            fedtest.finish(d)
        # Without our CA: the server's certificate is not trusted.
        d, ctl = extra_dnsd(c, "noca", lambda e: e.pop("tls"))
        try:
            wait_log(d, "etcd: list failed")
            assert "certificate" in d.log_text().lower() or "SSL" in d.log_text()
        finally:
            fedtest.finish(d)
    finally:
        c.close()
        cl.close()


def test_user_and_password(tmp_path):
    cl = EtcdCluster(str(tmp_path), auth=(USER, PASSWORD)).start()
    pw = os.path.join(str(tmp_path), "etcd.password")
    fedtest.write_secret(pw, PASSWORD)
    c = start(tmp_path, cl, {"username": USER, "password_file": pw})
    try:
        c.wait_etcd(lambda s: all(x["vantage_keys"] == 1 and x["up"] for x in s), timeout=30,
                    what="both name servers reading with a token")
        c.wait_both("us-east-1", "usa", timeout=15)
        # The password is never logged.
        for d in (c.dnsd, c.ns2, c.health["us-east-1"]):
            assert PASSWORD not in d.log_text()
        # etcd restarts: its simple tokens are gone; the daemons authenticate again.
        cl.kill_all()
        time.sleep(1.0)
        cl.start_all()
        cl.login("root", etcd_cluster.ROOT_PASSWORD)
        c.backends["usa"].set_status(500)
        took = c.wait_both("us-east-1", "eur", timeout=20)
        print("after etcd's restart, fault -> answers: %.2f s" % took)
        assert any("authenticating again" in d.log_text()
                   for d in (c.dnsd, c.ns2, c.health["us-east-1"])), c.logs()
        c.backends["usa"].set_status(200)
        c.wait_both("us-east-1", "usa", timeout=15)
        # A wrong password: refused, said so, nothing served changes.
        bad = os.path.join(str(tmp_path), "bad.password")
        fedtest.write_secret(bad, "not-the-password")
        d, ctl = extra_dnsd(c, "badpw", lambda e: e.update(password_file=bad))
        try:
            wait_log(d, "authenticate as %s: etcdserver: authentication failed" % USER)
            # The log line may come from the consumer's registration (its
            # lease) before the watch's own list has failed: the status
            # says it once the watch has.
            deadline = time.monotonic() + 10 * fedtest.SLOW
            while True:
                st = fedtest.http(ctl, "GET", "/v1/state", timeout=2)[1]["etcd"]
                if "authenticate" in st["last_error"] or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert st["up"] is False and "authenticate" in st["last_error"], st
            assert "not-the-password" not in d.log_text()
        finally:
            fedtest.finish(d)
        # No credentials at all against an etcd with auth: the hint names the keys.
        d, ctl = extra_dnsd(c, "nouser", lambda e: [e.pop(k) for k in ("username",
                                                                       "password_file")])
        try:
            wait_log(d, "set etcd.username and etcd.password_file")
        finally:
            fedtest.finish(d)
    finally:
        c.close()
        cl.close()
