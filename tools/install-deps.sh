#!/usr/bin/env bash
# Installs the Debian 12 packages AutoSync builds and runs with, when any is missing.
# Idempotent: with everything present it only asks dpkg, and returns in well under a second.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  capnproto libcapnp-dev
  libcaf-dev
  librocksdb-dev libgflags-dev libsnappy-dev liblz4-dev libzstd-dev libbz2-dev
  libssl-dev openssl libisal-dev libjwt-dev libjemalloc-dev libutf8proc-dev
  libboost-dev libboost-test-dev libcli11-dev nlohmann-json3-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing missing packages: ${missing[*]}"
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "Run as root, or install sudo, to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
