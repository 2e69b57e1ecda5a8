# SPDX-License-Identifier: Apache-2.0
"""The README's demo command must keep working: run it against this build.

The default demo is the federation testbed (tests/e2e/testbed.py, eight
checked steps), also in the distributed mode (--etcd); --dns-only is the small
dnsd-only demo."""
import os
import shutil
import subprocess

import pytest


def _demo(*args, timeout):
    src = os.environ["FEDGSLB_SOURCE_DIR"]
    build = os.environ["FEDGSLB_BUILD_DIR"]
    return subprocess.run(
        [os.path.join(src, "scripts", "demo.sh"), "--once", "--no-build", "--build-dir", build]
        + list(args), cwd=src, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL)


def test_demo_testbed_once():
    # The testbed bounds itself (--time-limit, 170 s by default); 16 s normally.
    if not os.access(os.path.join(os.environ["FEDGSLB_BUILD_DIR"], "fedgslb-proxy"), os.X_OK):
        pytest.skip("fedgslb-proxy is not built")
    proc = _demo("--loopback", timeout=240)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "running on loopback with source addresses standing in for client location" in out
    for n in range(1, 9):
        assert "step %d ok" % n in out, out
    assert "FAILED" not in out
    assert "every step behaved as stated" in out
    # A few things each step's table must show.
    assert "200 ap-northeast-1a jpn-node-" in out          # 1: jpn via the proxy
    assert "probe 2/2 failed: status 500" in out            # 2: why eur left
    assert "unreachable" in out                             # 4: control-plane loss
    assert "rule: all down: fail-open" in out               # 6: explain
    assert "answers of each service's global name" in out   # 7: fedgslbctl status
    assert "the instances DISAGREE" in out                  # 8: a missed intent shown
    assert "every instance answers from the same state" in out  # 8: ... and re-delivered
    assert "--instance" in out                              # one deployment file


def test_demo_testbed_etcd_once():
    """The same scenario in the distributed mode: through a three-node etcd cluster."""
    if not os.access(os.path.join(os.environ["FEDGSLB_BUILD_DIR"], "fedgslb-proxy"), os.X_OK):
        pytest.skip("fedgslb-proxy is not built")
    if shutil.which("etcd") is None:
        pytest.skip("etcd-server is not installed")
    proc = _demo("--loopback", "--etcd", timeout=240)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "a 3-node etcd cluster" in out and "no vantage names a consumer" in out
    for n in range(1, 9):
        assert "step %d ok" % n in out, out
    assert "FAILED" not in out
    assert "200 ap-northeast-1a jpn-node-" in out          # 1: jpn via the proxy, fed by etcd
    assert "etcd (/fedgslb/myfed/): 3 of 3 members answer" in out
    assert "agreement: every consumer holds the same keys at the same revisions" in out
    assert "every instance answers from the same state" in out
    assert "written at revision" in out and "removed at revision" in out  # 8: intents via etcd


def _testbed(tmp_path, *args, timeout=120):
    """A failing run keeps its logs in a work directory: under @tmp_path."""
    src = os.environ["FEDGSLB_SOURCE_DIR"]
    build = os.environ["FEDGSLB_BUILD_DIR"]
    if not os.access(os.path.join(build, "fedgslb-proxy"), os.X_OK):
        pytest.skip("fedgslb-proxy is not built")
    return subprocess.run(
        ["/usr/bin/python3", os.path.join(src, "tests", "e2e", "testbed.py"), "--once",
         "--loopback", "--build-dir", build] + list(args),
        cwd=src, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env=dict(os.environ, TMPDIR=str(tmp_path)))


def test_testbed_fails_the_step_that_misbehaves(tmp_path):
    """eur drained on ns1: eu clients get usa there, so step 1 must fail."""
    proc = _testbed(tmp_path, "--drain", "eur")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "step 1 FAILED: " in proc.stderr, proc.stderr[-3000:]
    assert "eu-west-1@ns1" in proc.stderr and "step 1 ok" not in proc.stdout


def test_testbed_time_limit(tmp_path):
    proc = _testbed(tmp_path, "--time-limit", "1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stderr and "time limit" in proc.stderr, proc.stderr[-3000:]


def test_demo_dns_only():
    proc = _demo("--dns-only", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every answer as expected" in proc.stdout
    assert "rule: best latency -> eur" in proc.stdout
