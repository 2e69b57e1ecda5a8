# SPDX-License-Identifier: Apache-2.0
"""One deployment file, two real name servers (fedgslb-dnsd --instance ns1 /
ns2), the real fedgslbctl and dnspython: an intent pushed by fedgslbctl
changes the answers of both; one name server stopped misses an intent,
starts again from its state file, and fedgslbctl status shows the
disagreement until the next fedgslbctl intent call re-delivers it; intents
expire, persist, and explain names them; --check-config of the deployment.

The time from running fedgslbctl to both name servers answering differently
is measured and printed (no timing assertion beyond bounded waits)."""

import json
import os
import subprocess
import time

import pytest

import fedtest
from ctl_helper import ctl

WEB = fedtest.fed_name("web")
EU_ECS = fedtest.ECS4["eu-west-1"] + "/24"
US_ECS = fedtest.ECS4["us-east-1"] + "/24"
ADDR = {"usa": "192.0.2.10", "eur": "192.0.2.20", "jpn": "192.0.2.30"}
MEMBER_OF = {a: m for m, a in ADDR.items()}


def deployment_config(tmp, ports):
    """base_config turned into a deployment: the dnsd section keeps what both
    share, each name server its addresses, region and state file."""
    conf = fedtest.base_config(tmp, ports["ns1"][0], ports["ns1"][1])
    d = conf["dnsd"]
    for k in ("listen", "region", "state_file"):
        d.pop(k)
    d["control"].pop("listen")
    conf["deployment"] = {"name_servers": {
        name: {"listen": ["127.0.0.1:%d" % dns], "control": "127.0.0.1:%d" % ctlp,
               "region": region, "state_file": os.path.join(str(tmp), name + "-state.json")}
        for (name, (dns, ctlp)), region in zip(sorted(ports.items()),
                                               ("eu-west-1", "us-east-1"))}}
    return conf


class Fleet:
    def __init__(self, tmp):
        self.tmp = tmp
        self.ports = {n: (fedtest.free_port(ipv6=False), fedtest.free_port(ipv6=False))
                      for n in ("ns1", "ns2")}
        self.conf = deployment_config(tmp, self.ports)
        self.path = fedtest.write_config(tmp, self.conf, "deployment.json")
        self.ns = {}

    def start(self, name):
        dns, ctlp = self.ports[name]
        d = fedtest.Daemon([fedtest.binary("fedgslb-dnsd"), "--config", self.path,
                            "--instance", name],
                           os.path.join(str(self.tmp), name + ".log"), cwd=str(self.tmp))
        d.dns_port, d.ctl_port, d.config_path = dns, ctlp, self.path
        d.start()
        d.wait_ready()
        self.ns[name] = d
        return d

    def stop(self, name):
        fedtest.finish(self.ns.pop(name))

    def push(self, doc, names=("ns1", "ns2")):
        for n in names:
            st, body = fedtest.http(self.ports[n][1], "PUT", "/v1/state", body=doc,
                                    token=fedtest.TOKEN)
            assert st == 200, (n, st, body)

    def answer(self, name, ecs=EU_ECS):
        msg = fedtest.query(self.ports[name][0], WEB, "A", ecs=ecs)
        return sorted(MEMBER_OF.get(a, a) for a in fedtest.addresses(msg))

    def ctl(self, *args, **kw):
        return ctl(*args, config=self.path, **kw)

    def close(self):
        for n in list(self.ns):
            self.stop(n)


def web_doc():
    """usa, eur and jpn healthy; from us-east-1 the RTTs of the static matrix."""
    return fedtest.state_doc("us-east-1", {"default/web": {
        m: fedtest.endpoint([ADDR[m]], rtt=rtt)
        for m, rtt in (("usa", 10), ("eur", 80), ("jpn", 150))}})


@pytest.fixture
def fleet(tmp_path):
    f = Fleet(tmp_path)
    f.start("ns1")
    f.start("ns2")
    f.push(web_doc())
    yield f
    f.close()


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout * fedtest.SLOW
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def agreement(p):
    """The INSTANCE table of fedgslbctl status: {name: AGREES}."""
    out, on = {}, False
    for line in p.stdout.splitlines():
        cells = line.split()
        if cells[:1] == ["INSTANCE"]:
            on = True
            continue
        if on and len(cells) == 5 and cells[0] in ("ns1", "ns2"):
            out[cells[0]] = cells[-1]
    return out


