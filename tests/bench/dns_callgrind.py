#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""User-space instructions per answer of fedgslb-dnsd (and the echo
responder), counted with callgrind: a figure that does not move with the
machine's load, unlike the CPU time dns_bench.py measures.

For each row the server runs under `valgrind --tool=callgrind
--instr-atstart=no` with dns_bench.py's configuration and state; once it
answers, instrumentation is switched on (callgrind_control -i on), dnsperf
sends the benchmark's query file --passes times at --rate qps, then
instrumentation is switched off and the counters dumped. Instructions (Ir)
over that window divided by the responses dnsperf received is the figure;
the busiest functions are listed with --top. "query path" is the part spent
answering (dns_query_process_memo, the rate limiter and the counters,
inclusive), which does not depend on how many queries a wakeup finds; the
rest (event loop, recvmmsg/sendmmsg) is shared by a batch. Code the
compiler inlined from a header into those functions is listed apart
(e.g. "dnsd/dns_cookie.h:dns_query_process_memo" in --top) and not in the
query path figure: add it. Kernel work (the syscalls) is
not counted: it is the same for every row that batches as dnsd does.

Under callgrind the server is ~50x slower, so its recvmmsg batches are
fuller than at full speed: compare rows of one run, not with the CPU time
of dns_bench.py.

  FEDGSLB_BUILD_DIR=build tests/bench/dns_callgrind.py [--rows fedgslb,fedgslb-hard,echo]
      [--cookies[=valid]] [--services 50] [--queries 20000] [--passes 1] [--rate 3000] [--top 15]
      [--cache-sim]

--cache-sim adds valgrind's simulated caches (a private D1 and LL per
process, so it shows what a query touches cold, not the thrash of servers
sharing a core): data misses per answer, in all and in dnsd/dns_rrl.c.
--d1 1024,16,64 shrinks the simulated D1 to 16 lines: its misses per
answer then count about the distinct lines an answer touches, what the
answer costs when other servers on the core evict everything in between.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dns_bench as db  # noqa: E402
from benchproc import log, run_captured, spawn, stop, stop_all  # noqa: E402

ROWS = ["fedgslb", "fedgslb-cache", "fedgslb-hard", "echo", "gdnsd"]


def parse_args(argv):
    build = os.environ.get("FEDGSLB_BUILD_DIR", os.path.join(db.REPO, "build"))
    ap = argparse.ArgumentParser(description="callgrind instructions per answer")
    ap.add_argument("--rows", default="fedgslb,fedgslb-hard", help="comma list of " + ",".join(ROWS))
    ap.add_argument("--fedgslb", default=os.path.join(build, "fedgslb-dnsd"))
    ap.add_argument("--echo", default=os.path.join(build, "dns_echo"), help="echo responder binary")
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--queries", type=int, default=20000)
    ap.add_argument("--passes", type=int, default=1, help="times the query file is sent")
    ap.add_argument("--rate", type=int, default=1500, help="dnsperf -Q under callgrind (low: a batch per query or two, as at a moderate load)")
    ap.add_argument("--cookies", nargs="?", const="client", choices=db.COOKIE_MODES,
                    help="queries carry a client cookie; --cookies=valid: and a valid server "
                    "cookie (dns_bench.py --cookies)")
    ap.add_argument("--top", type=int, default=15, help="functions listed per row (0: none)")
    ap.add_argument("--port", type=int, default=25391)
    ap.add_argument("--cpu", type=int, default=0, help="core for the server")
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON results file")
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--cache-sim", action="store_true",
                    help="also simulate the caches (valgrind --cache-sim=yes): D1 and LL data "
                    "misses per answer, in all and in the rate limiter (dnsd/dns_rrl.c, self)")
    ap.add_argument("--d1", default=None, metavar="SIZE,ASSOC,LINE",
                    help="with --cache-sim: the simulated D1 (valgrind --D1), e.g. 1024,16,64: "
                    "16 lines, so that nearly every line a query touches misses again at the "
                    "next query and D1 misses per answer count the lines an answer touches "
                    "(its footprint when other servers share the core's caches)")
    return ap.parse_args(argv)


