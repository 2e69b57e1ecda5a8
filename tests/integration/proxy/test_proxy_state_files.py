# SPDX-License-Identifier: Apache-2.0
"""fedgslb-proxy's state file when things go wrong: a truncated file at start
is replaced by its .prev (the pushed backends serve at once, not the static
ones), --check-config refuses a corrupt state file and a missing state
directory, and a push whose backends must never be connected to gets 400
with the JSON path while the previous backends keep serving."""

import json
import os
import signal
import subprocess
import time

import pytest

import proxy_harness as ph
from fedtest import TOKEN, finish, http, next_generation, now_rfc3339


def doc_with(backends, gen=None):
    return {"version": 1, "vantage": "us-east-1",
            "generation": gen if gen is not None else next_generation(),
            "generated_at": now_rfc3339(),
            "services": {"default/web": {"port": 80, "members": {"jpn": {
                "via_proxy": True, "addresses": ["198.51.100.7"], "backends": list(backends),
                "healthy": True, "ready_endpoints": 1}}}}}


def push(p, backends, gen=None):
    st, body = http(p.ctl_port, "PUT", "/v1/state", body=doc_with(backends, gen), token=TOKEN)
    return st, body


def served_by(p):
    return json.loads(ph.get(p.port, "/s")[2])["backend"]


