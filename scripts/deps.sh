#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages fedgslb needs to build, test and demo.
# Idempotent: installs only what is missing. Must run as root (or via sudo).
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
    libldns-dev libevent-dev libjansson-dev libcurl4-openssl-dev libssl-dev libyaml-dev
    libhttp-parser-dev
    # tests
    libcmocka-dev python3 python3-dnspython python3-pytest
    dnsutils knot-dnsutils ldnsutils dnsperf curl openssl iproute2 procps
    # the status page in a real browser; alert rules (promtool ships in prometheus)
    chromium chromium-driver python3-selenium prometheus
)

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
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's prometheus package starts a system service on :9090; the tests run their
# own on loopback ports, so the system one is only in the way: stop and disable it.
if printf '%s\n' "${missing[@]}" | grep -qx prometheus; then
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/prometheus ]; then
        $SUDO /etc/init.d/prometheus stop >/dev/null 2>&1 || true
        $SUDO update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
fi
