#!/usr/bin/env bash
# Installs everything snapzone needs to build, test and benchmark, from
# Debian's packages.  Idempotent; needs root (or sudo).
set -euo pipefail
PKGS=(build-essential cmake pkg-config
      libzmq3-dev libprotobuf-c-dev protobuf-c-compiler librocksdb-dev
      libsodium-dev libzstd-dev libjansson-dev libcmocka-dev
      python3 python3-zmq iproute2 iptables procps time restic)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
