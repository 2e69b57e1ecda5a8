#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages fedgslb needs to build, test and demo.
# Idempotent: installs only what is missing. Must run as root (or via sudo).
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
    libldns-dev libevent-dev libjansson-dev libcurl4-openssl-dev libssl-dev libyaml-dev
    libhttp-parser-dev libmaxminddb-dev
    # tests
    libcmocka-dev python3 python3-dnspython python3-pytest python3-yaml
    # GeoIP tests write their own .mmdb files (never downloaded)
    libmaxmind-db-writer-perl
    dnsutils knot-dnsutils ldnsutils dnsperf curl openssl iproute2 procps
    # resolver tests run their own unbound on a loopback port (never the system service)
    unbound
    # the distributed mode's tests and demo run their own etcd cluster on loopback
    # (etcd 3.4: the JSON gateway at /v3/); etcdctl for operators
    etcd-server etcd-client
    # the status page in a real browser; alert rules (promtool ships in prometheus)
    chromium chromium-driver python3-selenium prometheus
    # tests/bench/http_bench.sh: the peers and the load generator (their
    # system services are not started, see below)
    haproxy nginx-light wrk
    # instruction and system call counts of the benchmarks (dns_callgrind.py,
    # watch_bench.py --callgrind/--strace)
    valgrind strace
)

# Debian's kubectl (package kubernetes-client) for tests/integration/health/
# test_kubectl.py. When /usr/bin/kubectl already belongs to another package
# (e.g. the Google Cloud SDK's "kubectl"), installing it would fail on that
# file, so it is unpacked to /usr/local/lib/kubernetes-client/ instead, where
# the test looks first.
KUBECTL_DIR=/usr/local/lib/kubernetes-client
kubectl_owner=$(dpkg-query -S /usr/bin/kubectl 2>/dev/null | cut -d: -f1 || true)
if [ -n "$kubectl_owner" ] && [ "$kubectl_owner" != kubernetes-client ]; then
    if [ ! -x "$KUBECTL_DIR/kubectl" ]; then
        [ "$(id -u)" -eq 0 ] || { echo "deps: run as root to unpack kubernetes-client" >&2; exit 1; }
        tmp=$(mktemp -d)
        (cd "$tmp" && apt-get download kubernetes-client >/dev/null &&
            dpkg-deb -x kubernetes-client_*.deb x && mkdir -p "$KUBECTL_DIR" &&
            cp x/usr/bin/kubectl "$KUBECTL_DIR/kubectl")
        rm -rf "$tmp"
    fi
else
    PACKAGES+=(kubernetes-client)
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO=sudo; else
        echo "deps: missing packages (${missing[*]}) and not root: install them as root" >&2
        exit 1
    fi
else
    SUDO=
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq

# Debian's unbound, prometheus, etcd-server, haproxy and nginx packages enable
# and start system services (a resolver on port 53, servers on 9090 and 80,
# etcd on 2379). The tests and benchmarks start their own on
# loopback ports with their own configs, so the packages must not start
# anything: a policy-rc.d that refuses every start during the install (unless
# one is already there, as in containers), then the services disabled and
# stopped in case systemd started them anyway.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
fi
rc=0
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
[ -n "$own_policy" ] && $SUDO rm -f "$policy"
[ "$rc" -eq 0 ] || exit "$rc"
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now unbound.service unbound-resolvconf.service \
        prometheus.service etcd.service haproxy.service nginx.service >/dev/null 2>&1 || true
else
    for svc in prometheus haproxy nginx; do
        [ -x /etc/init.d/$svc ] || continue
        $SUDO /etc/init.d/$svc stop >/dev/null 2>&1 || true
        $SUDO update-rc.d $svc disable >/dev/null 2>&1 || true
    done
fi
