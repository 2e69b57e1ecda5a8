# SPDX-License-Identifier: Apache-2.0
"""Logs for operators: with --log-format json the key=value pairs of a line
are JSON keys, and a pushed document that repeats the held one (a new
generation, nothing else changed) is not logged at info."""

import json
import time

import fedtest
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
