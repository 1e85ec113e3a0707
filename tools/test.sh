#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through ctest. Prints the output of
# failing tests and exits non-zero if any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/build.sh
build_dir=${AUTOSYNC_BUILD_DIR:-build}
cd "$build_dir"
# --timeout: a hung test fails instead of holding CI until its limit.
ctest --output-on-failure -j "${AUTOSYNC_JOBS:-2}" --timeout 900 "$@"
