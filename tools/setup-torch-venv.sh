#!/usr/bin/env bash
# The benchmark anchor: PyPI's current PyTorch (MKL + oneDNN, CPU flash SDPA,
# torch.compile) in its own virtualenv, build/venv-torch, kept apart from the
# test oracles' build/venv (which sees Debian's torch 1.13). Only `make bench`
# uses it. Cached: a second run checks a stamp and does nothing.
#
#   tools/setup-torch-venv.sh            # create / update, print nothing when cached
#   tools/setup-torch-venv.sh --check    # exit 0 if present and importable, 1 otherwise
#
# PyTorch's CPU-only wheel index is tried first (smaller: no CUDA libraries);
# where it cannot be reached, PyPI's `torch` (with its CUDA libraries, ~4 GB
# on disk, unused here) is installed instead. TORCH_SPEC overrides the version
# (default: the newest on the index).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/venv-torch
spec=${TORCH_SPEC:-torch}
reqs="numpy"   # torch.compile's inductor needs nothing else from PyPI
stamp=$venv/.installed
py=$venv/bin/python

ok() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$spec $reqs" ] && "$py" -c 'import torch' 2>/dev/null; }
if [ "${1:-}" = --check ]; then ok; exit; fi
ok && exit 0

echo "slm: installing PyPI's PyTorch ($spec) into $venv (once; a large download)" >&2
# torch.compile compiles C++ at run time: it needs g++ and the Python headers.
inc=$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if ! command -v g++ >/dev/null || [ ! -f "$inc/Python.h" ]; then
    echo "slm: torch.compile needs g++ and python3-dev (tools/install-deps.sh --bench)" >&2
fi
[ -x "$py" ] || /usr/bin/python3 -m venv "$venv"
pip=("$venv/bin/pip" install -q --disable-pip-version-check)
if ! "${pip[@]}" --index-url https://download.pytorch.org/whl/cpu --timeout 15 --retries 0 \
        "$spec" 2>/dev/null; then
    echo "slm: PyTorch's CPU wheel index is unreachable; installing PyPI's torch" >&2
    "${pip[@]}" "$spec"
fi
"${pip[@]}" $reqs
"$py" -c 'import torch; print("slm:", torch.__version__, "installed in build/venv-torch")' >&2
echo "$spec $reqs" >"$stamp"
