#!/usr/bin/env bash
# Installs what is missing, builds, and starts one AutoSync node on its embedded default
# storage (./autosync-data, development token secret, 127.0.0.1:7400). Arguments are
# passed to autosyncd (see `build/bin/autosyncd --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

tools/build.sh
build_dir=${AUTOSYNC_BUILD_DIR:-build}
exec "$build_dir/bin/autosyncd" "$@"
