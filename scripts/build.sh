#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build.sh [DIR [cmake options...]]: configures and builds into DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DWERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
