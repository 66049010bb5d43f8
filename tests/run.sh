#!/usr/bin/env bash
# Runs every test: the C test binaries in BUILD/tests and the Python oracle
# tests in tests/oracle (PyTorch, through build/venv). Each prints "ok NAME" or
# "FAIL NAME: why" per case; a binary that crashes or exits non-zero without a
# FAIL line counts as one failure. Then pytest runs the Python package's tests
# (tests/python, `import slm` as `make python` installed it into build/venv):
# each pytest case counts as one, a failed or erroring case as a failure, and
# pytest's full report goes to BUILD/pytest.log. Ends with "N passed, N failed".
#   tests/run.sh BUILD [ASAN_BUILD]
# With ASAN_BUILD (an AddressSanitizer + UBSan build, `make SAN=1`), its C
# test binaries run too, and the CLI tests that honour SLM_ASAN_BIN
# (tests/oracle/test_bad_inputs.py) run every command under its slm as well.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
ASAN_BUILD=${2:-}
# A sanitizer report fails the test: leaks included, any UB aborts.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
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

# The examples (examples/*.c, linked against BUILD/libslm.so) must run to
# the end: train_tiny trains, checkpoints, reloads and evaluates a model.
example() { # build dir, name
    local out
    out=$(mktemp -d)
    if "$1/examples/$2" "$out/model" >"$log.ex" 2>&1; then
        echo "ok example_$2" >"$log"
    else
        echo "FAIL example_$2: exited with status $?" >"$log"; tail -5 "$log.ex" >>"$log"
    fi
    rm -rf "$out" "$log.ex"
}
for b in "$BUILD" ${ASAN_BUILD:+"$ASAN_BUILD"}; do
    for e in "$b"/examples/*; do
        [ -x "$e" ] || continue
        example "$b" "$(basename "$e")"
        count "$([ "$b" = "$BUILD" ] || echo asan/)example_$(basename "$e")" 0
    done
done

if [ -n "$ASAN_BUILD" ]; then
    for t in "$ASAN_BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        name=asan/$(basename "$t")
        "$t" >"$log" 2>&1
        count "$name" $?
    done
fi

if [ -z "${SLM_SKIP_PYTHON:-}" ]; then
    py=build/venv/bin/python
    for t in tests/oracle/test_*.py; do
        [ -f "$t" ] || continue
        name=$(basename "$t" .py)
        SLM_BUILD="$BUILD" SLM_LIB="$BUILD/libslm.so" SLM_BIN="$BUILD/slm" \
            SLM_ASAN_BIN="${ASAN_BUILD:+$ASAN_BUILD/slm}" "$py" "$t" >"$log" 2>&1
        count "$name" $?
    done
fi

if [ -z "${SLM_SKIP_PYTHON:-}" ] && [ -d tests/python ]; then
    py=build/venv/bin/python
    # -rA lists every case in the short summary: PASSED / FAILED / ERROR
    # lines, rewritten into the runner's "ok NAME" / "FAIL NAME: why".
    SLM_BUILD="$BUILD" SLM_LIB="$BUILD/libslm.so" SLM_BIN="$BUILD/slm" \
        "$py" -m pytest -q -rA -p no:cacheprovider tests/python >"$BUILD/pytest.log" 2>&1
    status=$?
    sed -n -E -e 's/^PASSED (.*)$/ok \1/p' \
        -e 's/^(FAILED|ERROR) ([^ ]*)( - (.*))?$/FAIL \2: \1 \4/p' "$BUILD/pytest.log" >"$log"
    # 5: no test collected, which is a failure here too.
    count pytest $status
    [ "$status" -ne 0 ] && tail -20 "$BUILD/pytest.log" | sed 's/^/    /'
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
