#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build.sh [DIR [cmake options...]]: configures and builds into DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
# Git keeps no file modes but the executable bit, and the daemons refuse a
# token file that group or others may read (as ssh does a key): the demo's.
chmod 600 conf/*.token
cmake -S . -B "$dir" -DWERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
