# SPDX-License-Identifier: Apache-2.0
"""Publishing across regions: dnsd's control API speaks only TLS and asks
for a client certificate, fedgslb-health publishes to its https:// address
with its own vantage token and client certificate, and fedgslbctl talks to
it over https. Certificates come from the openssl command."""

import os
import shutil
import subprocess
import time

import pytest

import chain as ch
import fakekube
import fedtest
from chain import Chain

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl needed")

VANTAGE_TOKEN = "vantage-us-east-1-token-0123456789"


class TlsChain(Chain):
    """The chain with dnsd's control API on mutual TLS and a vantage token."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.pki = os.path.join(self.tmp, "pki")
        fakekube._gen_certs(self.pki, "ctl", "127.0.0.1")
        self.vtoken_file = os.path.join(self.tmp, "us-east-1.token")
        fedtest.write_secret(self.vtoken_file, VANTAGE_TOKEN)
        self.conf["dnsd"]["control"].update({
            "tls": {"certificate": self.pem("server.crt"), "key": self.pem("server.key"),
                    "client_ca": self.pem("ca.crt"), "ca_file": self.pem("ca.crt")},
            "vantage_tokens": {"us-east-1": {"token_file": self.vtoken_file}},
        })

    def pem(self, name):
        return os.path.join(self.pki, name)

    def health_config(self, vantage):
        conf = super().health_config(vantage)
        conf["health"]["publish_to"] = ["https://127.0.0.1:%d" % self.ctl_port]
        conf["health"]["publish_token_file"] = self.vtoken_file
        conf["health"]["publish_tls"] = {"ca_file": self.pem("ca.crt"),
                                         "certificate": self.pem("client.crt"),
                                         "key": self.pem("client.key")}
        return conf

    def start_dnsd(self):
        # wait_ready() speaks plain HTTP: wait for DNS and the TLS port here.
        self.dnsd = fedtest.start_dnsd(self.tmp, conf=self.conf, dns_port=self.dns_port,
                                       ctl_port=self.ctl_port, config_name="dnsd.json",
                                       ready=False)
        deadline = time.monotonic() + 15 * fedtest.SLOW
        while self.curl("/healthz")[0] != "200":
            assert time.monotonic() < deadline and self.dnsd.alive(), self.dnsd.log_text()
            time.sleep(0.05)
        return self.dnsd

    def curl(self, path, *extra, client_cert=True):
        argv = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--cacert", self.pem("ca.crt")]
        if client_cert:
            argv += ["--cert", self.pem("client.crt"), "--key", self.pem("client.key")]
        p = subprocess.run(argv + list(extra) + ["https://127.0.0.1:%d%s" % (self.ctl_port, path)],
                           capture_output=True, text=True, timeout=30)
        body, _, code = p.stdout.rpartition("\n")
        return code, body


@pytest.fixture
def tls(tmp_path):
    c = TlsChain(tmp_path).start()
    try:
        yield c
    finally:
        c.close()


def test_publishing_over_mutual_tls_with_a_vantage_token(tls):
    # The vantage's documents arrive over https: answers follow its probes.
    tls.wait_answer("us-east-1", "usa", timeout=20)
    tls.stop_backend("usa")
    tls.wait_answer("us-east-1", "eur", timeout=ch.INTERVAL_MS * ch.FALL / 1000.0 + 10)
    log = tls.health["us-east-1"].log_text()
    assert VANTAGE_TOKEN not in log


def test_listener_refuses_plain_http_and_clients_without_a_certificate(tls):
    assert tls.curl("/healthz")[0] == "200"
    # No client certificate: the handshake fails, no HTTP status at all.
    assert tls.curl("/healthz", client_cert=False)[0] == "000"
    # Plain HTTP to the TLS port gets no HTTP reply.
    with pytest.raises(Exception):
        fedtest.http(tls.ctl_port, "GET", "/healthz", timeout=2)
    # The vantage token may not drain; the operator token may.
    code, _ = tls.curl("/v1/members/eur/drain", "-X", "PUT",
                       "-H", "Authorization: Bearer " + VANTAGE_TOKEN)
    assert code == "403"
    code, _ = tls.curl("/v1/members/eur/drain", "-X", "PUT",
                       "-H", "Authorization: Bearer " + fedtest.TOKEN)
    assert code == "200"


def test_fedgslbctl_over_https(tls):
    tls.wait_answer("us-east-1", "usa", timeout=20)
    cfg = os.path.join(tls.tmp, "dnsd.json")
    argv = [fedtest.binary("fedgslbctl"), "--config", cfg, "--cert", tls.pem("client.crt"),
            "--key", tls.pem("client.key"), "status"]
    p = fedtest.run(argv, timeout=30, cwd=tls.tmp)
    assert p.returncode == 0, p.stderr
    assert "usa" in p.stdout
    # Without the client certificate the call fails and says why.
    p = fedtest.run(argv[:3] + ["status"], timeout=30, cwd=tls.tmp)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "cannot reach dnsd control API at https://127.0.0.1:" in p.stderr
