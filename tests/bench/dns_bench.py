#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""DNS benchmark: fedgslb-dnsd side by side with NSD, Knot DNS and gdnsd.

Normally started through tests/bench/dns_bench.sh, which installs the peers
and builds fedgslb-dnsd first. See tests/bench/README.md for what is measured
and how to read it. This is a benchmark, not a test: it never fails on a
figure, only when a server cannot be run at all.

Each server serves the same zone fed.example.test on its own loopback port,
pinned to one core (--server-cpu), while dnsperf runs on another
(--client-cpu). All servers are started first; for each one the driver waits
until it answers and checks a sample of answers per client subnet against what
it should say. Then, in --rounds rounds (each server once per round, in a
rotating order, the others idle):

  1. saturation run: dnsperf with many outstanding queries for --duration s;
     server CPU (user+sys of its whole process tree, /proc/<pid>/stat) before
     and after -> CPU microseconds per response; qps; RSS;
  2. fixed-rate run: dnsperf -Q --rate -v for --lat-duration s; per-response
     latencies -> p50 / p99, and CPU per response at that rate.

At the end (or on any exit) every server is stopped: SIGTERM to its process
group, SIGKILL after 5 s.

The query file is one binary dnsperf data file (-B: raw wire-format queries),
so every query carries its own EDNS Client Subnet option and one dnsperf
process sends the whole mix from all client subnets.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from benchproc import (CLK_TCK, fmt, loadavg, log, proc_cpu_ns, proc_table, run_captured,  # noqa: E402
                       spawn, stop, stop_all, tree, tree_cpu, tree_rss_kib)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TPL = os.path.join(HERE, "dns")

ZONE = "fed.example.test"
FED = "myfed"
NS = "default"
# (member, region, availability zone, index used in addresses and subnets)
MEMBERS = [
    ("usa", "us-east-1", "us-east-1a", 1),
    ("eur", "eu-west-1", "eu-west-1a", 2),
    ("jpn", "ap-northeast-1", "ap-northeast-1a", 3),
]
LATENCY = {
    ("us-east-1", "eu-west-1"): 70,
    ("us-east-1", "ap-northeast-1"): 150,
    ("eu-west-1", "ap-northeast-1"): 220,
}
DEFAULT_MEMBER = 1  # dnsd.region / the static zones answer us-east-1's member
PACKET_CACHE_ENTRIES = 8192  # the fedgslb-cache row
ECS_PREFIX = 24  # client subnets are 198.18.<m>.0/24 (RFC 2544 benchmark range)

SERVER_ORDER = ["echo", "nsd", "knot", "gdnsd", "fedgslb", "fedgslb-cache", "fedgslb-hard"]
# DNS port of each server: base + this (base+5, +8 and +11 are fedgslb's
# control APIs, base+6 gdnsd's check targets).
PORT_OFFSET = {"nsd": 1, "knot": 2, "gdnsd": 3, "fedgslb": 4, "fedgslb-hard": 7, "echo": 9,
               "fedgslb-cache": 10}
CONTROL_OFFSET = {"fedgslb": 5, "fedgslb-hard": 8, "fedgslb-cache": 11}
LABELS = {
    "echo": "echo (floor)",
    "nsd": "NSD",
    "knot": "Knot DNS",
    "gdnsd": "gdnsd",
    "fedgslb": "fedgslb-dnsd",
    "fedgslb-cache": "fedgslb +packet cache",
    "fedgslb-hard": "fedgslb +RRL+cookies",
}
ANSWER_KIND = {
    "echo": "none: the query sent back (the ceiling)",
    "nsd": "static",
    "knot": "static",
    "gdnsd": "health-checked dynamic (geoip+multifo)",
    "fedgslb": "latency-routed federated",
    "fedgslb-cache": "latency-routed federated (packet cache on)",
    "fedgslb-hard": "latency-routed federated (RRL on, server cookies)",
}
# The hardened fedgslb row: response rate limiting on with a rate no flood here
# reaches (every answer still goes through the limiter's table), and DNS
# cookies on. With --cookies both fedgslb rows get queries carrying a client
# cookie, so the plain row only checks the option while the hardened one
# computes a server cookie for every answer. With --cookies=valid the queries
# also carry a server cookie valid for COOKIE_SECRET and 127.0.0.1, as a
# resolver sends once it has learnt ours (BIND, unbound): the hardened row
# then checks it, and RRL exempts the answer.
RRL_ALL_PASS = {"enabled": True, "responses_per_second": 1000000, "slip": 2, "window_s": 15}
COOKIE_SECRET = "e5e973e5a6b2a43f48e7dc849e37bfcf"  # RFC 9018 appendix A's
CLIENT_COOKIE = bytes.fromhex("2464c4abcf10c957")
COOKIE_MODES = ("client", "valid")


