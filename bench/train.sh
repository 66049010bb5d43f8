#!/usr/bin/env bash
# Training-step benchmark, slm vs PyTorch 1.13, same GPT-2 shapes (a: GPT-2
# 124M at B=4 T=64; b: L6 C384 V128 at B=8 T=256), fp32, JSON lines.
#   bench/train.sh [BUILD] [--steps N] [--dropout F]
# Each shape runs in its own process, so each peak RSS is its own (PyTorch's
# tuned malloc never returns memory). PyTorch runs with 2 threads and glibc
# malloc tuned as in the issue (MALLOC_MMAP_MAX_=0
# MALLOC_TRIM_THRESHOLD_=100000000000). Keep the machine otherwise idle:
# OpenMP barriers suffer badly from competing processes.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true
threads=2
py=build/venv/bin/python
[ -x "$py" ] || py=python3
for shape in a b; do
    "$BUILD/slm" bench train --json --threads "$threads" --shape "$shape" "$@"
    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 \
        "$py" bench/train_torch.py --json --threads "$threads" --shape "$shape" "$@"
done
