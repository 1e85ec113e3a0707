#!/usr/bin/env bash
# Installs what is missing, configures once, and builds everything into build/
# (executables in build/bin/). Fast when nothing changed: ninja rebuilds only what did.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
build_dir=${AUTOSYNC_BUILD_DIR:-build}
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${AUTOSYNC_BUILD_TYPE:-RelWithDebInfo}"
fi
# Two jobs: the machines we build on have two cores, and more jobs only add memory pressure.
cmake --build "$build_dir" -j "${AUTOSYNC_JOBS:-2}"
