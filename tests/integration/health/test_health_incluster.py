# SPDX-License-Identifier: Apache-2.0
"""fedgslb-health as a pod: members.usa.in_cluster: true takes the API server
from KUBERNETES_SERVICE_HOST/PORT and the ServiceAccount token and CA from the
mounted directory (FEDGSLB_SERVICEACCOUNT_DIR in the tests), re-reading the
token as the kubelet rotates it; without the pod's environment the config
check fails with a reason."""

import os
import subprocess
import time

import pytest

import health_harness as hh
import fakekube
import fedtest
from health_harness import entry

SVC = "default/web"


def write_atomic(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def make_incluster(tmp, token="sa-token-one-0123456789"):
    tmp = str(tmp)
    fk = fakekube.FakeKube("usa", tmp, token=token)
    fk.bookmark_interval = 0.5
    sa = os.path.join(tmp, "serviceaccount")
    os.makedirs(sa)
    write_atomic(os.path.join(sa, "token"), token)
    write_atomic(os.path.join(sa, "ca.crt"), fk.ca_pem)
    write_atomic(os.path.join(sa, "namespace"), "fedgslb-system\n")
    c = hh.Cluster.__new__(hh.Cluster)
    c.tmp = tmp
    c.fakes = {"usa": fk}
    c.kubeconfig = None
    c.ctl_port = fedtest.free_port(ipv6=False)
    c.conf = hh.health_config(tmp, "/nonexistent", c.ctl_port, members=["usa"])
    m = c.conf["members"]["usa"]
    del m["kubeconfig"], m["context"]
    m["in_cluster"] = True
    c.config_path = fedtest.write_config(tmp, c.conf, "health.json")
    c.env = dict(KUBERNETES_SERVICE_HOST="127.0.0.1",
                 KUBERNETES_SERVICE_PORT=str(fk.port), FEDGSLB_SERVICEACCOUNT_DIR=sa)
    c.daemon = None
    return c, fk, sa


@pytest.fixture
def incluster(tmp_path):
    c, fk, sa = make_incluster(tmp_path)
    fk.start()
    fk.add_service("default", "web")
    fk.set_endpoints("default", "web", ready=2)
    try:
        c.start()
        c.wait(lambda d: entry(d, SVC, "usa") and hh.api(d, "usa") == "ok", timeout=5,
               what="in-cluster sync")
        yield c, fk, sa
    finally:
        c.close()


def test_in_cluster_member_and_token_rotation(incluster):
    c, fk, sa = incluster
    assert all(r["user"] == fk.user for r in fk.requests if r["status"] == 200)
    fk.set_endpoints("default", "web", ready=4)
    c.wait(lambda d: entry(d, SVC, "usa")["ready_endpoints"] == 4, timeout=3, what="ready=4")
    # The kubelet rotates the projected token: the file changes, the server
    # accepts only the new one, streams are cut and come back with it.
    write_atomic(os.path.join(sa, "token"), "sa-token-two-9876543210\n")
    fk.token = "sa-token-two-9876543210"
    fk.clear_requests()
    fk.drop_streams()
    fk.set_endpoints("default", "web", ready=6)
    c.wait(lambda d: entry(d, SVC, "usa")["ready_endpoints"] == 6 and hh.api(d, "usa") == "ok",
           timeout=5, what="ready=6 after rotation")
    assert fk.requests and all(r["status"] != 401 for r in fk.requests)
    assert "sa-token-two" not in c.log() and "sa-token-one" not in c.log()


def run_check(c, env):
    exe = fedtest.binary("fedgslb-health")
    return subprocess.run([exe, "--config", c.config_path, "--check-config"], env=env,
                          capture_output=True, text=True, timeout=30)


def test_in_cluster_needs_the_pod_environment(tmp_path):
    c, fk, sa = make_incluster(tmp_path)
    env = dict(os.environ, **c.env)
    assert run_check(c, env).returncode == 0
    del env["KUBERNETES_SERVICE_HOST"]
    p = run_check(c, env)
    assert p.returncode != 0
    assert ("members.usa (context in-cluster): in-cluster: KUBERNETES_SERVICE_HOST and "
            "KUBERNETES_SERVICE_PORT must be set (is fedgslb-health running in a pod?)") in p.stderr
    env = dict(os.environ, **c.env)
    os.unlink(os.path.join(sa, "token"))
    p = run_check(c, env)
    assert p.returncode != 0
    assert "in-cluster: %s/token: cannot read" % sa in p.stderr, p.stderr
    # in_cluster and a kubeconfig at once: refused.
    c.conf["members"]["usa"]["kubeconfig"] = "/x"
    c.config_path = fedtest.write_config(c.tmp, c.conf, "health.json")
    write_atomic(os.path.join(sa, "token"), "t")
    p = run_check(c, env)
    assert p.returncode != 0 and "in_cluster excludes kubeconfig and context" in p.stderr
