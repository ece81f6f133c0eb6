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
# The Run and Compare pages slim the bundled model (English + text-only + FLAP 20 % + GPTQ INT4, small
# calibration so it takes seconds) into the build folder, then measure what is missing.
run_out="$build/screenshots-run"
rm -rf "$run_out" && mkdir -p "$run_out"
cat > "$run_out/recipe.json" <<'JSON'
{"whittle_recipe": 1, "text_only": true, "vocabulary": {"preset": "english"},
 "flap": {"ratio": 0.2, "calibration": {"samples": 8, "length": 256}},
 "quantization": {"method": "gptq", "group_size": 128, "calibration": {"samples": 8, "length": 256}},
 "evaluation": {"max_tokens": 2048}}
JSON
xvfb-run -a -s "-screen 0 1280x860x24" "$build/app/whittle" --screenshots "$build/screenshots" "$model" \
  --chat-model "$here/resources/models/whittle-gemma4-tiny" --chat-prompt "Tell me a story about the sea." \
  --run-model "$here/resources/models/whittle-gemma4-tiny" --run-recipe "$run_out/recipe.json" \
  --run-output "$run_out/whittle-gemma4-tiny-english-flap20-gptq"
for f in "$build"/screenshots/*.png; do
  [[ -s "$f" ]] || { echo "screenshots: $f is empty" >&2; exit 1; }
done
