# SPDX-License-Identifier: Apache-2.0
"""Bug: descriptor exhaustion. Under a small RLIMIT_NOFILE, one-byte TCP
connections held open made the proxy's evconnlistener spin on EMFILE
(libevent's default error behaviour: warn and retry at once).

Now: the proxy raises its soft limit to the hard one and refuses a
configuration whose connection limits cannot fit; max_connections pauses
accept before the table is full, and when the descriptors run out anyway
(the limit lowered under it here) the listener pauses instead of spinning
and resumes afterwards. Bounds are on resources (CPU time, log lines), not
on latency."""

import resource
import signal
import time

import pytest

import proxy_harness as ph
from fedtest import Flood, cpu_seconds, http, open_fds, nofile_preexec, parse_metrics

NOFILE = 384
HOLD_S = 3.0
CPU_SHARE_MAX = 0.10
LOG_LINES_MAX = 50
# 2 x 100 + 1 x (16 + 1) + 64 + 64 = 345 <= NOFILE
FITS = {"max_connections": 100, "limits": {"upstream_idle_connections": 16}}


@pytest.fixture
def backend():
    b = ph.Backend("b1").start()
    yield b
    b.stop()


def _log_lines(p):
    return len(p.log_text().splitlines())


def _flood(p, check_during):
    lines0 = _log_lines(p)
    cpu0, t0 = cpu_seconds(p.proc.pid), time.monotonic()
    flood = Flood(p.port, 200)
    try:
        end = time.monotonic() + HOLD_S
        check_during()
        time.sleep(max(0.0, end - time.monotonic()))
        cpu, wall = cpu_seconds(p.proc.pid) - cpu0, time.monotonic() - t0
    finally:
        flood.close()
    print(f"\nflood: cpu={cpu:.2f}s wall={wall:.2f}s log_lines={_log_lines(p) - lines0}")
    return cpu, wall, _log_lines(p) - lines0


def _proxies_again(p):
    """A request through the proxy succeeds after the flood (accept resumed).
    Until the backlog left by the flood has drained, the upstream connection
    may still find no descriptor (502): retry."""
    deadline = time.monotonic() + 10 * ph.SLOW
    st = None
    while time.monotonic() < deadline:
        try:
            st, _, _ = ph.get(p.port, "/", timeout=1.0)
            if st == 200:
                return
        except OSError as e:
            st = e
        time.sleep(0.1)
    raise AssertionError(f"no 200 through the proxy after the flood: {st!r}")


def _healthz(p):
    st, body = http(p.ctl_port, "GET", "/healthz", timeout=2.0)
    assert st == 200, body


def test_bug_fd_exhaustion_flood_within_limits(tmp_path, backend):
    """Limits that fit: max_connections pauses accept, the control API keeps
    its descriptors and answers during the flood."""
    p = ph.start_proxy(tmp_path, [backend], nofile=NOFILE, proxy_over=FITS)
    try:
        assert f"RLIMIT_NOFILE: {NOFILE} descriptors" in p.log_text()
        cpu, wall, lines = _flood(p, lambda: _healthz(p))
        assert cpu < CPU_SHARE_MAX * wall, f"proxy used {cpu:.2f} CPU-s in {wall:.2f} s"
        assert lines < LOG_LINES_MAX, p.log_text()[-3000:]
        _proxies_again(p)
    finally:
        ph.fedtest.finish(p)


def test_bug_fd_exhaustion_limit_lowered_after_start(tmp_path, backend):
    """The descriptors run out anyway (RLIMIT_NOFILE lowered under the
    running proxy): the listener pauses instead of spinning, resumes after
    the flood, and the metric counts it."""
    p = ph.start_proxy(tmp_path, [backend], nofile=NOFILE, proxy_over=FITS)
    try:
        pid = p.proc.pid
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_fds(pid) + 8, NOFILE))
        cpu, wall, lines = _flood(p, lambda: None)
        assert cpu < CPU_SHARE_MAX * wall, f"proxy used {cpu:.2f} CPU-s in {wall:.2f} s"
        assert lines < LOG_LINES_MAX, p.log_text()[-3000:]
        assert "accept paused" in p.log_text()
        _proxies_again(p)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
        _healthz(p)
        st, text = http(p.ctl_port, "GET", "/metrics")
        assert st == 200
        n = [v for name, _, v in parse_metrics(text) if name == "fedgslb_accept_exhausted_total"]
        assert n and sum(n) > 0, n
    finally:
        ph.fedtest.finish(p)


def test_bug_fd_exhaustion_refused_at_start(tmp_path, backend):
    """Limits that cannot fit: refused at start and by --check-config, with
    the file, the key, the numbers and the fix."""
    want = (": proxy.max_connections: 2 x 1000 connections (client + upstream) + 1 listeners"
            " x (1000 idle upstream + 1 socket) + 65 control + 64 reserve = 3130 descriptors,"
            " but RLIMIT_NOFILE is 384: lower it or raise the limit (LimitNOFILE= in the"
            " systemd unit)")
    p = ph.start_proxy(tmp_path, [backend], ready=False, nofile=NOFILE)
    try:
        assert p.proc.wait(timeout=10 * ph.SLOW) == 1
        assert "proxy.json" + want in p.log_text(), p.log_text()
    finally:
        p.stop()
    r = ph.fedtest.run([p.argv[0], "--config", p.config_path, "--check-config"],
                       preexec_fn=nofile_preexec(NOFILE))
    assert r.returncode == 1
    assert want in r.stderr, r.stderr


def test_bug_fd_exhaustion_reload_refused(tmp_path, backend):
    """A reload whose max_connections cannot fit is refused; the old
    configuration keeps serving."""
    p = ph.start_proxy(tmp_path, [backend], nofile=NOFILE, proxy_over=FITS)
    try:
        conf = dict(p.conf)
        conf["proxy"] = dict(conf["proxy"], max_connections=1000)
        p.rewrite(conf)
        p.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10 * ph.SLOW
        while "reload failed" not in p.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "proxy.json: proxy.max_connections: 2 x 1000 connections" in p.log_text(), \
            p.log_text()
        st, _, _ = ph.get(p.port, "/")
        assert st == 200
    finally:
        ph.fedtest.finish(p)
