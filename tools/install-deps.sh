#!/usr/bin/env bash
# Installs the Debian packages slm needs, skipping those already present.
#   build: gcc, make, oneDNN (libdnnl-dev: the GEMM of the AVX2 and AVX-512
#          paths), the OpenMP build of OpenBLAS and BLIS (`slm bench gemm`
#          compares them with slm's kernels),
#          libmicrohttpd (the HTTP server of `slm serve`),
#          Cairo + pkg-config + DejaVu fonts (the CLI's PNG pictures: slm attention/plot)
#   demo:  bible-kjv, the public-domain King James Bible as the default corpus
#   tests: python3-torch (1.13, CPU) + numpy as the PyTorch oracle, python3-venv,
#          librsvg2-bin (rsvg-convert renders the SVG pictures in the tests),
#          man-db (the man page test),
#          chromium (headless, for the web page of `slm serve`),
#          and what building the Python package needs (python3-dev, setuptools, wheel)
#          Open MPI (libopenmpi-dev for mpicc, openmpi-bin for mpirun): the build
#          links it into build/slm for `mpirun -np N slm train`
#   python: only what `make wheel` / `pip install .` need (--python)
#   fuzz:  clang 14 with its libFuzzer + sanitizer runtimes and LLVM's OpenMP
#          runtime (the library sources use OpenMP pragmas), for `make fuzz` only
#   bench: g++ and python3-dev (torch.compile builds C++ at run time), cmake and
#          g++ (llama.cpp), python3-venv: what `make bench`'s anchors add
# Usage: tools/install-deps.sh [--demo | --fuzz | --python | --bench]
#   (no option: build + demo + tests; --demo: only what make demo needs;
#    --fuzz: only the fuzzing toolchain; --bench: only the benchmarks' extras)
set -euo pipefail
case "${1:-}" in
--bench) pkgs=(g++ cmake python3-dev python3-venv) ;;
--fuzz) pkgs=(clang-14 libclang-rt-14-dev libomp-14-dev) ;;
--demo) pkgs=(gcc make pkg-config libdnnl-dev libopenblas-openmp-dev libblis-openmp-dev libcairo2-dev
              libmicrohttpd-dev fonts-dejavu-core bible-kjv) ;;
--python) pkgs=(gcc make libdnnl-dev python3-dev python3-pip python3-setuptools
                python3-wheel python3-numpy) ;;
*) pkgs=(gcc make pkg-config libdnnl-dev libopenblas-openmp-dev libblis-openmp-dev libcairo2-dev
         libmicrohttpd-dev fonts-dejavu-core bible-kjv python3-venv python3-numpy python3-torch librsvg2-bin
         man-db chromium python3-dev python3-setuptools python3-wheel libopenmpi-dev
         openmpi-bin) ;;
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
