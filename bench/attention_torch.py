#!/usr/bin/env python3
"""PyTorch counterpart of `slm bench attention`: the same causal shapes
(B=1 H=12 D=64), F.scaled_dot_product_attention(q, k, v, is_causal=True) —
on CPU PyTorch picks its fused flash kernel for this — forward (under
torch.no_grad()) and forward+backward (out.backward(dout)), timed as slm
times them: best of a few runs after a warm-up of up to 5 calls or 0.5 s.
Prints JSON lines with "impl":"pytorch-sdpa". FLOPs are the useful causal
ones, as in slm: fwd 2·B·H·T²·D, fwd+bwd 6·B·H·T²·D.

Run with build/venv-torch's Python (PyPI's PyTorch); bench/anchors.py runs it
under MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 so glibc keeps
freed buffers instead of page-faulting them back in every call.
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def reps_for(T, quick):
    r = 20 if T <= 256 else 8 if T <= 1024 else 5 if T <= 2048 else 3
    return min(r, 3) if quick else r


def best_time(fn, reps):
    t_end = time.perf_counter() + 0.5
    for _ in range(5):
        fn()
        if time.perf_counter() > t_end:
            break
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(T, threads, quick, B=1, H=12, D=64):
    g = torch.Generator().manual_seed(0)
    q, k, v, dout = (torch.rand(B, H, T, D, generator=g) * 2 - 1 for _ in range(4))

    def fwd():
        with torch.no_grad():
            F.scaled_dot_product_attention(q, k, v, is_causal=True)

    qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))

    def fwd_bwd():
        for t in (qg, kg, vg):
            t.grad = None
        F.scaled_dot_product_attention(qg, kg, vg, is_causal=True).backward(dout)

    reps = reps_for(T, quick)
    for name, fn, mult in (("fwd", fwd, 2.0), ("fwd+bwd", fwd_bwd, 6.0)):
        t = best_time(fn, reps)
        flop = mult * B * H * T * T * D
        print(json.dumps({"bench": "attention", "impl": "pytorch-sdpa", "pass": name, "B": B,
                          "H": H, "T": T, "D": D, "causal": True, "threads": threads,
                          "ms": round(t * 1e3, 3), "gflops": round(flop / t * 1e-9, 2),
                          "torch": torch.__version__}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--T", default="256,1024,2048,4096", help="comma-separated lengths")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for T in (int(t) for t in a.T.split(",")):
        bench(T, a.threads, a.quick)


if __name__ == "__main__":
    main()
