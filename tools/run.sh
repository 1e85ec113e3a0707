#!/usr/bin/env bash
# Installs what is missing, builds, and starts AutoSync on its embedded default storage
# (./autosync-data). Arguments are passed to the server.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/build.sh
build_dir=${AUTOSYNC_BUILD_DIR:-build}

if [ -x "$build_dir/bin/autosyncd" ]; then
  exec "$build_dir/bin/autosyncd" "$@"
fi

# Until the server lands (see docs/architecture.md, "Where this is going"), what runs is the
# journal: exercise it on the embedded default storage and show what it sustains here.
data_dir=${AUTOSYNC_DATA_DIR:-autosync-data}
mkdir -p "$data_dir"
cat <<MSG
autosyncd, the server, is not built yet: it arrives with client RPC (the single-node issue).
What exists today is the journal, AutoSync's database of record. Running its benchmark on
the embedded default storage in ./$data_dir/bench (removed afterwards):

MSG
"$build_dir/bin/autosync-bench" journal --dir "$data_dir/bench" --runs 1 --seconds 2
rm -rf "$data_dir/bench"
cat <<MSG

Next: tools/test.sh runs the test suite; docs/architecture.md explains the design.
MSG
