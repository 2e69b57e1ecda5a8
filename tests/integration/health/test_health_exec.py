# SPDX-License-Identifier: Apache-2.0
"""fedgslb-health with kubeconfig exec credential plugins, as kubectl runs
them: member "usa" authenticates with tests/integration/health/exec_plugin.py,
which hands out short-lived tokens that fakekube accepts only until they
expire; member "eur" uses a static token and must keep being watched whatever
usa's plugin does.

- rotation: tokens live 3 s and are refreshed ahead of expiry (the server
  never sees an expired one, nor a request without a token while the first
  run is in flight), with KUBERNETES_EXEC_INFO carrying the cluster
  (provideClusterInfo), stdin /dev/null and no other inherited descriptor
- a 401 (the server stops accepting the plugin's tokens) runs the plugin again
- a failing plugin (exit 1) is reported with its context, command and stderr
- a hanging plugin is killed at the timeout; eur keeps being watched
- a missing command shows the installHint
- the tokens never appear in the daemon's log"""

import json
import os
import time

import pytest

import health_harness as hh
import fakekube
import fedtest
from health_harness import entry

SVC = "default/web"
PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exec_plugin.py")


def q(s):
    return json.dumps(s)  # a JSON string is a YAML flow scalar


def write_kubeconfig(path, usa, eur, plugin_env, command=PLUGIN, api="v1", extra=""):
    b64 = lambda s: __import__("base64").b64encode(s.encode()).decode()  # noqa: E731
    env = "".join("      - name: %s\n        value: %s\n" % (k, q(v))
                  for k, v in sorted(plugin_env.items()))
    text = """apiVersion: v1
kind: Config
clusters:
- name: usa
  cluster:
    server: %s
    certificate-authority-data: %s
- name: eur
  cluster:
    server: %s
    certificate-authority-data: %s
contexts:
- name: usa
  context: {cluster: usa, user: usa-exec}
- name: eur
  context: {cluster: eur, user: eur-admin}
current-context: usa
users:
- name: usa-exec
  user:
    exec:
      apiVersion: client.authentication.k8s.io/%s
      command: %s
      args: ["--cluster", "usa"]
      env:
%s      interactiveMode: Never
      provideClusterInfo: true
      installHint: %s
%s- name: eur-admin
  user:
    token: %s
""" % (usa.url, b64(usa.ca_pem), eur.url, b64(eur.ca_pem), api, q(command), env,
       q("Install fake-login: see https://example.test/fake-login"), extra, eur.token)
    with open(path, "w") as f:
        f.write(text)


