#!/usr/bin/env bash
# Renders every page of the GUI under Xvfb on a full-size E2B-shaped checkpoint (zero weights, sparse;
# with Google's 262k tokenizer when the test peers are installed, so the Vocabulary page shows real buckets):
#   tools/screenshots.sh BUILD_DIR  ->  BUILD_DIR/screenshots/<page>.png
# tools/test.sh runs it (CI keeps the images); packaging/screenshots/ holds the copies the README shows.
set -euo pipefail
build=${1:-build/default}
model="$build/models/e2b-full-zeros"
tokenizer="$build/npm/gemma-tokenizer/tokenizer.json"
if [[ ! -f "$model/config.json" ]]; then
  args=()
  [[ -f "$tokenizer" ]] && args=(--tokenizer "$tokenizer")
  "$build/app/whittle-cli" make-tiny "$model" --preset e2b-full --zeros --force "${args[@]}" >/dev/null
fi
rm -rf "$build/screenshots"
# The Chat page talks to the bundled model (greedy, on the default Vulkan device: lavapipe here).
here=$(cd "$(dirname "$0")/.." && pwd)
xvfb-run -a -s "-screen 0 1280x860x24" "$build/app/whittle" --screenshots "$build/screenshots" "$model" \
  --chat-model "$here/resources/models/whittle-gemma4-tiny" --chat-prompt "Tell me a story about the sea."
for f in "$build"/screenshots/*.png; do
  [[ -s "$f" ]] || { echo "screenshots: $f is empty" >&2; exit 1; }
done
