# SPDX-License-Identifier: Apache-2.0
"""tests/bench/dns_bench.py runs its measurements end to end (a smoke run:
the echo responder, fedgslb-dnsd and its hardened row, one second per run):
one-at-a-time rounds, --together and --pairs, the JSON they write and the
target line. Nothing here looks at a figure, only at how the figures are
put together (which rounds pair up, which measurement a verdict comes from)."""

import json
import os
import re
import socket
import sys

import fedtest

BENCH = os.path.join(fedtest.SOURCE_DIR, "tests", "bench", "dns_bench.py")
SPAN = 12  # dns_bench.py uses port base+1 .. base+11


def port_block():
    """A base port whose next SPAN-1 ports are free for UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        base = fedtest.free_port(ipv6=False)
        socks = []
        try:
            for port in range(base + 1, base + SPAN):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of %d ports" % SPAN)


def test_rounds_together_and_pairs(tmp_path):
    out = tmp_path / "dns.json"
    argv = [sys.executable, BENCH, "--quick", "--servers", "echo,fedgslb,fedgslb-hard",
            "--fedgslb", fedtest.binary("fedgslb-dnsd"), "--echo", fedtest.binary("dns_echo"),
            "--services", "5", "--queries", "2000", "--duration", "1", "--lat-duration", "1",
            "--rate", "2000", "--together", "1", "--pairs", "2",
            "--port-base", str(port_block()), "--out", str(out)]
    r = fedtest.run(argv, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(out.read_text())
    srv = doc["servers"]
    for n in ("echo", "fedgslb", "fedgslb-hard"):
        assert "error" not in srv[n], srv[n]
        assert len(srv[n]["together_us"]) == 1

    # every other server paired with fedgslb-dnsd once per round, the order
    # reversed every other round; fedgslb-dnsd itself is nobody's peer
    pairs = re.findall(r"^-- pairs (\d)/2: fedgslb-dnsd \+ (.*)$", r.stderr, re.M)
    assert pairs == [("1", "echo (floor)"), ("1", "fedgslb +RRL+cookies"),
                     ("2", "fedgslb +RRL+cookies"), ("2", "echo (floor)")], r.stderr
    assert "pairs_us" not in srv["fedgslb"]
    assert sorted(doc["pairs_ratio"]) == ["echo", "fedgslb-hard"]
    for n in ("echo", "fedgslb-hard"):
        peer, fed = srv[n]["pairs_us"], srv[n]["pairs_fedgslb_us"]
        assert len(peer) == len(fed) == 2
        rounds = doc["pairs_ratio"][n]["rounds"]
        assert rounds == [f / p for f, p in zip(fed, peer)]
        assert doc["pairs_ratio"][n]["median"] == sum(rounds) / 2
        tog = doc["together_ratio"][n]
        assert tog["rounds"] == [srv["fedgslb"]["together_us"][0] / srv[n]["together_us"][0]]

    # the echo target: a verdict from each measurement, the pairs first;
    # "target" keeps its key with the first verdict
    key = "cpu_per_answer_le_1.07_echo"
    by = doc["target_by_measurement"][key]
    assert [v["measurement"] for v in by] == ["pairs", "together of 3", "rounds"]
    assert by[0]["ratio"] == doc["pairs_ratio"]["echo"]["median"]
    assert by[1]["ratio"] == doc["together_ratio"]["echo"]["median"]
    assert by[2]["ratio"] == doc["fedgslb_ratio"]["echo"]["cpu_us_per_response"]
    assert all(v["met"] == (v["ratio"] <= 1.07) for v in by)
    assert doc["target"] == {key: by[0]["met"]}
    line = [x for x in r.stdout.splitlines() if "<= 1.07 x echo:" in x]
    assert len(line) == 1, r.stdout
    assert re.search(r"met \(pairs [\d.]+\), (NOT )?met \(together of 3: [\d.]+\), (NOT )?met \(rounds [\d.]+\)$",
                     line[0]), line[0]
    assert "fedgslb-dnsd and one server loaded at once" in r.stdout


VERDICTS = r"""
import json, dns_bench as d
fed = {"cpu_us_per_response": 3.3, "fixed_rate": {}, "together_us": [3.3, 3.3]}
echo = {"cpu_us_per_response": 3.0, "fixed_rate": {}, "together_us": [3.0, 3.1],
        "pairs_us": [3.0, 3.2], "pairs_fedgslb_us": [3.15, 3.2]}
gdnsd = {"cpu_us_per_response": 3.4, "fixed_rate": {}}
out = {}
for name, res in (("all", {"fedgslb": fed, "echo": echo, "gdnsd": gdnsd}),
                  ("no pairs", {"fedgslb": fed, "echo": dict(echo, pairs_us=None), "gdnsd": gdnsd})):
    d.print_target(res)
    out[name] = d.target(res)
print(json.dumps(out))
"""


def test_verdict_sources():
    """Each verdict from the first measurement that has it, every one printed:
    echo met in the pairs (1.05, 1.0: median 1.025), not together (1.1, 1.065:
    1.082) nor one at a time (1.1); gdnsd met one at a time only."""
    r = fedtest.run([sys.executable, "-c", VERDICTS], cwd=os.path.dirname(BENCH))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert json.loads(lines[-1]) == {
        "all": {"cpu_per_answer_le_1.07_echo": True, "cpu_per_answer_le_gdnsd": True},
        "no pairs": {"cpu_per_answer_le_1.07_echo": False, "cpu_per_answer_le_gdnsd": True}}
    echo = [x.split(":", 1)[1].strip() for x in lines if "<= 1.07 x echo:" in x]
    assert echo == ["met (pairs 1.025), NOT met (together of 2: 1.082), NOT met (rounds 1.100)",
                    "NOT met (together of 2: 1.082), NOT met (rounds 1.100)"]
    gdnsd = [x.split(":", 1)[1].strip() for x in lines if "<= gdnsd's:" in x]
    assert gdnsd == ["met (rounds 0.971)"] * 2
    assert [x.split(":", 1)[1].strip() for x in lines if "<= Knot's:" in x] == ["-", "-"]
