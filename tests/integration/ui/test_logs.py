# SPDX-License-Identifier: Apache-2.0
"""Logs for operators: with --log-format json the key=value pairs of a line
are JSON keys, and a pushed document that repeats the held one (a new
generation, nothing else changed) is not logged at info: in dnsd, in the
proxy, and a vantage that republishes or restarts is quiet everywhere."""

import json
import time

import fedtest
import health_harness as hh
import proxy_harness as ph
from uibed import UiBed


def lines(d):
    out = []
    for line in d.log_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def wait_lines(d, pred, what, timeout=5):
    deadline = time.monotonic() + timeout * fedtest.SLOW
    while time.monotonic() < deadline:
        got = [x for x in lines(d) if pred(x)]
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("no log line with %s:\n%s" % (what, d.log_text()[-3000:]))


def test_json_fields_and_quiet_repeats(tmp_path):
    bed = UiBed(tmp_path)
    bed.dnsd = fedtest.start_dnsd(str(tmp_path), extra_args=["--log-format", "json",
                                                             "--log-level", "info"])
    bed.ctl = fedtest.Control(bed.dnsd.ctl_port)
    try:
        bed.push_all()
        acc = wait_lines(bed.dnsd, lambda x: x["msg"] == "state accepted", "state accepted")
        assert {x["vantage"] for x in acc} == {"us-east-1", "eu-west-1", "ap-northeast-1"}, acc
        assert all(x["changed"] == "true" and x["generation"].isdigit() for x in acc), acc
        built = wait_lines(bed.dnsd, lambda x: x["msg"] == "view built", "view built")
        assert all("serial" in x and "=" not in x["msg"] for x in built), built
        n_info = len([x for x in lines(bed.dnsd) if x["level"] == "info"])

        # The same documents again, new generations: nothing changed.
        bed.push_all()
        st, state = bed.ctl.get("/v1/state")
        assert st == 200
        time.sleep(0.3)
        after = [x for x in lines(bed.dnsd) if x["level"] == "info"]
        assert len(after) == n_info, "a repeated document logged at info:\n%s" % "\n".join(
            json.dumps(x) for x in after[n_info:])

        # A real change is logged at info again.
        bed.fail("usa", ["default/web"])
        wait_lines(bed.dnsd, lambda x: x["msg"] == "state accepted" and x["changed"] == "true"
                   and int(x["generation"]) > max(int(a["generation"]) for a in acc),
                   "the change at info")
    finally:
        bed.close()


def info_lines(text):
    return [x for x in text.splitlines() if " info: " in x or " warn: " in x or " error: " in x]


def test_proxy_quiet_repeats(tmp_path):
    """The proxy: a new generation with the same backends logs at debug."""
    backend = ph.Backend("b1").start()
    other = ph.Backend("b2").start()
    p = ph.start_proxy(tmp_path, [backend])
    try:
        def push(b, gen):
            doc = {"version": 1, "vantage": "us-east-1", "generation": gen,
                   "generated_at": fedtest.now_rfc3339(),
                   "services": {"default/web": {"port": 80, "members": {"jpn": {
                       "via_proxy": True, "addresses": ["198.51.100.7"], "backends": [b.addr],
                       "healthy": True, "ready_endpoints": 1}}}}}
            st, body = fedtest.http(p.ctl_port, "PUT", "/v1/state", body=doc,
                                    token=fedtest.TOKEN)
            assert st == 200, body

        push(backend, 10)
        assert "state accepted: vantage=us-east-1 generation=10 changed=true" in p.log_text()
        n = len(info_lines(p.log_text()))
        for gen in (11, 12, 13):
            push(backend, gen)
        st, state = fedtest.http(p.ctl_port, "GET", "/v1/state")
        assert st == 200 and "13" in json.dumps(state), state
        assert info_lines(p.log_text())[n:] == []
        push(other, 14)
        assert "generation=14 changed=true" in p.log_text()
    finally:
        fedtest.finish(p)
        backend.stop()
        other.stop()


def state_puts(ctl):
    """Successful control API requests to dnsd so far (the vantage's PUTs)."""
    return sum(v for name, labels, v in ctl.metrics()
               if name == "fedgslb_ctl_requests_total" and labels.get("code") == "200")


def test_vantage_republish_and_restart_quiet(tmp_path):
    """fedgslb-health publishing to dnsd, both at info: the heartbeats (the
    held generation again) log nothing in either, and a restarted vantage's
    first document (a new generation, the same content) logs nothing at info
    in dnsd."""
    (tmp_path / "dnsd").mkdir()
    d = fedtest.start_dnsd(tmp_path / "dnsd", extra_args=["--log-level", "info"])
    c = hh.Cluster(tmp_path).start_fakes()
    for fk in c.fakes.values():
        fk.add_service("default", "web")
        fk.set_endpoints("default", "web", ready=2)
    c.conf["health"].update({"publish_to": ["http://127.0.0.1:%d" % d.ctl_port],
                             "publish_interval_ms": 200,
                             "publish_token_file": d.conf["dnsd"]["control"]["token_file"]})
    fedtest.write_config(c.tmp, c.conf, "health.json")
    ctl = fedtest.Control(d.ctl_port)

    def generation():
        for name, labels, v in ctl.metrics():
            if name == "fedgslb_state_generation" and labels.get("vantage") == "us-east-1":
                return v
        return None

    def wait(pred, what):
        deadline = time.monotonic() + 10 * fedtest.SLOW
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s" % what)

    try:
        c.start(level="info")
        wait(lambda: generation() is not None, "the first document in dnsd")
        time.sleep(0.5)
        g1 = generation()
        dn, hn = len(info_lines(d.log_text())), len(info_lines(c.log()))
        puts = state_puts(ctl)
        time.sleep(1.5)  # about 7 heartbeats
        assert generation() == g1 and state_puts(ctl) >= puts + 3
        assert info_lines(d.log_text())[dn:] == []
        assert info_lines(c.log())[hn:] == []

        fedtest.finish(c.daemon)
        c.daemon = None
        c.start(level="info", log_name="health-2.log")
        wait(lambda: generation() > g1, "the restarted vantage's document")
        time.sleep(0.3)
        assert info_lines(d.log_text())[dn:] == [], d.log_text()
    finally:
        c.close()
        fedtest.finish(d)
