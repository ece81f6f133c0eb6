#!/usr/bin/env bash
# Installs the Debian packages Whittle needs, read from packaging/debian-packages.txt (the one list).
# usage: tools/setup.sh [build|run|test|tools]
#   build, run: packages to compile and run Whittle; test: those plus the test suite's;
#   tools: those plus what tools/ scripts need (PyTorch for retraining the bundled model).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-test}"
list="$root/packaging/debian-packages.txt"

wanted=()
while read -r pkg role _; do
  [[ -z "${pkg:-}" || "$pkg" == \#* ]] && continue
  case "$mode:$role" in
    *:build|*:run|test:test|tools:test|tools:tools) wanted+=("$pkg") ;;
    build:*|run:*|test:*|tools:*) ;;
    *) echo "setup: unknown mode '$mode' (build|run|test|tools)" >&2; exit 2 ;;
  esac
done < "$list"

missing=()
for p in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian package(s): ${missing[*]}"
  cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${cmd[@]}"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive "${cmd[@]}"
  else
    echo "setup: these packages are missing and this user cannot install them. Run:" >&2
    echo "  sudo apt-get update && sudo ${cmd[*]}" >&2
    exit 1
  fi
else
  echo "setup: all ${#wanted[@]} Debian packages present"
fi

if [[ "$mode" == test || "$mode" == tools ]]; then
  # The npm test peers need Node >= 20 (NodeSource's nodejs, which bundles npm). Debian 12's own
  # nodejs is 18 and its npm package conflicts with NodeSource's, so neither is in the apt list.
  if ! command -v node >/dev/null; then
    echo "setup: Node.js >= 20 with npm is required for the test suite; install NodeSource's nodejs 20.x" >&2
    exit 1
  fi
  node_major=$(node --version | sed -E 's/^v([0-9]+).*/\1/')
  if ((node_major < 20)); then
    echo "setup: Node.js $(node --version) is too old; the test peers need >= 20 (NodeSource nodejs 20.x)" >&2
    exit 1
  fi
fi
