#!/usr/bin/env bash
# The decoding anchor: llama.cpp's llama-bench and llama-quantize, built from
# the llama.cpp that PyPI's llama-cpp-python source package vendors (PyPI is
# reachable where GitHub may not be), plus gguf-py for convert_hf_to_gguf.py
# (into build/venv-torch). Optional: `make bench` reports llama.cpp as missing
# if this fails. Cached under build/anchors/: a second run does nothing.
#
#   tools/build-llama-cpp.sh [--check]
#
# Native CPU build (GGML_NATIVE: -march=native), OpenMP, Release, static,
# only the two tools, `nice`d with LLAMA_JOBS (default 2) jobs.
# LLAMA_CPP_PYTHON_SPEC pins the package (default: the newest).
set -euo pipefail
cd "$(dirname "$0")/.."
top=build/anchors
src_root=$top/llama-cpp-python
bld=$top/llama.cpp-build
venv=build/venv-torch
spec=${LLAMA_CPP_PYTHON_SPEC:-llama-cpp-python}
jobs=${LLAMA_JOBS:-2}
stamp=$top/llama.cpp.stamp

ok() { [ -f "$stamp" ] && [ -x "$bld/bin/llama-bench" ] && [ -x "$bld/bin/llama-quantize" ] &&
       [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import gguf' 2>/dev/null; }
if [ "${1:-}" = --check ]; then ok; exit; fi
ok && exit 0
mkdir -p "$top"

# 1. The source package (pip downloads and prepares it; ~75 MB).
tarball=$(ls "$top"/dl/llama_cpp_python-*.tar.gz 2>/dev/null | tail -1 || true)
if [ -z "$tarball" ]; then
    echo "slm: downloading the $spec source package (vendors llama.cpp)" >&2
    /usr/bin/python3 -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary :all: --no-build-isolation -d "$top/dl" "$spec" 2>/dev/null ||
    /usr/bin/python3 -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary :all: -d "$top/dl" "$spec"
    tarball=$(ls "$top"/dl/llama_cpp_python-*.tar.gz | tail -1)
fi
ver=$(basename "$tarball" .tar.gz); ver=${ver#llama_cpp_python-}
src=$src_root/llama_cpp_python-$ver/vendor/llama.cpp
if [ ! -f "$src/CMakeLists.txt" ]; then
    rm -rf "$src_root" && mkdir -p "$src_root"
    tar xzf "$tarball" -C "$src_root"
fi
# The sdist carries no .git; its changelog names the vendored commit.
commit=$(grep -m1 -o 'ggml-org/llama.cpp@[0-9a-f]*' "$src_root/llama_cpp_python-$ver/CHANGELOG.md" |
         cut -d@ -f2 || true)

# 2. llama-bench and llama-quantize.
if [ ! -x "$bld/bin/llama-bench" ] || [ ! -x "$bld/bin/llama-quantize" ]; then
    command -v cmake >/dev/null && command -v g++ >/dev/null || {
        echo "slm: building llama.cpp needs cmake and g++ (tools/install-deps.sh --bench)" >&2; exit 1; }
    echo "slm: building llama.cpp ${commit:-?} (llama-cpp-python $ver): llama-bench, llama-quantize" >&2
    cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_COMMIT="${commit:-unknown}" >"$top/llama.cpp-cmake.log" 2>&1 ||
        { tail -20 "$top/llama.cpp-cmake.log" >&2; exit 1; }
    nice cmake --build "$bld" --target llama-bench llama-quantize -j "$jobs" \
        >"$top/llama.cpp-build.log" 2>&1 || { tail -30 "$top/llama.cpp-build.log" >&2; exit 1; }
fi

# 3. convert_hf_to_gguf.py's Python: it needs torch >= 2.6, so it runs in
#    build/venv-torch (tools/setup-torch-venv.sh), which gets the vendored
#    gguf-py and the versions llama.cpp's requirements-convert_hf_to_gguf.txt pins.
tools/setup-torch-venv.sh
if ! "$venv/bin/python" -c 'import gguf, transformers, sentencepiece' 2>/dev/null; then
    echo "slm: installing convert_hf_to_gguf.py's Python packages into $venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check "$src/gguf-py" \
        "sentencepiece>=0.1.98,<0.3.0" "transformers==4.57.6" "protobuf>=4.21.0,<5.0.0"
fi
printf 'llama-cpp-python %s\nllama.cpp %s\nsrc %s\n' "$ver" "${commit:-unknown}" "$src" >"$stamp"
