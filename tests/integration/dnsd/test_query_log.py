# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd's sampled query log (dnsd.query_log with --log-level debug),
on real sockets with dnspython, dig and kdig.

One worker everywhere, so the sample is exact: the counter of that worker
decides. The lines are read back as JSON objects (--log-format json) and
compared with the responses the clients got; a burst into a one-record ring
drops records, counts them, and the server keeps answering.
"""

import json
import select
import signal
import socket
import struct
import time

import dns.message
import dns.rcode

import fedtest
from fedtest import ECS4, ECS6, SOURCE, ZONE, endpoint, fed_name, query, state_doc

Z = ZONE + "."
US, EU, AP = "us-east-1", "eu-west-1", "ap-northeast-1"
V4 = {"usa": "192.0.2.10", "eur": "192.0.2.20", "jpn": "192.0.2.30"}
V6 = {"usa": "2001:db8:a::10", "eur": "2001:db8:b::20", "jpn": "2001:db8:c::30"}
WEB = fed_name("web")


def start(tmp, fmt="json", level="debug", **dnsd_over):
    tmp.mkdir(exist_ok=True)
    dnsd_over.setdefault("workers", 1)
    d = fedtest.start_dnsd(tmp, extra_args=["--log-format", fmt, "--log-level", level],
                           **dnsd_over)
    ctl = fedtest.Control(d.ctl_port)
    svcs = {"default/web": {m: endpoint([V4[m], V6[m]]) for m in V4}}
    for v in (US, EU, AP):
        st, body = ctl.put_state(state_doc(v, svcs))
        assert st == 200, (st, body)
    return d, ctl


def json_lines(d):
    return [json.loads(x) for x in d.log_text().splitlines() if x.startswith("{")]


def query_lines(d):
    return [x for x in json_lines(d) if x["msg"] == "query"]


def metric(ctl, name):
    total = 0.0
    for n, _, v in ctl.metrics():
        if n == name:
            total += v
    return total


def answered(ctl):
    return int(metric(ctl, "fedgslb_dns_responses_total"))


def wait_for(pred, what, timeout=5.0):
    deadline = time.monotonic() + timeout * fedtest.SLOW
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def wait_lines(d, n):
    return wait_for(lambda: (lambda ls: ls if len(ls) >= n else None)(query_lines(d)),
                    "%d query lines:\n%s" % (n, d.log_text()[-3000:]))


def line_for(lines, name, qtype, transport="udp"):
    got = [x for x in lines if x.get("name", "").lower() == name.lower()
           and x.get("qtype") == qtype and x["transport"] == transport]
    assert len(got) == 1, (name, qtype, transport, got)
    return got[0]


def addresses(msg):
    out = []
    for rrset in msg.answer:
        for rd in rrset:
            out.append(rd.to_text())
    return out


def ecs_scope(msg):
    opt = fedtest.ecs_option(msg)
    return opt.scopelen if opt is not None else None


def test_lines_match_the_answers(tmp_path):
    """Sample 1: one line per query, whose keys say what the client got."""
    d, ctl = start(tmp_path, query_log={"sample": 1})
    try:
        # dnspython, UDP, ECS from the us-east-1 networks
        r1 = query(d, WEB, "A", ecs=ECS4[US] + "/24")
        # dnspython, UDP, no ECS, the source address places the client
        r2 = query(d, WEB, "AAAA", source=SOURCE[AP])
        # dnspython over TCP: a CNAME in the static zone
        r3 = query(d, "www." + Z, "A", tcp=True)
        # NXDOMAIN; outside the zone (REFUSED)
        r4 = query(d, "nothing-here." + Z, "A")
        r5 = query(d, "example.org.", "A")
        # dig with an IPv6 ECS subnet; kdig without ECS
        port = str(d.dns_port)
        dig = fedtest.run(["dig", "@127.0.0.1", "-p", port, "+time=3", "+tries=1",
                           "+subnet=" + ECS6[EU] + "/56", "+short", fed_name("web", region=AP),
                           "A"])
        assert dig.returncode == 0, dig.stderr
        kdig = fedtest.run(["kdig", "@127.0.0.1", "-p", port, "+time=3", "+retry=0", "+short",
                            "-b", SOURCE[EU], "mail." + Z, "A"])
        assert kdig.returncode == 0, kdig.stderr

        # Every query answered has its line (the readiness probe's too).
        n = answered(ctl)
        lines = wait_lines(d, n)
        assert len(lines) == n >= 7
        assert all(x["level"] == "debug" for x in lines)

        x = line_for(lines, WEB, "A")
        assert x["client"] == "127.0.0.1" and x["port"].isdigit()
        assert x["rcode"] == "NOERROR"
        assert x["region"] == US and x["placed_by"] == "client_networks"
        assert x["ecs"] == ECS4[US] + "/24"
        assert x["ecs_scope"] == str(ecs_scope(r1))
        assert x["answer"].split(",") == addresses(r1) and x["answer"] == V4["usa"]

        x = line_for(lines, WEB, "AAAA")
        assert x["client"] == SOURCE[AP]
        assert x["region"] == AP and x["placed_by"] == "client_networks"
        assert "ecs" not in x and "ecs_scope" not in x
        assert x["answer"].split(",") == addresses(r2) == [V6["jpn"]]

        x = line_for(lines, "www." + Z, "A", "tcp")
        assert x["answer"] == "host.%s,192.0.2.80" % Z, x
        assert addresses(r3) == ["host." + Z, "192.0.2.80"]

        x = line_for(lines, "nothing-here." + Z, "A")
        assert x["rcode"] == "NXDOMAIN" == dns.rcode.to_text(r4.rcode())
        assert "answer" not in x and x["region"] == EU and x["placed_by"] == "default"

        x = line_for(lines, "example.org.", "A")
        assert x["rcode"] == "REFUSED" == dns.rcode.to_text(r5.rcode())
        assert "region" not in x and "answer" not in x

        x = line_for(lines, fed_name("web", region=AP), "A")
        assert x["ecs"] == ECS6[EU] + "/56"
        assert x["region"] == EU and x["placed_by"] == "client_networks"
        assert x["answer"] == dig.stdout.strip() == V4["jpn"]

        x = line_for(lines, "mail." + Z, "A")
        assert x["client"] == SOURCE[EU] and x["answer"] == kdig.stdout.strip() == "192.0.2.25"

        assert int(metric(ctl, "fedgslb_dns_query_log_lines_total")) == len(query_lines(d)) == n
        assert metric(ctl, "fedgslb_dns_query_log_dropped_total") == 0
    finally:
        fedtest.finish(d)


def test_every_nth_then_reload(tmp_path):
    """Sample 5 logs exactly the 5th, 10th, ... query; a reload to 1 logs all."""
    d, ctl = start(tmp_path, fmt="text", query_log={"sample": 5})
    try:
        before = answered(ctl)
        names = ["q%02d.%s" % (i, Z) for i in range(23)]
        for name in names:
            query(d, name, "A")
        # The /metrics scrapes are control API requests, not queries.
        assert answered(ctl) == before + 23
        want = [n for i, n in enumerate(names) if (before + i + 1) % 5 == 0]
        total = (before + 23) // 5
        got = wait_for(lambda: (lambda ls: ls if len(ls) >= total else None)(
            [x for x in d.log_text().splitlines() if " debug: query: " in x]), "%d lines" % total)
        time.sleep(3 * 0.1)  # a few more drains: no extra line may come
        got = [x for x in d.log_text().splitlines() if " debug: query: " in x]
        assert len(got) == total, got
        logged = [n for n in names if any(" name=%s " % n in x for x in got)]
        assert logged == want
        # Text lines read as key=value pairs after "query:".
        assert all(" rcode=NXDOMAIN " in x and " transport=udp " in x
                   for x in got if any(n in x for n in want))

        conf = dict(d.conf)
        conf["dnsd"] = dict(conf["dnsd"], query_log={"sample": 1, "ring_size": 64})
        fedtest.write_config(tmp_path, conf)
        d.signal(signal.SIGHUP)
        wait_for(lambda: "reload done" in d.log_text(), "the reload")
        assert "dnsd.query_log.ring_size changed; this needs a restart" in d.log_text()
        for i in range(7):
            query(d, "r%d.%s" % (i, Z), "A")
        wait_for(lambda: all(" name=r%d.%s " % (i, Z) in d.log_text() for i in range(7)),
                 "every query after the reload")
    finally:
        fedtest.finish(d)


def burst(port, count, window=64):
    """@count A queries as fast as the server answers, @window of them in
    flight at a time (more would only overflow the socket buffers). Bounded
    in time; returns how many replies came back."""
    q = dns.message.make_query("host." + Z, "A", use_edns=False)
    wire = bytearray(q.to_wire())
    sent = got = lost = 0
    deadline = time.monotonic() + 10.0 * fedtest.SLOW
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        while got < count and time.monotonic() < deadline:
            while sent < count and sent - got < window:
                struct.pack_into("!H", wire, 0, sent & 0xFFFF)
                s.send(bytes(wire))
                sent += 1
            if select.select([s], [], [], 0.5)[0]:
                s.recv(4096)
                got += 1
            else:
                lost += sent - got  # lost on the way: carry on
                got = sent
    return got - lost


def test_full_ring_drops_and_counts(tmp_path):
    """A one-record ring under a burst: records are dropped and counted, every
    query is still answered, and logged + dropped = answered, exactly."""
    d, ctl = start(tmp_path, query_log={"sample": 1, "ring_size": 1})
    try:
        replies = burst(d.dns_port, 5000)
        # Whatever reached the server was answered, and it still answers.
        assert replies > 4500, replies
        assert metric(ctl, "fedgslb_dns_queries_total") == answered(ctl) >= replies
        r = query(d, "host." + Z, "A")
        assert addresses(r) == ["192.0.2.80"]
        n = answered(ctl)

        def settled():
            lines = int(metric(ctl, "fedgslb_dns_query_log_lines_total"))
            dropped = int(metric(ctl, "fedgslb_dns_query_log_dropped_total"))
            return (lines, dropped) if lines + dropped == n else None
        lines, dropped = wait_for(settled, "logged + dropped == answered")
        assert dropped > 0 and lines > 0
        print("burst: %d answered, %d logged, %d dropped" % (n, lines, dropped))
        assert len(query_lines(d)) == lines
    finally:
        fedtest.finish(d)


def test_off(tmp_path):
    """A sample without --log-level debug, or debug without a sample: no
    query lines, and the families say 0."""
    d, ctl = start(tmp_path / "a", level="info", query_log={"sample": 1})
    try:
        query(d, "host." + Z, "A")
        wait_for(lambda: "no query log" in d.log_text(), "the notice")
        assert query_lines(d) == []
        assert metric(ctl, "fedgslb_dns_query_log_lines_total") == 0
    finally:
        fedtest.finish(d)
    d, ctl = start(tmp_path / "b")
    try:
        query(d, "host." + Z, "A")
        time.sleep(0.3)
        assert query_lines(d) == []
        assert "query log on" not in d.log_text()
        # Turning it on takes a restart (the rings are made at start): said so.
        conf = dict(d.conf)
        conf["dnsd"] = dict(conf["dnsd"], query_log={"sample": 1})
        fedtest.write_config(tmp_path / "b", conf)
        d.signal(signal.SIGHUP)
        wait_for(lambda: "reload done" in d.log_text(), "the reload")
        assert "turning the query log on needs a restart" in d.log_text()
        query(d, "host." + Z, "A")
        time.sleep(0.3)
        assert query_lines(d) == []
    finally:
        fedtest.finish(d)
