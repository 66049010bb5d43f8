#!/usr/bin/env bash
# `make bench`: slm next to its anchors, measured in one run.
#   bench/run.sh [BUILD] [bench/anchors.py options: --quick, --only LIST, --threads N, --shapes a,b]
# Sets up the anchors first (each cached; a second run does nothing):
#   tools/setup-torch-venv.sh   PyPI's PyTorch in build/venv-torch (required)
#   tools/build-llama-cpp.sh    llama.cpp's llama-bench/llama-quantize (optional)
#   tools/build-llama2c.sh      llama2.c's run.c (optional)
# An optional anchor that fails to build is reported as MISSING in the tables.
# Then bench/serve.py (slm serve under concurrent clients) where it exists,
# in full runs only. Numbers are only comparable within one run on an
# otherwise idle machine (OpenMP barriers suffer badly from competing processes).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BUILD=$1; shift; fi
tools/setup-torch-venv.sh || echo "slm: bench: PyTorch could not be installed; its columns stay empty" >&2
tools/build-llama2c.sh || echo "slm: bench: llama2.c could not be built (reported as missing)" >&2
tools/build-llama-cpp.sh || echo "slm: bench: llama.cpp could not be built (reported as missing)" >&2
status=0
/usr/bin/python3 bench/anchors.py --build "$BUILD" "$@" || status=$?
if [ -f bench/serve.py ] && [ -z "${BENCH_ONLY:-}" ] && [ "${BENCH_QUICK:-}" != 1 ] && [ $# -eq 0 ]; then
    echo; echo "== slm serve (concurrent requests)"
    tools/setup-venv.sh && SLM_BIN="$BUILD/slm" build/venv/bin/python bench/serve.py || status=1
    echo; echo "== data-parallel training (1 process × 2 threads vs 2 MPI ranks × 1 thread)"
    bench/mpi.sh "$BUILD" || status=1
fi
exit $status
