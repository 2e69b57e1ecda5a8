#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, as CI runs it: installs what is missing, then builds
# and runs every test twice (a normal build, then AddressSanitizer +
# UndefinedBehaviorSanitizer), then runs the fuzz targets for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

jobs=$(nproc)
fuzz_seconds=${FUZZ_SECONDS:-30}

echo "== normal build (gcc, -Werror)"
scripts/build.sh build
(cd build && ctest --output-on-failure -j"$jobs")

echo "== ASan + UBSan build"
scripts/build.sh build-asan -DSANITIZE=address,undefined
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$jobs")

echo "== fuzz targets (clang, libFuzzer, ${fuzz_seconds}s each)"
CC=clang scripts/build.sh build-fuzz -DFUZZ=ON -DSANITIZE=address,undefined
(cd build-fuzz && FUZZ_SECONDS=$fuzz_seconds ctest --output-on-failure -L fuzz)