def test_drain_reaches_both_name_servers(fleet):
    assert fleet.answer("ns1") == ["eur"] and fleet.answer("ns2") == ["eur"]
    p = fleet.ctl("status")
    assert p.returncode == 0, p.stdout + p.stderr
    assert agreement(p) == {"ns1": "yes", "ns2": "yes"}, p.stdout
    assert "every instance answers from the same state" in p.stdout
    t0 = time.monotonic()
    p = fleet.ctl("drain", "eur", "--reason", "kernel upgrade")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: fleet.answer("ns1") == ["usa"] and fleet.answer("ns2") == ["usa"], 10,
             "both name servers to answer usa")
    took = time.monotonic() - t0
    print("intent -> both name servers answer differently: %.0f ms (fedgslbctl drain, "
          "2 name servers on loopback)" % (took * 1000))
    assert "ns1" in p.stdout and "ns2" in p.stdout and p.stdout.count("added") == 2, p.stdout
    assert "eur drained" in p.stdout
    # Both hold the same intent: the digests agree.
    p = fleet.ctl("status")
    assert p.returncode == 0 and agreement(p) == {"ns1": "yes", "ns2": "yes"}, p.stdout
    # explain names the intent, its author and reason.
    p = fleet.ctl("explain", WEB.rstrip("."), "--region", "eu-west-1", "--json")
    doc = json.loads(p.stdout)
    cand = next(c for c in doc["decision"]["candidates"] if c["member"] == "eur")
    assert cand["admin"] == "drained"
    assert cand["intents"][0]["reason"] == "kernel upgrade", cand
    assert doc["decision"]["intents"][0]["kind"] == "drain"
    p = fleet.ctl("undrain", "eur")
    assert p.returncode == 0 and "eur undrained" in p.stdout, p.stdout + p.stderr
    wait_for(lambda: fleet.answer("ns1") == ["eur"] and fleet.answer("ns2") == ["eur"], 10,
             "both name servers to answer eur again")


def test_missed_intent_is_redelivered(fleet):
    fleet.stop("ns2")
    p = fleet.ctl("drain", "eur", "--reason", "ns2 is down")
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)  # one instance unreachable
    assert "ns1" in p.stdout and "added" in p.stdout
    assert "unreachable" in p.stdout and "cannot reach ns2" in p.stderr
    wait_for(lambda: fleet.answer("ns1") == ["usa"], 10, "ns1 to drain eur")
    # ns2 comes back from its state file, which has no drain: it answers eur.
    fleet.start("ns2")
    assert fleet.answer("ns2") == ["eur"]
    p = fleet.ctl("status")
    assert p.returncode == 4, (p.returncode, p.stdout, p.stderr)
    assert agreement(p) == {"ns1": "yes", "ns2": "NO"}, p.stdout
    assert "DISAGREE" in p.stdout and "ns2 misses intent drain-eur-" in p.stdout, p.stdout
    p = fleet.ctl("intent", "list")
    assert p.returncode == 0 and "(not: ns2)" in p.stdout, p.stdout
    # The next intent call re-delivers.
    p = fleet.ctl("intent", "sync")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ns2" in p.stdout and "1 intent(s) or removal(s) it missed re-delivered" in p.stdout
    assert fleet.answer("ns2") == ["usa"]
    p = fleet.ctl("status")
    assert p.returncode == 0 and agreement(p) == {"ns1": "yes", "ns2": "yes"}, p.stdout
    # A removal missed by a stopped name server is re-delivered the same way.
    fleet.stop("ns2")
    p = fleet.ctl("undrain", "eur")
    assert p.returncode == 2, p.stdout
    fleet.start("ns2")
    assert fleet.answer("ns2") == ["usa"]  # still drained from its state file
    p = fleet.ctl("intent", "list")
    assert p.returncode == 0, p.stdout
    p = fleet.ctl("intent", "sync")
    assert p.returncode == 0, p.stdout
    assert fleet.answer("ns2") == ["eur"] and fleet.answer("ns1") == ["eur"]


def test_intents_persist_across_restart(fleet):
    p = fleet.ctl("intent", "add", "force-down", "eur", "--reason", "maintenance window")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: fleet.answer("ns1") == ["usa"], 10, "force-down eur")
    fleet.stop("ns1")
    fleet.start("ns1")
    assert fleet.answer("ns1") == ["usa"]
    st, doc = fedtest.http(fleet.ports["ns1"][1], "GET", "/v1/intents")
    assert st == 200 and [i["kind"] for i in doc["intents"]] == ["force-down"], doc
    assert doc["digest"]["active_intents"] == [doc["intents"][0]["id"]]
    # A corrupt state file falls back to .prev and still holds the intent.
    path = os.path.join(str(fleet.tmp), "ns1-state.json")
    fleet.push(web_doc(), names=("ns1",))  # one more write: .prev has the intent
    fleet.stop("ns1")
    with open(path, "w") as f:
        f.write('{"version": 1, "docu')
    fleet.start("ns1")
    assert fleet.answer("ns1") == ["usa"]
    assert os.path.exists(path + ".corrupt")


