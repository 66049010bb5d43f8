#!/usr/bin/env bash
# Runs every test: the C test binaries in BUILD/tests and the Python oracle
# tests in tests/oracle (PyTorch, through build/venv). Each prints "ok NAME" or
# "FAIL NAME: why" per case; a binary that crashes or exits non-zero without a
# FAIL line counts as one failure. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count() { # name, exit status
    local p f
    p=$(grep -c '^ok ' "$log"); f=$(grep -c '^FAIL ' "$log")
    grep -E '^(ok|FAIL) ' "$log" | sed "s|^|[$1] |"
    if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "[$1] FAIL $1: exited with status $2"; tail -5 "$log" | sed 's/^/    /'; f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    "$t" >"$log" 2>&1
    count "$name" $?
done

if [ -z "${SLM_SKIP_PYTHON:-}" ]; then
    py=build/venv/bin/python
    for t in tests/oracle/test_*.py; do
        [ -f "$t" ] || continue
        name=$(basename "$t" .py)
        SLM_BUILD="$BUILD" SLM_LIB="$BUILD/libslm.so" SLM_BIN="$BUILD/slm" "$py" "$t" >"$log" 2>&1
        count "$name" $?
    done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
