#!/usr/bin/env bash
# Every benchmark, slm next to PyTorch where there is a PyTorch counterpart:
#   bench/run.sh [BUILD]
# Numbers are only comparable within one run on an otherwise idle machine
# (OpenMP barriers suffer badly from competing processes).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
echo "== sgemm (OpenBLAS vs BLIS)";          "$BUILD/slm" bench gemm
echo; echo "== attention (flash vs PyTorch)"; bench/attention.sh "$BUILD"
echo; echo "== training step (slm vs PyTorch)"; bench/train.sh "$BUILD"
echo; echo "== generation (KV cache)";        "$BUILD/slm" bench generate
echo; echo "== tokenizer";                    "$BUILD/slm" bench tokenize
echo; echo "== slm serve (concurrent requests)"; SLM_BIN="$BUILD/slm" build/venv/bin/python bench/serve.py