def callgrind_control(args, pid, timeout=60):
    subprocess.run(["callgrind_control"] + args + [str(pid)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=timeout, check=True)


def totals(path, event="Ir"):
    """The last totals line's @event (the summary line at the top may say 0)."""
    found = None
    names = ["Ir"]
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith("totals:"):
                vals = line.split()[1:]
                found = int(vals[names.index(event)]) if event in names[: len(vals)] else 0
    if found is None:
        raise RuntimeError("%s: no totals line" % path)
    return found


# Simulated data-cache misses (--cache-sim): first level and last level, reads + writes.
MISS_EVENTS = {"d1": ("D1mr", "D1mw"), "ll": ("DLmr", "DLmw")}


def file_misses(path, source):
    """Self D1 and LL data misses of the functions of @source (e.g. dnsd/dns_rrl.c)."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no",
                          "--show=D1mr,D1mw,DLmr,DLmw", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, timeout=120).stdout.decode("utf-8", "replace")
    d1 = ll = 0
    for line in out.splitlines():
        # four columns ("12,218 (3.1%)", "0" or "."), then file:function
        f = re.sub(r"\(\s*[\d.]+%\)", " ", line).split()
        if len(f) < 5 or not all(re.fullmatch(r"[\d,]+|\.", x) for x in f[:4]):
            continue
        if f[4].split(":")[0].endswith(source):
            v = [0 if x == "." else int(x.replace(",", "")) for x in f[:4]]
            d1 += v[0] + v[1]
            ll += v[2] + v[3]
    return d1, ll


# The per-query work, whatever the batch sizes: these functions' inclusive
# cost (the answer, the rate limiter, the counters). With the packet cache
# the answer is dns_pcache_process (which calls dns_query_process_memo on a
# miss) instead.
QUERY_PATH = ("dns_query_process_memo", "dns_rrl_check_hashed", "count_query")
QUERY_PATH_CACHED = ("dns_pcache_process", "dns_rrl_check_hashed", "count_query")


def inclusive(path, names):
    """Inclusive Ir of the functions whose name is one of @names."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--auto=no", "--show=Ir", path],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         timeout=120).stdout.decode("utf-8", "replace")
    total = 0
    seen = set()
    for line in out.splitlines():
        mt = re.match(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+\S*?:(\w+)(?:\.part\.\d+)?\s", line)
        if mt and mt.group(2) in names and mt.group(2) not in seen:
            seen.add(mt.group(2))
            total += int(mt.group(1).replace(",", ""))
    return total


def top_functions(path, n):
    if n <= 0:
        return []
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no", "--show=Ir", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, timeout=120).stdout.decode("utf-8", "replace")
    rows = []
    for line in out.splitlines():
        mt = re.match(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S.*)$", line)
        if mt and "PROGRAM TOTALS" not in line:
            rows.append((int(mt.group(1).replace(",", "")), mt.group(3)))
    return rows[:n]


def packet_cache(control_port):
    """dnsd's fedgslb_dns_packet_cache_total by result (hit, miss, insert, uncacheable)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % control_port, timeout=30) as f:
        text = f.read().decode()
    out = {}
    for line in text.splitlines():
        mt = re.match(r'^fedgslb_dns_packet_cache_total\{result="(\w+)"\} (\S+)$', line)
        if mt:
            out[mt.group(1)] = int(float(mt.group(2)))
    return out


def start_row(row, a, d):
    """Starts the server of @row under callgrind; returns (process, dump file)."""
    os.makedirs(d, exist_ok=True)
    dump = os.path.join(d, "callgrind.out")
    vg = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + dump]
    if a.cache_sim:
        vg.append("--cache-sim=yes")
        if a.d1:
            vg.append("--D1=" + a.d1)
    listener = None
    if row == "echo":
        argv = vg + [a.echo, "127.0.0.1", str(a.port)]
        docs = None
    elif row == "gdnsd":
        check_port = a.port + 2
        db.gdnsd_files(d, a.port, check_port, a.services)
        listener = db.CheckListener(check_port, a.services)
        argv = vg + [shutil.which("gdnsd") or "/usr/sbin/gdnsd", "-c", d, "start"]
        docs = None
    else:
        docs = db.fedgslb_files(d, a.port, a.port + 1, a.services, hardened=row == "fedgslb-hard",
                                packet_cache=row == "fedgslb-cache")
        argv = vg + [a.fedgslb, "--config", os.path.join(d, "federation.json")]
    p = spawn(argv, os.path.join(d, "server.log"), a.cpu)
    p.listener = listener
    if docs:
        db.put_state(a.port + 1, docs, p, deadline_s=60.0)
    err = db.wait_ready(a.port, p, 120.0) if row != "echo" else None
    if err:
        raise RuntimeError("%s: %s" % (row, err))
    return p, dump


def measure(row, a, tmp, qfile):
    d = os.path.join(tmp, row)
    p, dump = start_row(row, a, d)
    try:
        if row == "echo":
            time.sleep(3)  # valgrind's start-up; the echo answers nothing useful to poll
        callgrind_control(["-i", "on"], p.pid)
        rc, out = run_captured(
            ["dnsperf", "-B", "-d", qfile, "-s", "127.0.0.1", "-p", str(a.port), "-n", str(a.passes),
             "-Q", str(a.rate), "-c", "1", "-q", "200", "-t", "10"],
            a.client_cpu, 600, "dnsperf")
        callgrind_control(["-i", "off"], p.pid)
        callgrind_control(["--dump"], p.pid)
        time.sleep(1)
        if rc != 0:
            raise RuntimeError("dnsperf exited %d: %s" % (rc, out[-400:]))
        res = db.parse_dnsperf(out)
        pcache = packet_cache(a.port + 1) if row.startswith("fedgslb") else None
    finally:
        stop(p)
        if p.listener is not None:
            p.listener.close()
    dumps = sorted(f for f in os.listdir(d) if f.startswith("callgrind.out"))
    # the --dump file holds the instrumented window; the one written at exit the rest (zeroed)
    ir = sum(totals(os.path.join(d, f)) for f in dumps)
    completed = res.get("completed", 0)
    cached = sum(inclusive(os.path.join(d, f), ("dns_pcache_process",)) for f in dumps) > 0
    qp = sum(inclusive(os.path.join(d, f), QUERY_PATH_CACHED if cached else QUERY_PATH)
             for f in dumps)
    r = {
        "responses": completed,
        "lost": res.get("lost"),
        "instructions": ir,
        "instructions_per_answer": ir / completed if completed else None,
        "query_path_per_answer": qp / completed if completed else None,
    }
    if a.cache_sim and completed:
        for level, evs in MISS_EVENTS.items():
            n = sum(totals(os.path.join(d, f), e) for f in dumps for e in evs)
            r[level + "_misses_per_answer"] = n / completed
        rrl = [file_misses(os.path.join(d, f), "dnsd/dns_rrl.c") for f in dumps]
        r["rrl_d1_misses_per_answer"] = sum(x[0] for x in rrl) / completed
        r["rrl_ll_misses_per_answer"] = sum(x[1] for x in rrl) / completed
    if pcache:
        r["packet_cache"] = pcache
    top = []
    for f in dumps:
        top.extend(top_functions(os.path.join(d, f), a.top))
    top.sort(reverse=True)
    r["top"] = [{"ir_per_answer": t[0] / completed if completed else None, "function": t[1]}
                for t in top[: a.top]]
    return r


def main(argv):
    a = parse_args(argv)
    rows = [r.strip() for r in a.rows.split(",") if r.strip()]
    for r in rows:
        if r not in ROWS:
            log("unknown row %r (known: %s)" % (r, ", ".join(ROWS)))
            return 2
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate", "dnsperf", "taskset"):
        if not shutil.which(tool):
            log("error: %s not found" % tool)
            return 2
    tmp = tempfile.mkdtemp(prefix="fedgslb-dns-callgrind-")
    os.chmod(tmp, 0o755)
    results = {}
    try:
        queries = db.make_queries(a.services, a.queries, 1)
        qfile = os.path.join(tmp, "queries.bin")
        db.write_query_file(qfile, queries, db.bench_cookie(a.cookies) if a.cookies else None)
        for row in rows:
            log("== %s under callgrind" % row)
            try:
                results[row] = measure(row, a, tmp, qfile)
            except Exception as e:  # report and go on with the other rows
                results[row] = {"error": str(e)}
                log("   %s FAILED: %s" % (row, e))
    finally:
        stop_all()
        if a.keep_tmp:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%-14s %10s %14s %16s" % ("row", "answers", "Ir/answer", "query path Ir"))
    for row in rows:
        r = results[row]
        if "error" in r:
            print("%-14s FAILED: %s" % (row, r["error"][:70]))
            continue
        print("%-14s %10d %14.0f %16.0f" % (row, r["responses"], r["instructions_per_answer"] or 0,
                                            r["query_path_per_answer"] or 0))
    for row in rows:
        pc = results[row].get("packet_cache")
        if pc and pc.get("hit", 0) + pc.get("miss", 0) > 0:
            print("%-14s packet cache: %d hits, %d misses (hit rate %.1f %%), %d inserts, %d uncacheable"
                  % (row, pc["hit"], pc["miss"], 100.0 * pc["hit"] / (pc["hit"] + pc["miss"]),
                     pc.get("insert", 0), pc.get("uncacheable", 0)))
    if a.cache_sim:
        print("\n%-14s %10s %10s %14s %14s" % ("row", "D1 miss/a", "LL miss/a", "RRL D1 miss/a",
                                               "RRL LL miss/a"))
        for row in rows:
            r = results[row]
            if "d1_misses_per_answer" in r:
                print("%-14s %10.2f %10.3f %14.3f %14.4f" % (
                    row, r["d1_misses_per_answer"], r["ll_misses_per_answer"],
                    r["rrl_d1_misses_per_answer"], r["rrl_ll_misses_per_answer"]))
    for row in rows:
        r = results[row]
        if r.get("top"):
            print("\n%s: top functions (self, Ir per answer)" % row)
            for t in r["top"]:
                print("  %8.0f  %s" % (t["ir_per_answer"] or 0, t["function"][:110]))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"params": vars(a), "rows": results}, f, indent=2, sort_keys=True)
            f.write("\n")
    return 0 if any("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    finally:
        stop_all()
