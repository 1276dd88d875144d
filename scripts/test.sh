#!/usr/bin/env bash
# test.sh - install everything (scripts/setup.sh), then build and run the
# whole test suite twice: the release build, and a build under
# AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export FACENET_REQUIRE_MODELS=1
jobs=$(nproc)

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DFACENET_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null

status=0
echo "== release build"
(cd build && ctest --output-on-failure -j"$jobs") || status=1
echo "== ASan + UBSan build"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j"$jobs") || status=1
exit $status