def siphash24(key, msg):
    """SipHash-2-4 of @msg under the 16-byte @key, as an integer (its
    little-endian bytes are the reference output)."""
    mask = (1 << 64) - 1

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & mask

    def rounds(v, n):
        for _ in range(n):
            v[0] = (v[0] + v[1]) & mask
            v[1] = rotl(v[1], 13) ^ v[0]
            v[0] = rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & mask
            v[3] = rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & mask
            v[3] = rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & mask
            v[1] = rotl(v[1], 17) ^ v[2]
            v[2] = rotl(v[2], 32)

    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]
    tail = len(msg) % 8
    blocks = [struct.unpack("<Q", msg[i:i + 8])[0] for i in range(0, len(msg) - tail, 8)]
    blocks.append(int.from_bytes(msg[len(msg) - tail:], "little") | (len(msg) & 0xFF) << 56)
    for m in blocks:
        v[3] ^= m
        rounds(v, 2)
        v[0] ^= m
    v[2] ^= 0xFF
    rounds(v, 4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def server_cookie(secret_hex, client, address, now_s):
    """The RFC 9018 server cookie dnsd gives @client (8 bytes) seen from the
    IPv4 @address at @now_s: version 1, reserved, timestamp, SipHash-2-4 of
    client cookie | those 8 bytes | address."""
    head = bytes([1, 0, 0, 0]) + struct.pack("!I", now_s & 0xFFFFFFFF)
    h = siphash24(bytes.fromhex(secret_hex), client + head + socket.inet_aton(address))
    return head + struct.pack("<Q", h)


def bench_cookie(mode, now_s=None):
    """The COOKIE option data the fedgslb rows' queries carry in @mode:
    the client cookie, and for "valid" a server cookie made now (valid for
    an hour, RFC 9018 §4.3: write the query file when the run starts)."""
    if mode == "valid":
        now = int(time.time()) if now_s is None else now_s
        return CLIENT_COOKIE + server_cookie(COOKIE_SECRET, CLIENT_COOKIE, "127.0.0.1", now)
    return CLIENT_COOKIE




# ---------------------------------------------------------------- data


def region_of(m):
    return MEMBERS[m - 1][1]


def member_of(m):
    return MEMBERS[m - 1][0]


def latency(ra, rb):
    if ra == rb:
        return 0
    return LATENCY.get((ra, rb), LATENCY.get((rb, ra)))


def global_name(i):
    return "svc%d.%s.%s.svc.%s" % (i, NS, FED, ZONE)


def regional_name(i, region):
    return "svc%d.%s.%s.svc.%s.%s" % (i, NS, FED, region, ZONE)


def addr4(m, i):
    return "127.1.%d.%d" % (m, i + 1)


def addr6(m, i):
    return "2001:db8:%d::%x" % (m, i + 1)


def dc_order(m):
    """Members by static latency from client subnet m's region (best first)."""
    r = region_of(m)
    return sorted((mm for _, _, _, mm in MEMBERS), key=lambda mm: (latency(r, region_of(mm)), mm))


def expected(kind, qname, qtype, subnet, n_services):
    """Set of addresses a server of @kind should answer, None for NXDOMAIN."""
    mt = re.match(r"^svc(\d+)\.%s\.%s\.svc\.(?:([a-z0-9-]+)\.)?%s$" % (NS, FED, re.escape(ZONE)), qname)
    if not mt or int(mt.group(1)) >= n_services:
        return None
    i = int(mt.group(1))
    if mt.group(2):
        m = [mm for _, r, _, mm in MEMBERS if r == mt.group(2)][0]
    elif kind == "static":
        m = DEFAULT_MEMBER
    else:
        m = dc_order(subnet)[0]
    return {addr4(m, i) if qtype == "A" else addr6(m, i)}


def make_queries(n_services, count, seed):
    """The query mix: list of (qname, qtype, subnet index)."""
    rng = random.Random(seed)
    n_a = count * 90 // 100
    n_aaaa = count * 5 // 100
    n_nx = count - n_a - n_aaaa
    regions = [r for _, r, _, _ in MEMBERS]
    qs = []
    for k in range(n_a):
        i = rng.randrange(n_services)
        # two thirds global names, one third regional names
        qs.append((regional_name(i, rng.choice(regions)) if k % 3 == 2 else global_name(i), "A"))
    for _ in range(n_aaaa):
        qs.append((global_name(rng.randrange(n_services)), "AAAA"))
    for k in range(n_nx):
        if k % 2:
            qs.append(("nx%d.%s" % (k, ZONE), "A"))
        else:  # looks federated, but no such service
            qs.append((global_name(n_services + k), "A"))
    rng.shuffle(qs)
    return [(q, t, 1 + (idx % len(MEMBERS))) for idx, (q, t) in enumerate(qs)]


def wire_name(name):
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def wire_query(qname, qtype, subnet, cookie=None):
    """A query (ID 0, RD clear) with EDNS0 (1232) and ECS 198.18.<subnet>.0/24,
    and a COOKIE option with the client cookie @cookie when given."""
    hdr = struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 1)
    q = wire_name(qname) + struct.pack("!HH", 1 if qtype == "A" else 28, 1)
    ecs = struct.pack("!HBB", 1, ECS_PREFIX, 0) + bytes([198, 18, subnet])
    rdata = struct.pack("!HH", 8, len(ecs)) + ecs
    if cookie is not None:
        rdata += struct.pack("!HH", 10, len(cookie)) + cookie
    opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, len(rdata)) + rdata
    return hdr + q + opt


def write_query_file(path, queries, cookie=None):
    with open(path, "wb") as f:
        for qname, qtype, subnet in queries:
            msg = wire_query(qname, qtype, subnet, cookie)
            f.write(struct.pack("!H", len(msg)) + msg)


