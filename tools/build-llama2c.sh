#!/usr/bin/env bash
# The second decoding anchor: llama2.c's run.c (Andrej Karpathy, MIT), as the
# PyPI package llamac2py 0.1.4 ships it (its sdist carries the July-2023 run.c
# unchanged, with its LICENSE; GitHub is not reachable from the machines this
# project runs on, PyPI is). Its decoding time is the `#pragma omp parallel for`
# matmul loop that today's run.c still has. Built as llama2.c's Makefile
# target `runomp` builds it: gcc -Ofast -fopenmp -march=native.
# Optional and cached under build/anchors/llama2c: a second run does nothing.
#
#   tools/build-llama2c.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."
top=build/anchors
out=$top/llama2c
spec=${LLAMA2C_SPEC:-llamac2py==0.1.4}
if [ "${1:-}" = --check ]; then [ -x "$out/run" ]; exit; fi
[ -x "$out/run" ] && exit 0
mkdir -p "$top/dl" "$out"
tarball=$(ls "$top"/dl/llamac2py-*.tar.gz 2>/dev/null | tail -1 || true)
if [ -z "$tarball" ]; then
    echo "slm: downloading $spec (llama2.c's run.c) from PyPI" >&2
    /usr/bin/python3 -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary :all: -d "$top/dl" "$spec"
    tarball=$(ls "$top"/dl/llamac2py-*.tar.gz | tail -1)
fi
name=$(basename "$tarball" .tar.gz)
tar xzf "$tarball" -C "$out" "$name/run.c" "$name/LICENSE"
cp "$out/$name/run.c" "$out/$name/LICENSE" "$out/"
gcc -Ofast -fopenmp -march=native "$out/run.c" -lm -o "$out/run.tmp"
mv "$out/run.tmp" "$out/run"
echo "$name" >"$out/SOURCE"
