#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates the generated parts of docs/ from the code (the suite's
# check_docs fails while they differ): docs/configuration.md from the
# configuration schema tables.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh build >/dev/null
build/fedgslbctl config-reference > docs/configuration.md
echo "docs/configuration.md regenerated"
