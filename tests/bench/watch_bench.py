#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""watch_bench.py -- fedgslb-health at federation scale (a benchmark, not a test).

20 member clusters (--members) x 2,000 Services (--services) x 3
EndpointSlices each (--slices), served by fake Kubernetes API servers
(tests/integration/health/fakekube.py, TLS + bearer token, one kubeconfig
context per member), watched by build/fedgslb-health. Reports:

  sync       time from starting fedgslb-health to the first GET /v1/state that
             holds every (service, member) entry (40,000 by default)
  memory     VmRSS / VmHWM of fedgslb-health after sync and at the end
  idle CPU   CPU of fedgslb-health per second with nothing changing
  CPU/event  CPU time (utime+stime, /proc/PID/stat) over a phase of --changes
             endpoint changes spread over the members, divided by the watch
             events fedgslb-health applied in it (its /metrics counter)
  latency    change-to-state: the ready count of a Service's EndpointSlices is
             changed in one member, then the new state is awaited; --samples
             samples, p50 / p99 / max. --poll gen (default): the generation
             gauge (fedgslb_health_generation on /metrics, a few KB) every
             2 ms, and GET /v1/state each time it moved, until the state
             shows the new count: the time a document is published. --poll
             get: GET /v1/state every --poll-ms until it shows the new count.
             --poll file: the state file (health.state_file) is watched by
             inode/mtime, read when replaced, and the sample ends when it
             shows the new count; one GET /v1/state then confirms it. The
             file is a warm-start copy written at most once a second, so
             this measures that rule as much as the document. At 40,000
             entries one GET costs fedgslb-health a noticeable slice of CPU
             (a ~10 MB reply), so tight GET polling would measure the
             poller's own load.

The fake servers run in --procs worker processes (members spread round-robin;
Python's GIL makes one process too slow for 20 x 8,000 objects). The run is
bounded (about 2-3 minutes by default, well under one with --quick) and stops
every process it started. Results: a summary on stdout, JSON in --out.
Only loopback addresses are used.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "integration", "health"))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

import fakekube  # noqa: E402
from fedtest import free_port  # noqa: E402

NS = "default"
REGIONS = {
    "us-east-1": {"zones": ["us-east-1a", "us-east-1b"]},
    "eu-west-1": {"zones": ["eu-west-1a"]},
    "ap-northeast-1": {"zones": ["ap-northeast-1a"]},
}
REGION_NAMES = list(REGIONS)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def svc_name(i):
    return "svc%04d" % i


def member_name(i):
    return "m%02d" % i


# ---------------------------------------------------------------- fake servers (workers)

