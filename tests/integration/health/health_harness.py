# SPDX-License-Identifier: Apache-2.0
"""Shared set-up of the fedgslb-health system tests: three fake member API
servers (fakekube) behind one kubeconfig with three contexts (token + CA data,
insecure-skip-tls-verify, client certificate), a federation config whose
health section points at them, and the real fedgslb-health daemon with fast
test timings. Helpers poll GET /v1/state until a condition holds."""

import json
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))

import fakekube
import fedtest

STYLES = {"usa": "token-ca-data", "eur": "insecure", "jpn": "client-cert"}

# Test timings (health.api): fast API health checks and retries, short watch
# streams, two objects per list page.
FAST_API = {
    "readyz_interval_ms": 200,
    "readyz_timeout_ms": 400,
    "fall": 3,
    "rise": 1,
    "backoff_min_ms": 100,
    "backoff_max_ms": 800,
    "watch_timeout_s": 30,
    "list_timeout_ms": 1500,
    "list_limit": 2,
}


def health_config(tmp, kubeconfig, ctl_port, services=None, members=None, proxy=None,
                  check=None):
    """A federation config for fedgslb-health alone (no dnsd section).

    `check` is every service's data-plane check; the default, type "none",
    keeps these tests about the Kubernetes side (the load-balancer addresses
    of the fake services are documentation addresses nothing answers on).
    """
    tmp = str(tmp)
    check = check if check is not None else {"type": "none"}
    services = services if services is not None else {"default/web": {"port": 80}}
    services = {k: dict(v, check=v.get("check", check)) for k, v in services.items()}
    mem = {}
    for name, m in fedtest.MEMBERS.items():
        if members is not None and name not in members:
            continue
        e = dict(m)
        e["kubeconfig"] = kubeconfig
        e["context"] = name
        if proxy and name in proxy:
            e["lb"] = {"mode": "proxy", "address": proxy[name]}
        mem[name] = e
    return {
        "federation": fedtest.FEDERATION,
        "zone": fedtest.ZONE,
        "regions": fedtest.REGIONS,
        "members": mem,
        "services": services,
        "allow_addresses": fedtest.ALLOW_LOOPBACK,
        "health": {
            "vantage": "us-east-1",
            "default_check": check,
            "state_file": os.path.join(tmp, "health-state.json"),
            "control": {"listen": "127.0.0.1:%d" % ctl_port},
            "api": dict(FAST_API),
        },
    }


class Cluster:
    """Three fake members, a kubeconfig and a running fedgslb-health."""

    def __init__(self, tmp, proxy=None, env=None, services=None):
        self.tmp = str(tmp)
        self.fakes = {}
        for name in fedtest.MEMBERS:
            fk = fakekube.FakeKube(name, self.tmp, client_cert_auth=(STYLES[name] == "client-cert"))
            fk.bookmark_interval = 0.5
            self.fakes[name] = fk
        self.kubeconfig = os.path.join(self.tmp, "kubeconfig.yaml")
        fakekube.write_kubeconfig(self.kubeconfig,
                                  [(n, fk, STYLES[n]) for n, fk in self.fakes.items()])
        self.ctl_port = fedtest.free_port(ipv6=False)
        self.conf = health_config(self.tmp, self.kubeconfig, self.ctl_port, services=services,
                                  proxy=proxy)
        self.config_path = fedtest.write_config(self.tmp, self.conf, "health.json")
        self.env = dict(env or {})
        self.daemon = None

    def start_fakes(self):
        for fk in self.fakes.values():
            fk.start()
        return self

    def start(self, level="debug", log_name="health.log"):
        self.daemon = fedtest.start_health(self.config_path, os.path.join(self.tmp, log_name),
                                           self.ctl_port, self.tmp, env=self.env, level=level)
        return self

    def close(self):
        err = None
        if self.daemon is not None:
            try:
                fedtest.finish(self.daemon)
            except AssertionError as e:
                err = e
            self.daemon = None
        for fk in self.fakes.values():
            try:
                fk.stop()
            except Exception:  # teardown goes on
                pass
        if err is not None:
            raise err

    def state(self):
        st, doc = fedtest.http(self.ctl_port, "GET", "/v1/state")
        assert st == 200, (st, doc)
        return doc

    def metrics(self):
        st, text = fedtest.http(self.ctl_port, "GET", "/metrics")
        assert st == 200, (st, text)
        return fedtest.parse_metrics(text)

    def log(self):
        return self.daemon.log_text() if self.daemon is not None else ""

    def wait(self, pred, timeout=1.0, what="condition"):
        """Polls GET /v1/state until pred(doc) is truthy; returns the document."""
        deadline = time.monotonic() + timeout * fedtest.SLOW
        doc = None
        while True:
            st, doc = fedtest.http(self.ctl_port, "GET", "/v1/state")
            if st == 404:
                doc = None  # nothing published yet: members still listing
            else:
                assert st == 200, (st, doc)
            try:
                if pred(doc):
                    return doc
            except (KeyError, TypeError, IndexError, AttributeError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %.1fs waiting for %s; state:\n%s\nlog tail:\n%s"
                                     % (timeout, what, json.dumps(doc, indent=1, sort_keys=True),
                                        self.log()[-4000:]))
            time.sleep(0.02)

    def wait_log(self, text, timeout=5.0, start=0):
        deadline = time.monotonic() + timeout * fedtest.SLOW
        while time.monotonic() < deadline:
            if text in self.log()[start:]:
                return
            time.sleep(0.05)
        raise AssertionError("log line %r not seen; log tail:\n%s" % (text, self.log()[-4000:]))


def entry(doc, svc, member):
    """services[svc].members[member] or None."""
    return doc.get("services", {}).get(svc, {}).get("members", {}).get(member)


def api(doc, member):
    return doc["members"][member]["api"]


def validate(doc):
    """The document is a valid state document v1 (the same checks dnsd applies)."""
    assert doc["version"] == 1
    assert isinstance(doc["generation"], int) and doc["generation"] > 0
    assert doc["generated_at"].endswith("Z")
    for key, svc in doc.get("services", {}).items():
        assert "/" in key
        for m, e in svc["members"].items():
            assert m in doc["members"], m
            assert isinstance(e["healthy"], bool)
            assert e["pending"] is False
            assert isinstance(e["reason"], str) and e["reason"]
