#!/usr/bin/env bash
# Installs the Debian packages slm needs, skipping those already present.
#   build: gcc, make, oneDNN (libdnnl-dev: the GEMM of the AVX2 and AVX-512
#          paths), the OpenMP build of OpenBLAS and BLIS (`slm bench gemm`
#          compares them with slm's kernels)
#          libmicrohttpd (the HTTP server of `slm serve`),
#          Cairo + pkg-config + DejaVu fonts (the CLI's PNG pictures: slm attention/plot)
#   demo:  bible-kjv, the public-domain King James Bible as the default corpus
#   tests: python3-torch (1.13, CPU) + numpy as the PyTorch oracle, python3-venv,
#          librsvg2-bin (rsvg-convert renders the SVG pictures in the tests),
#          man-db (the man page test),
#          chromium (headless, for the web page of `slm serve`)
#   fuzz:  clang 14 with its libFuzzer + sanitizer runtimes and LLVM's OpenMP
#          runtime (the library sources use OpenMP pragmas), for `make fuzz` only
# Usage: tools/install-deps.sh [--demo | --fuzz]
#   (no option: build + demo + tests; --demo: only what make demo needs;
#    --fuzz: only the fuzzing toolchain)
set -euo pipefail
case "${1:-}" in
--fuzz) pkgs=(clang-14 libclang-rt-14-dev libomp-14-dev) ;;
--demo) pkgs=(gcc make pkg-config libdnnl-dev libopenblas-openmp-dev libblis-openmp-dev libcairo2-dev
              libmicrohttpd-dev fonts-dejavu-core bible-kjv) ;;
*) pkgs=(gcc make pkg-config libdnnl-dev libopenblas-openmp-dev libblis-openmp-dev libcairo2-dev
         libmicrohttpd-dev fonts-dejavu-core bible-kjv python3-venv python3-numpy python3-torch librsvg2-bin
         man-db chromium) ;;
esac
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "slm: installing Debian packages: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