def worker_main(conn, names, workdir, nsvc, nslices, ready, bookmark_s):
    """Hosts the fake API servers of @names; commands arrive on @conn."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    fks = {}
    try:
        t0 = time.monotonic()
        for n in names:
            fk = fakekube.FakeKube(n, workdir)
            fk.bookmark_interval = bookmark_s
            lb = [{"ip": "192.0.2.%d" % (1 + int(n[1:]))}]
            for i in range(nsvc):
                fk.add_service(NS, svc_name(i), lb_ingress=lb,
                               annotations={"fedgslb.io/federate": "true"})
                fk.set_endpoints(NS, svc_name(i), ready=ready, slices=nslices)
            fk.start()
            fks[n] = fk
        kc = os.path.join(workdir, "kubeconfig-%s.yaml" % names[0])
        fakekube.write_kubeconfig(kc, [(n, fk, "token-ca-data") for n, fk in fks.items()])
        conn.send(("ready", kc, time.monotonic() - t0))
        while True:
            cmd = conn.recv()
            if cmd[0] == "bump":
                for n, svc, r in cmd[1]:
                    fks[n].set_endpoints(NS, svc, ready=r, slices=nslices)
                conn.send(("ok", len(cmd[1])))
            elif cmd[0] == "watches":
                conn.send(("ok", {n: fk.open_watches() for n, fk in fks.items()}))
            elif cmd[0] == "stop":
                break
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        for fk in fks.values():
            try:
                fk.stop()
            except Exception:  # teardown goes on
                pass
        try:
            conn.send(("stopped",))
        except (OSError, ValueError):
            pass


class Fakes:
    """The worker processes and which member lives where."""

    def __init__(self, tmp, members, nsvc, nslices, ready, procs, bookmark_s):
        ctx = multiprocessing.get_context("fork")
        self.procs = []
        self.where = {}
        self.kubeconfig = {}
        groups = [members[i::procs] for i in range(procs)]
        for g in groups:
            if not g:
                continue
            a, b = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(b, g, tmp, nsvc, nslices, ready, bookmark_s),
                            daemon=True)
            p.start()
            self.procs.append((p, a, g))
            for m in g:
                self.where[m] = a
        self.setup_s = 0.0
        for p, a, g in self.procs:
            msg = a.recv()
            if msg[0] != "ready":
                raise RuntimeError("fake server worker failed: %r" % (msg,))
            for m in g:
                self.kubeconfig[m] = msg[1]
            self.setup_s = max(self.setup_s, msg[2])

    def bump(self, changes):
        """changes: [(member, service, ready)]; returns when every change is recorded."""
        by = {}
        for c in changes:
            by.setdefault(self.where[c[0]], []).append(c)
        for conn, cs in by.items():
            conn.send(("bump", cs))
        for conn in by:
            conn.recv()

    def open_watches(self):
        out = {}
        for _, a, _ in self.procs:
            a.send(("watches",))
            out.update(a.recv()[1])
        return out

    def stop(self):
        for p, a, _ in self.procs:
            try:
                a.send(("stop",))
            except (OSError, ValueError):
                pass
        for p, a, _ in self.procs:
            try:
                if a.poll(10):
                    a.recv()
            except (EOFError, OSError):
                pass
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(2)


# ---------------------------------------------------------------- fedgslb-health

def write_config(tmp, members, kubeconfigs, ctl_port):
    mem = {}
    for i, m in enumerate(members):
        region = REGION_NAMES[i % len(REGION_NAMES)]
        mem[m] = {"region": region, "zone": REGIONS[region]["zones"][0],
                  "kubeconfig": kubeconfigs[m], "context": m}
    conf = {
        "federation": "myfed",
        "zone": "fed.example.test",
        "regions": REGIONS,
        "members": mem,
        # The rest are found through their fedgslb.io/federate annotation.
        # No data-plane probes: the fake load-balancer addresses are
        # documentation addresses (192.0.2.0/24), never to be contacted; this
        # benchmark is about the Kubernetes side.
        "services": {"%s/%s" % (NS, svc_name(0)): {"port": 80, "check": {"type": "none"}}},
        "health": {
            "vantage": "us-east-1",
            "default_check": {"type": "none"},
            "state_file": os.path.join(tmp, "health-state.json"),
            "control": {"listen": "127.0.0.1:%d" % ctl_port},
        },
    }
    path = os.path.join(tmp, "health.json")
    with open(path, "w") as f:
        json.dump(conf, f, indent=1)
    return path


def http_get(port, path, timeout=30.0):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.status, r.read()


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_mem_kib(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def metric_sum(port, name):
    _, body = http_get(port, "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rebuild_metrics(port):
    """The daemon's own account of its document updates (counters)."""
    return {"rebuilds": metric_sum(port, "fedgslb_health_rebuilds_total"),
            "documents": metric_sum(port, "fedgslb_health_documents_total"),
            "postponed": metric_sum(port, "fedgslb_health_rebuilds_postponed_total"),
            "cpu_s": metric_sum(port, "fedgslb_health_rebuild_cpu_seconds_total"),
            "writes": metric_sum(port, "fedgslb_health_state_writes_total"),
            "whole_writes": metric_sum(port, "fedgslb_health_state_whole_writes_total"),
            "patch_bytes": metric_sum(port, "fedgslb_health_state_patch_bytes_total")}


def entries(doc):
    return sum(len(s.get("members", {})) for s in doc.get("services", {}).values())


def ready_in(raw, svc, member):
    """ready_endpoints of services[default/svc].members[member] found in the raw
    document without parsing all of it (tens of MB); None when absent."""
    m = re.search(rb'"%s/%s"\s*:\s*\{' % (NS.encode(), svc.encode()), raw)
    if m is None:
        return None
    m2 = re.compile(rb'"%s"\s*:\s*\{' % member.encode()).search(raw, m.end())
    if m2 is None:
        return None
    m3 = re.compile(rb'"ready_endpoints"\s*:\s*(\d+)').search(raw, m2.end())
    return int(m3.group(1)) if m3 else None


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


