# SPDX-License-Identifier: Apache-2.0
"""Process handling shared by the benchmark drivers (dns_bench.py,
http_bench.py): every program runs pinned to a CPU in its own process group,
is listed in $FEDGSLB_BENCH_PIDFILE (the shell wrapper's EXIT trap kills what
a crashed driver left), and is measured from /proc (CPU ticks and RSS of its
whole process tree)."""

import os
import signal
import subprocess
import sys

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

# Processes (Popen) we started and have not reaped yet; killed on any exit.
_CHILDREN = []
_PIDFILE = os.environ.get("FEDGSLB_BENCH_PIDFILE")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def note_pids():
    """Keeps the wrapper's list of our live process groups current."""
    if _PIDFILE:
        with open(_PIDFILE, "w") as f:
            f.write("".join("%d\n" % p.pid for p in _CHILDREN))


def _track(p):
    _CHILDREN.append(p)
    note_pids()
    return p


def _untrack(p):
    if p in _CHILDREN:
        _CHILDREN.remove(p)
        note_pids()


def spawn(argv, logpath, cpu):
    """Starts @argv pinned to @cpu in its own process group, output to @logpath."""
    with open(logpath, "ab") as lf:
        p = subprocess.Popen(["taskset", "-c", str(cpu)] + argv, stdin=subprocess.DEVNULL,
                             stdout=lf, stderr=subprocess.STDOUT, start_new_session=True)
    return _track(p)


def run_captured(argv, cpu, timeout, what):
    """Runs a load generator pinned to @cpu; returns (exit code, output text).
    RuntimeError when it does not finish within @timeout seconds."""
    p = _track(subprocess.Popen(["taskset", "-c", str(cpu)] + argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True))
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p, grace=1.0)
        raise RuntimeError("%s did not finish within %d s" % (what, timeout))
    _untrack(p)
    return p.returncode, out.decode("utf-8", "replace")


def stop(p, grace=5.0):
    """SIGTERM to the process group of @p, SIGKILL after @grace seconds."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # children of the leader (NSD's server and xfrd, nginx's worker) may outlive it
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(2)
    except subprocess.TimeoutExpired:
        pass
    _untrack(p)


def stop_all():
    for p in list(_CHILDREN):
        stop(p, grace=2.0)


def proc_table():
    """pid -> (ppid, utime+stime ticks, rss pages) for every process."""
    table = {}
    for ent in os.listdir("/proc"):
        if not ent.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % ent) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(")") + 2:].split()
        # rest[0] is field 3 (state): ppid = field 4, utime = 14, stime = 15, rss = 24
        table[int(ent)] = (int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[21]))
    return table


def tree(root, table):
    kids = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            out.append(pid)
            todo.extend(kids.get(pid, []))
    return out


def tree_cpu(root):
    """pid -> CPU ticks (user+sys, all threads) of @root and its descendants
    (taskset execs in place, so @root is the server itself)."""
    t = proc_table()
    return {pid: t[pid][1] for pid in tree(root, t)}


def proc_cpu_ns(pid):
    """CPU time of every thread of @pid in nanoseconds, from
    /proc/PID/task/*/schedstat (the scheduler's own accounting: exact where
    /proc/PID/stat counts 10 ms ticks). Threads that exited are not counted:
    measure daemons whose threads live for the whole run."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def tree_rss_kib(root):
    t = proc_table()
    return sum(t[pid][2] for pid in tree(root, t)) * PAGE_KIB


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)
