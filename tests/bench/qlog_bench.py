#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""What the sampled query log (dnsd.query_log) costs fedgslb-dnsd.

The data, configuration, state documents and dnsperf runs of dns_bench.py
(one worker pinned to --server-cpu, dnsperf on --client-cpu, its query mix
with ECS), for several variants of the same server, measured in rounds whose
order rotates:

  base    --base PATH, a binary without the query log (e.g. main's), if given
  off     the binary under test, no dnsd.query_log
  on-N    the same with --log-level debug and dnsd.query_log.sample N, for each
          N of --samples (lines to the server's log file, as a daemon writes
          to its journal)

Per variant: CPU microseconds per response in the saturation runs (all
threads: the main loop's formatting and writing counts), the spread over the
rounds, qps, and for on-N the lines written and records dropped
(/metrics). A difference smaller than the spread is noise. Not a test: it
asserts nothing.

  /usr/bin/python3 tests/bench/qlog_bench.py [--base PATH] [--samples 1000,1]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import urllib.request

import dns_bench as db
from benchproc import CLK_TCK, log, spawn, stop, stop_all


class Variant:
    def __init__(self, name, binary, sample, a, tmp, index):
        self.name, self.binary, self.sample, self.a = name, binary, sample, a
        self.dir = os.path.join(tmp, name)
        self.port = a.port_base + 1 + 2 * index
        self.control_port = self.port + 1
        self.proc = None
        self.sats = []

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        docs = db.fedgslb_files(self.dir, self.port, self.control_port, self.a.services)
        argv = [self.binary, "--config", os.path.join(self.dir, "federation.json")]
        if self.sample:
            path = os.path.join(self.dir, "federation.json")
            with open(path) as f:
                conf = json.load(f)
            conf["dnsd"]["query_log"] = {"sample": self.sample}
            with open(path, "w") as f:
                json.dump(conf, f)
            argv += ["--log-level", "debug"]
        self.docs = docs
        self.proc = spawn(argv, os.path.join(self.dir, "server.log"), self.a.server_cpu)
        db.put_state(self.control_port, docs, self.proc)
        err = db.wait_ready(self.port, self.proc, 20.0)
        if err:
            raise RuntimeError("%s: %s" % (self.name, err))

    def round(self, qfile):
        db.put_state(self.control_port, self.docs, self.proc)
        sat = db.run_saturation(self, qfile, self.a)
        self.sats.append(sat)
        log("   %-8s qps %6.0f  cpu %5.2f us/resp" % (
            self.name, sat.get("qps", 0), sat["cpu_ticks"] / CLK_TCK * 1e6 / max(1, sat["completed"])))

    def query_log_counts(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.control_port,
                                    timeout=3) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            for fam in ("lines", "dropped"):
                if line.startswith("fedgslb_dns_query_log_%s_total " % fam):
                    out[fam] = int(float(line.split()[1]))
        return out

    def summary(self):
        s = db.summarize(self.sats, [], [])
        r = {"cpu_us_per_response": s["cpu_us_per_response"],
             "rounds": s["cpu_us_per_response_rounds"], "qps": s["qps"]}
        if self.sample:
            r.update(self.query_log_counts())
        return r


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fedgslb", default=os.path.join(db.REPO, "build", "fedgslb-dnsd"))
    ap.add_argument("--base", help="a fedgslb-dnsd binary without the query log")
    ap.add_argument("--samples", default="1000,1", help="query_log.sample values (comma list)")
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--queries", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--outstanding", type=int, default=500)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--port-base", type=int, default=25400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(db.REPO, "build", "bench", "qlog.json"))
    a = ap.parse_args(argv)
    for tool in ("dnsperf", "taskset"):
        if not shutil.which(tool):
            log("error: %s not found (tests/bench/dns_bench.sh installs it)" % tool)
            return 2
    tmp = tempfile.mkdtemp(prefix="fedgslb-qlog-bench-")
    os.chmod(tmp, 0o755)
    variants = []
    if a.base:
        variants.append(("base", a.base, 0))
    variants.append(("off", a.fedgslb, 0))
    for n in (int(x) for x in a.samples.split(",") if x.strip()):
        variants.append(("on-%d" % n, a.fedgslb, n))
    results = {}
    try:
        qfile = os.path.join(tmp, "queries.bin")
        db.write_query_file(qfile, db.make_queries(a.services, a.queries, a.seed))
        vs = [Variant(name, b, n, a, tmp, i) for i, (name, b, n) in enumerate(variants)]
        for v in vs:
            v.start()
        for r in range(a.rounds):
            log("round %d/%d" % (r + 1, a.rounds))
            for v in vs[r % len(vs):] + vs[:r % len(vs)]:
                v.round(qfile)
        for v in vs:
            results[v.name] = v.summary()
            stop(v.proc)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n%-8s %12s %22s %9s %12s %12s" % ("variant", "CPU us/resp", "(rounds)", "qps",
                                              "lines", "dropped"))
    for name, r in results.items():
        rounds = r["rounds"]
        print("%-8s %12.3f %22s %9.0f %12s %12s" % (
            name, r["cpu_us_per_response"], "%.3f..%.3f" % (min(rounds), max(rounds)), r["qps"],
            r.get("lines", "-"), r.get("dropped", "-")))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"benchmark": "qlog", "loadavg": db.loadavg(), "results": results}, f, indent=2)
    print("results: %s" % a.out)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    finally:
        stop_all()
