# SPDX-License-Identifier: Apache-2.0
"""fedgslb-dnsd behind a real resolver: Debian's unbound with its ECS cache
(subnetcache) on a loopback port, a stub zone pointing at dnsd. The bug this
guards (ecs_short_source): one client asking with a /8 made the resolver cache
the default region's answer for all of 10/8, so clients of other regions
inside it got the wrong member for the whole TTL."""

import os
import shutil
import signal
import subprocess
import time

import dns.edns
import dns.message
import dns.query
import dns.rcode
import pytest

import fedtest
from fedtest import ECS4, SOURCE, ZONE, endpoint, fed_name, state_doc

US, EU, AP = "us-east-1", "eu-west-1", "ap-northeast-1"
V4 = {"usa": "192.0.2.10", "eur": "192.0.2.20", "jpn": "192.0.2.30"}
OWN = {US: "usa", EU: "eur", AP: "jpn"}
WEB = fed_name("web")
TTL = 2  # short, so that a state change is seen by the resolver within the test

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"

pytestmark = pytest.mark.skipif(not os.path.exists(UNBOUND),
                                reason="unbound not installed (scripts/deps.sh)")


def unbound_conf(tmp, port, dnsd_port):
    # Everything the test needs and nothing of the system's: no chroot, no
    # privilege drop, no trust anchor, no remote control, loopback only.
    return f"""server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 1
    chroot: ""
    username: ""
    pidfile: ""
    directory: "{tmp}"
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    # unbound serves .test itself (RFC 6761) unless told not to
    local-zone: "test." nodefault
    qname-minimisation: no
    cache-min-ttl: 0
    module-config: "subnetcache validator iterator"
    # ECS to our name server only; the client's own ECS is forwarded as given
    send-client-subnet: 127.0.0.1
    client-subnet-always-forward: yes
    # /32: the source-address test tells 127.0.0.2/3/4 apart (real
    # deployments keep the default /24 and /56)
    max-client-subnet-ipv4: 32
    max-client-subnet-ipv6: 56

remote-control:
    control-enable: no

stub-zone:
    name: "{ZONE}."
    stub-addr: 127.0.0.1@{dnsd_port}
"""


def services(down=()):
    return {svc: {m: endpoint([a], healthy=m not in down) for m, a in V4.items()}
            for svc in ("default/web", "default/closed", "default/sorry", "default/cloud",
                        "default/shared")}


def push(ctl, down=()):
    for v in (US, EU, AP):
        st, body = ctl.put_state(state_doc(v, services(down)))
        assert 200 <= st < 300, (st, body)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resolver")
    d = fedtest.start_dnsd(tmp, ttl_s=TTL, min_ttl_s=1)
    ctl = fedtest.Control(d.ctl_port)
    push(ctl)
    port = fedtest.free_port(ipv6=False)
    conf = os.path.join(str(tmp), "unbound.conf")
    with open(conf, "w") as f:
        f.write(unbound_conf(str(tmp), port, d.dns_port))
    chk = fedtest.run(["unbound-checkconf", conf])
    assert chk.returncode == 0, chk.stdout + chk.stderr
    log = open(os.path.join(str(tmp), "unbound.log"), "w")
    ub = subprocess.Popen([UNBOUND, "-d", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 15 * fedtest.SLOW
        while True:
            try:
                r = resolve(port, f"www.{ZONE}")
                if r.rcode() == dns.rcode.NOERROR:
                    break
            except Exception:  # noqa: BLE001 - not up yet
                pass
            assert ub.poll() is None, open(log.name).read()
            assert time.time() < deadline, "unbound did not answer"
            time.sleep(0.2)
        yield {"dnsd": d, "ctl": ctl, "port": port, "log": log.name}
    finally:
        ub.send_signal(signal.SIGTERM)
        try:
            ub.wait(10)
        except subprocess.TimeoutExpired:
            ub.kill()
        log.close()
        fedtest.finish(d)


def resolve(port, name, rdtype="A", ecs=None, source=None):
    q = dns.message.make_query(name, rdtype)
    if ecs:
        addr, n = ecs.split("/")
        q.use_edns(0, payload=1232, options=[dns.edns.ECSOption(addr, int(n))])
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=5 * fedtest.SLOW, source=source)


def member_of(r):
    addrs = fedtest.addresses(r)
    assert len(addrs) == 1, r.to_text()
    return {a: m for m, a in V4.items()}[addrs.pop()]


def test_short_source_first_then_each_region(stack):
    """The /8 client asks first; each region's client then gets its own
    member from the resolver (before the fix: the /8 answer, for all)."""
    port = stack["port"]
    push(stack["ctl"])
    r = resolve(port, WEB, ecs="10.0.0.0/8")
    assert r.rcode() == dns.rcode.NOERROR
    assert member_of(r) == "eur"  # 10/8 as a whole is in no network: dnsd.region
    for region in (US, AP, EU):
        r = resolve(port, WEB, ecs=f"{ECS4[region]}/24")
        assert member_of(r) == OWN[region], (region, r.to_text())
    # and again, now from the resolver's cache
    for region in (US, AP, EU):
        assert member_of(resolve(port, WEB, ecs=f"{ECS4[region]}/24")) == OWN[region]
    assert member_of(resolve(port, WEB, ecs="10.0.0.0/8")) == "eur"


def test_short_source_with_dig(stack):
    out = fedtest.run(["dig", "@127.0.0.1", "-p", str(stack["port"]), "+subnet=10.0.0.0/8",
                       WEB, "A"])
    assert V4["eur"] in out.stdout, out.stdout
    out = fedtest.run(["dig", "@127.0.0.1", "-p", str(stack["port"]), "+subnet=10.3.4.0/24",
                       "+short", WEB, "A"])
    assert out.stdout.split() == [V4["jpn"]], out.stdout


def test_source_address(stack):
    """Without ECS from the client, unbound sends the client's address: each
    loopback source of client_networks gets its region's member."""
    port = stack["port"]
    push(stack["ctl"])
    for region in (US, AP, EU):
        r = resolve(port, WEB, source=SOURCE[region])
        assert member_of(r) == OWN[region], (region, r.to_text())


def test_state_change_after_ttl(stack):
    """usa goes down: us-east-1 clients move to the next member once the
    resolver's copy expires (TTL seconds), not before the state changes."""
    port, ctl = stack["port"], stack["ctl"]
    push(ctl)
    us = f"{ECS4[US]}/24"
    assert member_of(resolve(port, WEB, ecs=us)) == "usa"
    push(ctl, down=("usa",))
    deadline = time.time() + (TTL + 5) * fedtest.SLOW
    while member_of(resolve(port, WEB, ecs=us)) == "usa":
        assert time.time() < deadline, "the resolver still answers usa after the TTL"
        time.sleep(0.25)
    assert member_of(resolve(port, WEB, ecs=us)) == "eur"  # next by latency from us-east-1
    # and the other regions are untouched
    assert member_of(resolve(port, WEB, ecs=f"{ECS4[AP]}/24")) == "jpn"
    push(ctl)
