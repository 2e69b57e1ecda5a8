# SPDX-License-Identifier: Apache-2.0
"""The rules of fedgslb-dnsd's worker loop (dns_server.c, epoll; its TCP
connections in dns_tcp.c) that no other test guards, on real sockets, with
one worker so that the order of events is that worker's:

- a TCP connection that pipelines more than its query budget per wakeup
  (TCP_QUERY_BUDGET, 32) comes back in a later round: UDP queries waiting
  at the same time are answered after at most one budget, not after all of
  its queries (the order is read from the query log, sample 1);
- the idle deadline is armed at accept and at each answer and kept in the
  order of the active list: a connection that asked later outlives one
  that asked earlier, and each closes at its own deadline;
- pipelined queries are all answered when their answers fill the output
  buffer, and when the client closes its side after sending them (RFC 7766
  6.2.1), beyond one round's budget;
- a worker without a timer (no TCP connection, no paused listener) sleeps
  in epoll_wait until a socket or the mailbox wakes it: its thread does not
  switch in or out at all while the server is idle.

Where the order of arrival matters, the server is stopped (SIGSTOP) while
the client queues its data, so that all of it waits in the kernel for the
same wakeup.
"""

import json
import os
import signal
import socket
import struct
import threading
import time

import dns.message

import fedtest
from fedtest import ZONE, tcp_read_msg

Z = ZONE + "."
BUDGET = 32  # TCP_QUERY_BUDGET in dnsd/dns_tcp.c


def _framed(name, qtype, qid):
    q = dns.message.make_query(name, qtype)
    q.id = qid
    w = q.to_wire()
    return struct.pack("!H", len(w)) + w


def _connect(port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5 * fedtest.SLOW)
    s.connect(("127.0.0.1", port))
    return s


def _ask(s, qid):
    s.sendall(_framed("host." + Z, "A", qid))
    assert dns.message.from_wire(tcp_read_msg(s)).id == qid


def _open(s):
    """True while the server keeps @s open (nothing to read, no EOF); no wait."""
    timeout = s.gettimeout()
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    finally:
        s.settimeout(timeout)


def _wait_closed(s, wait_s):
    s.settimeout(wait_s)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def _query_lines(d):
    out = []
    for x in d.log_text().splitlines():
        if x.startswith("{"):
            rec = json.loads(x)
            if rec.get("msg") == "query":
                out.append(rec)
    return out


def _read_answers(s, n, got):
    for _ in range(n):
        got.append(tcp_read_msg(s))


def test_tcp_budget_does_not_starve_udp(tmp_path):
    n_tcp = 40 * BUDGET
    d = fedtest.start_dnsd(tmp_path, workers=1,
                           extra_args=["--log-format", "json", "--log-level", "debug"],
                           query_log={"sample": 1, "ring_size": 4 * n_tcp})
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s = _connect(d.dns_port)
    got = []
    reader = None
    try:
        _ask(s, 1)  # accepted and watched before the worker stops
        d.signal(signal.SIGSTOP)
        try:
            data = b"".join(_framed("host." + Z, "A", 100 + i) for i in range(n_tcp))
            s.sendall(data)  # into the kernel's buffers: the server is stopped
            u.sendto(dns.message.make_query("udp-probe." + Z, "A").to_wire(),
                     ("127.0.0.1", d.dns_port))
        finally:
            d.signal(signal.SIGCONT)
        reader = threading.Thread(target=_read_answers, args=(s, n_tcp, got))
        reader.start()
        u.settimeout(5 * fedtest.SLOW)
        u.recvfrom(4096)
        reader.join(10 * fedtest.SLOW)
        assert len(got) == n_tcp
        deadline = time.monotonic() + 5 * fedtest.SLOW
        lines = []
        while time.monotonic() < deadline:
            lines = _query_lines(d)
            if len(lines) >= n_tcp + 2:
                break
            time.sleep(0.1)
        # The readiness probe, the first TCP query, then the queued ones.
        lines = [x for x in lines if x.get("name", "").startswith(("host.", "udp-probe."))]
        assert len(lines) == n_tcp + 2, len(lines)
        order = [x["name"].startswith("udp-probe.") for x in lines[1:]]
        pos = order.index(True)
        # At most one budget of this connection ran before the UDP listener's
        # turn (two if the UDP query came in one wakeup later), never all of it.
        assert pos <= 2 * BUDGET, f"UDP answered after {pos} TCP queries of {n_tcp}"
    finally:
        if reader is not None:
            reader.join(10 * fedtest.SLOW)
        s.close()
        u.close()
        fedtest.finish(d)


