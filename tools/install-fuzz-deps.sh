#!/usr/bin/env bash
# Debian packages for `make fuzz` only (not needed to build or test slm):
# clang 14 with its libFuzzer + sanitizer runtimes, and LLVM's OpenMP runtime
# (the library sources use OpenMP pragmas).
set -euo pipefail
pkgs=(clang-14 libclang-rt-14-dev libomp-14-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "slm: installing Debian packages for fuzzing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
