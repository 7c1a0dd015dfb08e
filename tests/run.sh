#!/usr/bin/env bash
# The whole test suite (README command 2, and what CI runs):
#   1. installs dependencies, builds with -Werror, runs every CTest test
#      (cmocka unit tests, fuzz-corpus replays, integration tests that start
#      real snapcoord + snapnode processes);
#   2. rebuilds with ASan+UBSan and runs the whole suite again.
# SZ_SKIP_SANITIZE=1 skips step 2.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
jobs=$(nproc)

echo "== build (RelWithDebInfo, -Werror) =="
bash deploy/build.sh build
echo "== tests =="
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900)

if [ "${SZ_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== build (ASan + UBSan) =="
  bash deploy/build.sh build-asan -DSZ_SANITIZE=ON
  echo "== tests under ASan + UBSan =="
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j"$jobs" --timeout 900)
fi
echo "all tests passed"
