#!/usr/bin/env bash
# README command 1: install what is missing, build, and open Whittle on the default model.
# Without a display it runs the same thing from the CLI and prints the result.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/setup.sh run
cmake --preset default >/dev/null
cmake --build --preset default
model="$root/build/default/models/e2b-mini"
# Until the bundled trained model exists, the default model is a generated mini fixture.
if [[ ! -f "$model/config.json" ]]; then
  build/default/app/whittle-cli make-tiny "$model" --preset e2b-mini --seed 1
fi
if [[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]]; then
  exec build/default/app/whittle "$model"
fi
echo "No display: showing the default model with whittle-cli instead of the window."
exec build/default/app/whittle-cli inspect "$model"
