#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""CPU per query of fedgslb-dnsd with a full-size GeoIP database against none,
in the same run (not part of the test suite; asserts nothing).

    FEDGSLB_BUILD_DIR=build python3 tests/bench/geo_bench.py [--networks N] [--rounds R]

Two dnsd (one worker each, both pinned to the same core): A with dnsd.geoip
on a database of N IPv4 /24s + N/8 IPv6 /48s (tests/geoip/write_mmdb.pl
--bench), B with client_networks only. The same precomputed queries for the
federated name, each with an ECS /24 drawn at random inside the database's
networks (so A walks a cold 65 MiB trie, as on the Internet), go to A and B
in alternating rounds; the CPU each daemon used (utime + stime from
/proc/PID/stat) divided by the answers it sent is the figure.
"""

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import dns.edns  # noqa: E402
import dns.message  # noqa: E402

import fedtest  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / HZ


def blast(port, packets, seconds, qps):
    """Sends @packets round-robin at @qps for @seconds (the same rate for both
    daemons: dnsd's CPU per query depends on its batch sizes, hence on the
    rate); returns the replies received."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    got = i = 0
    start = time.time()
    end = start + seconds
    while True:
        now = time.time()
        if now >= end:
            break
        due = int((now - start) * qps)
        while i < due:
            try:
                s.send(packets[i % len(packets)])
            except BlockingIOError:
                break
            i += 1
        try:
            while True:
                s.recv(4096)
                got += 1
        except BlockingIOError:
            pass
        time.sleep(0.0005)
    time.sleep(0.3)
    try:
        while True:
            s.recv(4096)
            got += 1
    except BlockingIOError:
        pass
    s.close()
    return got, i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--cpu", type=int, default=1, help="core both daemons are pinned to")
    ap.add_argument("--qps", type=int, default=15000)
    ap.add_argument("--subnets", type=int, default=20000,
                    help="distinct ECS /24s (20000: every query its own, cold; a few "
                         "thousand: a resolver population, warm)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="geo_bench.")
    db = os.path.join(tmp, "bench.mmdb")
    t0 = time.time()
    subprocess.run(["perl", os.path.join(fedtest.SOURCE_DIR, "tests/geoip/write_mmdb.pl"),
                    "--bench", str(a.networks), db], check=True)
    print(f"database: {a.networks} /24s + {a.networks // 8} /48s written in "
          f"{time.time() - t0:.1f} s, {os.path.getsize(db) / 1048576:.1f} MiB")
    daemons = {}
    for name in ("geoip", "none"):
        d_tmp = os.path.join(tmp, name)
        os.mkdir(d_tmp)
        dport, cport = fedtest.free_port(), fedtest.free_port(ipv6=False)
        conf = fedtest.base_config(d_tmp, dport, cport, ipv6=False, workers=1)
        if name == "geoip":
            locs = {"us-east-1": [38.9, -77.0], "eu-west-1": [53.3, -6.3],
                    "ap-northeast-1": [35.7, 139.7]}
            for r, loc in locs.items():
                conf["regions"][r]["location"] = loc
            conf["dnsd"]["geoip"] = {"path": db}
            conf["dnsd"]["geo_map"] = {"EU": "eu-west-1"}
        d = fedtest.start_dnsd(d_tmp, conf=conf, dns_port=dport, ctl_port=cport)
        subprocess.run(["taskset", "-a", "-p", "-c", str(a.cpu), str(d.proc.pid)],
                       check=True, stdout=subprocess.DEVNULL)
        ctl = fedtest.Control(cport)
        for v in ("us-east-1", "eu-west-1", "ap-northeast-1"):
            svcs = {"default/web": {m: fedtest.endpoint([ip]) for m, ip in
                                    (("usa", "192.0.2.10"), ("eur", "192.0.2.20"),
                                     ("jpn", "192.0.2.30"))}}
            ctl.put_state(fedtest.state_doc(v, svcs))
        daemons[name] = d
    print("rss after start: " + ", ".join(
        f"{n} {int(open(f'/proc/{d.proc.pid}/status').read().split('VmRSS:')[1].split()[0]) / 1024:.0f} MiB"
        for n, d in daemons.items()))
    rnd = random.Random(7)
    packets = []
    pool = [(1 << 24) + rnd.randrange(int(a.networks * 0.99)) * 256 for _ in range(a.subnets)]
    for i in range(20000):
        v = pool[i % len(pool)]
        addr = socket.inet_ntoa(v.to_bytes(4, "big"))
        q = dns.message.make_query(fedtest.fed_name("web"), "A")
        q.use_edns(0, payload=1232, options=[dns.edns.ECSOption(addr, 24)])
        q.id = i & 0xFFFF
        packets.append(q.to_wire())
    totals = {n: [0.0, 0, 0] for n in daemons}
    for r in range(a.rounds):
        for n, d in (list(daemons.items()) if r % 2 == 0 else list(daemons.items())[::-1]):
            c0 = cpu_s(d.proc.pid)
            got, sent = blast(d.dns_port, packets, a.seconds, a.qps)
            totals[n][0] += cpu_s(d.proc.pid) - c0
            totals[n][1] += got
            totals[n][2] += sent
    for n, (cpu, got, sent) in totals.items():
        print(f"{n:6}: {sent} sent, {got} answers, {cpu:.2f} s CPU, "
              f"{cpu / got * 1e6:.2f} us CPU per query")
    g, z = (totals["geoip"][0] / totals["geoip"][1], totals["none"][0] / totals["none"][1])
    print(f"difference: {100 * (g - z) / z:+.1f}%")
    for d in daemons.values():
        fedtest.finish(d)


if __name__ == "__main__":
    main()
