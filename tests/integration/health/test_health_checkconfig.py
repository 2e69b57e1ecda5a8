# SPDX-License-Identifier: Apache-2.0
"""fedgslb-health --check-config loads the configuration and every member's
kubeconfig context: a good set passes; a missing context, an unreadable CA
file or an exec credential plugin fails with the member, the context and the
field named, and no secret in the output."""

import os
import subprocess

import pytest

import health_harness as hh
import fakekube
import fedtest


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("hcheck"))
    # Certificates only: --check-config never contacts the servers.
    fks = {n: fakekube.FakeKube(n, tmp, client_cert_auth=(hh.STYLES[n] == "client-cert"))
           for n in fedtest.MEMBERS}
    return tmp, fks


def check(tmp, kubeconfig, env=None, nofile=None, **conf_over):
    exe = fedtest.binary("fedgslb-health")
    conf = hh.health_config(tmp, kubeconfig, fedtest.free_port(ipv6=False))
    conf["members"].update(conf_over.get("members", {}))
    path = fedtest.write_config(tmp, conf, "check.json")
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([exe, "--config", path, "--check-config"], capture_output=True,
                       text=True, timeout=20 * fedtest.SLOW, env=e, cwd=tmp,
                       preexec_fn=fedtest.nofile_preexec(nofile))
    return p.returncode, p.stdout + p.stderr


def write_std(tmp, fks, name="kubeconfig.yaml"):
    path = os.path.join(tmp, name)
    fakekube.write_kubeconfig(path, [(n, fk, hh.STYLES[n]) for n, fk in fks.items()])
    return path


def test_good_three_contexts(fakes):
    tmp, fks = fakes
    rc, out = check(tmp, write_std(tmp, fks))
    assert rc == 0, out
    assert "config OK" in out and "3 members" in out
    for fk in fks.values():
        assert fk.token not in out


def test_missing_context(fakes):
    tmp, fks = fakes
    kc = write_std(tmp, fks)
    m = dict(fedtest.MEMBERS["eur"], kubeconfig=kc, context="nope")
    rc, out = check(tmp, kc, members={"eur": m})
    assert rc == 1, out
    assert "members.eur" in out
    assert "nope" in out
    assert "not found" in out


def test_unreadable_ca_file(fakes):
    tmp, fks = fakes
    kc = os.path.join(tmp, "kc-cafile.yaml")
    fakekube.write_kubeconfig(kc, [("usa", fks["usa"], "token-ca-file"),
                                   ("eur", fks["eur"], "insecure"),
                                   ("jpn", fks["jpn"], "client-cert")])
    with open(kc) as f:
        text = f.read()
    with open(kc, "w") as f:
        f.write(text.replace(fks["usa"].ca_file, "/nonexistent/dir/ca.crt"))
    rc, out = check(tmp, kc)
    assert rc == 1, out
    assert "members.usa" in out and "usa" in out
    assert "certificate-authority" in out
    assert "/nonexistent/dir/ca.crt" in out
    assert fks["usa"].token not in out


EXEC_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
contexts:
- name: usa
  context: {cluster: c1, user: eks-user}
- name: eur
  context: {cluster: c1, user: tok-user}
- name: jpn
  context: {cluster: c1, user: gcp-user}
current-context: usa
users:
- name: eks-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, prod]
- name: tok-user
  user:
    token: very-secret-token-value
- name: gcp-user
  user:
    auth-provider:
      name: gcp
      config: {access-token: another-secret-value}
"""


def test_exec_loads_and_auth_provider_not_supported(fakes):
    tmp, _ = fakes
    kc = os.path.join(tmp, "kc-exec.yaml")
    with open(kc, "w") as f:
        f.write(EXEC_KUBECONFIG)
    rc, out = check(tmp, kc)
    assert rc == 1, out
    assert "not supported" in out
    # The exec user loads (the plugin runs only when the daemon needs a
    # credential); the auth-provider user is reported with context and user.
    assert "members.usa" not in out
    assert "members.jpn" in out and "gcp-user" in out and "auth-provider" in out
    assert "removed from kubectl" in out
    assert "members.eur" not in out
    assert "very-secret-token-value" not in out and "another-secret-value" not in out
    # An exec section kubectl would refuse is refused here too.
    with open(kc, "w") as f:
        f.write(EXEC_KUBECONFIG.replace("v1beta1", "v1"))
    rc, out = check(tmp, kc)
    assert rc == 1 and "members.usa" in out and "eks-user" in out, out
    assert "interactiveMode must be specified for aws" in out


def test_kubeconfig_env_and_merge(fakes):
    """A member without "kubeconfig" uses $KUBECONFIG (several files merged)."""
    tmp, fks = fakes
    a = os.path.join(tmp, "kc-a.yaml")
    b = os.path.join(tmp, "kc-b.yaml")
    fakekube.write_kubeconfig(a, [("usa", fks["usa"], "token-ca-data")])
    fakekube.write_kubeconfig(b, [("eur", fks["eur"], "insecure"),
                                  ("jpn", fks["jpn"], "client-cert")])
    members = {n: dict(fedtest.MEMBERS[n], context=n) for n in fedtest.MEMBERS}
    rc, out = check(tmp, None, env={"KUBECONFIG": a + ":" + b}, members=members)
    assert rc == 0, out


def test_bad_config_file(fakes):
    tmp, fks = fakes
    kc = write_std(tmp, fks)
    m = dict(fedtest.MEMBERS["eur"], kubeconfig=kc, context="eur", bogus=1)
    rc, out = check(tmp, kc, members={"eur": m})
    assert rc == 1, out
    assert "members.eur.bogus" in out


def test_bug_fd_exhaustion_limit_too_small(fakes):
    """Probes in flight, the members' API connections, the control API and a
    reserve must fit in RLIMIT_NOFILE: the file, the numbers and the fix."""
    tmp, fks = fakes
    kc = write_std(tmp, fks)
    rc, out = check(tmp, kc, nofile=256)
    assert rc == 1, out
    assert ("check.json: health: 512 probes in flight + 3 members x 4 API connections + 0 publish"
            " targets + 65 control + 64 reserve = 653 descriptors, but RLIMIT_NOFILE is 256:"
            " lower it or raise the limit (LimitNOFILE= in the systemd unit)") in out, out
    rc, out = check(tmp, kc, nofile=1024)
    assert rc == 0, out


def test_state_file_and_directory(fakes):
    """--check-config refuses a damaged state file (the daemon would fall back
    to its .prev) and a state directory that does not exist."""
    tmp, fks = fakes
    kc = write_std(tmp, fks)
    state = os.path.join(tmp, "health-state.json")
    with open(state, "w") as f:
        f.write('{"generation": 4')
    try:
        rc, out = check(tmp, kc)
        assert rc == 1, out
        assert out.strip().splitlines()[-1].startswith(state + ": invalid JSON"), out
        assert not os.path.exists(state + ".corrupt")
    finally:
        os.unlink(state)
    conf = hh.health_config(tmp, kc, fedtest.free_port(ipv6=False))
    missing = os.path.join(tmp, "nowhere")
    conf["health"]["state_file"] = os.path.join(missing, "health-state.json")
    path = fedtest.write_config(tmp, conf, "check-dir.json")
    p = subprocess.run([fedtest.binary("fedgslb-health"), "--config", path, "--check-config"],
                       capture_output=True, text=True, timeout=20 * fedtest.SLOW, cwd=tmp)
    assert p.returncode == 1, p.stdout
    assert (f"{missing}/health-state.json: directory {missing} does not exist; create it "
            f"(mkdir -p {missing}) or change the state_file path") in p.stderr, p.stderr
