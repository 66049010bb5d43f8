#!/usr/bin/env bash
# Data-parallel training on one machine: 1 process × 2 threads against
# 2 MPI ranks × 1 thread, shape (b) of bench/train.sh (L6 H6 C384, byte
# vocabulary V256, global batch B=8 × T=256), fp32, one JSON line each:
#   {"bench":"mpi","ranks":R,"threads":T,"steps":N,"tok_s":…,"tok_s_best":…,"step_ms":…,
#    "allreduce_ms":…,"allreduce_share":…}
# tok_s is the median over the steps after the first two, tok_s_best their
# best (log.jsonl's tok_s is rank 0's own: times the rank count for the
# job); allreduce_* come from
# the line rank 0 prints at the end ("summing the gradients took X s of the
# Y s of steps").
#   bench/mpi.sh [BUILD] [--steps N]
# Keep the machine otherwise idle: two ranks on two cores leave no slack.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true
steps=8
[ "${1:-}" = "--steps" ] && steps=$2
command -v mpirun >/dev/null || { echo "bench/mpi.sh: mpirun not found (install openmpi-bin)" >&2; exit 1; }
py=build/venv/bin/python
[ -x "$py" ] || py=python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# ~1 MB of text: any bytes do for timing.
for i in $(seq 1 40); do cat README.md; done >"$tmp/data.txt"
args=(--data "$tmp/data.txt" --layers 6 --heads 6 --dim 384 --context 256 --batch 8
      --steps "$steps" --eval-every 0 --save-every 0 --val-fraction 0.05)
one() { # ranks threads
    local out="$tmp/r$1t$2" err="$tmp/err$1t$2"
    if [ "$1" -eq 1 ]; then
        "$BUILD/slm" train "${args[@]}" --out "$out" --threads "$2" >/dev/null 2>"$err"
    else
        mpirun --allow-run-as-root --oversubscribe -np "$1" -x OMP_NUM_THREADS="$2" \
            "$BUILD/slm" train "${args[@]}" --out "$out" --threads "$2" >/dev/null 2>"$err"
    fi
    "$py" - "$out/log.jsonl" "$err" "$1" "$2" "$steps" <<'EOF'
import json, re, statistics, sys
log, err, ranks, threads, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
tok = [json.loads(l)["tok_s"] * ranks for l in open(log)][2:]
tok_s = statistics.median(tok)
step_ms = 8 * 256 / tok_s * 1e3
row = {"bench": "mpi", "ranks": ranks, "threads": threads, "steps": steps,
       "tok_s": round(tok_s, 1), "tok_s_best": round(max(tok), 1), "step_ms": round(step_ms, 1)}
m = re.search(r"summing the gradients took ([0-9.]+) s of the ([0-9.]+) s of steps", open(err).read())
if m:
    row["allreduce_ms"] = round(float(m.group(1)) / steps * 1e3, 1)
    row["allreduce_share"] = round(float(m.group(1)) / float(m.group(2)), 4)
print(json.dumps(row))
EOF
}
one 1 2
one 2 1
