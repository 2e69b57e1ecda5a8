#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A client-go exec credential plugin for the tests: prints an ExecCredential
holding a short-lived token that fakekube accepts until it expires
(fakekube.sign_token).

Environment (from the kubeconfig's exec.env):
    PLUGIN_SECRET   the fake API server's token_secret (or PLUGIN_SECRET_FILE:
                    a file holding it, read at every run)
    PLUGIN_TTL      token lifetime in seconds (default 4)
    PLUGIN_CONTROL  optional file whose first word picks the behaviour of this
                    run: ok (default), fail (exit 1 with a message on stderr),
                    hang (sleep forever), garbage (not JSON), wrong-version
                    (another apiVersion), huge (2 MiB on stdout), expired (a
                    token that expired a minute ago), cert (a
                    client certificate from PLUGIN_CERT/PLUGIN_KEY files)
    PLUGIN_LOG      optional file: one JSON line per run with the run's
                    KUBERNETES_EXEC_INFO, argv and whether stdin was a TTY
"""

import json
import os
import sys
import time

import fakekube


def main():
    # Descriptors inherited from fedgslb-health (the listing itself opens one).
    fds = sorted(int(x) for x in os.listdir("/proc/self/fd"))
    info = json.loads(os.environ.get("KUBERNETES_EXEC_INFO") or "{}")
    mode = "ok"
    ctl = os.environ.get("PLUGIN_CONTROL")
    if ctl and os.path.exists(ctl):
        with open(ctl) as f:
            mode = (f.read().split() or ["ok"])[0]
    if os.environ.get("PLUGIN_LOG"):
        with open(os.environ["PLUGIN_LOG"], "a") as f:
            f.write(json.dumps({"t": time.time(), "mode": mode, "info": info,
                                "argv": sys.argv[1:], "stdin_tty": os.isatty(0), "fds": fds,
                                "stdin": os.readlink("/proc/self/fd/0"),
                                "pid": os.getpid()}) + "\n")
    if mode == "fail":
        sys.stderr.write("error: the identity provider said no (token endpoint 403)\n"
                         "second line of detail\n")
        return 1
    if mode == "hang":
        while True:
            time.sleep(60)
    if mode == "garbage":
        sys.stdout.write("this is { not json\n")
        return 0
    if mode == "huge":
        sys.stdout.write("x" * (2 * 1024 * 1024))
        return 0
    api = info.get("apiVersion", "client.authentication.k8s.io/v1")
    if mode == "wrong-version":
        api = "client.authentication.k8s.io/v1alpha1"
    ttl = float(os.environ.get("PLUGIN_TTL", "4")) if mode != "expired" else -60
    exp = time.time() + ttl
    status = {"expirationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))}
    if mode == "cert":
        with open(os.environ["PLUGIN_CERT"]) as f:
            status["clientCertificateData"] = f.read()
        with open(os.environ["PLUGIN_KEY"]) as f:
            status["clientKeyData"] = f.read()
    else:
        secret = os.environ.get("PLUGIN_SECRET")
        if os.environ.get("PLUGIN_SECRET_FILE"):
            with open(os.environ["PLUGIN_SECRET_FILE"]) as f:
                secret = f.read().strip()
        status["token"] = fakekube.sign_token(secret, exp)
    json.dump({"kind": "ExecCredential", "apiVersion": api, "spec": {}, "status": status},
              sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
