#!/usr/bin/env bash
# README command 1: install what is missing, build, and open Whittle on the default model.
# Without a display it runs the same thing from the CLI and prints the result.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/setup.sh run
cmake --preset default >/dev/null
cmake --build --preset default
model="$root/resources/models/whittle-gemma4-tiny"
if [[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]]; then
  exec build/default/app/whittle "$model"
fi
echo "No display: running the bundled model with whittle-cli instead of the window."
build/default/app/whittle-cli inspect "$model" | head -12
echo
echo "\$ whittle-cli generate $model --prompt 'The meaning of life is' --max-tokens 64 --seed 7"
build/default/app/whittle-cli generate "$model" --prompt "The meaning of life is" --max-tokens 64 --seed 7
echo
