#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""CPU per query of fedgslb-dnsd with a full-size GeoIP database against none,
in the same run (not part of the test suite; asserts nothing).

    FEDGSLB_BUILD_DIR=build python3 tests/bench/geo_bench.py [--networks N] [--rounds R]

Three dnsd (one worker each, all pinned to one core, --cpu): "geoip" with
dnsd.geoip on a database of N IPv4 /24s + N/8 IPv6 /48s
(tests/geoip/write_mmdb.pl --bench), "none" with client_networks only, and
"none2", the same as "none": the A/A control, whose difference from "none"
is what the harness cannot resolve on this machine in this run. The same
queries for the federated name, each with an ECS /24 drawn at random inside
the database's networks (so "geoip" walks a cold table, as on the
Internet), are sent by dnsperf (-B, raw queries, pinned to the other core)
at saturation for --seconds to each daemon in turn, in rounds that rotate
the order. The CPU each daemon used (the scheduler's nanoseconds, summed
over its threads from /proc/PID/task/*/schedstat) divided by the answers
dnsperf received is the figure; the median of the per-round ratios against
"none" and their range are reported.

With --callgrind both daemons run under valgrind's callgrind with its cache
simulation (instrumentation switched on only while the queries are sent, at
a low rate): user-space instructions, D1 and last-level data misses per
query, the same on a busy machine as on an idle one (--ll sets the
simulated last-level cache; the default is a share of an L3, not the
host's whole one).
"""

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import dns.edns  # noqa: E402
import dns.message  # noqa: E402

import fedtest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchproc import proc_cpu_ns, run_captured  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def kib(pid, file, key):
    """A "Key: N kB" figure of /proc/PID/@file, 0 when absent."""
    try:
        with open(f"/proc/{pid}/{file}") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


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


def write_raw(path, packets):
    """dnsperf's -B data file: each query as a 2-byte length and its wire form."""
    with open(path, "wb") as f:
        for p in packets:
            f.write(len(p).to_bytes(2, "big") + p)


def saturate(port, qfile, seconds, cpu):
    """dnsperf at saturation for @seconds; (answers received, queries sent)."""
    rc, out = run_captured(["dnsperf", "-B", "-d", qfile, "-s", "127.0.0.1", "-p", str(port),
                            "-t", "2", "-l", str(seconds), "-c", "4", "-q", "500"],
                           cpu, seconds + 30, "dnsperf")
    if rc != 0:
        raise RuntimeError("dnsperf exited %d: %s" % (rc, out[-500:]))
    got = re.search(r"Queries completed:\s+(\d+)", out)
    sent = re.search(r"Queries sent:\s+(\d+)", out)
    return int(got.group(1)), int(sent.group(1))


def median(v):
    v = sorted(v)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def start_callgrind(d_tmp, conf, dport, cport, ll):
    """fedgslb-dnsd under callgrind (cache simulation, instrumentation off)."""
    path = fedtest.write_config(d_tmp, conf, "federation.json")
    out = os.path.join(d_tmp, "callgrind.out")
    argv = ["valgrind", "--tool=callgrind", "--cache-sim=yes", "--LL=" + ll, "--instr-atstart=no",
            "--callgrind-out-file=" + out, fedtest.binary("fedgslb-dnsd"), "--config", path]
    d = fedtest.Daemon(argv, os.path.join(d_tmp, "dnsd.log"), cwd=d_tmp)
    d.dns_port, d.ctl_port, d.config_path, d.conf = dport, cport, path, conf
    d.start()
    d.wait_ready(timeout=120.0)
    d.callgrind_out = out
    return d


def callgrind_totals(path):
    """{event: count} from the last totals line of a callgrind dump."""
    events, totals = None, None
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("totals:"):
                totals = [int(x) for x in line.split()[1:]]
    return dict(zip(events or [], totals or []))


def callgrind_run(daemons, packets, qps):
    """Sends the packets once to each daemon with instrumentation on; prints
    instructions and data misses per answer."""
    res = {}
    for n, d in daemons.items():
        subprocess.run(["callgrind_control", "-i", "on", str(d.proc.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        got, sent = blast(d.dns_port, packets, len(packets) / qps, qps)
        subprocess.run(["callgrind_control", "-i", "off", str(d.proc.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["callgrind_control", "--dump", str(d.proc.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        time.sleep(1)
        tot = {}
        base = os.path.dirname(d.callgrind_out)
        for f in os.listdir(base):
            if re.match(r"callgrind\.out\.\d+$", f):
                for k, v in callgrind_totals(os.path.join(base, f)).items():
                    tot[k] = tot.get(k, 0) + v
        res[n] = (got, sent, tot)
    for n, (got, sent, tot) in res.items():
        per = {k: v / got for k, v in tot.items()} if got else {}
        d1 = per.get("D1mr", 0) + per.get("D1mw", 0)
        ll = per.get("DLmr", 0) + per.get("DLmw", 0)
        print(f"{n:6}: {sent} sent, {got} answers; per answer: {per.get('Ir', 0):.0f} instructions, "
              f"{per.get('Dr', 0) + per.get('Dw', 0):.0f} data accesses, {d1:.2f} D1 misses, "
              f"{ll:.3f} LL misses")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=int, default=4, help="dnsperf run per daemon and round")
    ap.add_argument("--cpu", type=int, default=0, help="core the daemons are pinned to")
    ap.add_argument("--client-cpu", type=int, default=1, help="core of dnsperf")
    ap.add_argument("--together", action="store_true",
                    help="load all daemons at once in each round (they share the core) instead "
                         "of one after the other")
    ap.add_argument("--subnets", type=int, default=20000,
                    help="distinct ECS /24s (20000: every query its own, cold; a few "
                         "thousand: a resolver population, warm)")
    ap.add_argument("--db", help="an existing database (written by write_mmdb.pl --bench) instead of a new one")
    ap.add_argument("--callgrind", action="store_true",
                    help="count instructions and cache misses per answer under callgrind instead")
    ap.add_argument("--ll", default="8388608,16,64",
                    help="callgrind's simulated last-level cache (size,assoc,line; default 8 MiB)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="geo_bench.")
    db = a.db or os.path.join(tmp, "bench.mmdb")
    t0 = time.time()
    if not a.db:
        subprocess.run(["perl", os.path.join(fedtest.SOURCE_DIR, "tests/geoip/write_mmdb.pl"),
                        "--bench", str(a.networks), db], check=True)
    print(f"database: {a.networks} /24s + {a.networks // 8} /48s written in "
          f"{time.time() - t0:.1f} s, {os.path.getsize(db) / 1048576:.1f} MiB")
    daemons = {}
    for name in (("geoip", "none") if a.callgrind else ("geoip", "none", "none2")):
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
        if a.callgrind:
            d = start_callgrind(d_tmp, conf, dport, cport, a.ll)
        else:
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
        f"{n} {kib(d.proc.pid, 'status', 'VmRSS:') / 1024:.0f} MiB "
        f"({kib(d.proc.pid, 'smaps_rollup', 'AnonHugePages:') / 1024:.0f} MiB in huge pages)"
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
    if a.callgrind:
        callgrind_run(daemons, packets, 2000)
        for d in daemons.values():
            fedtest.finish(d)
        return
    qfile = os.path.join(tmp, "queries.raw")
    write_raw(qfile, packets)
    names = list(daemons)
    per = {n: [] for n in names}  # CPU us per answer, one per round
    for r in range(a.rounds):
        if a.together:
            # All daemons loaded at once, sharing the core: whatever slows
            # the machine in this window slows each of them alike.
            c0 = {n: proc_cpu_ns(daemons[n].proc.pid) for n in names}
            res = {}
            threads = [threading.Thread(target=lambda n=n: res.__setitem__(
                n, saturate(daemons[n].dns_port, qfile, a.seconds, a.client_cpu))) for n in names]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            runs = [(n, res[n], proc_cpu_ns(daemons[n].proc.pid) - c0[n]) for n in names]
        else:
            runs = []
            for n in names[r % len(names):] + names[:r % len(names)]:
                c0 = proc_cpu_ns(daemons[n].proc.pid)
                got_sent = saturate(daemons[n].dns_port, qfile, a.seconds, a.client_cpu)
                runs.append((n, got_sent, proc_cpu_ns(daemons[n].proc.pid) - c0))
        for n, (got, sent), cpu_ns in runs:
            if got == 0:
                raise RuntimeError(f"{n}: no answers")
            per[n].append(cpu_ns / got / 1000.0)
            print(f"round {r + 1} {n:6}: {sent} sent, {got} answers, {cpu_ns / 1e9:.2f} s CPU, "
                  f"{per[n][-1]:.3f} us CPU per answer", flush=True)
    for n in names:
        print(f"{n:6}: median {median(per[n]):.3f} us CPU per answer "
              f"({min(per[n]):.3f}..{max(per[n]):.3f})")
    for n in ("geoip", "none2"):
        ratios = [100.0 * (x / z - 1.0) for x, z in zip(per[n], per["none"])]
        print(f"{n} vs none: median {median(ratios):+.1f}% "
              f"(rounds {', '.join(f'{x:+.1f}' for x in ratios)})")
    for d in daemons.values():
        fedtest.finish(d)


if __name__ == "__main__":
    main()
