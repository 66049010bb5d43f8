#!/usr/bin/env bash
# Runs every libFuzzer target in DIR (build/fuzz) for SECONDS each, starting
# from its seed corpus tests/fuzz/corpus/NAME (NAME = target without the
# "fuzz_" prefix). New inputs go to DIR/corpus/NAME, crashes to
# DIR/artifacts/, logs to DIR/logs/. Exits non-zero if any target found a crash.
#   tools/fuzz.sh build/fuzz 60 [target ...]
# FUZZ_TIMEOUT (default 60) is the seconds one input may take. A timeout is
# re-run on its own: one that does not reproduce (the process was paused or
# starved of CPU, not the input's fault) is reported but is not a failure.
set -u
cd "$(dirname "$0")/.."
dir=${1:-build/fuzz}
secs=${2:-60}
shift 2 2>/dev/null || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$dir"/fuzz_*; do [ -f "$f" ] && [ -x "$f" ] && targets+=("$(basename "$f")"); done
fi
mkdir -p "$dir/artifacts" "$dir/logs"
status=0
for t in "${targets[@]}"; do
    name=${t#fuzz_}
    seeds=tests/fuzz/corpus/$name
    work=$dir/corpus/$name
    mkdir -p "$work"
    [ -d "$seeds" ] || seeds=
    log=$dir/logs/$t.log
    echo "fuzz: $t for ${secs}s" >&2
    "$dir/$t" -max_total_time="$secs" -print_final_stats=1 -timeout="${FUZZ_TIMEOUT:-60}" \
        -rss_limit_mb=4096 \
        -artifact_prefix="$dir/artifacts/$t-" "$work" $seeds >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    slow=$(grep -o "Test unit written to [^ ]*timeout-[0-9a-f]*" "$log" | tail -1 | awk '{print $5}')
    if [ $rc -ne 0 ] && [ -n "$slow" ] && "$dir/$t" -timeout=10 "$slow" >/dev/null 2>&1; then
        echo "ok $t: ${execs:-?} runs, $cov; stopped by a timeout that does not reproduce" \
            "($slow runs in under 10 s: the process was paused)" >&2
    elif [ $rc -ne 0 ]; then
        echo "FAIL $t: exit $rc after ${execs:-?} runs; see $log and $dir/artifacts" >&2
        grep -m3 -E 'ERROR|SUMMARY|runtime error' "$log" >&2
        status=1
    else
        echo "ok $t: ${execs:-?} runs, $cov, $(ls "$work" | wc -l) corpus files" >&2
    fi
done
exit $status
