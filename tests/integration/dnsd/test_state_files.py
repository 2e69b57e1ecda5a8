# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd's state file when things go wrong: a truncated file at start is
replaced by its .prev at once (no NODATA until the first push), --check-config
refuses a corrupt state file and a state directory that is missing, and a
pushed document with an address that must never be answered gets 400 with
the JSON path while the previous state keeps serving."""

import json
import os
import signal
import time

import pytest

import fedtest
from fedtest import ECS4, endpoint, fed_name, query, state_doc

US = "us-east-1"
WEB = fed_name("web")
FIRST = {"usa": "192.0.2.10", "eur": "192.0.2.20", "jpn": "192.0.2.30"}
SECOND = {"usa": "192.0.2.11", "eur": "192.0.2.21", "jpn": "192.0.2.31"}


def web(addrs):
    return {"default/web": {m: endpoint([a]) for m, a in addrs.items()}}


def us_answer(d):
    return fedtest.addresses(query(d, WEB, "A", ecs=f"{ECS4[US]}/24"))


def push(ctl, addrs, gen):
    st, body = ctl.put_state(state_doc(US, web(addrs), generation=gen))
    assert st == 200, (st, body)


def check(tmp, conf):
    path = fedtest.write_config(tmp, conf, "check.json")
    return path, fedtest.run([fedtest.binary("fedgslb-dnsd"), "--config", path,
                              "--check-config"], timeout=20)


def conf_of(tmp, dns_port=None, ctl_port=None):
    return fedtest.base_config(tmp, dns_port or fedtest.free_port(),
                               ctl_port or fedtest.free_port(ipv6=False))


def test_truncated_state_file_served_from_prev(tmp_path):
    """bug: a state file cut short (full disk, crash) made every federated name
    NODATA until the first push; the previous good file now serves at once."""
    d = fedtest.start_dnsd(tmp_path)
    ctl = fedtest.Control(d.ctl_port)
    push(ctl, FIRST, 1)
    push(ctl, SECOND, 2)  # state file = SECOND, .prev = FIRST
    assert us_answer(d) == {SECOND["usa"]}
    fedtest.finish(d)
    path = d.conf["dnsd"]["state_file"]
    assert os.path.exists(path + ".prev")
    with open(path, "r+") as f:
        f.truncate(os.path.getsize(path) // 2)

    # --check-config names the damaged file and fails, touching nothing
    _, p = check(tmp_path, d.conf)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(path + ": invalid JSON"), p.stderr
    assert os.path.exists(path) and not os.path.exists(path + ".corrupt")

    d2 = fedtest.start_dnsd(tmp_path, conf=d.conf, dns_port=d.dns_port, ctl_port=d.ctl_port)
    try:
        assert us_answer(d2) == {FIRST["usa"]}, "the first answer must come from .prev"
        log = d2.log_text()
        assert f"state file {path}: invalid JSON" in log, log
        assert f"loaded the previous one, {path}.prev, instead" in log, log
        assert os.path.exists(path + ".corrupt")
        # the next push writes a good file again, and .prev is never the damaged one
        push(fedtest.Control(d2.ctl_port), SECOND, 3)
        with open(path + ".prev") as f:
            assert f.read().startswith("{")
    finally:
        fedtest.finish(d2)


def test_check_config_corrupt_state_file(tmp_path):
    conf = conf_of(tmp_path)
    path = conf["dnsd"]["state_file"]
    _, p = check(tmp_path, conf)
    assert p.returncode == 0, p.stderr  # no state file yet: a first start
    with open(path, "w") as f:
        f.write('{"version": 1, "documents": [')
    _, p = check(tmp_path, conf)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1].startswith(path + ": invalid JSON"), p.stderr
    with open(path, "w") as f:
        f.write('{"version": 7, "documents": []}')
    _, p = check(tmp_path, conf)
    assert p.returncode == 1
    assert f"{path}: not a version 1 state file" in p.stderr, p.stderr
    # A bare state document is not a state file (not zero documents).
    with open(path, "w") as f:
        json.dump(state_doc(US, web(FIRST), generation=1), f)
    _, p = check(tmp_path, conf)
    assert p.returncode == 1
    assert f"{path}: a bare state document (vantage {US}), not a state file" in p.stderr, p.stderr
    # Duplicate keys make the file invalid.
    with open(path, "w") as f:
        f.write('{"version": 1, "documents": [], "documents": []}')
    _, p = check(tmp_path, conf)
    assert p.returncode == 1
    assert f"{path}: invalid JSON" in p.stderr and "duplicate" in p.stderr, p.stderr


def test_check_config_missing_state_dir(tmp_path):
    conf = conf_of(tmp_path)
    missing = os.path.join(str(tmp_path), "no-such-dir")
    conf["dnsd"]["state_file"] = os.path.join(missing, "dnsd-state.json")
    _, p = check(tmp_path, conf)
    assert p.returncode == 1, p.stdout
    line = p.stderr.strip().splitlines()[-1]
    assert line == (f"{missing}/dnsd-state.json: directory {missing} does not exist; create it "
                    f"(mkdir -p {missing}) or change the state_file path"), p.stderr


@pytest.mark.parametrize("addr,kind", [("224.0.0.1", "multicast"), ("0.0.0.0", "unspecified"),
                                       ("255.255.255.255", "broadcast"),
                                       ("169.254.169.254", "link-local"),
                                       ("ff02::1", "multicast"),
                                       ("::ffff:224.0.0.251", "multicast")])
def test_special_address_push_refused(dnsd, ctl, addr, kind):
    push(ctl, FIRST, fedtest.next_generation())
    doc = state_doc(US, web(dict(FIRST, usa=addr)), generation=fedtest.next_generation())
    st, body = ctl.put_state(doc)
    assert st == 400, (st, body)
    assert body["error"].startswith(
        f"services.default/web.members.usa.addresses[0]: {addr} is a"), body
    assert f" {kind} address; " in body["error"], body
    assert us_answer(dnsd) == {FIRST["usa"]}, "the previous state must keep serving"


def test_loopback_refused_unless_allowed(tmp_path):
    dns_port, ctl_port = fedtest.free_port(), fedtest.free_port(ipv6=False)
    conf = conf_of(tmp_path, dns_port, ctl_port)
    del conf["allow_addresses"]
    d = fedtest.start_dnsd(tmp_path, conf=conf, dns_port=dns_port, ctl_port=ctl_port)
    ctl = fedtest.Control(d.ctl_port)
    try:
        push(ctl, FIRST, 1)
        st, body = ctl.put_state(state_doc(US, web(dict(FIRST, usa="127.0.0.1")), generation=2))
        assert st == 400, (st, body)
        assert body["error"] == ("services.default/web.members.usa.addresses[0]: 127.0.0.1 is a "
                                 "loopback address; list it in allow_addresses to permit it")
        assert us_answer(d) == {FIRST["usa"]}
        st, doc = ctl.get("/v1/state")
        assert doc["vantages"][US]["generation"] == 1
    finally:
        fedtest.finish(d)


def test_reload_without_allow_list_drops_loopback_document(tmp_path):
    d = fedtest.start_dnsd(tmp_path)
    ctl = fedtest.Control(d.ctl_port)
    try:
        push(ctl, dict(FIRST, usa="127.0.0.5"), 1)
        assert us_answer(d) == {"127.0.0.5"}
        conf = dict(d.conf)
        del conf["allow_addresses"]
        fedtest.write_config(tmp_path, conf)
        mark = len(d.log_text())
        d.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5 * fedtest.SLOW
        while "reload done" not in d.log_text()[mark:] and time.monotonic() < deadline:
            time.sleep(0.05)
        log = d.log_text()[mark:]
        assert ("state of vantage us-east-1 dropped by the new configuration: services.default/"
                "web.members.usa.addresses[0]: 127.0.0.5 is a loopback address") in log, log
        assert "127.0.0.5" not in us_answer(d)
    finally:
        fedtest.finish(d)
