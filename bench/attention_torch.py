#!/usr/bin/env python3
"""PyTorch baseline for `slm bench attention`: the same causal shapes, timed
the same way (best of a few runs after a warm-up of up to 5 calls or 0.5 s), printed as the same JSON
lines with "impl":"pytorch".

PyTorch 1.13 has no fused scaled_dot_product_attention, so this is the seeds'
explicit-mask attention (what a PyTorch user of 1.13 writes):
    scores = q @ kᵀ · scale + mask      mask = 0 / -inf causal matrix
    out    = softmax(scores) @ v
"fwd" runs under torch.no_grad(); "fwd+bwd" builds the autograd graph and
calls out.backward(dout). FLOPs are the useful causal ones, as in slm:
fwd 2·B·H·T²·D, fwd+bwd 6·B·H·T²·D.

Run it under MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 (as
bench/attention.sh does) so glibc keeps the large score matrices instead of
returning them to the kernel and page-faulting them back every call.
"""
import argparse
import json
import math
import sys
import time

import torch

REF_MAX_T = 4096  # beyond this the T×T matrices need more memory than is sensible


def attention(q, k, v, mask, scale):
    scores = q @ k.transpose(-2, -1) * scale + mask
    return torch.softmax(scores, dim=-1) @ v


def reps_for(T, quick):
    r = 20 if T <= 256 else 8 if T <= 1024 else 3 if T <= 4096 else 1
    return min(r, 3) if quick else r


def best_time(fn, reps):
    # Warm-up (allocator, thread pool, caches): PyTorch's first few calls are
    # several times slower, so up to 5 calls or 0.5 s, as slm bench does.
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
    mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
    scale = 1.0 / math.sqrt(D)

    def fwd():
        with torch.no_grad():
            attention(q, k, v, mask, scale)

    qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))

    def fwd_bwd():
        for t in (qg, kg, vg):
            t.grad = None
        attention(qg, kg, vg, mask, scale).backward(dout)

    reps = reps_for(T, quick)
    for name, fn, mult in (("fwd", fwd, 2.0), ("fwd+bwd", fwd_bwd, 6.0)):
        t = best_time(fn, reps)
        flop = mult * B * H * T * T * D
        print(json.dumps({"bench": "attention", "impl": "pytorch", "pass": name, "B": B,
                          "H": H, "T": T, "D": D, "causal": True, "threads": threads,
                          "ms": round(t * 1e3, 3), "gflops": round(flop / t * 1e-9, 2),
                          "torch": torch.__version__}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--T", default=None, help="comma-separated lengths (default 256,1024,4096)")
    ap.add_argument("--quick", action="store_true", help="T=256,1024, fewer repetitions")
    ap.add_argument("--json", action="store_true", help="accepted for symmetry; always JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.T:
        Ts = [int(t) for t in args.T.split(",")]
    else:
        Ts = [256, 1024] if args.quick else [256, 1024, 4096]
    for T in Ts:
        if T > REF_MAX_T:
            print(f"attention_torch: skipping T={T} (T×T score matrices too large)",
                  file=sys.stderr)
            continue
        bench(T, args.threads, args.quick)


if __name__ == "__main__":
    main()