def fill(template, values):
    with open(os.path.join(TPL, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("{{%s}}" % k, str(v))
    left = re.findall(r"\{\{[A-Z_]+\}\}", text)
    if left:
        raise RuntimeError("%s: unfilled placeholders %s" % (template, sorted(set(left))))
    return text


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def static_records(n):
    lines = []
    for i in range(n):
        lines.append("%s. IN A %s" % (global_name(i), addr4(DEFAULT_MEMBER, i)))
        lines.append("%s. IN AAAA %s" % (global_name(i), addr6(DEFAULT_MEMBER, i)))
        for _, r, _, m in MEMBERS:
            lines.append("%s. IN A %s" % (regional_name(i, r), addr4(m, i)))
            lines.append("%s. IN AAAA %s" % (regional_name(i, r), addr6(m, i)))
    return "\n".join(lines)


def gdnsd_files(d, port, check_port, n):
    nets = "\n".join(
        "          198.18.%d.0/%d => [ %s ]" % (m, ECS_PREFIX, ", ".join(member_of(x) for x in dc_order(m)))
        for _, _, _, m in MEMBERS
    )
    res = []
    for i in range(n):
        res.append("      svc%d => {" % i)
        res.append("        map => bench")
        res.append("        dcmap => {")
        for name, _, _, m in MEMBERS:
            res.append(
                "          %s => { addrs_v4 => { service_types => [ bench_tcp ], a => %s },"
                ' addrs_v6 => { service_types => [ up ], a => "%s" } }' % (name, addr4(m, i), addr6(m, i))
            )
        res.append("        }")
        res.append("      }")
    write(
        os.path.join(d, "config"),
        fill(
            "gdnsd.config.in",
            {"PORT": port, "CHECK_PORT": check_port, "DIR": d, "NETS": nets, "RESOURCES": "\n".join(res)},
        ),
    )
    recs = []
    for i in range(n):
        recs.append("%s DYNA geoip!svc%d" % (global_name(i)[: -len(ZONE) - 1], i))
        for name, r, _, _ in MEMBERS:
            recs.append("%s DYNA geoip!svc%d/%s" % (regional_name(i, r)[: -len(ZONE) - 1], i, name))
    write(os.path.join(d, "zones", ZONE), fill("gdnsd.zone.in", {"RECORDS": "\n".join(recs)}))


def fedgslb_files(d, port, control_port, n, hardened=False, packet_cache=False):
    conf = json.loads(fill("fedgslb.json.in", {"PORT": port, "CONTROL_PORT": control_port, "DIR": d}))
    if packet_cache:  # the fedgslb-cache row: the same binary, dnsd.packet_cache on (off by default)
        conf["dnsd"]["packet_cache"] = {"entries": PACKET_CACHE_ENTRIES}
    if hardened:
        secret = os.path.join(d, "cookie.secret")
        write(secret, COOKIE_SECRET + "\n")
        os.chmod(secret, 0o600)
        conf["dnsd"]["rrl"] = dict(RRL_ALL_PASS)
        conf["dnsd"]["cookies"] = {"secret_file": secret}
    conf["services"] = {"%s/svc%d" % (NS, i): {"port": 80} for i in range(n)}
    write(os.path.join(d, "federation.json"), json.dumps(conf, indent=2) + "\n")
    write(os.path.join(d, ZONE + ".zone"), fill("fedgslb.zone.in", {}))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    docs = []
    for _, vantage, _, vm in MEMBERS:  # one health checker per region
        rtt = {member_of(m): max(1.0, float(latency(vantage, region_of(m)))) for _, _, _, m in MEMBERS}
        doc = json.loads(
            fill(
                "state.json.in",
                {"VANTAGE": vantage, "NOW": now, "RTT_USA": rtt["usa"], "RTT_EUR": rtt["eur"], "RTT_JPN": rtt["jpn"]},
            )
        )
        for i in range(n):
            doc["services"]["%s/svc%d" % (NS, i)] = {
                "port": 80,
                "members": {
                    name: {
                        "addresses": [addr4(m, i), addr6(m, i)],
                        "hostname": None,
                        "ready_endpoints": 2,
                        "healthy": True,
                        "pending": False,
                        "rtt_ms": rtt[name],
                        "reason": "probe ok",
                    }
                    for name, _, _, m in MEMBERS
                },
            }
        path = os.path.join(d, "state-%s.json" % vantage)
        write(path, json.dumps(doc, indent=1) + "\n")
        docs.append(path)
    return docs


# ---------------------------------------------------------------- processes


def run_dnsperf(argv, cpu, timeout):
    return run_captured(["dnsperf"] + argv, cpu, timeout, "dnsperf")


def tree_pss_kib(root):
    total = 0
    for pid in tree(root, proc_table()):
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class CheckListener:
    """Accepts TCP connections on 127.1.m.(i+1):port for gdnsd's tcp_connect
    health checks (loopback only: one listening socket per address)."""

    def __init__(self, port, n):
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.accepted = 0
        for _, _, _, m in MEMBERS:
            for i in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((addr4(m, i), port))
                s.listen(16)
                s.setblocking(False)
                self.sel.register(s, selectors.EVENT_READ)
                self.socks.append(s)
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.is_set():
            for key, _ in self.sel.select(0.5):
                try:
                    c, _ = key.fileobj.accept()
                    c.close()
                    self.accepted += 1
                except OSError:
                    pass

    def close(self):
        self.stop_ev.set()
        self.thread.join(2)
        for s in self.socks:
            self.sel.unregister(s)
            s.close()


# ---------------------------------------------------------------- DNS client


def dns_query(port, qname, qtype, subnet, timeout=0.5):
    """(rcode text, set of A/AAAA addresses for qname) via dnspython, or raises."""
    import dns.edns
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    opts = []
    if subnet:
        opts.append(dns.edns.ECSOption("198.18.%d.0" % subnet, ECS_PREFIX))
    q = dns.message.make_query(qname, qtype, use_edns=0, payload=1232, options=opts)
    q.flags &= ~dns.flags.RD
    r = dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)
    addrs = set()
    for rrset in r.answer:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            addrs.update(rd.address for rd in rrset)
    return dns.rcode.to_text(r.rcode()), addrs


def wait_ready(port, proc, deadline_s):
    end = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < end:
        if proc.poll() is not None:
            return "exited with status %s" % proc.returncode
        try:
            rcode, _ = dns_query(port, ZONE, "SOA", None, timeout=0.3)
            if rcode == "NOERROR":
                return None
            last = rcode
        except Exception as e:  # timeouts, refused: not up yet
            last = str(e) or type(e).__name__
        time.sleep(0.1)
    return "not answering after %.0f s (%s)" % (deadline_s, last)


def verify(kind, port, n):
    """Checks a sample of answers; returns a list of problems (empty = ok)."""
    problems = []
    sample = sorted({0, n // 2, n - 1})
    cases = []
    for subnet in (1, 2, 3):
        for i in sample:
            cases.append((global_name(i), "A", subnet))
            cases.append((global_name(i), "AAAA", subnet))
            for _, r, _, _ in MEMBERS:
                cases.append((regional_name(i, r), "A", subnet))
        cases.append((global_name(n + 7), "A", subnet))
        cases.append(("nx-verify.%s" % ZONE, "A", subnet))
    for qname, qtype, subnet in cases:
        want = expected(kind, qname, qtype, subnet, n)
        try:
            rcode, got = dns_query(port, qname, qtype, subnet)
        except Exception as e:
            problems.append("%s %s ecs=%d: %s" % (qname, qtype, subnet, str(e) or type(e).__name__))
            continue
        if want is None:
            if rcode != "NXDOMAIN":
                problems.append("%s %s ecs=%d: %s %s, want NXDOMAIN" % (qname, qtype, subnet, rcode, sorted(got)))
        elif rcode != "NOERROR" or got != want:
            problems.append(
                "%s %s ecs=%d: %s %s, want %s" % (qname, qtype, subnet, rcode, sorted(got), sorted(want))
            )
    return problems


# ---------------------------------------------------------------- dnsperf


def parse_dnsperf(out):
    res = {}
    pats = {
        "sent": r"Queries sent:\s+(\d+)",
        "completed": r"Queries completed:\s+(\d+)",
        "lost": r"Queries lost:\s+(\d+)",
        "run_time_s": r"Run time \(s\):\s+([\d.]+)",
        "qps": r"Queries per second:\s+([\d.]+)",
        "avg_latency_s": r"Average Latency \(s\):\s+([\d.]+)",
    }
    for k, pat in pats.items():
        mt = re.search(pat, out)
        if mt:
            res[k] = float(mt.group(1)) if "." in mt.group(1) else int(mt.group(1))
    mt = re.search(r"Response codes:\s+(.*)", out)
    if mt:
        res["rcodes"] = {c: int(v) for c, v in re.findall(r"([A-Z]+) (\d+) \(", mt.group(1))}
    mt = re.search(r"Average packet size:\s+request (\d+), response (\d+)", out)
    if mt:
        res["avg_request_bytes"], res["avg_response_bytes"] = int(mt.group(1)), int(mt.group(2))
    return res


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def cpu_delta_ticks(before, after):
    return sum(t - before.get(pid, 0) for pid, t in after.items())


def run_saturation(srv, qfile, a):
    """One saturation run: dnsperf's figures plus the server's CPU ticks."""
    common = ["-B", "-d", qfile, "-s", "127.0.0.1", "-p", str(srv.port), "-t", "2"]
    before = tree_cpu(srv.proc.pid)
    rc, out = run_dnsperf(
        common + ["-l", str(a.duration), "-c", str(a.clients), "-q", str(a.outstanding)],
        a.client_cpu,
        a.duration + 30,
    )
    after = tree_cpu(srv.proc.pid)
    if rc != 0:
        raise RuntimeError("dnsperf exited %d: %s" % (rc, out[-500:]))
    if srv.proc.poll() is not None:
        raise RuntimeError("server exited during the saturation run")
    res = parse_dnsperf(out)
    res["cpu_ticks"] = cpu_delta_ticks(before, after)
    res["processes"] = len(after)
    return res


def run_fixed_rate(srv, qfile, a):
    """One fixed-rate run with per-response latencies (dnsperf -v)."""
    common = ["-B", "-d", qfile, "-s", "127.0.0.1", "-p", str(srv.port), "-t", "2"]
    before = tree_cpu(srv.proc.pid)
    rc, out = run_dnsperf(
        common + ["-l", str(a.lat_duration), "-c", str(a.clients), "-q", str(a.outstanding), "-Q", str(a.rate), "-v"],
        a.client_cpu,
        a.lat_duration + 30,
    )
    after = tree_cpu(srv.proc.pid)
    if rc != 0:
        raise RuntimeError("dnsperf -Q exited %d: %s" % (rc, out[-500:]))
    if srv.proc.poll() is not None:
        raise RuntimeError("server exited during the fixed-rate run")
    lats = []
    timeouts = 0
    for line in out.splitlines():
        if not line.startswith("> "):
            continue
        parts = line.split()
        if len(parts) > 1 and parts[1] == "T":
            timeouts += 1
            continue
        try:
            lats.append(float(parts[-1]))
        except ValueError:
            pass
    res = parse_dnsperf(out)
    res["cpu_ticks"] = cpu_delta_ticks(before, after)
    res["timeouts"] = timeouts
    return res, lats


def summarize(sats, fixeds, lats):
    """Aggregates the rounds: sums (ratio of sums for CPU per response),
    pooled latencies, and the per-round spread of CPU per response."""
    r = {}
    completed = sum(s.get("completed", 0) for s in sats)
    run_time = sum(s.get("run_time_s", 0) for s in sats)
    cpu_s = sum(s["cpu_ticks"] for s in sats) / CLK_TCK
    r["responses"] = completed
    r["qps"] = completed / run_time if run_time else None
    r["server_cpu_s"] = cpu_s
    r["server_cpu_util"] = cpu_s / run_time if run_time else None
    r["cpu_us_per_response"] = cpu_s * 1e6 / completed if completed else None
    per_round = [s["cpu_ticks"] / CLK_TCK * 1e6 / s["completed"] for s in sats if s.get("completed")]
    r["cpu_us_per_response_rounds"] = per_round
    rcodes = {}
    for s in sats:
        for k, v in s.get("rcodes", {}).items():
            rcodes[k] = rcodes.get(k, 0) + v
    r["saturation"] = {
        "rounds": sats,
        "sent": sum(s.get("sent", 0) for s in sats),
        "completed": completed,
        "lost": sum(s.get("lost", 0) for s in sats),
        "run_time_s": run_time,
        "rcodes": rcodes,
        "avg_response_bytes": sats[-1].get("avg_response_bytes") if sats else None,
    }
    f_completed = sum(f.get("completed", 0) for f in fixeds)
    f_cpu = sum(f["cpu_ticks"] for f in fixeds) / CLK_TCK
    r["fixed_rate"] = {
        "rounds": fixeds,
        "completed": f_completed,
        "timeouts": sum(f.get("timeouts", 0) for f in fixeds),
        "qps": sum(f.get("qps", 0) for f in fixeds) / len(fixeds) if fixeds else None,
        "server_cpu_s": f_cpu,
        "cpu_us_per_response": f_cpu * 1e6 / f_completed if f_completed else None,
        "latency_samples": len(lats),
    }
    lats.sort()
    r["p50_ms"] = percentile(lats, 50) * 1e3 if lats else None
    r["p99_ms"] = percentile(lats, 99) * 1e3 if lats else None
    r["p999_ms"] = percentile(lats, 99.9) * 1e3 if lats else None
    return r


# ---------------------------------------------------------------- servers


def put_state(control_port, paths, proc, deadline_s=10.0):
    """PUTs each state document; retries until the control API answers."""
    for path in paths:
        with open(path, "rb") as f:
            body = f.read()
        end = time.monotonic() + deadline_s
        while True:
            req = urllib.request.Request(
                "http://127.0.0.1:%d/v1/state" % control_port,
                data=body,
                method="PUT",
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=3) as resp:
                    resp.read()
                break
            except urllib.error.HTTPError as e:
                raise RuntimeError("PUT /v1/state %s: %d %s" % (os.path.basename(path), e.code, e.read()[:300]))
            except OSError as e:
                if proc.poll() is not None:
                    raise RuntimeError("exited with status %s" % proc.returncode)
                if time.monotonic() > end:
                    raise RuntimeError("control API on 127.0.0.1:%d: %s" % (control_port, e))
                time.sleep(0.2)


class Server:
    """One server under test: its files, process, and measurements."""

    def __init__(self, name, a, tmp):
        self.name = name
        self.a = a
        # base+5 and +6 are taken (fedgslb's control API, gdnsd's check target)
        self.port = a.port_base + PORT_OFFSET[name]
        self.dir = os.path.join(tmp, name)
        self.logpath = os.path.join(self.dir, "server.log")
        self.kind = {"nsd": "static", "knot": "static", "echo": "echo"}.get(name, "dynamic")
        self.proc = None
        self.listener = None
        self.state_docs = None
        self.control_port = a.port_base + CONTROL_OFFSET.get(name, 8)
        self.res = {"label": LABELS[name], "answers": ANSWER_KIND[name], "port": self.port, "log": self.logpath}
        self.sats, self.fixeds, self.lats = [], [], []
        self.qfile = None  # a query file of its own (--cookies), else the shared one

    def fail(self, e):
        self.res["error"] = str(e)
        log("   %s FAILED: %s (log: %s)" % (LABELS[self.name], e, self.logpath))
        try:
            with open(self.logpath, errors="replace") as f:
                tail = f.read()[-1500:]
            if tail.strip():
                log("   --- last lines of its log ---\n" + tail)
        except OSError:
            pass
        self.stop()

    def start(self):
        a, d, name, port = self.a, self.dir, self.name, self.port
        os.makedirs(d, exist_ok=True)
        if name == "nsd":
            write(os.path.join(d, "nsd.conf"), fill("nsd.conf.in", {"PORT": port, "DIR": d}))
            write(os.path.join(d, ZONE + ".zone"), fill("static.zone.in", {"RECORDS": static_records(a.services)}))
            argv = [shutil.which("nsd") or "/usr/sbin/nsd", "-d", "-c", os.path.join(d, "nsd.conf")]
        elif name == "knot":
            write(os.path.join(d, "knot.conf"), fill("knot.conf.in", {"PORT": port, "DIR": d}))
            write(os.path.join(d, ZONE + ".zone"), fill("static.zone.in", {"RECORDS": static_records(a.services)}))
            argv = [shutil.which("knotd") or "/usr/sbin/knotd", "-c", os.path.join(d, "knot.conf")]
        elif name == "gdnsd":
            check_port = a.port_base + 6
            gdnsd_files(d, port, check_port, a.services)
            self.listener = CheckListener(check_port, a.services)
            argv = [shutil.which("gdnsd") or "/usr/sbin/gdnsd", "-c", d, "start"]
        elif name == "echo":
            argv = [a.echo, "127.0.0.1", str(port)]
        else:
            self.state_docs = fedgslb_files(d, port, self.control_port, a.services,
                                            hardened=name == "fedgslb-hard",
                                            packet_cache=name == "fedgslb-cache")
            argv = [a.fedgslb, "--config", os.path.join(d, "federation.json")]
        self.res["argv"] = argv
        log("== %s (%s answers) on 127.0.0.1:%d, cpu %d" % (LABELS[name], ANSWER_KIND[name], port, a.server_cpu))
        self.proc = spawn(argv, self.logpath, a.server_cpu)
        if self.state_docs:
            put_state(self.control_port, self.state_docs, self.proc)
        err = wait_ready(port, self.proc, 20.0)
        if err:
            raise RuntimeError(err)
        if self.listener:
            time.sleep(0.5)  # let the first health checks land
        problems = verify(self.kind, port, a.services) if self.kind != "echo" else []
        self.res["answers_ok"] = not problems
        self.res["answer_problems"] = problems[:20]
        if problems:
            log("   WRONG ANSWERS (%d), e.g.:\n     %s" % (len(problems), "\n     ".join(problems[:5])))
        else:
            log("   answers checked")

    def run_round(self, qfile):
        qfile = self.qfile or qfile
        if self.state_docs:
            put_state(self.control_port, self.state_docs, self.proc)  # identical re-push: keeps the vantages fresh
        sat = run_saturation(self, qfile, self.a)
        self.sats.append(sat)
        self.res["rss_mib"] = tree_rss_kib(self.proc.pid) / 1024.0
        self.res["pss_mib"] = tree_pss_kib(self.proc.pid) / 1024.0
        self.res["processes"] = sat["processes"]
        fixed, lats = run_fixed_rate(self, qfile, self.a)
        self.fixeds.append(fixed)
        self.lats.extend(lats)
        cpu = sat["cpu_ticks"] / CLK_TCK * 1e6 / sat["completed"] if sat.get("completed") else 0
        log(
            "   %-13s qps %6.0f  cpu %5.2f us/resp (server busy %3.0f%%)  | at %d qps: %d lat. samples"
            % (
                LABELS[self.name],
                sat.get("qps", 0),
                cpu,
                100.0 * sat["cpu_ticks"] / CLK_TCK / sat["run_time_s"] if sat.get("run_time_s") else 0,
                self.a.rate,
                len(lats),
            )
        )

    def finish(self):
        if "error" not in self.res and self.sats:
            self.res.update(summarize(self.sats, self.fixeds, self.lats))
            if self.listener:
                self.res["health_checks_accepted"] = self.listener.accepted
        self.stop()
        return self.res

    def stop(self):
        if self.proc:
            stop(self.proc)
        if self.listener:
            if "error" not in self.res:
                self.res["health_checks_accepted"] = self.listener.accepted
            self.listener.close()
            self.listener = None


def bench(order, a, tmp, qfile, cookie_qfile=None):
    """Starts every server (all pinned to the server core; the ones not being
    measured sit idle), then runs --rounds rounds, each server once per round
    in a rotating order, so that drifting background load spreads over all."""
    servers = []
    for name in order:
        s = Server(name, a, tmp)
        if name.startswith("fedgslb"):
            s.qfile = cookie_qfile
        try:
            s.start()
        except Exception as e:
            s.fail(e)
        servers.append(s)
    try:
        for rnd in range(a.rounds):
            live = [s for s in servers if "error" not in s.res]
            if not live:
                break
            k = rnd % len(live)
            log("-- round %d/%d" % (rnd + 1, a.rounds))
            for s in live[k:] + live[:k]:
                try:
                    s.run_round(qfile)
                except Exception as e:
                    s.fail(e)
        together(servers, a, qfile)
        pairs(servers, a, qfile)
    finally:
        results = {s.name: s.finish() for s in servers}
    return results


def tree_cpu_ns(root):
    return sum(proc_cpu_ns(pid) for pid in tree(root, proc_table()))


def median(vals):
    s = sorted(vals)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2 if s else None


def load_at_once(group, a, qfile):
    """Saturates every server of @group at once, each by its own dnsperf (all
    on the client core), sharing the server core, so that whatever slows the
    machine in that window slows them all alike. Returns {name: CPU us per
    answer, in scheduler nanoseconds; None when its run failed}."""
    for s in group:
        if s.state_docs:
            put_state(s.control_port, s.state_docs, s.proc)
    c0 = {s.name: tree_cpu_ns(s.proc.pid) for s in group}
    res = {}

    def one(s):
        try:
            res[s.name] = run_saturation(s, s.qfile or qfile, a)
        except Exception as e:  # reported below, the others still count
            res[s.name] = {"error": str(e)}

    threads = [threading.Thread(target=one, args=(s,)) for s in group]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = {}
    for s in group:
        got = res[s.name].get("completed", 0)
        out[s.name] = None
        if got:
            out[s.name] = (tree_cpu_ns(s.proc.pid) - c0[s.name]) / 1000.0 / got
            log("   %-13s %8d answers  cpu %5.2f us/resp" % (LABELS[s.name], got, out[s.name]))
        else:
            log("   %-13s FAILED: %s" % (LABELS[s.name], res[s.name].get("error", "no answer")))
    return out


def together(servers, a, qfile):
    """--together rounds: every live server saturated at once (load_at_once).
    The per-round ratios are the figure."""
    live = [s for s in servers if "error" not in s.res]
    for rnd in range(a.together):
        log("-- together %d/%d" % (rnd + 1, a.together))
        us = load_at_once(live, a, qfile)
        # a server whose run failed sits out the rounds left, so that every
        # list stays aligned round by round with fedgslb-dnsd's
        live = [s for s in live if us[s.name] is not None]
        for s in live:
            s.res.setdefault("together_us", []).append(us[s.name])


def pairs(servers, a, qfile):
    """--pairs rounds: fedgslb-dnsd and one other server saturated at once
    (load_at_once), for each other server in turn, in an order reversed every
    other round (over two rounds every peer has the same mean position, so
    drift hits all alike). Two programs on the core evict each other's code
    and data less than four do: the per-round ratio fedgslb / peer is the
    closest to the one-at-a-time ratio that still cancels the machine's drift."""
    live = [s for s in servers if "error" not in s.res]
    fed = [s for s in live if s.name == "fedgslb"]
    peers = [s for s in live if s.name != "fedgslb"]
    if a.pairs and (not fed or not peers):
        log("note: --pairs needs fedgslb-dnsd and another server measured: no pairs")
        return
    for rnd in range(a.pairs):
        for p in peers if rnd % 2 == 0 else peers[::-1]:
            log("-- pairs %d/%d: fedgslb-dnsd + %s" % (rnd + 1, a.pairs, LABELS[p.name]))
            us = load_at_once([fed[0], p], a, qfile)
            if us[p.name] is not None and us["fedgslb"] is not None:  # both or neither: rounds stay aligned
                p.res.setdefault("pairs_us", []).append(us[p.name])
                p.res.setdefault("pairs_fedgslb_us", []).append(us["fedgslb"])


def together_ratios(results):
    """fedgslb-dnsd's CPU per answer over each server's in the --together
    rounds: {name: {"rounds": [...], "median": m}} (fedgslb itself included)."""
    base = results.get("fedgslb", {}).get("together_us")
    out = {}
    for n, r in results.items():
        if base and r.get("together_us"):
            rr = [b / x for b, x in zip(base, r["together_us"])]
            out[n] = {"rounds": rr, "median": median(rr)}
    return out


def pair_ratios(results):
    """fedgslb-dnsd's CPU per answer over each peer's in the --pairs rounds,
    each round's fedgslb against the peer it ran with: {peer: {"rounds":
    [...], "median": m}}."""
    out = {}
    for n, r in results.items():
        if r.get("pairs_us"):
            rr = [f / x for f, x in zip(r["pairs_fedgslb_us"], r["pairs_us"])]
            out[n] = {"rounds": rr, "median": median(rr)}
    return out


def print_together(results, order):
    rat = together_ratios(results)
    rows = [n for n in order if n in rat]
    if not rows:
        return
    print("\nall servers loaded at once (--together %d rounds; sharing the server core):"
          % len(results["fedgslb"]["together_us"]))
    print("  %-22s %10s  %s" % ("server", "CPU us/ans", "fedgslb-dnsd / server, each round (median)"))
    for n in rows:
        print("  %-22s %10.3f  %s  (%.3f)" % (LABELS[n], median(results[n]["together_us"]),
                                             " ".join("%.3f" % x for x in rat[n]["rounds"]), rat[n]["median"]))


def print_pairs(results, order):
    rat = pair_ratios(results)
    rows = [n for n in order if n in rat]
    if not rows:
        return
    print("\nfedgslb-dnsd and one server loaded at once (--pairs; the pair shares the server core):")
    print("  %-22s %10s %10s  %s" % ("server", "CPU us/ans", "fedgslb", "fedgslb-dnsd / server, each round (median)"))
    for n in rows:
        print("  %-22s %10.3f %10.3f  %s  (%.3f)" % (LABELS[n], median(results[n]["pairs_us"]),
                                                    median(results[n]["pairs_fedgslb_us"]),
                                                    " ".join("%.3f" % x for x in rat[n]["rounds"]),
                                                    rat[n]["median"]))


# ---------------------------------------------------------------- report


def spread(vals):
    if not vals or len(vals) < 2:
        return "-"
    return "%.2f-%.2f" % (min(vals), max(vals))


def echo_ratios(results):
    """Each server's CPU per answer over the echo responder's: in all, and
    round by round (the same round: the closest in time, so the least
    disturbed by load that comes and goes)."""
    echo = results.get("echo")
    out = {}
    if not echo or "error" in echo or not echo.get("cpu_us_per_response"):
        return out
    for n, r in results.items():
        if n == "echo" or "error" in r or not r.get("cpu_us_per_response"):
            continue
        rounds = [x / e for x, e in zip(r.get("cpu_us_per_response_rounds", []),
                                        echo.get("cpu_us_per_response_rounds", [])) if e]
        out[n] = {"cpu_us_per_response": r["cpu_us_per_response"] / echo["cpu_us_per_response"],
                  "rounds": rounds}
    return out


def report(results, order):
    cols = ["server", "answers", "qps", "responses", "CPU us/resp", "(rounds)", "x echo", "(rounds)", "srv CPU",
            "us/resp@Q", "p50 ms", "p99 ms", "RSS MiB"]
    rows = []
    vs_echo = echo_ratios(results)
    for n in order:
        r = results[n]
        if "error" in r:
            rows.append([r["label"], ANSWER_KIND[n].split(" (")[0], "FAILED: " + r["error"][:60]] + [""] * 10)
            continue
        label = r["label"] + ("" if r.get("answers_ok") or n == "echo" else " (!)")
        rows.append(
            [
                label,
                ANSWER_KIND[n].split(" (")[0],
                fmt(r["qps"], ".0f"),
                str(r["responses"]),
                fmt(r["cpu_us_per_response"], ".2f"),
                spread(r.get("cpu_us_per_response_rounds")),
                "1.00" if n == "echo" and vs_echo else fmt(vs_echo.get(n, {}).get("cpu_us_per_response"), ".2f"),
                spread(vs_echo.get(n, {}).get("rounds")),
                fmt(100 * r["server_cpu_util"] if r["server_cpu_util"] is not None else None, ".0f") + "%",
                fmt(r["fixed_rate"].get("cpu_us_per_response"), ".2f"),
                fmt(r["p50_ms"], ".3f"),
                fmt(r["p99_ms"], ".3f"),
                fmt(r["rss_mib"], ".1f"),
            ]
        )
    ok_rows = [row for row in rows if not row[2].startswith("FAILED")]
    widths = [max([len(c)] + [len(row[i]) for row in ok_rows]) for i, c in enumerate(cols)]
    widths[0] = max([widths[0]] + [len(row[0]) for row in rows])
    widths[1] = max([widths[1]] + [len(row[1]) for row in rows])
    line = "  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(cols))
    print(line)
    print("-" * len(line))
    for row in rows:
        if row[2].startswith("FAILED"):
            print("  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2]]))
        else:
            print("  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(row)))
    if any(not results[n].get("answers_ok", True) for n in order if "error" not in results[n]):
        print("(!) some sampled answers were wrong: see answer_problems in the JSON")


def ratios(results):
    fed = results.get("fedgslb")
    out = {}
    if not fed or "error" in fed:
        return out
    for n, r in results.items():
        if n == "fedgslb" or "error" in r:
            continue
        rr = {}
        for k in ("cpu_us_per_response", "qps", "p50_ms", "p99_ms", "rss_mib"):
            if fed.get(k) is not None and r.get(k):
                rr[k] = fed[k] / r[k]
        fq, pq = fed["fixed_rate"].get("cpu_us_per_response"), r["fixed_rate"].get("cpu_us_per_response")
        if fq is not None and pq:
            rr["cpu_us_per_response_fixed_rate"] = fq / pq
        out[n] = rr
    return out


def print_ratios(rat, results):
    if not rat:
        fed = results.get("fedgslb")
        if not fed or "error" in fed:
            print("\nfedgslb-dnsd was not measured: no ratios.")
        else:
            print("\nno peer was measured: no ratios.")
        return
    print("\nfedgslb-dnsd / peer (CPU per answer is the figure of merit; < 1 = fedgslb spends less):")
    print("  %-10s %12s %10s %8s %8s %8s %8s" % ("peer", "CPU/answer", "CPU/ans@Q", "qps", "p50", "p99", "RSS"))
    for n in SERVER_ORDER:
        if n not in rat:
            continue
        rr = rat[n]
        print(
            "  %-10s %12s %10s %8s %8s %8s %8s"
            % (
                LABELS[n],
                fmt(rr.get("cpu_us_per_response"), ".2f"),
                fmt(rr.get("cpu_us_per_response_fixed_rate"), ".2f"),
                fmt(rr.get("qps"), ".2f"),
                fmt(rr.get("p50_ms"), ".2f"),
                fmt(rr.get("p99_ms"), ".2f"),
                fmt(rr.get("rss_mib"), ".2f"),
            )
        )


# (peer, key in "target", fedgslb / peer at most, how the line says it)
TARGETS = [
    ("knot", "cpu_per_answer_le_knot", 1.0, "<= Knot's"),
    ("gdnsd", "cpu_per_answer_le_gdnsd", 1.0, "<= gdnsd's"),
    ("echo", "cpu_per_answer_le_1.07_echo", 1.07, "<= 1.07 x echo"),
]


def target_by_measurement(results):
    """Each target's verdict from every measurement that has the ratio, best
    first: [(measurement, ratio, met)] per key. The pairs come first (the
    noise cancelled, the least co-runner bias), then together (noise
    cancelled, biased by as many co-runners as were selected), then the
    one-at-a-time rounds (unbiased, noisy on a shared machine)."""
    ntog = sum(1 for r in results.values() if r.get("together_us"))
    by = [("pairs", {n: r["median"] for n, r in pair_ratios(results).items()}),
          ("together of %d" % ntog, {n: r["median"] for n, r in together_ratios(results).items()}),
          ("rounds", {n: r["cpu_us_per_response"] for n, r in ratios(results).items()
                      if r.get("cpu_us_per_response") is not None})]
    out = {}
    for peer, key, limit, _ in TARGETS:
        out[key] = [(m, rat[peer], rat[peer] <= limit) for m, rat in by if peer in rat]
    return out


def target(results):
    """{key: met} from the first measurement that has it (pairs, together,
    rounds); keys as before --pairs, absent when no measurement has one."""
    return {k: v[0][2] for k, v in target_by_measurement(results).items() if v}


def print_target(results):
    by = target_by_measurement(results)
    if not any(by.values()):
        return
    print("\ntarget (informational; the first verdict from the pairs, else together, else the one-at-a-time rounds):")
    for _, key, _, what in TARGETS:
        said = ["%s (%s%s %.3f)" % ("met" if met else "NOT met", m, ":" if m.startswith("together") else "", r)
                for m, r, met in by[key]]
        print("  CPU per answer %-15s %s" % (what + ":", ", ".join(said) or "-"))


# ---------------------------------------------------------------- main


def tool_version(argv):
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=5).stdout
        for line in out.decode("utf-8", "replace").splitlines():
            if re.search(r"version\s*:?\s*\d+\.\d+", line, re.I) or re.match(r"^\S+ \d+\.\d+", line):
                return line.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return None


def parse_args(argv):
    ap = argparse.ArgumentParser(description="fedgslb-dnsd vs NSD, Knot DNS and gdnsd (dnsperf).")
    ap.add_argument("--quick", action="store_true", help="short smoke run (a few seconds per server)")
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench", "dns.json"), help="JSON results file")
    ap.add_argument("--servers", default=",".join(SERVER_ORDER), help="comma list of " + ",".join(SERVER_ORDER))
    ap.add_argument("--fedgslb", default=os.path.join(REPO, "build", "fedgslb-dnsd"), help="fedgslb-dnsd binary")
    ap.add_argument("--echo", default=os.path.join(REPO, "build", "dns_echo"), help="echo responder binary (the floor row)")
    ap.add_argument("--services", type=int, default=50, help="federated services (default 50, max 250)")
    ap.add_argument("--queries", type=int, default=20000, help="distinct queries in the data file")
    ap.add_argument("--rounds", type=int, help="rounds over all servers (default 3, quick 1)")
    ap.add_argument("--duration", type=int, help="saturation run seconds per round (default 4, quick 2)")
    ap.add_argument("--lat-duration", type=int, help="fixed-rate run seconds per round (default 2, quick 1)")
    ap.add_argument("--rate", type=int, help="fixed-rate qps (default 20000, quick 5000)")
    ap.add_argument("--clients", type=int, default=4, help="dnsperf -c (default 4)")
    ap.add_argument("--outstanding", type=int, default=500, help="dnsperf -q (default 500)")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--port-base", type=int, default=25300, help="servers on base+1..+4, fedgslb control on +5, gdnsd check targets on +6")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cookies", nargs="?", const="client", choices=COOKIE_MODES,
                    help="fedgslb rows get queries with a client cookie (RFC 7873); "
                    "--cookies=valid: and a valid server cookie, as resolvers send once they "
                    "know ours (exempts the hardened row's answers from RRL; made at start, "
                    "valid for an hour)")
    ap.add_argument("--together", type=int, default=0, metavar="N",
                    help="after the rounds, N rounds with every server loaded at once (default 0)")
    ap.add_argument("--pairs", type=int, default=0, metavar="N",
                    help="after those, N rounds in which fedgslb-dnsd and each other server in turn "
                    "are loaded at once, two at a time (default 0)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory")
    # handled by dns_bench.sh; accepted here so the same arguments can be passed through
    ap.add_argument("--no-install", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-build", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.rounds is None:
        a.rounds = 1 if a.quick else 3
    if a.duration is None:
        a.duration = 2 if a.quick else 4
    if a.lat_duration is None:
        a.lat_duration = 1 if a.quick else 2
    if a.rounds < 1 or a.duration < 1 or a.lat_duration < 1:
        ap.error("--rounds, --duration and --lat-duration must be >= 1")
    if a.together < 0 or a.pairs < 0:
        ap.error("--together and --pairs must be >= 0")
    if a.rate is None:
        a.rate = 5000 if a.quick else 20000
    if not 1 <= a.services <= 250:
        ap.error("--services must be 1..250")
    a.server_list = [s.strip() for s in a.servers.split(",") if s.strip()]
    for s in a.server_list:
        if s not in SERVER_ORDER:
            ap.error("unknown server %r (known: %s)" % (s, ", ".join(SERVER_ORDER)))
    return a


def main(argv):
    a = parse_args(argv)
    ncpu = os.cpu_count() or 1
    if ncpu < 2 or a.server_cpu == a.client_cpu:
        log("warning: server and dnsperf share a core: figures are not comparable to a 2-core run")
    for tool in ["dnsperf", "taskset"]:
        if not shutil.which(tool):
            log("error: %s not found (run tests/bench/dns_bench.sh, which installs it)" % tool)
            return 2
    if "echo" in a.server_list and not os.access(a.echo, os.X_OK):
        log("note: %s not found or not executable: the echo row is skipped" % a.echo)
        a.server_list.remove("echo")
    if "fedgslb" in a.server_list and not os.access(a.fedgslb, os.X_OK):
        log("note: %s not found or not executable: fedgslb-dnsd skipped" % a.fedgslb)
        a.server_list.remove("fedgslb")
    for name, binary in (("nsd", "nsd"), ("knot", "knotd"), ("gdnsd", "gdnsd")):
        if name in a.server_list and not (shutil.which(binary) or os.path.exists("/usr/sbin/" + binary)):
            log("note: %s not installed: skipped" % binary)
            a.server_list.remove(name)
    order = [s for s in SERVER_ORDER if s in a.server_list]
    if not order:
        log("error: no server to measure")
        return 2

    def on_term(signum, frame):
        log("interrupted (signal %d): stopping servers" % signum)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    tmp = tempfile.mkdtemp(prefix="fedgslb-dns-bench-")
    os.chmod(tmp, 0o755)
    results = {}
    load0 = loadavg()
    try:
        queries = make_queries(a.services, a.queries, a.seed)
        qfile = os.path.join(tmp, "queries.bin")
        write_query_file(qfile, queries)
        cookie_qfile = None
        if a.cookies:
            cookie_qfile = os.path.join(tmp, "queries-cookie.bin")
            write_query_file(cookie_qfile, queries, bench_cookie(a.cookies))
        log(
            "query mix: %d queries (90%% A federated, 5%% AAAA, 5%% NXDOMAIN), ECS from %d subnets, %d services"
            % (len(queries), len(MEMBERS), a.services)
        )
        log(
            "per server and round: saturation %d s (dnsperf -c %d -q %d), then %d qps for %d s; %d round(s); load avg %s"
            % (a.duration, a.clients, a.outstanding, a.rate, a.lat_duration, a.rounds, load0)
        )
        results = bench(order, a, tmp, qfile, cookie_qfile)
    finally:
        stop_all()
        if a.keep_tmp:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    report(results, order)
    rat = ratios(results)
    print_ratios(rat, results)
    print_together(results, order)
    print_pairs(results, order)
    tgt = target(results)
    print_target(results)
    load1 = loadavg()
    if max((load0 or [0])[0], (load1 or [0])[0]) > 0.5:
        print("note: load average %s -> %s: other work was running, figures are noisy" % (load0, load1))

    doc = {
        "benchmark": "dns",
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": {
            "cpus": ncpu,
            "kernel": platform.release(),
            "loadavg_before": load0,
            "loadavg_after": load1,
            "clk_tck": CLK_TCK,
        },
        "params": {
            "quick": a.quick,
            "services": a.services,
            "queries": a.queries,
            "mix": {"A_federated": 0.90, "AAAA": 0.05, "NXDOMAIN": 0.05},
            "ecs_subnets": ["198.18.%d.0/%d" % (m, ECS_PREFIX) for _, _, _, m in MEMBERS],
            "rounds": a.rounds,
            "saturation_s": a.duration,
            "fixed_rate_qps": a.rate,
            "fixed_rate_s": a.lat_duration,
            "dnsperf_clients": a.clients,
            "dnsperf_outstanding": a.outstanding,
            "server_cpu": a.server_cpu,
            "client_cpu": a.client_cpu,
            "together_rounds": a.together,
            "pairs_rounds": a.pairs,
        },
        "versions": {
            "dnsperf": tool_version(["dnsperf", "-h"]),
            "nsd": tool_version(["nsd", "-v"]),
            "knot": tool_version(["knotd", "-V"]),
            "gdnsd": tool_version(["gdnsd", "-V"]),
            "fedgslb": tool_version([a.fedgslb, "--version"]) if "fedgslb" in order else None,
        },
        "servers": results,
        "fedgslb_ratio": rat,
        "vs_echo": echo_ratios(results),
        "together_ratio": together_ratios(results),
        "pairs_ratio": pair_ratios(results),
        "target": tgt,
        "target_by_measurement": {k: [{"measurement": m, "ratio": r, "met": met} for m, r, met in v]
                                  for k, v in target_by_measurement(results).items()},
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
    print("\nresults: %s" % a.out)
    return 0 if any("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
    finally:
        stop_all()
