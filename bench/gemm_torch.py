#!/usr/bin/env python3
"""PyTorch counterpart of `slm bench gemm`: torch.mm(A[M,K], B[K,N]) in fp32
and bf16 (PyTorch's CPU GEMMs: MKL for fp32, oneDNN for bf16) on the same
sizes, best of a few calls after a warm-up, as JSON lines
("impl":"pytorch-mm", "dtype"). Useful FLOPs 2·M·N·K.

    gemm_torch.py --sizes 2048x2048x2048,256x2304x768 [--threads 2] [--dtypes fp32,bf16]
"""
import argparse
import json
import time

import torch


def best_ms(fn, min_s=0.3, max_reps=50):
    fn()
    best, t_end, reps = float("inf"), time.perf_counter() + min_s, 0
    while reps < 3 or (time.perf_counter() < t_end and reps < max_reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        reps += 1
    return best * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", required=True, help="comma-separated MxNxK")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtypes", default="fp32,bf16")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}
    g = torch.Generator().manual_seed(0)
    for size in a.sizes.split(","):
        M, N, K = (int(x) for x in size.split("x"))
        for name in a.dtypes.split(","):
            A = torch.rand(M, K, generator=g).to(dt[name])
            B = torch.rand(K, N, generator=g).to(dt[name])
            C = torch.empty(M, N, dtype=dt[name])
            ms = best_ms(lambda: torch.mm(A, B, out=C))
            print(json.dumps({"bench": "gemm", "impl": "pytorch-mm", "dtype": name, "M": M,
                              "N": N, "K": K, "threads": a.threads, "ms": round(ms, 4),
                              "gflops": round(2.0 * M * N * K / ms * 1e-6, 2),
                              "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
