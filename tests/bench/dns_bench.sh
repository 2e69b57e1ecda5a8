#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# dns_bench.sh [--quick] [--out FILE] [--no-install] [--no-build] [driver options...]
#
# DNS benchmark: fedgslb-dnsd side by side with NSD, Knot DNS and gdnsd (Debian
# packages), measured with dnsperf, each server pinned to one core and dnsperf
# to another. Installs what is missing (apt-get, as root), builds
# build/fedgslb-dnsd if it is missing, then runs tests/bench/dns_bench.py
# (see tests/bench/README.md; `dns_bench.sh --help` lists the driver options).
#
# Not part of the test suite: it asserts nothing about timings. Every server
# it starts runs in a temporary directory on 127.0.0.1 ports 25301..25306 and
# is stopped when the script ends, however it ends.
set -euo pipefail

cd "$(dirname "$0")/../.."
repo=$(pwd)

install=1
build=1
fedgslb="$repo/build/fedgslb-dnsd"
want_fedgslb=1
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    --fedgslb) fedgslb="${args[$((i + 1))]:-}" ;;
    --fedgslb=*) fedgslb="${args[$i]#--fedgslb=}" ;;
    --servers) [[ ",${args[$((i + 1))]:-}," == *,fedgslb* ]] || want_fedgslb=0 ;;
    --servers=*) [[ ",${args[$i]#--servers=}," == *,fedgslb* ]] || want_fedgslb=0 ;;
    -h | --help) exec /usr/bin/python3 tests/bench/dns_bench.py --help ;;
    esac
done

# ---- peers and tools from Debian -------------------------------------------
declare -A pkg_of=([nsd]=nsd [knotd]=knot [gdnsd]=gdnsd [dnsperf]=dnsperf [taskset]=util-linux)
missing=()
for bin in nsd knotd gdnsd dnsperf taskset; do
    if ! command -v "$bin" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$bin ]]; then
        missing+=("${pkg_of[$bin]}")
    fi
done
if ! /usr/bin/python3 -c 'import dns.message' 2>/dev/null; then
    missing+=(python3-dnspython)
fi
if ((${#missing[@]})); then
    if ((!install)); then
        echo "dns_bench: missing ${missing[*]} (and --no-install given)" >&2
        exit 2
    fi
    if ((EUID != 0)); then
        echo "dns_bench: missing ${missing[*]}: run as root, or: apt-get install -y ${missing[*]}" >&2
        exit 2
    fi
    echo "dns_bench: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || true
    apt-get install -y -qq "${missing[@]}" >/dev/null
    # The packages enable and may start system instances on port 53; ours use
    # their own configs and ports, so stop only the ones we just installed.
    for p in "${missing[@]}"; do
        case "$p" in
        nsd | knot | gdnsd)
            if [[ -d /run/systemd/system ]]; then
                systemctl stop "$p" >/dev/null 2>&1 || true
                systemctl disable "$p" >/dev/null 2>&1 || true
            else
                service "$p" stop >/dev/null 2>&1 || true
            fi
            ;;
        esac
    done
fi

# ---- fedgslb-dnsd ----------------------------------------------------------
if ((want_fedgslb)) && [[ ! -x "$fedgslb" ]]; then
    if ((build)) && [[ "$fedgslb" == "$repo/build/fedgslb-dnsd" ]]; then
        echo "dns_bench: building build/fedgslb-dnsd" >&2
        scripts/build.sh build >&2 || echo "dns_bench: build failed; fedgslb-dnsd will be skipped" >&2
    fi
fi

# ---- run, and never leave a server behind ------------------------------------
# shellcheck source=tests/bench/bench_run.sh
. tests/bench/bench_run.sh
bench_run dns tests/bench/dns_bench.py --fedgslb "$fedgslb" "$@"
