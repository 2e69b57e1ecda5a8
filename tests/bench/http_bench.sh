#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# http_bench.sh [--quick] [--out FILE] [--no-install] [--no-build] [--proxy PATH] [driver options...]
#
# HTTP proxy benchmark: fedgslb-proxy side by side with HAProxy and nginx
# (Debian packages), and the backend directly, measured with wrk (and
# openssl s_time for serial TLS connections), over plain HTTP and TLS 1.3;
# each proxy alone on core 0, the load generator and the static backend
# (nginx, a 1 KiB file) on core 1.
# Installs what is missing (apt-get, as root), builds build/fedgslb-proxy if
# it is missing, then runs tests/bench/http_bench.py (see
# tests/bench/README.md; `http_bench.sh --help` lists the driver options).
#
# Not part of the test suite: it asserts nothing about timings and exits 0
# whatever the figures. Every server it starts runs from a temporary
# directory on 127.0.0.1 ports 25401..25407 and is stopped when the script
# ends, however it ends.
set -euo pipefail

cd "$(dirname "$0")/../.."
repo=$(pwd)

install=1
build=1
proxy="$repo/build/fedgslb-proxy"
want_proxy=1
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    --proxy) proxy="${args[$((i + 1))]:-}" ;;
    --proxy=*) proxy="${args[$i]#--proxy=}" ;;
    --targets) [[ ",${args[$((i + 1))]:-}," == *,fedgslb,* ]] || want_proxy=0 ;;
    --targets=*) [[ ",${args[$i]#--targets=}," == *,fedgslb,* ]] || want_proxy=0 ;;
    -h | --help) exec /usr/bin/python3 tests/bench/http_bench.py --help ;;
    esac
done

# ---- peers and tools from Debian -------------------------------------------
declare -A pkg_of=([haproxy]=haproxy [nginx]=nginx-light [wrk]=wrk [taskset]=util-linux)
missing=()
for bin in haproxy nginx wrk taskset; do
    if ! command -v "$bin" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$bin ]]; then
        missing+=("${pkg_of[$bin]}")
    fi
done
if ((${#missing[@]})); then
    if ((!install)); then
        echo "http_bench: missing ${missing[*]} (and --no-install given)" >&2
        exit 2
    fi
    if ((EUID != 0)); then
        echo "http_bench: missing ${missing[*]}: run as root, or: apt-get install -y ${missing[*]}" >&2
        exit 2
    fi
    echo "http_bench: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || true
    apt-get install -y -qq "${missing[@]}" >/dev/null
    # The packages enable and may start system instances (nginx on port 80,
    # haproxy from /etc/haproxy); ours use their own configs and ports, so stop
    # only the ones we just installed.
    for p in "${missing[@]}"; do
        case "$p" in
        haproxy | nginx-light)
            svc=${p%-light}
            if [[ -d /run/systemd/system ]]; then
                systemctl stop "$svc" >/dev/null 2>&1 || true
                systemctl disable "$svc" >/dev/null 2>&1 || true
            else
                service "$svc" stop >/dev/null 2>&1 || true
            fi
            ;;
        esac
    done
fi

# ---- fedgslb-proxy ---------------------------------------------------------
if ((want_proxy)) && [[ ! -x "$proxy" ]]; then
    if ((build)) && [[ "$proxy" == "$repo/build/fedgslb-proxy" ]]; then
        echo "http_bench: building build/fedgslb-proxy" >&2
        scripts/build.sh build >&2 || echo "http_bench: build failed; fedgslb-proxy will be skipped" >&2
    fi
fi

# ---- run, and never leave a server behind ------------------------------------
# shellcheck source=tests/bench/bench_run.sh
. tests/bench/bench_run.sh
bench_run http tests/bench/http_bench.py --proxy "$proxy" "$@"
