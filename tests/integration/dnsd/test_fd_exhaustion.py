# SPDX-License-Identifier: Apache-2.0
"""Bug: descriptor exhaustion. Under a small RLIMIT_NOFILE, one-byte TCP
connections held open made dnsd's level-triggered accept loop spin (5.5 CPU
seconds in 3 s, 354k log lines in 10 s) and the control API stop answering.

Now: dnsd raises its soft limit to the hard one and refuses a configuration
whose TCP tables cannot fit (with the control API and a reserve); when the
descriptors run out anyway (the limit lowered under it here), each TCP
listener pauses instead of spinning, UDP keeps answering, and accept resumes
once descriptors come back. The bounds are on resources (CPU time, log
lines), not on latency."""

import resource
import time

import dns.rcode

import fedtest
from fedtest import ZONE, Flood, query

NOFILE = 256
HOLD_S = 3.0
CPU_SHARE_MAX = 0.10  # of the wall time of the flood
LOG_LINES_MAX = 50
# 2 workers x (32 + 7) + 64 + 64 = 206 <= NOFILE
FITS = {"workers": 2, "tcp_max_conns": 32}


def _log_lines(d):
    return len(d.log_text().splitlines())


def _flood(d, check_during):
    """Floods the TCP port, runs @check_during while it holds; returns
    (cpu seconds, wall seconds, new log lines)."""
    lines0 = _log_lines(d)
    cpu0, t0 = fedtest.cpu_seconds(d.proc.pid), time.monotonic()
    flood = Flood(d.dns_port, 200)
    try:
        end = time.monotonic() + HOLD_S
        check_during()
        time.sleep(max(0.0, end - time.monotonic()))
        cpu, wall = fedtest.cpu_seconds(d.proc.pid) - cpu0, time.monotonic() - t0
    finally:
        flood.close()
    print(f"\nflood: cpu={cpu:.2f}s wall={wall:.2f}s log_lines={_log_lines(d) - lines0}")
    return cpu, wall, _log_lines(d) - lines0


def _udp_answers(d, n=10):
    for _ in range(n):
        r = query(d, "host." + ZONE + ".", "A", timeout=2.0)
        assert r.rcode() == dns.rcode.NOERROR


def _tcp_works_again(d):
    """TCP queries are answered again after the flood (accept resumed)."""
    deadline = time.monotonic() + 10 * fedtest.SLOW
    while True:
        try:
            r = query(d, "host." + ZONE + ".", "A", tcp=True, timeout=1.0)
            assert r.rcode() == dns.rcode.NOERROR
            return
        except (OSError, dns.exception.Timeout):
            if time.monotonic() > deadline:
                raise


def test_bug_fd_exhaustion_flood_within_limits(tmp_path):
    """Limits that fit: the flood is refused by the TCP table's cap; the
    control API keeps its descriptors and answers during the flood."""
    d = fedtest.start_dnsd(tmp_path, nofile=NOFILE, **FITS)
    try:
        assert f"RLIMIT_NOFILE: {NOFILE} descriptors" in d.log_text()

        def during():
            _udp_answers(d)
            st, body = fedtest.http(d.ctl_port, "GET", "/healthz", timeout=2.0)
            assert st == 200, body

        cpu, wall, lines = _flood(d, during)
        assert cpu < CPU_SHARE_MAX * wall, f"dnsd used {cpu:.2f} CPU-s in {wall:.2f} s"
        assert lines < LOG_LINES_MAX, d.log_text()[-3000:]
        _tcp_works_again(d)
    finally:
        fedtest.finish(d)


def test_bug_fd_exhaustion_limit_lowered_after_start(tmp_path):
    """The descriptors run out anyway (RLIMIT_NOFILE lowered under the
    running daemon): the TCP listeners pause instead of spinning, UDP keeps
    answering, accept resumes after the flood, and the metric counts it."""
    d = fedtest.start_dnsd(tmp_path, nofile=NOFILE, **FITS)
    try:
        pid = d.proc.pid
        low = fedtest.open_fds(pid) + 8
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (low, NOFILE))
        cpu, wall, lines = _flood(d, lambda: _udp_answers(d))
        assert cpu < CPU_SHARE_MAX * wall, f"dnsd used {cpu:.2f} CPU-s in {wall:.2f} s"
        assert lines < LOG_LINES_MAX, d.log_text()[-3000:]
        assert "accept paused" in d.log_text()
        _tcp_works_again(d)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
        m = fedtest.Control(d.ctl_port).metrics()
        exhausted = [v for name, labels, v in m if name == "fedgslb_accept_exhausted_total"]
        assert exhausted and sum(exhausted) > 0, exhausted
    finally:
        fedtest.finish(d)


def test_bug_fd_exhaustion_refused_at_start(tmp_path):
    """Limits that cannot fit: refused at start and by --check-config, with
    the file, the key, the numbers and the fix."""
    want = (": dnsd.tcp_max_conns: 2 workers x (1024 TCP connections + 5 sockets) + 65 control"
            " + 64 reserve = 2187 descriptors, but RLIMIT_NOFILE is 256: lower it or raise the"
            " limit (LimitNOFILE= in the systemd unit)")
    d = fedtest.start_dnsd(tmp_path, nofile=NOFILE, ready=False, workers=2, tcp_max_conns=1024,
                           ipv6=False)
    try:
        assert d.proc.wait(timeout=10 * fedtest.SLOW) == 1
        assert "federation.json" + want in d.log_text(), d.log_text()
    finally:
        d.stop()
    p = fedtest.run([d.argv[0], "--config", d.config_path, "--check-config"],
                    preexec_fn=fedtest.nofile_preexec(NOFILE))
    assert p.returncode == 1
    assert want in p.stderr, p.stderr


def test_bug_fd_exhaustion_control_api(tmp_path):
    """The same flood on the control API's port with the descriptors gone:
    its listener pauses too (it spun in libevent's evhttp before), UDP keeps
    answering, and /healthz answers again once the flood ends."""
    d = fedtest.start_dnsd(tmp_path, nofile=NOFILE, **FITS)
    try:
        pid = d.proc.pid
        low = fedtest.open_fds(pid) + 8
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (low, NOFILE))
        lines0 = _log_lines(d)
        cpu0, t0 = fedtest.cpu_seconds(pid), time.monotonic()
        flood = Flood(d.ctl_port, 200)
        try:
            end = time.monotonic() + HOLD_S
            _udp_answers(d)
            time.sleep(max(0.0, end - time.monotonic()))
            cpu, wall = fedtest.cpu_seconds(pid) - cpu0, time.monotonic() - t0
        finally:
            flood.close()
        lines = _log_lines(d) - lines0
        assert cpu < CPU_SHARE_MAX * wall, f"dnsd used {cpu:.2f} CPU-s in {wall:.2f} s"
        assert lines < LOG_LINES_MAX, d.log_text()[-3000:]
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
        deadline = time.monotonic() + 10 * fedtest.SLOW
        while fedtest.http(d.ctl_port, "GET", "/healthz", timeout=2.0)[0] != 200:
            assert time.monotonic() < deadline, "the control API did not come back"
            time.sleep(0.1)
        m = fedtest.Control(d.ctl_port).metrics()
        exhausted = [v for name, labels, v in m if name == "fedgslb_ctl_accept_exhausted_total"]
        assert exhausted and exhausted[0] > 0, exhausted
    finally:
        fedtest.finish(d)
