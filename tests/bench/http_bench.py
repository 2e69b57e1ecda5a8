#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""HTTP proxy benchmark: fedgslb-proxy side by side with HAProxy and nginx.

Normally started through tests/bench/http_bench.sh, which installs the peers
first. See tests/bench/README.md for what is measured and how to read it. This
is a benchmark, not a test: it never fails on a figure.

One static backend (nginx serving a 1 KiB file, keep-alive) runs on the
client core together with wrk; each proxy runs alone on the proxy core, one
process / one thread, with keep-alive to the backend. Targets, each measured
with the others idle (in --rounds rounds, in a rotating order):

  direct   wrk -> backend (the ceiling: no proxy hop)
  haproxy  wrk -> HAProxy -> backend
  nginx    wrk -> nginx (proxy_pass, upstream keepalive) -> backend
  fedgslb  wrk -> fedgslb-proxy -> backend (static "backends" in its config)

Each proxy also terminates TLS (TLS 1.3, one ECDSA P-256 certificate for
all) on a second port; --modes picks what is measured (default all four):

  plain       wrk over HTTP/1.1 keep-alive
  tls         wrk over TLS, keep-alive (one handshake per connection)
  tls-new     wrk over TLS with "Connection: close": a new connection and
              handshake per request; wrk keeps its SSL object across
              reconnects and offers the last session, so each one resumes
              when the server handed out a usable ticket
  tls-resume  openssl s_time -reuse: one connection at a time, each a new
              connection resuming the first one's session (a ticket)
  tls-full    openssl s_time -new: one connection at a time, each a full
              handshake (ECDSA signature, X25519)

Per run: wrk -t1 -c64 -d10s --latency (3 s with --quick) after a 1 s warm-up
(s_time for tls-resume); requests/s and p50/p99 from wrk; the proxy's CPU
time (utime+stime of its process tree from /proc/<pid>/stat, read before and
after) divided by the requests -> CPU microseconds per request.