class Env:
    def __init__(self, tmp, mode="ok", ttl=3, command=PLUGIN, env=None, cert=False):
        self.tmp = str(tmp)
        self.usa = fakekube.FakeKube("usa", self.tmp, client_cert_auth=cert)
        self.eur = fakekube.FakeKube("eur", self.tmp)
        for fk in (self.usa, self.eur):
            fk.bookmark_interval = 0.5
        self.usa.token_secret = "secret-one-" + os.urandom(4).hex()
        self.usa.token = "static-token-nobody-has-" + os.urandom(8).hex()
        self.secret_file = os.path.join(self.tmp, "plugin.secret")
        self.control = os.path.join(self.tmp, "plugin.control")
        self.plugin_log = os.path.join(self.tmp, "plugin.log")
        with open(self.secret_file, "w") as f:
            f.write(self.usa.token_secret)
        self.set_mode(mode)
        self.kubeconfig = os.path.join(self.tmp, "kubeconfig.yaml")
        penv = {"PLUGIN_SECRET_FILE": self.secret_file, "PLUGIN_TTL": str(ttl),
                "PLUGIN_CONTROL": self.control, "PLUGIN_LOG": self.plugin_log}
        if cert:
            penv.update(PLUGIN_CERT=self.usa.client_cert_file, PLUGIN_KEY=self.usa.client_key_file)
        write_kubeconfig(self.kubeconfig, self.usa, self.eur, penv, command=command)
        c = hh.Cluster.__new__(hh.Cluster)
        c.tmp = self.tmp
        c.fakes = {"usa": self.usa, "eur": self.eur}
        c.kubeconfig = self.kubeconfig
        c.ctl_port = fedtest.free_port(ipv6=False)
        c.conf = hh.health_config(c.tmp, self.kubeconfig, c.ctl_port, members=["usa", "eur"])
        c.conf["health"]["exec_timeout_ms"] = 1500
        c.config_path = fedtest.write_config(c.tmp, c.conf, "health.json")
        c.env = dict(env or {})
        c.daemon = None
        self.c = c
        for fk in (self.usa, self.eur):
            fk.start()
            fk.add_service("default", "web")
            fk.set_endpoints("default", "web", ready=2)

    def set_mode(self, mode):
        with open(self.control, "w") as f:
            f.write(mode + "\n")

    def runs(self):
        if not os.path.exists(self.plugin_log):
            return []
        with open(self.plugin_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def bump(self, member, ready, timeout=3):
        self.c.fakes[member].set_endpoints("default", "web", ready=ready)
        return self.c.wait(lambda d: entry(d, SVC, member)["ready_endpoints"] == ready,
                           timeout=timeout, what="%s ready=%d" % (member, ready))

    def close(self):
        self.c.close()


@pytest.fixture
def make_env(tmp_path):
    envs = []

    def make(**kw):
        e = Env(tmp_path, **kw)
        envs.append(e)
        return e
    yield make
    for e in envs:
        e.close()


def synced(e, member):
    return e.c.wait(lambda d: entry(d, SVC, member) and hh.api(d, member) == "ok", timeout=8,
                    what="%s synced" % member)


def test_exec_rotation_refreshes_ahead_of_expiry(make_env):
    e = make_env(ttl=3)
    e.c.start()
    synced(e, "usa")
    synced(e, "eur")
    # Three token lifetimes: the plugin ran again ahead of each expiry and the
    # server never had to refuse an expired token.
    for i in range(4):
        e.bump("usa", 3 + i, timeout=4)
        time.sleep(2.5)
    e.bump("usa", 9, timeout=4)
    runs = e.runs()
    assert len(runs) >= 4, runs
    assert e.usa.expired_rejections == 0
    assert hh.api(e.c.state(), "usa") == "ok"
    # Not even at startup: requests wait for the plugin's first run instead
    # of going out without a credential (which would earn 401s and backoff).
    assert [r for r in e.usa.requests if r["status"] == 401] == []
    assert "credentials rejected" not in e.c.log()
    r = runs[0]
    assert r["argv"] == ["--cluster", "usa"] and r["stdin_tty"] is False
    assert r["stdin"] == "/dev/null"
    # Only stdin, stdout, stderr (and the descriptor of the listing itself):
    # no API socket or control listener of the daemon leaks into the plugin.
    assert len([fd for fd in r["fds"] if fd > 2]) <= 1, r["fds"]
    assert r["info"]["kind"] == "ExecCredential"
    assert r["info"]["apiVersion"] == "client.authentication.k8s.io/v1"
    assert r["info"]["spec"]["interactive"] is False
    cl = r["info"]["spec"]["cluster"]
    assert cl["server"] == e.usa.url
    assert __import__("base64").b64decode(cl["certificate-authority-data"]).decode() == \
        e.usa.ca_pem
    # The requests carried plugin tokens, and none of them reached the log.
    log = e.c.log()
    assert e.usa.signed_seen and all(ok for ok in e.usa.signed_seen.values())
    for tok in e.usa.signed_seen:
        assert tok not in log and tok.split(".")[2] not in log
    assert "exec credential plugin: new credential, expires in" in log


def test_exec_client_certificate(make_env):
    # The server requires a client certificate; only the plugin has one.
    e = make_env(mode="cert", cert=True, ttl=600)
    e.c.start()
    synced(e, "usa")
    e.bump("usa", 5)
    assert {r["user"] for r in e.usa.requests if r["status"] == 200} == {"fedgslb-health"}
    assert len(e.runs()) == 1
    assert "BEGIN" not in e.c.log()


def test_exec_401_runs_plugin_again(make_env):
    e = make_env(ttl=600)
    e.c.start()
    synced(e, "usa")
    before = len(e.runs())
    # The server revokes every token of the old key; the plugin hands out
    # tokens of the new key from its next run on.
    new = "secret-two-" + os.urandom(4).hex()
    with open(e.secret_file, "w") as f:
        f.write(new)
    e.usa.token_secret = new
    e.usa.drop_streams()
    e.bump("usa", 6, timeout=6)
    assert len(e.runs()) == before + 1, e.runs()
    assert "credential rejected (401); running the exec plugin again" in e.c.log()
    e.c.wait(lambda d: hh.api(d, "usa") == "ok", timeout=4, what="usa ok")


def test_exec_failing_plugin_reported_then_recovers(make_env):
    e = make_env(mode="fail")
    e.c.start()
    synced(e, "eur")
    e.c.wait_log("exec credential plugin failed: exit status 1; stderr: error: the identity "
                 "provider said no (token endpoint 403) | second line of detail", timeout=5)
    log = e.c.log()
    assert "context=usa command=%s:" % PLUGIN in log
    e.c.wait(lambda d: hh.api(d, "usa") in ("unauthorized", "stale"), timeout=5,
             what="usa not ok while its plugin fails")
    e.set_mode("ok")
    synced(e, "usa")
    e.bump("usa", 4, timeout=5)


@pytest.mark.parametrize("mode,why", [
    ("garbage", "output is not a JSON object"),
    ("wrong-version", "exec plugin is configured to use API version "
                      "client.authentication.k8s.io/v1, plugin returned version "
                      "client.authentication.k8s.io/v1alpha1"),
    ("huge", "output exceeds 1048576 bytes (killed)"),
    ("expired", "exec plugin returned an expired credential"),
])
def test_exec_bad_output_is_refused(make_env, mode, why):
    e = make_env(mode=mode)
    e.c.start()
    synced(e, "eur")
    e.c.wait_log(why, timeout=6)
    assert hh.api(e.c.state(), "usa") != "ok"
    # Failed runs back off (1 s, 2 s, ...): no tight loop of plugin runs.
    time.sleep(2)
    assert len(e.runs()) <= 3, e.runs()


def test_exec_hanging_plugin_is_killed_and_others_keep_going(make_env):
    e = make_env(mode="hang")
    e.c.start()
    synced(e, "eur")
    t0 = time.monotonic()
    # While usa's plugin hangs, eur's changes keep arriving promptly.
    e.bump("eur", 5, timeout=1)
    e.bump("eur", 1, timeout=1)
    e.c.wait_log("command=%s: exec credential plugin failed: timed out after 1500ms (killed)"
                 % PLUGIN, timeout=6)
    assert time.monotonic() - t0 < 6
    hung = [r["pid"] for r in e.runs() if r["mode"] == "hang"]
    assert hung
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and os.path.exists("/proc/%d" % hung[0]):
        time.sleep(0.05)
    assert not os.path.exists("/proc/%d" % hung[0]), "the hung plugin was not killed and reaped"
    e.set_mode("ok")
    synced(e, "usa")


def test_exec_missing_command_shows_install_hint(make_env):
    e = make_env(command="/nonexistent/bin/fake-login")
    e.c.start()
    synced(e, "eur")
    e.c.wait_log("context=usa command=/nonexistent/bin/fake-login: exec credential plugin "
                 "failed: executable /nonexistent/bin/fake-login not found; It looks like you "
                 "are trying to use a client-go credential plugin that is not installed. "
                 "Install fake-login: see https://example.test/fake-login", timeout=5)
