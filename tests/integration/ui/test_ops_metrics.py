# SPDX-License-Identifier: Apache-2.0
"""dnsd's metrics for the operations alerts: reloads by result with the last
one's success and time, state-file write failures, and the verdict families
following a member's failure."""

import os
import shutil
import signal
import time

import fedtest
from uibed import UiBed


def metric(ctl, name, **labels):
    text = fedtest.http(ctl.port, "GET", "/metrics")[1]
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, value = line.rsplit(" ", 1)
        if head.split("{")[0] != name:
            continue
        got = dict(kv.split("=", 1) for kv in head[len(name) + 1:-1].split(",")) if "{" in head \
            else {}
        got = {k: v.strip('"') for k, v in got.items()}
        if all(got.get(k) == v for k, v in labels.items()):
            return float(value)
    return None


def wait_metric(ctl, want, name, timeout=10, **labels):
    deadline = time.monotonic() + timeout * fedtest.SLOW
    got = None
    while time.monotonic() < deadline:
        got = metric(ctl, name, **labels)
        if got == want:
            return
        time.sleep(0.05)
    raise AssertionError("%s%s = %r, want %r" % (name, labels, got, want))


def test_reload_and_state_file_metrics(tmp_path):
    sub = os.path.join(str(tmp_path), "state")
    os.makedirs(sub)
    bed = UiBed(tmp_path)
    bed.dnsd = fedtest.start_dnsd(str(tmp_path), state_file=os.path.join(sub, "dnsd-state.json"))
    bed.ctl = fedtest.Control(bed.dnsd.ctl_port)
    ctl = bed.ctl
    try:
        bed.push_all()
        assert metric(ctl, "fedgslb_reload_last_success") == 1
        assert metric(ctl, "fedgslb_reload_last_timestamp_seconds") == 0
        assert metric(ctl, "fedgslb_state_write_failures_total") == 0
        assert metric(ctl, "fedgslb_state_write_last_success") == 1

        # A broken configuration: the reload fails and says so.
        conf_path = bed.dnsd.config_path
        good = open(conf_path).read()
        with open(conf_path, "w") as f:
            f.write("{ not json")
        t0 = time.time()
        bed.dnsd.signal(signal.SIGHUP)
        wait_metric(ctl, 1, "fedgslb_reloads_total", result="failure")
        assert metric(ctl, "fedgslb_reload_last_success") == 0
        assert metric(ctl, "fedgslb_reload_last_timestamp_seconds") >= int(t0) - 1
        # Fixed: the next reload succeeds.
        with open(conf_path, "w") as f:
            f.write(good)
        bed.dnsd.signal(signal.SIGHUP)
        wait_metric(ctl, 1, "fedgslb_reloads_total", result="success")
        assert metric(ctl, "fedgslb_reload_last_success") == 1

        # The state file's directory vanishes: the next write fails (root
        # ignores permissions, a missing directory it cannot).
        shutil.rmtree(sub)
        bed.fail("usa", ["default/web"])
        wait_metric(ctl, 0, "fedgslb_state_write_last_success")
        assert metric(ctl, "fedgslb_state_write_failures_total") >= 1
        # And the verdicts followed the pushed failure.
        assert metric(ctl, "fedgslb_member_healthy", service="default/web", member="usa") == 0
        assert metric(ctl, "fedgslb_member_healthy", service="default/web", member="eur") == 1
        assert metric(ctl, "fedgslb_vantage_member_healthy", vantage="eu-west-1",
                      service="default/web", member="usa") == 0
        assert metric(ctl, "fedgslb_service_eligible_members", service="default/web") == 2
        assert metric(ctl, "fedgslb_service_fail_open", service="default/web") == 0
        assert metric(ctl, "fedgslb_vantage_member_rtt_seconds", vantage="us-east-1",
                      member="jpn") == 0.16
        os.makedirs(sub)
        bed.recover("usa")
        wait_metric(ctl, 1, "fedgslb_state_write_last_success")
        # Everything down for web: fail-open.
        for m in ("usa", "eur", "jpn"):
            bed.down[m] = {"default/web"}
        bed.push_all()
        wait_metric(ctl, 1, "fedgslb_service_fail_open", service="default/web")
        assert metric(ctl, "fedgslb_service_fail_open", service="default/closed") == 0
    finally:
        bed.close()