Every process started is stopped at the end (SIGTERM to its process group,
SIGKILL after a grace period), however the driver ends.
"""

import argparse
import datetime
import json
import os
import platform
import pwd
import grp
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchproc import (CLK_TCK, fmt, loadavg, log, run_captured, spawn, stop, stop_all,  # noqa: E402
                       tree_cpu, tree_rss_kib)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

TARGET_ORDER = ["direct", "haproxy", "nginx", "fedgslb"]
LABELS = {
    "direct": "direct (no proxy)",
    "haproxy": "HAProxy",
    "nginx": "nginx",
    "fedgslb": "fedgslb-proxy",
}
BODY_BYTES = 1024
MODE_ORDER = ["plain", "tls", "tls-new", "tls-resume", "tls-full"]
MODE_TITLES = {
    "plain": "HTTP keep-alive",
    "tls": "TLS 1.3 keep-alive",
    "tls-new": "TLS 1.3, a new connection per request, wrk offering its last session",
    "tls-resume": "TLS 1.3, a new connection per request resuming a session (s_time -reuse, serial)",
    "tls-full": "TLS 1.3, a new connection and full handshake per request (s_time -new, serial)",
}
TLS_NAME = "bench.example.test"




# ---------------------------------------------------------------- processes


def cpu_delta_ticks(before, after):
    # a process that exists only in @after started during the run: all its time counts
    return sum(after[p] - before.get(p, 0) for p in after)


# ---------------------------------------------------------------- configs


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def run_user():
    """The user and group nginx workers run as: ourselves (so they can read
    the temporary directory even when we are root)."""
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def nginx_common(d, name):
    """Directives every nginx instance needs to stay inside @d."""
    t = os.path.join(d, name + "-tmp")
    os.makedirs(t, exist_ok=True)
    user, group = run_user()
    return (
        "user %s %s;\nworker_processes 1;\ndaemon off;\nmaster_process on;\n"
        "pid %s/%s.pid;\nerror_log %s/%s.err warn;\nworker_rlimit_nofile 8192;\n"
        "events { worker_connections 4096; multi_accept on; }\n" % (user, group, d, name, d, name),
        "client_body_temp_path %s/body; proxy_temp_path %s/proxy; fastcgi_temp_path %s/fcgi;\n"
        "    uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;\n" % (t, t, t, t, t),
    )


def backend_conf(d, port):
    """nginx as the static backend: a 1 KiB file, keep-alive without a limit."""
    www = os.path.join(d, "www")
    os.makedirs(www, exist_ok=True)
    write(os.path.join(www, "index.html"), ("x" * 63 + "\n") * (BODY_BYTES // 64))
    main, temps = nginx_common(d, "backend")
    return write(
        os.path.join(d, "backend.conf"),
        main
        + "http {\n    %s    access_log off;\n    default_type text/html;\n"
        "    keepalive_requests 100000000;\n    keepalive_timeout 300s;\n"
        "    server {\n        listen 127.0.0.1:%d backlog=4096;\n        root %s;\n"
        "        location = /healthz { return 200 \"ok\\n\"; }\n"
        "    }\n}\n" % (temps, port, www),
    )


def make_cert(d):
    """One self-signed ECDSA P-256 certificate for every proxy: (cert, key, both in one PEM)."""
    crt, key, pem = (os.path.join(d, "bench." + x) for x in ("crt", "key", "pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=" + TLS_NAME, "-addext",
                    "subjectAltName=DNS:" + TLS_NAME, "-keyout", key, "-out", crt],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(pem, "w") as f:
        f.write(open(crt).read() + open(key).read())
    os.chmod(key, 0o644)  # nginx workers read it as our user; a throwaway key
    return {"cert": crt, "key": key, "pem": pem}


def nginx_proxy_conf(d, port, tls_port, backend_port, cert):
    """nginx as the proxy; the TLS listener only with a @cert."""
    main, temps = nginx_common(d, "nginx-proxy")
    tls = ("        listen 127.0.0.1:%d ssl backlog=4096;\n"
           "        ssl_certificate %s;\n        ssl_certificate_key %s;\n"
           % (tls_port, cert["cert"], cert["key"])) if cert else ""
    return write(
        os.path.join(d, "nginx-proxy.conf"),
        main + "http {\n    %s    access_log off;\n"
        "    keepalive_requests 100000000;\n    keepalive_timeout 300s;\n"
        "    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_session_cache shared:SSL:10m;\n"
        "    upstream be {\n        server 127.0.0.1:%d;\n        keepalive 128;\n"
        "        keepalive_requests 100000000;\n        keepalive_timeout 300s;\n    }\n"
        "    server {\n        listen 127.0.0.1:%d backlog=4096;\n%s        location / {\n"
        "            proxy_pass http://be;\n            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "            proxy_set_header X-Forwarded-Proto $scheme;\n"
        "        }\n    }\n}\n" % (temps, backend_port, port, tls),
    )


def haproxy_conf(d, port, tls_port, backend_port, cert):
    """HAProxy as the proxy; the TLS frontend only with a @cert."""
    tls = ("frontend fe_tls\n    bind 127.0.0.1:%d ssl crt %s alpn http/1.1\n"
           "    http-request set-header X-Forwarded-Proto https\n    default_backend be\n\n"
           % (tls_port, cert["pem"])) if cert else ""
    return write(
        os.path.join(d, "haproxy.cfg"),
        "global\n    nbthread 1\n    maxconn 4096\n    pidfile %s/haproxy.pid\n\n"
        "defaults\n    mode http\n    option http-keep-alive\n    option forwardfor\n"
        "    http-reuse always\n    timeout connect 3s\n    timeout client 60s\n"
        "    timeout server 60s\n    timeout http-keep-alive 60s\n\n"
        "frontend fe\n    bind 127.0.0.1:%d\n    http-request set-header X-Forwarded-Proto http\n"
        "    default_backend be\n\n"
        "%sbackend be\n    server s1 127.0.0.1:%d\n" % (d, port, tls, backend_port),
    )


def fedgslb_conf(d, port, tls_port, backend_port, cert):
    """The project's JSON config, reduced to one member in lb mode proxy, one
    service and a listener with a static backend (and an HTTPS one with a
    @cert); no control API, no state file."""
    listen = {"member": "m1", "service": "default/web", "backends": ["127.0.0.1:%d" % backend_port]}
    conf = {
        "federation": "bench",
        "allow_addresses": ["127.0.0.0/8"],
        "zone": "bench.example.test",
        "regions": {"r1": {"zones": ["r1a"]}},
        "members": {"m1": {"region": "r1", "zone": "r1a", "lb": {"mode": "proxy", "address": "127.0.0.1"}}},
        "services": {
            "default/web": {
                "port": backend_port,
                "check": {"type": "tcp", "interval_ms": 10000, "timeout_ms": 1000, "rise": 1, "fall": 3},
            }
        },
        "proxy": {
            "listen": [dict(listen, address="127.0.0.1:%d" % port)] + ([
                dict(listen, address="127.0.0.1:%d" % tls_port,
                     tls={"certificates": [{"cert": cert["cert"], "key": cert["key"]}]})] if cert else []),
            # 2 x 4096 + the idle pool fit the descriptor check under a hard
            # RLIMIT_NOFILE of 10000+; far above the benchmark's concurrency
            "max_connections": 4096,
        },
    }
    return write(os.path.join(d, "fedgslb-proxy.json"), json.dumps(conf, indent=2) + "\n")


# ---------------------------------------------------------------- targets


def wait_http(port, proc, deadline_s, logpath, tls=False):
    """Waits until GET / on @port (over TLS when @tls) answers 200 with the
    1 KiB body; raises with the reason (and the end of the server's log)
    otherwise."""
    deadline = time.monotonic() + deadline_s
    last = "no answer"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    url = "%s://127.0.0.1:%d/" % ("https" if tls else "http", port)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("exited with status %d%s" % (proc.returncode, log_tail(logpath)))
        try:
            with urllib.request.urlopen(url, timeout=1, context=ctx if tls else None) as r:
                body = r.read()
                if r.status == 200 and len(body) == BODY_BYTES:
                    return
                last = "status %d, %d body bytes" % (r.status, len(body))
        except Exception as e:  # connection refused while starting, HTTP errors
            last = str(e)
        time.sleep(0.1)
    raise RuntimeError("not serving %s after %.0f s (%s)%s" % (url, deadline_s, last, log_tail(logpath)))


def log_tail(path, lines=3):
    try:
        with open(path, errors="replace") as f:
            tail = [l.strip() for l in f.read().splitlines() if l.strip()][-lines:]
    except OSError:
        return ""
    return (": " + " | ".join(tail)) if tail else ""


class Target:
    def __init__(self, name, port, tls_port, argv, logpath, cpu):
        self.name = name
        self.port = port
        self.tls_port = tls_port  # None: no TLS listener
        self.argv = argv
        self.logpath = logpath
        self.cpu = cpu
        self.proc = None

    def start(self, deadline_s=10.0):
        if self.argv is None:
            return
        self.proc = spawn(self.argv, self.logpath, self.cpu)
        wait_http(self.port, self.proc, deadline_s, self.logpath)
        if self.tls_port is not None:
            wait_http(self.tls_port, self.proc, deadline_s, self.logpath, tls=True)


def port_is_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---------------------------------------------------------------- wrk

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def parse_time_ms(s):
    m = re.match(r"^([\d.]+)(us|ms|s|m|h)$", s)
    if not m:
        return None
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(out):
    r = {"requests": None, "duration_s": None, "rps": None, "p50_ms": None, "p75_ms": None,
         "p90_ms": None, "p99_ms": None, "non2xx": 0, "socket_errors": 0}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if m:
        r["requests"] = int(m.group(1))
        r["duration_s"] = parse_time_ms(m.group(2) + m.group(3)) / 1000.0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, out, re.M)
        if m:
            r["p%s_ms" % pct] = parse_time_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["socket_errors"] = sum(int(x) for x in m.groups())
    return r


def run_wrk(t, mode, a, duration_s):
    if mode == "plain":
        url = "http://127.0.0.1:%d/" % t.port
    else:
        url = "https://127.0.0.1:%d/" % t.tls_port
    argv = ["wrk", "-t", str(a.threads), "-c", str(a.connections), "-d", "%ds" % duration_s, "--latency"]
    if mode == "tls-new":
        argv += ["-H", "Connection: close"]
    code, text = run_captured(argv + [url], a.client_cpu, duration_s + 30, "wrk")
    if code != 0:
        raise RuntimeError("wrk exited with %d: %s" % (code, text.strip()[-200:]))
    return text


def parse_s_time(out, wall_s):
    """openssl s_time -reuse: connections made, and how many resumed ('r'
    per resumed connection, '*' per full handshake)."""
    r = {"requests": None, "duration_s": wall_s, "rps": None, "p50_ms": None, "p75_ms": None,
         "p90_ms": None, "p99_ms": None, "non2xx": 0, "socket_errors": 0}
    m = re.search(r"(\d+) connections in \d+ real seconds", out)
    if m:
        r["requests"] = int(m.group(1))
        r["rps"] = r["requests"] / wall_s if wall_s else None
    marks = "".join(ln for ln in out.splitlines() if re.fullmatch(r"[r*]+", ln.strip() or "-"))
    r["resumed"], r["full_handshakes"] = marks.count("r"), marks.count("*")
    if re.search(r"(?i)error|unable", out):
        r["socket_errors"] = 1
    return r


def run_load(t, mode, a, duration_s):
    """One load run against @t in @mode; returns the parsed figures and the raw output."""
    if mode not in ("tls-resume", "tls-full"):
        out = run_wrk(t, mode, a, duration_s)
        return parse_wrk(out), out
    argv = ["openssl", "s_time", "-connect", "127.0.0.1:%d" % t.tls_port, "-www", "/",
            "-reuse" if mode == "tls-resume" else "-new", "-time", str(duration_s)]
    t0 = time.monotonic()
    code, out = run_captured(argv, a.client_cpu, duration_s + 30, "openssl s_time")
    wall = time.monotonic() - t0
    if code != 0:
        raise RuntimeError("openssl s_time exited with %d: %s" % (code, out.strip()[-200:]))
    return parse_s_time(out, wall), out


def measure(t, mode, backend, a):
    """One warm-up and one measured load run against @t in @mode."""
    run_load(t, mode, a, 1)
    pid = t.proc.pid if t.proc is not None else None
    b_before = tree_cpu(backend.proc.pid)
    before = tree_cpu(pid) if pid else {}
    r, out = run_load(t, mode, a, a.duration)
    after = tree_cpu(pid) if pid else {}
    b_after = tree_cpu(backend.proc.pid)
    if not r["requests"] or r["rps"] is None:
        raise RuntimeError("cannot parse the load generator's output: %s" % out.strip()[-200:])
    r["proxy_cpu_ticks"] = cpu_delta_ticks(before, after) if pid else None
    r["backend_cpu_ticks"] = cpu_delta_ticks(b_before, b_after)
    r["rss_kib"] = tree_rss_kib(pid) if pid else None
    r["wrk_output"] = out[-4000:]
    return r


def summarize(runs):
    """Totals over the rounds: req/s = requests / time, CPU per request =
    CPU / requests; latencies are the median of the rounds' figures."""
    req = sum(r["requests"] for r in runs)
    dur = sum(r["duration_s"] for r in runs)

    def med(key):
        vals = sorted(r[key] for r in runs if r[key] is not None)
        return vals[len(vals) // 2] if vals else None

    s = {
        "requests": req,
        "duration_s": dur,
        "rps": req / dur if dur else None,
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "non2xx": sum(r["non2xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
        "resumed": sum(r.get("resumed", 0) for r in runs) if "resumed" in runs[0] else None,
        "backend_cpu_us_per_request": 1e6 * sum(r["backend_cpu_ticks"] for r in runs) / CLK_TCK / req,
        "rounds": [{k: v for k, v in r.items() if k != "wrk_output"} for r in runs],
        "wrk_output_last": runs[-1]["wrk_output"],
    }
    if runs[0]["proxy_cpu_ticks"] is not None:
        cpu_s = sum(r["proxy_cpu_ticks"] for r in runs) / CLK_TCK
        s["proxy_cpu_s"] = cpu_s
        s["cpu_us_per_request"] = 1e6 * cpu_s / req
        s["cpu_us_per_request_rounds"] = [1e6 * r["proxy_cpu_ticks"] / CLK_TCK / r["requests"] for r in runs]
        s["proxy_cpu_util"] = cpu_s / dur if dur else None
        s["rss_mib"] = runs[-1]["rss_kib"] / 1024.0
    else:
        s["proxy_cpu_s"] = s["cpu_us_per_request"] = s["proxy_cpu_util"] = s["rss_mib"] = None
        s["cpu_us_per_request_rounds"] = None
    return s


# ---------------------------------------------------------------- report


def spread(vals):
    """min-max of the rounds' figures: differences smaller than this are noise."""
    if not vals or len(vals) < 2:
        return "-"
    return "%.1f-%.1f" % (min(vals), max(vals))


def report(results, order):
    cols = ["target", "req/s", "p50 ms", "p99 ms", "CPU us/req", "(rounds)", "proxy CPU", "RSS MiB", "errors"]
    rows = []
    for n in order:
        r = results[n]
        if "error" in r:
            rows.append([LABELS[n], None, r["error"]])
            continue
        rows.append([
            LABELS[n],
            fmt(r["rps"], ".0f"),
            fmt(r["p50_ms"], ".3f"),
            fmt(r["p99_ms"], ".3f"),
            fmt(r["cpu_us_per_request"], ".2f"),
            spread(r["cpu_us_per_request_rounds"]),
            fmt(100 * r["proxy_cpu_util"] if r["proxy_cpu_util"] is not None else None, ".0f")
            + ("%" if r["proxy_cpu_util"] is not None else ""),
            fmt(r["rss_mib"], ".1f"),
            str(r["non2xx"] + r["socket_errors"]),
        ])
    ok = [row for row in rows if row[1] is not None]
    widths = [max([len(c)] + [len(row[i]) for row in ok]) for i, c in enumerate(cols)]
    widths[0] = max([widths[0]] + [len(row[0]) for row in rows])
    line = "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cols))
    print(line)
    print("-" * len(line))
    for row in rows:
        if row[1] is None:
            print("%s  not available (%s)" % (row[0].ljust(widths[0]), row[2]))
        else:
            print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))


def ratios(results):
    fed = results.get("fedgslb")
    out = {}
    if not fed or "error" in fed:
        return out
    for n in ("haproxy", "nginx"):
        r = results.get(n)
        if not r or "error" in r:
            continue
        rr = {}
        for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request", "rss_mib"):
            if fed.get(k) is not None and r.get(k):
                rr[k] = fed[k] / r[k]
        out[n] = rr
    return out


def print_ratios(rat, results):
    fed = results.get("fedgslb")
    if not fed or "error" in fed:
        print("\nfedgslb-proxy: not available (%s): no ratios." % (fed or {}).get("error", "not measured"))
        return
    if not rat:
        print("\nno peer proxy was measured: no ratios.")
        return
    print("\nfedgslb-proxy / peer (req/s: > 1 is better for fedgslb; p99 and CPU/req: < 1 is better):")
    print("  %-8s %8s %8s %8s %10s %8s" % ("peer", "req/s", "p50", "p99", "CPU/req", "RSS"))
    for n in ("haproxy", "nginx"):
        if n not in rat:
            continue
        rr = rat[n]
        print("  %-8s %8s %8s %8s %10s %8s" % (
            LABELS[n], fmt(rr.get("rps"), ".2f"), fmt(rr.get("p50_ms"), ".2f"), fmt(rr.get("p99_ms"), ".2f"),
            fmt(rr.get("cpu_us_per_request"), ".2f"), fmt(rr.get("rss_mib"), ".2f")))


def target(results, mode):
    """The issues' targets, against HAProxy in the same run: issue 6 for plain
    HTTP; issue 18 over TLS (CPU per request <= HAProxy's, and for keep-alive
    p99 no worse than HAProxy's)."""
    fed, hap = results.get("fedgslb"), results.get("haproxy")
    if not fed or not hap or "error" in fed or "error" in hap:
        return {}
    t = {}
    if fed.get("cpu_us_per_request") is not None and hap.get("cpu_us_per_request"):
        t["cpu_per_request_le_haproxy"] = fed["cpu_us_per_request"] <= hap["cpu_us_per_request"]
    if mode == "plain" and fed.get("rps") is not None and hap.get("rps"):
        t["rps_ge_haproxy"] = fed["rps"] >= hap["rps"]
    if mode == "plain" and fed.get("p99_ms") is not None and hap.get("p99_ms"):
        t["p99_le_1_2x_haproxy"] = fed["p99_ms"] <= 1.2 * hap["p99_ms"]
    if mode == "tls" and fed.get("p99_ms") is not None and hap.get("p99_ms"):
        t["p99_le_haproxy"] = fed["p99_ms"] <= hap["p99_ms"]
    return t


def print_target(tgt, results, mode):
    fed, hap = results.get("fedgslb"), results.get("haproxy")
    print("\ntargets (issue %s; informational, the exit status does not depend on them):"
          % ("6" if mode == "plain" else "18"))
    lines = [
        ("cpu_per_request_le_haproxy", "CPU per request <= HAProxy's", "cpu_us_per_request", "%.2f us", 1),
        ("rps_ge_haproxy", "requests/s >= HAProxy's", "rps", "%.0f", 1),
        ("p99_le_1_2x_haproxy", "p99 <= 1.2 x HAProxy's", "p99_ms", "%.3f ms", 1.2),
        ("p99_le_haproxy", "p99 <= HAProxy's", "p99_ms", "%.3f ms", 1),
    ]
    for key, text, field, unit, factor in lines:
        if key.startswith("rps") or key == "p99_le_1_2x_haproxy":
            if mode != "plain":
                continue
        elif key == "p99_le_haproxy" and mode != "tls":
            continue
        if key not in tgt:
            print("  %-4s %s (fedgslb-proxy or HAProxy not measured)" % ("-", text))
            continue
        print("  %-4s %s: %s vs %s" % ("PASS" if tgt[key] else "FAIL", text, unit % fed[field],
                                        unit % (factor * hap[field])))


# ---------------------------------------------------------------- main


def tool_version(argv):
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=5).stdout
        for line in out.decode("utf-8", "replace").splitlines():
            if re.search(r"\d+\.\d+", line):
                return line.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return None


def which_sbin(name):
    return shutil.which(name) or (("/usr/sbin/" + name) if os.access("/usr/sbin/" + name, os.X_OK) else None)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="fedgslb-proxy vs HAProxy and nginx (wrk).")
    ap.add_argument("--quick", action="store_true", help="short smoke run (3 s per target)")
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench", "http.json"), help="JSON results file")
    ap.add_argument("--targets", default=",".join(TARGET_ORDER), help="comma list of direct,haproxy,nginx,fedgslb")
    ap.add_argument("--proxy", default=os.path.join(REPO, "build", "fedgslb-proxy"), help="fedgslb-proxy binary")
    ap.add_argument("--modes", default=",".join(MODE_ORDER),
                    help="comma list of plain,tls,tls-new,tls-resume,tls-full (default all)")
    ap.add_argument("--duration", type=int, help="measured wrk run, seconds (default 10, quick 3)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds over all targets (default 1)")
    ap.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    ap.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    ap.add_argument("--proxy-cpu", type=int, default=0, help="core of the proxies (default 0)")
    ap.add_argument("--client-cpu", type=int, default=1, help="core of wrk and the backend (default 1)")
    ap.add_argument("--port-base", type=int, default=25400,
                    help="backend on base+1, HAProxy +2, nginx +3, fedgslb-proxy +4; over TLS +5, +6, +7")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory")
    # handled by http_bench.sh; accepted here so the same arguments can be passed through
    ap.add_argument("--no-install", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-build", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.duration is None:
        a.duration = 3 if a.quick else 10
    if a.duration < 1 or a.rounds < 1 or a.connections < 1 or a.threads < 1:
        ap.error("--duration, --rounds, --connections and --threads must be >= 1")
    a.target_list = [s.strip() for s in a.targets.split(",") if s.strip()]
    for s in a.target_list:
        if s not in TARGET_ORDER:
            ap.error("unknown target %r (known: %s)" % (s, ", ".join(TARGET_ORDER)))
    a.mode_list = [m.strip() for m in a.modes.split(",") if m.strip()]
    for m in a.mode_list:
        if m not in MODE_ORDER:
            ap.error("unknown mode %r (known: %s)" % (m, ", ".join(MODE_ORDER)))
    if not a.mode_list:
        ap.error("--modes: at least one mode")
    return a


PORT_OFFSETS = {"backend": 1, "haproxy": 2, "nginx": 3, "fedgslb": 4}
TLS_PORT_OFFSETS = {"haproxy": 5, "nginx": 6, "fedgslb": 7}


def make_targets(a, tmp, results):
    """Builds the backend and the targets; a target that cannot be set up
    gets its reason in @results."""
    ports = {n: a.port_base + off for n, off in PORT_OFFSETS.items()}
    tls_ports = {n: a.port_base + off for n, off in TLS_PORT_OFFSETS.items()}
    want_tls = any(m != "plain" for m in a.mode_list)
    cert = make_cert(tmp) if want_tls else None
    nginx, haproxy = which_sbin("nginx"), which_sbin("haproxy")
    backend = Target("backend", ports["backend"], None,
                     [nginx, "-p", tmp, "-c", backend_conf(tmp, ports["backend"])],
                     os.path.join(tmp, "backend.log"), a.client_cpu)
    targets = {}
    for n in a.target_list:
        log_path = os.path.join(tmp, n + ".log")
        tp = tls_ports.get(n) if want_tls else None
        if n == "direct":
            targets[n] = Target(n, ports["backend"], None, None, log_path, a.client_cpu)
        elif n == "haproxy":
            if haproxy is None:
                results[n] = {"error": "haproxy not installed"}
                continue
            conf = haproxy_conf(tmp, ports[n], tls_ports[n], ports["backend"], cert)
            targets[n] = Target(n, ports[n], tp, [haproxy, "-db", "-f", conf], log_path, a.proxy_cpu)
        elif n == "nginx":
            conf = nginx_proxy_conf(tmp, ports[n], tls_ports[n], ports["backend"], cert)
            targets[n] = Target(n, ports[n], tp, [nginx, "-p", tmp, "-c", conf], log_path, a.proxy_cpu)
        elif n == "fedgslb":
            if not os.access(a.proxy, os.X_OK):
                results[n] = {"error": "%s not found" % os.path.relpath(a.proxy, REPO)}
                continue
            conf = fedgslb_conf(tmp, ports[n], tls_ports[n], ports["backend"], cert)
            targets[n] = Target(n, ports[n], tp, [a.proxy, "--config", conf], log_path, a.proxy_cpu)
    return list(ports.values()) + (list(tls_ports.values()) if want_tls else []), backend, targets


def start_targets(targets, results):
    for n in TARGET_ORDER:
        if n not in targets:
            continue
        try:
            targets[n].start()
        except RuntimeError as e:
            results[n] = {"error": str(e)[:300]}
            log("%s: not available (%s)" % (LABELS[n], results[n]["error"]))
            if targets[n].proc is not None:
                stop(targets[n].proc, grace=2.0)
            del targets[n]


def describe_load(mode, a):
    if mode in ("tls-resume", "tls-full"):
        return "openssl s_time %s -time %d" % ("-reuse" if mode == "tls-resume" else "-new", a.duration)
    return "wrk -t%d -c%d -d%ds --latency%s" % (a.threads, a.connections, a.duration,
                                                ' -H "Connection: close"' if mode == "tls-new" else "")


def bench(a, tmp):
    """Returns {mode: {target: summary or {"error": reason}}}."""
    errors = {}
    if which_sbin("nginx") is None:
        raise RuntimeError("nginx (the backend) is not installed")
    ports, backend, targets = make_targets(a, tmp, errors)
    busy = [p for p in sorted(set(ports)) if not port_is_free(p)]
    if busy:
        raise RuntimeError("ports in use: %s (use --port-base)" % busy)
    backend.start()
    log("backend: nginx on 127.0.0.1:%d, core %d, %d-byte file" % (backend.port, a.client_cpu, BODY_BYTES))
    start_targets(targets, errors)
    results = {m: dict(errors) for m in a.mode_list}
    for mode in a.mode_list:
        res = results[mode]
        order = [n for n in TARGET_ORDER if n in targets and (mode == "plain" or targets[n].tls_port)]
        runs = {n: [] for n in order}
        for rnd in range(a.rounds):
            for n in order[rnd % len(order):] + order[: rnd % len(order)] if order else []:
                if n in res:
                    continue
                t = targets[n]
                log("%s, round %d/%d: %s (%s, 127.0.0.1:%d)" % (mode, rnd + 1, a.rounds, LABELS[n],
                                                              describe_load(mode, a),
                                                              t.port if mode == "plain" else t.tls_port))
                try:
                    runs[n].append(measure(t, mode, backend, a))
                except RuntimeError as e:
                    res[n] = {"error": str(e)[:300]}
                    log("%s: failed (%s)" % (LABELS[n], res[n]["error"]))
        for n in order:
            if n not in res and runs[n]:
                res[n] = summarize(runs[n])
    return results


def main(argv):
    a = parse_args(argv)
    ncpu = os.cpu_count() or 1
    if ncpu < 2 or a.proxy_cpu == a.client_cpu:
        log("warning: proxy and wrk share a core: figures are not comparable to a 2-core run")
    for tool in ["wrk", "taskset"] + (["openssl"] if any(m != "plain" for m in a.mode_list) else []):
        if not shutil.which(tool):
            log("error: %s not found (run tests/bench/http_bench.sh, which installs it)" % tool)
            return 2

    def on_term(signum, frame):
        log("interrupted (signal %d): stopping servers" % signum)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    tmp = tempfile.mkdtemp(prefix="fedgslb-http-bench-")
    os.chmod(tmp, 0o755)
    load0 = loadavg()
    try:
        log("per target and mode: %d s load run after a 1 s warm-up, %d round(s), modes %s; proxies on core %d,"
            " the load generator and backend on core %d; load avg %s"
            % (a.duration, a.rounds, ",".join(a.mode_list), a.proxy_cpu, a.client_cpu, load0))
        results = bench(a, tmp)
    except RuntimeError as e:
        log("error: %s" % e)
        return 2
    finally:
        stop_all()
        if a.keep_tmp:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    per_mode = {}
    for mode in a.mode_list:
        res = results[mode]
        order = [n for n in TARGET_ORDER if n in res]
        print("\n== %s (%s)\n" % (mode, MODE_TITLES[mode]))
        report(res, order)
        rat = ratios(res)
        print_ratios(rat, res)
        tgt = target(res, mode)
        print_target(tgt, res, mode)
        if mode in ("tls-resume", "tls-full"):
            for n in order:
                if res[n].get("resumed") is not None:
                    print("  %s: %d of %d connections resumed" % (LABELS[n], res[n]["resumed"],
                                                                res[n]["requests"]))
        per_mode[mode] = {"targets": res, "fedgslb_ratio": rat, "target": tgt}
    load1 = loadavg()
    if max((load0 or [0])[0], (load1 or [0])[0]) > 1.0:
        print("note: load average %s -> %s: other work was running, figures are noisy" % (load0, load1))

    doc = {
        "benchmark": "http",
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": {"cpus": ncpu, "kernel": platform.release(), "loadavg_before": load0,
                 "loadavg_after": load1, "clk_tck": CLK_TCK},
        "params": {"quick": a.quick, "duration_s": a.duration, "rounds": a.rounds, "wrk_threads": a.threads,
                   "wrk_connections": a.connections, "body_bytes": BODY_BYTES, "proxy_cpu": a.proxy_cpu,
                   "client_cpu": a.client_cpu, "port_base": a.port_base, "modes": a.mode_list},
        "versions": {
            "wrk": tool_version(["wrk", "--version"]),
            "haproxy": tool_version([which_sbin("haproxy") or "haproxy", "-v"]),
            "nginx": tool_version([which_sbin("nginx") or "nginx", "-v"]),
            "openssl": tool_version(["openssl", "version"]),
            "fedgslb": tool_version([a.proxy, "--version"]) if os.access(a.proxy, os.X_OK) else None,
        },
        # plain HTTP at the top level, as before the TLS modes; every mode under "modes"
        "targets": per_mode.get("plain", {}).get("targets", {}),
        "fedgslb_ratio": per_mode.get("plain", {}).get("fedgslb_ratio", {}),
        "target": per_mode.get("plain", {}).get("target", {}),
        "modes": per_mode,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
    print("\nresults: %s" % a.out)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
    finally:
        stop_all()
