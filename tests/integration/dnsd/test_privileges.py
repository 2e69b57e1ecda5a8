# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd binds port 53 as root, then runs as dnsd.user/dnsd.group with
no capability left; it fails at start, naming the path and the fix, when the
state file's directory is not writable by that user.

Runs in a network namespace the test creates (port 53 there is ours alone)
and removes. Needs root: skipped otherwise."""

import os
import pwd
import grp
import shutil
import subprocess
import tempfile
import time

import pytest

import fedtest
from fedtest import ZONE

Z = ZONE + "."
CTL_PORT = 8053


def _need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (binds port 53, switches users, creates a network namespace)")
    for tool in ("ip", "dig"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    try:
        pwd.getpwnam("nobody")
        grp.getgrnam("nogroup")
    except KeyError:
        pytest.skip("no user nobody / group nogroup")


@pytest.fixture
def netns():
    _need_root()
    name = f"fedtest-h5-{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {r.stderr.strip()}")
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def workdir():
    """A directory the unprivileged user can reach (pytest's tmp is root's 0700)."""
    d = tempfile.mkdtemp(prefix="fedtest-h5-priv-", dir="/tmp")
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _config(workdir, state_dir, **over):
    conf = fedtest.base_config(workdir, 53, CTL_PORT, ipv6=False, **over)
    conf["dnsd"]["listen"] = ["127.0.0.1:53"]
    conf["dnsd"]["state_file"] = os.path.join(state_dir, "dnsd-state.json")
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(conf["dnsd"]["control"]["token_file"], nobody, -1)
    os.chmod(conf["dnsd"]["zone_file"], 0o644)
    path = fedtest.write_config(workdir, conf)
    os.chmod(path, 0o644)
    return path


def _start(netns, workdir, path):
    exe = fedtest.binary("fedgslb-dnsd")
    d = fedtest.Daemon(["ip", "netns", "exec", netns, exe, "--config", path],
                       os.path.join(workdir, "dnsd.log"), cwd=workdir)
    return d.start()


def _dig(netns, name, rdtype="A"):
    r = subprocess.run(["ip", "netns", "exec", netns, "dig", "+short", "+time=1", "+tries=1",
                        "@127.0.0.1", "-p", "53", name, rdtype],
                       capture_output=True, text=True, timeout=10)
    return r.returncode, r.stdout.strip()


def _status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def test_runs_as_nobody_without_capabilities_on_port_53(netns, workdir):
    state_dir = os.path.join(workdir, "state")
    os.mkdir(state_dir)
    os.chown(state_dir, pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
    path = _config(workdir, state_dir, user="nobody", group="nogroup")
    d = _start(netns, workdir, path)
    try:
        deadline = time.monotonic() + 15 * fedtest.SLOW
        answer = ""
        while time.monotonic() < deadline and d.alive():
            rc, answer = _dig(netns, "host." + Z)
            if rc == 0 and answer:
                break
            time.sleep(0.1)
        assert answer == "192.0.2.80", d.log_text()
        st = _status(d.proc.pid)
        uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
        assert st["Uid"] == [str(uid)] * 4, st["Uid"]
        assert st["Gid"] == [str(gid)] * 4, st["Gid"]
        assert st["Groups"] == [str(gid)], st["Groups"]
        for cap in ("CapEff", "CapPrm", "CapAmb"):
            assert st[cap] == ["0000000000000000"], (cap, st[cap])
        assert st["NoNewPrivs"] == ["1"]
        # every thread, not just the main one
        for tid in os.listdir(f"/proc/{d.proc.pid}/task"):
            tst = _status(f"{d.proc.pid}/task/{tid}")
            assert tst["Uid"] == [str(uid)] * 4 and tst["CapEff"] == ["0000000000000000"]
        assert "privileges dropped: user=nobody" in d.log_text()
        assert "running as root" not in d.log_text()
    finally:
        code = d.stop()
    assert code == 0, d.log_text()


def test_state_dir_not_writable_is_refused_with_the_fix(netns, workdir):
    state_dir = os.path.join(workdir, "rootonly")
    os.mkdir(state_dir, 0o755)  # owned by root: nobody cannot create files in it
    path = _config(workdir, state_dir, user="nobody")
    d = _start(netns, workdir, path)
    try:
        d.proc.wait(timeout=15 * fedtest.SLOW)
    finally:
        d.stop()
    log = d.log_text()
    assert d.proc.returncode == 1, log
    assert state_dir in log and "not writable by user nobody" in log, log
    assert f"fix: chown nobody:65534 {state_dir}" in log, log


def test_root_without_user_warns(netns, workdir):
    path = _config(workdir, workdir)
    d = _start(netns, workdir, path)
    try:
        deadline = time.monotonic() + 15 * fedtest.SLOW
        while time.monotonic() < deadline and "started" not in d.log_text():
            time.sleep(0.1)
        assert "running as root: set dnsd.user" in d.log_text()
        assert _status(d.proc.pid)["Uid"][1] == "0"
    finally:
        assert d.stop() == 0


def test_unknown_user_is_a_config_error(workdir):
    _need_root()  # _config() chowns the token file
    path = _config(workdir, workdir, user="no-such-user-h5")
    exe = fedtest.binary("fedgslb-dnsd")
    r = subprocess.run([exe, "--config", path, "--check-config"], capture_output=True, text=True)
    assert r.returncode == 1
    assert 'dnsd.user: no such user "no-such-user-h5"' in r.stderr