class Health:
    def __init__(self, exe, conf, tmp, env, callgrind=None):
        self.log = os.path.join(tmp, "health.log")
        self.f = open(self.log, "w")
        self.callgrind = callgrind
        wrap = []
        if callgrind:
            wrap = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                    "--callgrind-out-file=" + callgrind]
        self.p = subprocess.Popen(wrap + [exe, "--config", conf, "--log-level", "info"],
                                  stdout=self.f, stderr=subprocess.STDOUT, cwd=tmp, env=env,
                                  start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.f.close()

    def tail(self, n=3000):
        with open(self.log, errors="replace") as f:
            return f.read()[-n:]


# ---------------------------------------------------------------- phases

def phase_sync(h, port, want, timeout):
    t0 = time.monotonic()
    first_doc = None
    last = 0
    while time.monotonic() - t0 < timeout:
        if not h.alive():
            raise RuntimeError("fedgslb-health exited:\n" + h.tail())
        try:
            st, raw = http_get(port, "/v1/state")
        except (OSError, http.client.HTTPException):
            st, raw = 0, b""
        if st == 200 and raw:
            if first_doc is None:
                first_doc = time.monotonic() - t0
            last = raw.count(b'"ready_endpoints":')  # one per entry; no 50 MB json.loads
            if last >= want:
                return {"first_complete_state_s": round(time.monotonic() - t0, 2),
                        "first_document_s": round(first_doc, 2), "entries": last,
                        "document_bytes": len(raw)}
        time.sleep(0.25)
    raise RuntimeError("no complete state after %.0f s (%d of %d entries)\n%s"
                       % (timeout, last, want, h.tail()))


def phase_get_cost(port, n=5):
    ts = []
    for _ in range(n):
        t = time.monotonic()
        _, raw = http_get(port, "/v1/state")
        ts.append(time.monotonic() - t)
    return {"get_state_ms_median": round(statistics.median(ts) * 1000, 1), "bytes": len(raw)}


def phase_idle(h, seconds):
    c0, t0 = proc_cpu_s(h.p.pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = proc_cpu_s(h.p.pid), time.monotonic()
    return {"seconds": round(t1 - t0, 2), "cpu_s": round(c1 - c0, 3),
            "cpu_util": round((c1 - c0) / (t1 - t0), 3)}


def phase_events(h, port, fakes, members, nsvc, ready, changes, rate, idle_util):
    rng = random.Random(1)
    ev0 = metric_sum(port, "fedgslb_health_watch_events_total")
    rb0 = rebuild_metrics(port)
    if h.callgrind:
        callgrind_control(["-i", "on"], h.p.pid)
    tracer = None
    if ARGS.strace:
        tracer = subprocess.Popen(["strace", "-c", "-f", "-o", ARGS.strace, "-p", str(h.p.pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached to every thread
    c0, t0 = proc_cpu_s(h.p.pid), time.monotonic()
    batch_every = 0.05
    per_batch = max(1, int(rate * batch_every))
    sent = 0
    while sent < changes:
        batch = []
        for _ in range(min(per_batch, changes - sent)):
            m = members[sent % len(members)]
            s = svc_name(rng.randrange(nsvc))
            r = ready[(m, s)] % 9 + 1  # 1..9, always a change
            ready[(m, s)] = r
            batch.append((m, s, r))
            sent += 1
        fakes.bump(batch)
        next_t = t0 + (sent / per_batch) * batch_every
        delay = next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    t_sent = time.monotonic()
    # Every change is one MODIFIED event per slice of the service.
    want = ev0 + changes * ARGS.slices
    deadline = time.monotonic() + 60
    ev = ev0
    while time.monotonic() < deadline:
        ev = metric_sum(port, "fedgslb_health_watch_events_total")
        if ev >= want:
            break
        time.sleep(0.1)
    t_applied = time.monotonic()
    time.sleep(0.5)  # the debounced rebuild of the last change
    c1, t1 = proc_cpu_s(h.p.pid), time.monotonic()
    events = ev - ev0
    if tracer is not None:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
    instr = None
    if h.callgrind:
        callgrind_control(["-i", "off"], h.p.pid)
        callgrind_control(["--dump"], h.p.pid)
        instr = callgrind_totals(h.callgrind, events)
    rb = {k: v - rb0[k] for k, v in rebuild_metrics(port).items()}
    cpu = c1 - c0
    net = max(0.0, cpu - idle_util * (t1 - t0))
    return {"changes": changes, "events": int(events), "expected_events": int(want - ev0),
            "documents": int(rb["documents"]), "rebuilds": int(rb["rebuilds"]),
            "rebuilds_postponed": int(rb["postponed"]),
            "state_writes": int(rb["writes"]), "state_whole_writes": int(rb["whole_writes"]),
            "state_patch_bytes": int(rb["patch_bytes"]),
            "rebuild_cpu_s": round(rb["cpu_s"], 3),
            "rebuild_cpu_ms_per_document": (round(rb["cpu_s"] / rb["documents"] * 1000, 2)
                                            if rb["documents"] else None),
            "cpu_us_per_event_outside_rebuilds": (round((cpu - rb["cpu_s"]) / events * 1e6, 1)
                                                  if events else None),
            "offered_rate_per_s": rate, "send_s": round(t_sent - t0, 2),
            "all_applied_s": round(t_applied - t0, 2), "phase_s": round(t1 - t0, 2),
            "cpu_s": round(cpu, 3), "cpu_util": round(cpu / (t1 - t0), 3),
            "cpu_us_per_event": round(cpu / events * 1e6, 1) if events else None,
            "cpu_us_per_event_net_of_idle": round(net / events * 1e6, 1) if events else None,
            "callgrind": instr, "syscalls_per_event": strace_per_event(ARGS.strace, events)}


def strace_per_event(path, events):
    """strace -c's total calls over the change phase, per event."""
    if not path or not events:
        return None
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) >= 4 and w[-1] == "total":
                return round(int(w[3]) / events, 2)
    return None


def callgrind_control(args, pid, timeout=120):
    subprocess.run(["callgrind_control"] + args + [str(pid)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=timeout, check=True)


def callgrind_totals(base, events):
    """Instructions of the change phase: the --dump file (base.1) holds it."""
    d = os.path.dirname(base)
    dumps = sorted(f for f in os.listdir(d) if f.startswith(os.path.basename(base) + "."))
    path = os.path.join(d, dumps[-1])
    ir = None
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                ir = int(line.split()[1])
    return {"file": path, "instructions": ir,
            "instructions_per_event": round(ir / events) if ir and events else None}


def file_id(path):
    try:
        st = os.stat(path)
        return (st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        return None


def wait_file(path, svc, member, want, t0, timeout):
    """Polls the state file's identity every 2 ms; reads it when replaced."""
    seen = None
    n = 0
    while time.monotonic() - t0 < timeout:
        fid = file_id(path)
        if fid is not None and fid != seen:
            seen = fid
            n += 1
            try:
                with open(path, "rb") as f:
                    raw = f.read()
            except OSError:
                raw = b""
            if ready_in(raw, svc, member) == want:
                return time.monotonic(), n
        time.sleep(0.002)
    return None, n


def wait_gen(port, svc, member, want, t0, timeout):
    """Polls the generation gauge every 2 ms; reads the state when it moved."""
    seen = None
    n = 0
    while time.monotonic() - t0 < timeout:
        gen = metric_sum(port, "fedgslb_health_generation")
        if gen != seen:
            seen = gen
            n += 1
            if ready_in(http_get(port, "/v1/state")[1], svc, member) == want:
                return time.monotonic(), n
        time.sleep(0.002)
    return None, n


def wait_get(port, svc, member, want, t0, timeout, poll_s):
    n = 0
    while time.monotonic() - t0 < timeout:
        _, raw = http_get(port, "/v1/state")
        n += 1
        if ready_in(raw, svc, member) == want:
            return time.monotonic(), n
        time.sleep(poll_s)
    return None, n


def phase_latency(port, fakes, members, nsvc, ready, samples, mode, state_file, poll_ms,
                  timeout=15.0):
    rng = random.Random(2)
    lat, polls, misses, unconfirmed = [], [], 0, 0
    for _ in range(samples):
        m = rng.choice(members)
        s = svc_name(rng.randrange(nsvc))
        r = ready[(m, s)] % 9 + 1
        ready[(m, s)] = r
        t0 = time.monotonic()
        fakes.bump([(m, s, r)])
        if mode == "file":
            t1, n = wait_file(state_file, s, m, r, t0, timeout)
        elif mode == "gen":
            t1, n = wait_gen(port, s, m, r, t0, timeout)
        else:
            t1, n = wait_get(port, s, m, r, t0, timeout, poll_ms / 1000.0)
        if t1 is None:
            misses += 1
        else:
            lat.append(t1 - t0)
            polls.append(n)
            if mode == "file" and ready_in(http_get(port, "/v1/state")[1], s, m) != r:
                unconfirmed += 1
        time.sleep(rng.uniform(0.05, 0.25))  # decorrelate from the 1 s tick
    ms = [x * 1000 for x in lat]
    return {"mode": mode, "samples": len(ms), "timeouts": misses,
            "get_disagreed_with_file": unconfirmed,
            "p50_ms": round(pct(ms, 50), 1) if ms else None,
            "p99_ms": round(pct(ms, 99), 1) if ms else None,
            "max_ms": round(max(ms), 1) if ms else None,
            "min_ms": round(min(ms), 1) if ms else None,
            "samples_ms": [round(x, 1) for x in ms],
            "polls_per_sample_median": statistics.median(polls) if polls else None}


# ---------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="5 members x 500 services, fewer changes and samples")
    ap.add_argument("--large", action="store_true",
                    help="20 members x 10,000 services (initial sync, memory and CPU per "
                    "event at that scale; the fake servers take minutes to populate)")
    ap.add_argument("--members", type=int)
    ap.add_argument("--services", type=int)
    ap.add_argument("--slices", type=int, default=3)
    ap.add_argument("--ready", type=int, default=3, help="initial ready endpoints per service")
    ap.add_argument("--procs", type=int, default=2, help="fake server worker processes")
    ap.add_argument("--changes", type=int, help="endpoint changes in the CPU phase [2000]")
    ap.add_argument("--rate", type=float, default=200.0, help="changes per second offered")
    ap.add_argument("--samples", type=int, help="latency samples [50]")
    ap.add_argument("--poll", choices=("gen", "file", "get"), default="gen",
                    help="how the latency phase sees the new state (see above)")
    ap.add_argument("--poll-ms", type=float, default=20.0,
                    help="pause between GET /v1/state polls with --poll get")
    ap.add_argument("--idle", type=float, default=5.0, help="idle phase seconds")
    ap.add_argument("--sync-timeout", type=float, default=120.0)
    ap.add_argument("--bookmark-s", type=float, default=10.0,
                    help="seconds between watch bookmarks of the fake servers")
    ap.add_argument("--binary", default=os.path.join(SRC, "build", "fedgslb-health"))
    ap.add_argument("--out", default=os.path.join(SRC, "build", "bench", "watch.json"))
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--callgrind", metavar="FILE",
                    help="run fedgslb-health under callgrind (--instr-atstart=no) and count "
                    "its instructions over the change phase only (the dump is FILE.1; "
                    "use small --services/--changes and a low --rate: it runs ~50x slower)")
    ap.add_argument("--strace", metavar="FILE",
                    help="count fedgslb-health's system calls over the change phase "
                    "(strace -c -f attached; the table goes to FILE; strace slows it down)")
    a = ap.parse_args(argv)
    a.binary = os.path.abspath(a.binary)
    q = a.quick
    a.members = a.members or (5 if q else 20)
    a.services = a.services or (500 if q else 10000 if a.large else 2000)
    if a.large:
        a.sync_timeout = max(a.sync_timeout, 300.0)
    a.changes = a.changes or (300 if q else 2000)
    a.samples = a.samples or (20 if q else 50)
    return a


ARGS = None


def main(argv):
    global ARGS
    ARGS = a = parse_args(argv)
    if not os.access(a.binary, os.X_OK):
        print("no fedgslb-health at %s (build it: scripts/build.sh build)" % a.binary,
              file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="watch-bench-")
    members = [member_name(i) for i in range(a.members)]
    want = a.members * a.services
    res = {"params": {k: getattr(a, k) for k in ("members", "services", "slices", "ready",
                                                 "procs", "changes", "rate", "samples",
                                                 "bookmark_s", "poll", "poll_ms")},
           "binary": a.binary, "loadavg_before": os.getloadavg()}
    fakes = h = None
    t_start = time.monotonic()
    try:
        print("fake API servers: %d members x %d services x %d slices in %d processes ..."
              % (a.members, a.services, a.slices, a.procs), flush=True)
        fakes = Fakes(tmp, members, a.services, a.slices, a.ready, a.procs, a.bookmark_s)
        res["fake_setup_s"] = round(fakes.setup_s, 1)
        print("  populated and listening in %.1f s" % fakes.setup_s, flush=True)
        port = free_port(ipv6=False)
        conf = write_config(tmp, members, fakes.kubeconfig, port)
        env = dict(os.environ)
        h = Health(a.binary, conf, tmp, env,
                   os.path.abspath(a.callgrind) if a.callgrind else None)
        print("fedgslb-health pid %d" % h.p.pid, flush=True)
        res["sync"] = phase_sync(h, port, want, a.sync_timeout)
        res["sync"]["health_cpu_s"] = round(proc_cpu_s(h.p.pid), 2)
        res["memory_after_sync_kib"] = proc_mem_kib(h.p.pid)
        print("first complete state: %.2f s (%d entries, %.1f MB document; fedgslb-health "
              "used %.1f s CPU); RSS %d MiB"
              % (res["sync"]["first_complete_state_s"], res["sync"]["entries"],
                 res["sync"]["document_bytes"] / 1e6, res["sync"]["health_cpu_s"],
                 res["memory_after_sync_kib"]["VmRSS"] // 1024), flush=True)
        time.sleep(1.5)  # let the post-sync rebuilds settle
        res["get_state"] = phase_get_cost(port)
        res["idle"] = phase_idle(h, a.idle)
        print("idle: %.1f %% CPU; GET /v1/state %.0f ms"
              % (res["idle"]["cpu_util"] * 100, res["get_state"]["get_state_ms_median"]),
              flush=True)
        ready = {(m, svc_name(i)): a.ready for m in members for i in range(a.services)}
        res["events"] = phase_events(h, port, fakes, members, a.services, ready, a.changes,
                                     a.rate, res["idle"]["cpu_util"])
        e = res["events"]
        print("events: %d changes -> %d events in %.1f s; %.1f us CPU/event (%.1f net of idle)"
              % (e["changes"], e["events"], e["phase_s"], e["cpu_us_per_event"] or -1,
                 e["cpu_us_per_event_net_of_idle"] or -1), flush=True)
        print("  %d documents (%d postponed by the CPU budget), %.2f ms CPU each; "
              "%.1f us/event outside document updates; state file %d writes, %d whole, "
              "%.0f KB of slots per patch"
              % (e["documents"], e["rebuilds_postponed"], e["rebuild_cpu_ms_per_document"] or -1,
                 e["cpu_us_per_event_outside_rebuilds"] or -1, e["state_writes"],
                 e["state_whole_writes"],
                 e["state_patch_bytes"] / 1024.0
                 / max(1, e["state_writes"] - e["state_whole_writes"])), flush=True)
        if e["syscalls_per_event"] is not None:
            print("  strace: %.2f system calls per event (%s)" % (e["syscalls_per_event"],
                                                                 a.strace), flush=True)
        if e["callgrind"]:
            print("  callgrind: %d instructions, %d per event (%s)"
                  % (e["callgrind"]["instructions"], e["callgrind"]["instructions_per_event"],
                     e["callgrind"]["file"]), flush=True)
        res["latency"] = phase_latency(port, fakes, members, a.services, ready, a.samples,
                                       a.poll, os.path.join(tmp, "health-state.json"),
                                       a.poll_ms)
        lt = res["latency"]
        print("change-to-state latency (%s): p50 %s ms, p99 %s ms, max %s ms (%d samples, "
              "%d timeouts)" % (lt["mode"], lt["p50_ms"], lt["p99_ms"], lt["max_ms"],
                                lt["samples"], lt["timeouts"]), flush=True)
        res["memory_end_kib"] = proc_mem_kib(h.p.pid)
        res["watch_errors"] = metric_sum(port, "fedgslb_health_watch_errors_total")
        res["relists"] = metric_sum(port, "fedgslb_health_watch_relists_total")
        res["open_watches"] = sum(fakes.open_watches().values())
        m = res["memory_end_kib"]
        print("memory at end: VmRSS %.1f MiB, VmHWM %.1f MiB; watch errors %d, relists %d"
              % (m["VmRSS"] / 1024, m["VmHWM"] / 1024, res["watch_errors"], res["relists"]))
    finally:
        if h is not None:
            h.stop()
            if a.keep_tmp:
                print("log: %s" % h.log)
        if fakes is not None:
            fakes.stop()
        if not a.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    res["total_s"] = round(time.monotonic() - t_start, 1)
    res["loadavg_after"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    print("total %.0f s; JSON in %s" % (res["total_s"], a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
