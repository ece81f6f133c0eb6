#!/usr/bin/env bash
# Prints the README's size-and-memory tables: full-size E2B- and E4B-shaped checkpoints (zero weights, sparse,
# with Google's 262k tokenizer from the test peers) as they are, with the English vocabulary, and with English +
# INT4 GPTQ g128, each row made by `whittle-cli estimate --markdown` (tst_estimate's readmeTables checks that
# the README holds exactly these rows).
#   tools/estimate_tables.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build/default}
cli="$build/app/whittle-cli"
tokenizer="$build/npm/gemma-tokenizer/tokenizer.json"
[[ -f "$tokenizer" ]] || { echo "estimate_tables: $tokenizer missing (tests/peers/install.sh $build)" >&2; exit 1; }
echo "| checkpoint, recipe | disk | weights | device memory at 4k | at 32k | at 128k | host RAM |"
echo "|---|---|---|---|---|---|---|"
for preset in e2b-full e4b-full; do
  model="$build/models/$preset-zeros-gemma-tokenizer"
  [[ -f "$model/config.json" ]] || "$cli" make-tiny "$model" --preset "$preset" --zeros --force --tokenizer "$tokenizer" >/dev/null
  name=${preset%-full}; name=${name^^}
  "$cli" estimate "$model" --ctx 4096,32768,131072 --markdown "$name as it is"
  "$cli" estimate "$model" --vocab english --ctx 4096,32768,131072 --markdown "$name, English"
  "$cli" estimate "$model" --vocab english --quantize gptq --ctx 4096,32768,131072 --markdown "$name, English + INT4 GPTQ g128"
done