def test_idle_deadlines_in_order(tmp_path):
    idle_ms = 2000
    d = fedtest.start_dnsd(tmp_path, workers=1, tcp_idle_timeout_ms=idle_ms)
    a = _connect(d.dns_port)
    b = _connect(d.dns_port)
    try:
        _ask(a, 1)
        _ask(b, 2)  # b's deadline: about idle_ms from now
        time.sleep(idle_ms / 1000 / 2)
        _ask(a, 3)  # a's new deadline: half an idle timeout after b's
        t0 = time.monotonic()
        assert _wait_closed(b, 5 * fedtest.SLOW), "b was not closed when idle"
        assert time.monotonic() - t0 < idle_ms / 1000 * 0.75 + 1.0 * fedtest.SLOW
        # The answer moved a to the back and re-armed it: it is still open.
        assert _open(a), "a was closed at b's deadline (or at its first one)"
        assert _wait_closed(a, 5 * fedtest.SLOW), "a was not closed when idle"
    finally:
        a.close()
        b.close()
        fedtest.finish(d)


def test_pipelined_large_answers_all_come(tmp_path):
    """Answers that fill the output buffer before the budget is spent: the
    rest of the pipeline is answered once the output has left, even when it
    leaves at once (no write readiness to wait for)."""
    n = 300
    d = fedtest.start_dnsd(tmp_path, workers=1)
    s = _connect(d.dns_port)
    got = []
    try:
        s.sendall(b"".join(_framed("big." + Z, "TXT", i) for i in range(n)))
        _read_answers(s, n, got)
        assert sorted(dns.message.from_wire(m).id for m in got) == list(range(n))
    finally:
        s.close()
        fedtest.finish(d)


def _switches(pid):
    """{thread id: voluntary + involuntary context switches} of process @pid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        n = 0
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.endswith("ctxt_switches"):
                        n += int(value)
        except FileNotFoundError:
            continue
        out[tid] = n
    return out


def test_idle_workers_do_not_wake(tmp_path):
    d = fedtest.start_dnsd(tmp_path, workers=2, tcp_idle_timeout_ms=200)
    try:
        s = _connect(d.dns_port)
        _ask(s, 1)
        s.close()  # the server closes its side at the EOF
        fedtest.query(d, "host." + Z, "A")
        time.sleep(0.5)  # past the idle deadline of any connection left
        before = _switches(d.proc.pid)
        time.sleep(1.5)
        after = _switches(d.proc.pid)
        woke = [t for t in before if t in after and after[t] != before[t]]
        # Only the main thread has timers of its own while idle.
        assert len(before) >= 3 and len(woke) <= 1, (before, after)
    finally:
        fedtest.finish(d)


def test_pipeline_then_eof_all_answered(tmp_path):
    """RFC 7766 6.2.1: a client may send its queries and close its side; each
    one is answered before the server closes, beyond one round's budget too."""
    n = 5 * BUDGET
    d = fedtest.start_dnsd(tmp_path, workers=1)
    s = _connect(d.dns_port)
    got = []
    try:
        _ask(s, n)  # accepted and watched before the worker stops
        # Queries and end of stream wait together for the worker: it reads
        # the queries in one round, the end in the next, with answers left.
        d.signal(signal.SIGSTOP)
        try:
            s.sendall(b"".join(_framed("host." + Z, "A", i) for i in range(n)))
            s.shutdown(socket.SHUT_WR)
        finally:
            d.signal(signal.SIGCONT)
        try:
            while True:
                got.append(dns.message.from_wire(tcp_read_msg(s)).id)
        except EOFError:
            pass
        assert sorted(got) == list(range(n)), len(got)
    finally:
        s.close()
        fedtest.finish(d)
