# SPDX-License-Identifier: Apache-2.0
"""fedgslb-proxy TLS termination: two certificates chosen by SNI (curl checks which)."""

import os
import shutil
import subprocess

import pytest

import proxy_harness as ph
from fedtest import finish


def make_cert(tmp, name):
    crt, key = os.path.join(tmp, name + ".crt"), os.path.join(tmp, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name,
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    return {"cert": crt, "key": key}


@pytest.mark.skipif(not shutil.which("openssl") or not shutil.which("curl"),
                    reason="openssl and curl needed")
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
