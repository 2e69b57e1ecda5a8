# SPDX-License-Identifier: Apache-2.0
"""Operator intents in the distributed mode (etcd_chain.py): fedgslbctl
writes each intent to <prefix><federation>/intents/<id> in a real
three-node etcd cluster, both fedgslb-dnsd apply it from their watch as they
would a push; a removal writes the tombstone; a name server restarted
relists them; intent pushes to a name server are refused."""

import json
import subprocess
import time

import pytest

import etcd_cluster
import fedtest
from etcd_chain import REGIONS, EtcdChain

pytestmark = pytest.mark.skipif(not etcd_cluster.available(), reason="etcd-server not installed")

HOME = {"us-east-1": "usa", "eu-west-1": "eur", "ap-northeast-1": "jpn"}
INTENTS = "/fedgslb/myfed/intents/"


@pytest.fixture
def bed(tmp_path):
    c = EtcdChain(tmp_path).start()
    try:
        c.settle(HOME)
        c.ctl_path = fedtest.write_config(c.tmp, c.conf, "fedgslbctl.json")
        yield c
    finally:
        c.close()


def fedgslbctl(bed, *args):
    p = subprocess.run([fedtest.binary("fedgslbctl"), "--config", bed.ctl_path] + list(args),
                       capture_output=True, text=True, timeout=30)
    return p


def active_intents(bed, ns):
    ctl = bed.ctl if ns == 1 else bed.ctl2
    st, doc = fedtest.http(ctl.port, "GET", "/v1/intents", token=fedtest.TOKEN, timeout=2)
    assert st == 200, doc
    return sorted(i["id"] for i in doc["intents"] if i["status"] == "active")


def test_drain_through_etcd_reaches_both_and_survives_a_restart(bed):
    t0 = time.monotonic()
    p = fedgslbctl(bed, "drain", "usa")
    assert p.returncode == 0, (p.stdout, p.stderr)
    bed.wait_both("us-east-1", "eur", timeout=10)
    took = time.monotonic() - t0
    print("fedgslbctl drain -> both name servers answer differently through etcd: %.3f s" % took)
    assert "written at revision" in p.stdout and "usa drained" in p.stdout, p.stdout
    keys = bed.cluster.get_prefix(INTENTS)
    assert len(keys) == 1, keys
    (key, value), = keys.items()
    intent = json.loads(value)
    assert key == INTENTS + intent["id"] and intent["kind"] == "drain" and intent["member"] == "usa"
    assert active_intents(bed, 1) == active_intents(bed, 2) == [intent["id"]]
    # fedgslbctl intent list reads etcd.
    p = fedgslbctl(bed, "intent", "list")
    assert p.returncode == 0 and intent["id"] in p.stdout and "etcd revision" in p.stdout, p.stdout
    # ns1 restarted: it relists and keeps the drain (its state file is not the source).
    bed.restart_dnsd()
    bed.wait_etcd(lambda s: all(x["up"] for x in s), timeout=20, what="ns1 back on etcd")
    bed.wait_both("us-east-1", "eur", timeout=10)
    assert active_intents(bed, 1) == [intent["id"]]
    # undrain writes the tombstone: both name servers answer with usa again.
    t0 = time.monotonic()
    p = fedgslbctl(bed, "undrain", "usa")
    assert p.returncode == 0, (p.stdout, p.stderr)
    bed.wait_both("us-east-1", "usa", timeout=10)
    print("fedgslbctl undrain -> both name servers answer as before: %.3f s"
          % (time.monotonic() - t0))
    tomb = json.loads(bed.cluster.get(key))
    assert tomb["removed_at"] and tomb["removed_by"], tomb
    assert active_intents(bed, 1) == active_intents(bed, 2) == []
    bed.wait_etcd(lambda s: s[0]["digest"] == s[1]["digest"], timeout=10, what="agreement")


def test_a_deleted_key_removes_and_a_bad_value_changes_nothing(bed):
    p = fedgslbctl(bed, "intent", "add", "drain", "jpn", "--reason", "test")
    assert p.returncode == 0, (p.stdout, p.stderr)
    deadline = time.monotonic() + 10 * fedtest.SLOW
    while not (active_intents(bed, 1) and active_intents(bed, 2)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    held = active_intents(bed, 1)
    # Hostile values: not JSON, an id other than the key's, an unknown member.
    bed.cluster.put(INTENTS + "junk", "{not json")
    bed.cluster.put(INTENTS + "other", json.dumps({
        "id": held[0], "kind": "drain", "member": "eur", "author": "x", "reason": "y",
        "created_at": "2026-01-01T00:00:00Z"}))
    bed.cluster.put(INTENTS + "ghost", json.dumps({
        "id": "ghost", "kind": "drain", "member": "nowhere", "author": "x", "reason": "y",
        "created_at": "2026-01-01T00:00:00Z"}))
    bed.wait_etcd(lambda s: all(x["keys"] == 3 + 4 for x in s), timeout=10, what="four intent keys")
    assert active_intents(bed, 1) == active_intents(bed, 2) == held
    for r in REGIONS:
        if r != "ap-northeast-1":
            assert bed.answers(r) == {"ns1": [HOME[r]], "ns2": [HOME[r]]}
    # The key deleted (etcdctl del): the intent goes on both.
    bed.cluster.delete(INTENTS + held[0])
    deadline = time.monotonic() + 10 * fedtest.SLOW
    while active_intents(bed, 1) or active_intents(bed, 2):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    bed.wait_both("ap-northeast-1", "jpn", timeout=10)


def test_intent_pushes_are_refused(bed):
    body = {"id": "drain-usa-1-0001", "kind": "drain", "member": "usa", "author": "t",
            "reason": "push", "created_at": "2026-01-01T00:00:00Z"}
    st, doc = fedtest.http(bed.ctl_port, "PUT", "/v1/intents/drain-usa-1-0001", body,
                           token=fedtest.TOKEN)
    assert st == 409, (st, doc)
    assert "takes intents from etcd" in doc["error"], doc
    st, doc = fedtest.http(bed.ctl_port, "PUT", "/v1/members/usa/drain", token=fedtest.TOKEN)
    assert st == 409, (st, doc)
    st, doc = fedtest.http(bed.ctl_port, "DELETE", "/v1/intents/drain-usa-1-0001",
                           token=fedtest.TOKEN)
    assert st == 409, (st, doc)
    assert active_intents(bed, 1) == []
    assert bed.answers("us-east-1") == {"ns1": ["usa"], "ns2": ["usa"]}
