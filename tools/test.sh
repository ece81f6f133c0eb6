#!/usr/bin/env bash
# README command 2 (and CI's only command): install what is missing, build, run the whole suite.
# Stages: setup, build (RelWithDebInfo), tests, ASan+UBSan build, ASan tests; each stage's time is printed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export QT_QPA_PLATFORM=offscreen
jobs=$(nproc)

declare -a summary=()
stage() {  # stage NAME COMMAND...
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name"
  "$@"
  local dt=$((SECONDS - t0))
  summary+=("$(printf '%-22s %4d s' "$name" "$dt")")
  echo "=== $name: ${dt} s"
}
report() {
  echo "=== stage times"
  printf '%s\n' "${summary[@]}"
}
trap report EXIT

stage "setup" bash tools/setup.sh test
stage "test peers" bash tests/peers/install.sh build/default
stage "configure+build" bash -c "cmake --preset default >/dev/null && cmake --build --preset default -j $jobs"
stage "tests" ctest --test-dir build/default -j2 --timeout 300 --output-on-failure
stage "screenshots" bash tools/screenshots.sh build/default
stage "asan build" bash -c "cmake --preset asan >/dev/null && cmake --build --preset asan -j $jobs"
stage "asan tests" ctest --test-dir build/asan -L asan -j2 --timeout 300 --output-on-failure