def test_intent_expiry_and_kinds(fleet):
    p = fleet.ctl("intent", "add", "force-down", "eur", "--for", "2s", "--reason", "a short one")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: fleet.answer("ns1") == ["usa"] and fleet.answer("ns2") == ["usa"], 10,
             "force-down")
    # Expired on both by their own clocks, without anyone asking.
    wait_for(lambda: fleet.answer("ns1") == ["eur"] and fleet.answer("ns2") == ["eur"], 15,
             "the intent to expire")
    p = fleet.ctl("intent", "list")
    assert "expired" in p.stdout, p.stdout
    # Evacuate us-east-1: us clients go elsewhere; it needs an expiry.
    p = fleet.ctl("intent", "add", "evacuate", "us-east-1", "--reason", "zonal shift")
    assert p.returncode == 1 and "evacuation needs an expiry" in p.stderr, p.stderr
    p = fleet.ctl("intent", "add", "evacuate", "us-east-1", "--for", "1h", "--reason", "shift")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: fleet.answer("ns2", ecs=US_ECS) == ["eur"], 10, "the evacuation")
    ev = json.loads(fleet.ctl("intent", "list", "--json").stdout)["intents"]
    evid = next(i["id"] for i in ev if i["kind"] == "evacuate")
    p = fleet.ctl("intent", "remove", evid)
    assert p.returncode == 0 and p.stdout.count("removed") == 2, p.stdout
    wait_for(lambda: fleet.answer("ns2", ecs=US_ECS) == ["usa"], 10, "the evacuation's end")
    # Weight 0 puts usa on standby for default/web.
    p = fleet.ctl("intent", "add", "weight", "usa", "0", "--service", "default/web",
                  "--reason", "standby")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: fleet.answer("ns1", ecs=US_ECS) == ["eur"], 10, "usa on standby")
    # What the name servers refuse is reported with their reason.
    p = fleet.ctl("drain", "mars")
    assert p.returncode == 3 and 'unknown member "mars"' in p.stderr, p.stderr
    p = fleet.ctl("intent", "add", "nap", "usa", "--reason", "x")
    assert p.returncode == 1 and "unknown kind" in p.stderr
    p = fleet.ctl("intent", "remove", "no-such-intent")
    assert p.returncode == 3 and "no instance holds intent no-such-intent" in p.stderr


def test_check_config(fleet, tmp_path):
    exe = fedtest.binary("fedgslb-dnsd")
    p = fedtest.run([exe, "--config", fleet.path, "--check-config"])
    assert p.returncode == 1
    assert ("deployment.name_servers lists ns1, ns2: start with --instance NAME (or "
            "FEDGSLB_INSTANCE=NAME)") in p.stderr
    p = fedtest.run([exe, "--config", fleet.path, "--check-config", "--instance", "ns2"])
    assert p.returncode == 0 and "instance ns2" in p.stdout, p.stderr
    env = dict(os.environ, FEDGSLB_INSTANCE="ns1")
    p = fedtest.run([exe, "--config", fleet.path, "--check-config"], env=env)
    assert p.returncode == 0 and "instance ns1" in p.stdout, p.stderr
    p = fedtest.run([exe, "--config", fleet.path, "--check-config", "--instance", "ns9"])
    assert p.returncode == 1 and "--instance ns9: not in deployment.name_servers" in p.stderr
    # A CIDR mapped to two regions, and an overlap of two regions (a warning).
    conf = json.loads(json.dumps(fleet.conf))
    conf["client_networks"].append({"cidr": "10.1.0.0/16", "region": "eu-west-1"})
    path = fedtest.write_config(tmp_path, conf, "twice.json")
    p = fedtest.run([exe, "--config", path, "--check-config", "--instance", "ns1"])
    assert p.returncode == 1, p.stdout
    assert "client_networks[" in p.stderr and "is mapped to eu-west-1 here and to us-east-1" \
        in p.stderr, p.stderr
    conf["client_networks"][-1]["cidr"] = "10.1.7.0/24"
    path = fedtest.write_config(tmp_path, conf, "overlap.json")
    p = fedtest.run([exe, "--config", path, "--check-config", "--instance", "ns1"])
    assert p.returncode == 0, p.stderr
    assert "10.1.7.0/24 (eu-west-1) lies inside" in p.stderr
    p = ctl("check-config", config=path)
    assert p.returncode == 0 and "warning:" in p.stderr and "lies inside" in p.stderr, p.stderr
    # Two name servers on one control address.
    conf = json.loads(json.dumps(fleet.conf))
    conf["deployment"]["name_servers"]["ns2"]["control"] = \
        conf["deployment"]["name_servers"]["ns1"]["control"]
    path = fedtest.write_config(tmp_path, conf, "collide.json")
    p = ctl("check-config", config=path)
    assert p.returncode == 1
    assert "deployment.name_servers.ns2.control: 127.0.0.1:" in p.stderr
    assert "is already deployment.name_servers.ns1.control" in p.stderr
    # The state directory of an instance that does not exist.
    conf = json.loads(json.dumps(fleet.conf))
    conf["deployment"]["name_servers"]["ns1"]["state_file"] = str(tmp_path / "nope" / "s.json")
    path = fedtest.write_config(tmp_path, conf, "nodir.json")
    p = fedtest.run([exe, "--config", path, "--check-config", "--instance", "ns1"])
    assert p.returncode == 1 and "does not exist" in p.stderr, p.stderr
