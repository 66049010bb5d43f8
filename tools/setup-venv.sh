#!/usr/bin/env bash
# The Python oracle environment: a virtualenv under build/ that sees Debian's
# torch 1.13 (system site packages) and adds PyPI packages the oracles need.
# Never touches the system Python's site directory.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/venv
if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
want=$(cat tools/requirements-oracle.txt 2>/dev/null | grep -v '^#' | grep . || true)
stamp="$venv/.requirements"
if [ -n "$want" ] && ! cmp -s tools/requirements-oracle.txt "$stamp" 2>/dev/null; then
    echo "slm: installing oracle Python packages into $venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check -r tools/requirements-oracle.txt
    cp tools/requirements-oracle.txt "$stamp"
fi