def check(tmp, conf):
    path = os.path.join(str(tmp), "check.json")
    with open(path, "w") as f:
        json.dump(conf, f)
    return subprocess.run([ph.fedtest.binary("fedgslb-proxy"), "--check-config", "--config", path],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def backends():
    bs = [ph.Backend("static").start(), ph.Backend("first").start(), ph.Backend("second").start()]
    yield bs
    for b in bs:
        b.stop()


def test_truncated_state_file_uses_prev(tmp_path, backends):
    """bug: a damaged state file left the proxy on its static backends until
    the next push; the previous good file now gives the pushed ones back."""
    static, first, second = backends
    p = ph.start_proxy(tmp_path, [static])
    assert push(p, [first.addr], 1)[0] == 200
    assert push(p, [second.addr], 2)[0] == 200
    assert served_by(p) == "second"
    finish(p)
    path = p.conf["proxy"]["state_file"]
    with open(path, "r+") as f:
        f.truncate(5)
    r = check(tmp_path, p.conf)
    assert r.returncode == 1, r.stdout
    assert r.stderr.strip().splitlines()[-1].startswith(path + ": invalid JSON"), r.stderr

    p2 = ph.start_proxy(tmp_path, [static])
    try:
        assert served_by(p2) == "first"
        log = p2.log_text()
        assert f"loaded the previous one, {path}.prev, instead" in log, log
        st, state = http(p2.ctl_port, "GET", "/v1/state")
        assert state["listeners"][0]["backends_from"] == "state"
    finally:
        finish(p2)


def test_check_config_state_file_and_dir(tmp_path):
    conf = ph.proxy_config(tmp_path, ph.free_port(ipv6=False), ph.free_port(ipv6=False),
                           ["127.0.0.1:1"])
    path = conf["proxy"]["state_file"]
    r = check(tmp_path, conf)
    assert r.returncode == 0, r.stderr  # no state file yet: a first start
    with open(path, "w") as f:
        f.write("[1, 2")
    r = check(tmp_path, conf)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith(path + ": invalid JSON"), r.stderr
    with open(path, "w") as f:
        f.write("{}")
    r = check(tmp_path, conf)
    assert r.returncode == 1
    assert f"{path}: not a version 1 state file" in r.stderr, r.stderr
    # A bare state document is refused as one, not loaded as zero documents.
    with open(path, "w") as f:
        f.write('{"version": 1, "vantage": "us-east-1", "generation": 1,'
                ' "generated_at": "2026-11-21T07:00:00Z"}')
    r = check(tmp_path, conf)
    assert r.returncode == 1
    assert f"{path}: a bare state document (vantage us-east-1), not a state file" in r.stderr, \
        r.stderr
    # Duplicate keys make the file invalid (dnsd and the proxy share the parser).
    with open(path, "w") as f:
        f.write('{"version": 1, "documents": [], "documents": []}')
    r = check(tmp_path, conf)
    assert r.returncode == 1
    assert f"{path}: invalid JSON" in r.stderr and "duplicate" in r.stderr, r.stderr
    missing = os.path.join(str(tmp_path), "gone")
    conf["proxy"]["state_file"] = os.path.join(missing, "proxy-state.json")
    r = check(tmp_path, conf)
    assert r.returncode == 1
    assert (f"{missing}/proxy-state.json: directory {missing} does not exist; create it "
            f"(mkdir -p {missing}) or change the state_file path") in r.stderr, r.stderr


@pytest.mark.parametrize("backend,kind", [("224.0.0.1:80", "multicast"),
                                          ("0.0.0.0:80", "unspecified"),
                                          ("255.255.255.255:80", "broadcast"),
                                          ("169.254.169.254:80", "link-local"),
                                          ("[ff02::1]:80", "multicast")])
def test_special_backend_push_refused(tmp_path, backends, backend, kind):
    static, first, _ = backends
    p = ph.start_proxy(tmp_path, [static])
    try:
        assert push(p, [first.addr])[0] == 200
        st, body = push(p, [first.addr, backend])
        assert st == 400, body
        assert body["error"].startswith(
            f"services.default/web.members.jpn.backends[1]: {backend} is a"), body
        assert f" {kind} address; " in body["error"], body
        assert served_by(p) == "first"
    finally:
        finish(p)


def without_allow_list(conf):
    """The configuration without allow_addresses (and so with a member
    address that needs none: the proxy listens on loopback all the same)."""
    del conf["allow_addresses"]
    conf["members"]["jpn"]["lb"]["address"] = "198.51.100.7"
    return conf


def test_loopback_backend_refused_unless_allowed(tmp_path, backends):
    static, first, _ = backends
    p = ph.start_proxy(tmp_path, [static], edit=without_allow_list)
    try:
        assert served_by(p) == "static"  # the configuration's own backends are trusted
        st, body = push(p, [first.addr])
        assert st == 400, body
        assert body["error"] == (f"services.default/web.members.jpn.backends[0]: {first.addr} is "
                                 f"a loopback address; list it in allow_addresses to permit it")
        assert served_by(p) == "static"
    finally:
        finish(p)


def test_reload_without_allow_list_drops_loopback_backends(tmp_path, backends):
    static, first, _ = backends
    p = ph.start_proxy(tmp_path, [static])
    try:
        assert push(p, [first.addr])[0] == 200
        assert served_by(p) == "first"
        conf = without_allow_list(json.loads(json.dumps(p.conf)))
        mark = len(p.log_text())
        p.rewrite(conf)
        p.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5 * ph.SLOW
        while "reload done" not in p.log_text()[mark:] and time.monotonic() < deadline:
            time.sleep(0.05)
        log = p.log_text()[mark:]
        assert ("state of vantage us-east-1 dropped by the new configuration: "
                "services.default/web.members.jpn."
                f"backends[0]: {first.addr} is a loopback address") in log, log
        assert served_by(p) == "static"
    finally:
        finish(p)


def test_identical_repush_is_200_like_dnsd(tmp_path, backends):
    """The proxy and dnsd share cm_store: an identical re-push of the held
    generation is 200 (a sign of life), the same generation with other
    content is 409 with the reason, and neither changes the backends."""
    static, first, second = backends
    p = ph.start_proxy(tmp_path, [static])
    try:
        doc = doc_with([first.addr])
        st, body = http(p.ctl_port, "PUT", "/v1/state", body=doc, token=TOKEN)
        assert st == 200, body
        st, body = http(p.ctl_port, "PUT", "/v1/state", body=doc, token=TOKEN)
        assert st == 200, body
        other = dict(doc, services=doc_with([second.addr])["services"])
        st, body = http(p.ctl_port, "PUT", "/v1/state", body=other, token=TOKEN)
        assert st == 409, body
        assert "(same generation, different content)" in json.dumps(body), body
        assert served_by(p) == "first"
    finally:
        finish(p)
