#!/usr/bin/env bash
# Flash attention vs PyTorch on the same causal shapes (B=1 H=12 D=64):
# runs `slm bench attention --json` and bench/attention_torch.py, then prints
# one table with both and the speedup flash / PyTorch.
#
#   bench/attention.sh [BUILD] [--T 256,1024] [--quick] [--threads N]
#
# PyTorch runs with glibc told to keep freed memory (MALLOC_MMAP_MAX_=0,
# MALLOC_TRIM_THRESHOLD_=1e11); otherwise each call page-faults its T×T
# matrices back in and PyTorch looks slower than it is.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BUILD=$1; shift; fi
threads=$(nproc)
args=()
while [ $# -gt 0 ]; do
    case $1 in
    --threads) threads=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
    esac
done
py=/usr/bin/python3
[ -x build/venv/bin/python ] && py=build/venv/bin/python

slm_out=$(mktemp) torch_out=$(mktemp)
trap 'rm -f "$slm_out" "$torch_out"' EXIT
"$BUILD/slm" bench attention --json --threads "$threads" ${args[@]+"${args[@]}"} >"$slm_out"
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 \
    "$py" bench/attention_torch.py --threads "$threads" ${args[@]+"${args[@]}"} >"$torch_out"

"$py" - "$slm_out" "$torch_out" <<'PY'
import json, sys
rows = [json.loads(l) for f in sys.argv[1:] for l in open(f) if l.strip()]
sg = next(r for r in rows if r["impl"] == "sgemm")
peak, core = sg["gflops"], sg.get("blas_core", "?")
by = {(r["impl"], r["pass"], r["T"]): r for r in rows if r["impl"] != "sgemm"}
threads = rows[0]["threads"]
print(f"causal attention B=1 H=12 D=64, {threads} threads; "
      f"OpenBLAS ({core} kernels) sgemm peak {peak:.1f} GFLOP/s (useful causal FLOPs: fwd 2·B·H·T²·D, "
      f"fwd+bwd 6·B·H·T²·D)")
hdr = ("T", "pass", "flash ms", "flash GFLOP/s", "flash MiB", "PyTorch ms",
       "PyTorch GFLOP/s", "reference ms", "speedup vs PyTorch")
print("| " + " | ".join(hdr) + " |")
print("|" + "|".join("---:" for _ in hdr) + "|")
fmt = lambda r, k, f: f.format(r[k]) if r else "—"
for T in sorted({k[2] for k in by}):
    for p in ("fwd", "fwd+bwd"):
        fl, pt, ref = (by.get((i, p, T)) for i in ("flash", "pytorch", "reference"))
        if not fl:
            continue
        speed = f"{pt['ms'] / fl['ms']:.1f}×" if pt else "—"
        print(f"| {T} | {p} | {fl['ms']:.2f} | {fl['gflops']:.1f} | {fl['workspace_mib']:.2f} | "
              f"{fmt(pt, 'ms', '{:.2f}')} | {fmt(pt, 'gflops', '{:.1f}')} | "
              f"{fmt(ref, 'ms', '{:.2f}')} | {speed} |")
PY
