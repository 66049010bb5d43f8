"""slm_attention_forward/backward (every impl) against PyTorch autograd.

torch 1.13 has no scaled_dot_product_attention, so the oracle is the explicit
formulation of Vaswani et al. 2017, eq. 1: scores = q·kᵀ·scale + M, softmax, (dropout), ·v, with M
the additive mask plus -inf for keys hidden by causal (bottom-right aligned)
or kv_len. lse is torch.logsumexp of the masked scores; dq/dk/dv come from
autograd of Σ dout∘out. Dropout uses slm's own counter-based hash, ported
below with explicit 64/32-bit wrapping, so the dropped elements are the same
and the dropout results are compared too.

Tolerance: |got - want| <= rtol·|want| + atol with rtol = 1e-5 and atol =
1e-5 × the size of the terms each tensor is accumulated from (float32 rounding
of a sum scales with its terms, not with the result; see tests/test_attention.c).
"""
import math
import os
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import slm_ctypes as slm  # noqa: E402

IMPLS = {"reference": slm.SLM_ATTN_REFERENCE, "flash": slm.SLM_ATTN_FLASH,
         "auto": slm.SLM_ATTN_AUTO}
M64, M32 = (1 << 64) - 1, (1 << 32) - 1

# ---- slm's dropout hash (src/core/dropout_mask.h), ported ---------------------


def mix64(x):
    x ^= x >> 30
    x = (x * 0xbf58476d1ce4e5b9) & M64
    x ^= x >> 27
    x = (x * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def row_key(seed, b, h, i):
    k = mix64((seed ^ 0x9e3779b97f4a7c15) & M64)
    k = mix64(k ^ (b & M32))
    k = mix64(k ^ ((h & M32) << 32))
    return mix64(k ^ (i & M32))


def dropout_bits(key, tk):
    """The 32-bit draws of columns 0..tk-1 of a row (numpy uint32 wraps)."""
    j = np.arange(tk, dtype=np.uint32)
    x = np.uint32(key & M32) ^ (j * np.uint32(0x9e3779b1))
    x = x + np.uint32(key >> 32)
    x ^= x >> np.uint32(16)
    x = x * np.uint32(0x7feb352d)
    x ^= x >> np.uint32(15)
    x = x * np.uint32(0x846ca68b)
    x ^= x >> np.uint32(16)
    return x


def dropout_threshold(p):
    t = float(np.float32(p)) * 4294967296.0
    if t <= 0.0:
        return 0
    if t >= 4294967295.0:
        return 4294967295
    return int(math.floor(t + 0.5))  # llround of a positive value


def dropout_factor(p, seed, B, H, Tq, Tk):
    """Z[b,h,i,j] = keep/(1-p): what multiplies softmax weight (b,h,i,j)."""
    if p == 0.0:
        return np.ones((B, H, Tq, Tk))
    thr = dropout_threshold(p)
    keep = np.empty((B, H, Tq, Tk), dtype=bool)
    with np.errstate(over="ignore"):
        for b in range(B):
            for h in range(H):
                for i in range(Tq):
                    keep[b, h, i] = dropout_bits(row_key(seed, b, h, i), Tk) >= thr
    return keep / (1.0 - float(np.float32(p)))

# ---- the oracle -----------------------------------------------------------------


def mask_matrix(B, Tq, Tk, causal, mask, kv_len):
    """M [B,1,Tq,Tk]: the additive mask, -inf where causal or kv_len hides a key."""
    M = np.zeros((B, 1, Tq, Tk))
    if mask is not None:
        M += mask.astype(np.float64)
    i = np.arange(Tq)[:, None]
    j = np.arange(Tk)[None, :]
    if causal:
        M[:, :, j > i + (Tk - Tq)] = -np.inf
    if kv_len is not None:
        for b in range(B):
            M[b, :, :, kv_len[b]:] = -np.inf
    return M


def torch_attention(q, k, v, dout, dtype, causal=False, scale=0.0, mask=None, kv_len=None,
                    dropout=0.0, seed=0):
    """out, lse, dq, dk, dv as numpy float64, computed by torch in `dtype`."""
    B, H, Tq, D = q.shape
    Tk = k.shape[2]
    scale = scale if scale != 0.0 else 1.0 / math.sqrt(D)
    tq, tk, tv = (torch.tensor(x, dtype=dtype, requires_grad=True) for x in (q, k, v))
    M = torch.tensor(mask_matrix(B, Tq, Tk, causal, mask, kv_len), dtype=dtype)
    Z = torch.tensor(dropout_factor(dropout, seed, B, H, Tq, Tk), dtype=dtype)
    S = tq @ tk.transpose(-1, -2) * scale + M
    lse = torch.logsumexp(S, dim=-1)
    dead = torch.isinf(lse)[..., None]  # rows with no visible key
    # softmax of an all -inf row is NaN (and so is its gradient): give those rows
    # zero scores and zero weights instead, as slm_attn_opts (include/slm.h) says.
    P = torch.where(dead, torch.zeros_like(S), torch.softmax(
        torch.where(dead, torch.zeros_like(S), S), dim=-1))
    out = (P * Z) @ tv
    out.backward(torch.tensor(dout, dtype=dtype))
    return tuple(x.detach().double().numpy() for x in (out, lse, tq.grad, tk.grad, tv.grad))


def inputs(B, H, Tq, Tk, D, seed):
    rng = np.random.default_rng(seed)
    q = rng.uniform(-2, 2, (B, H, Tq, D)).astype(np.float32)
    k = rng.uniform(-2, 2, (B, H, Tk, D)).astype(np.float32)
    v = rng.uniform(-1, 1, (B, H, Tk, D)).astype(np.float32)
    dout = rng.uniform(-1, 1, (B, H, Tq, D)).astype(np.float32)
    return q, k, v, dout


def random_mask(Tq, Tk, seed):
    rng = np.random.default_rng(seed)
    m = rng.uniform(-1, 0.5, (Tq, Tk)).astype(np.float32)
    m[rng.uniform(size=(Tq, Tk)) < 0.25] = -np.inf
    return m


def compare(got, want, q, k, v, dout, scale, rtol, what):
    D = q.shape[-1]
    s = abs(scale) if scale != 0.0 else 1.0 / math.sqrt(D)
    mq, mk, mv, mg = (float(np.abs(x).max()) for x in (q, k, v, dout))
    terms = [mv, 1.0, s * mk * mg * mv, s * mq * mg * mv, mg]
    for name, g, w, t in zip(("out", "lse", "dq", "dk", "dv"), got, want, terms):
        finite = np.isfinite(w)
        scale_t = max(t, float(np.abs(w[finite]).max()) if finite.any() else 0.0)
        with np.errstate(invalid="ignore"):  # -inf - -inf in matching dead rows
            harness.assert_close(g, w, rtol, rtol * scale_t, f"{what} {name}")
        if not np.all(np.isfinite(g) | np.isneginf(w)):
            raise AssertionError(f"{what} {name}: non-finite value")


CASES = [  # name, B, H, Tq, Tk, D, options
    ("gpt_causal_T17_D32", 2, 3, 17, 17, 32, dict(causal=True)),
    ("mask_causal_T33_D64", 2, 2, 33, 33, 64, dict(causal=True, mask="random")),
    ("mask_only_T20_D16", 1, 2, 20, 20, 16, dict(mask="random")),
    ("bottom_right_Tq5_Tk40_D32", 2, 2, 5, 40, 32, dict(causal=True)),
    ("kv_cache_Tq1_Tk37_D64", 1, 4, 1, 37, 64, dict(causal=True)),
    ("dead_rows_Tq12_Tk5_D16", 1, 2, 12, 5, 16, dict(causal=True)),
    ("kv_len_causal_T40_D16", 3, 2, 40, 40, 16, dict(causal=True, kv_len=[0, 23, 40])),
    ("kv_len_mask_Tq9_Tk30_D32", 3, 1, 9, 30, 32,
     dict(causal=True, mask="random", kv_len=[30, 0, 11])),
    ("D80_scale0.2_T100", 1, 2, 100, 100, 80, dict(causal=True, scale=0.2)),
    ("encoder_T65_D128", 1, 2, 65, 65, 128, dict()),
]

DROPOUT_CASES = [
    ("drop0.1_causal_T33_D32", 2, 2, 33, 33, 32, dict(causal=True, dropout=0.1, seed=42)),
    ("drop0.5_mask_kv_len_T40_D16", 3, 2, 40, 40, 16,
     dict(causal=True, mask="random", kv_len=[0, 31, 40], dropout=0.5, seed=2**63 + 5)),
    ("drop0.3_bottom_right_Tq7_Tk70_D80", 1, 2, 7, 70, 80,
     dict(causal=True, dropout=0.3, seed=123456789)),
]


def check_case(impl, case, dtype, rtol):
    name, B, H, Tq, Tk, D, opts = case
    opts = dict(opts)
    if opts.get("mask") == "random":
        opts["mask"] = random_mask(Tq, Tk, B * 1000 + Tq)
    q, k, v, dout = inputs(B, H, Tq, Tk, D, zlib.crc32(name.encode()))
    got = slm.attention(q, k, v, dout, impl=impl, **opts)
    want = torch_attention(q, k, v, dout, dtype, **opts)
    compare(got, want, q, k, v, dout, opts.get("scale", 0.0), rtol, name)


def make_tests():
    tests = []
    for iname, impl in IMPLS.items():
        def vs_f64(impl=impl):
            for case in CASES:
                check_case(impl, case, torch.float64, 1e-5)

        def vs_f32(impl=impl):
            # Both sides round in float32, so each may be 1e-5 off the truth.
            for case in CASES:
                check_case(impl, case, torch.float32, 2e-5)

        def dropout_vs_f64(impl=impl):
            for case in DROPOUT_CASES:
                check_case(impl, case, torch.float64, 1e-5)

        def dropout_mask_is_the_hash(impl=impl):
            # q = k = 0 gives weights 1/Tk; v = identity (Tk = D) makes
            # out[b,h,i,j] = Z[b,h,i,j]/Tk: slm's dropout mask, read back.
            B, H, T, p, seed = 2, 3, 48, 0.25, 77
            q = np.zeros((B, H, T, T), np.float32)
            v = np.broadcast_to(np.eye(T, dtype=np.float32), (B, H, T, T)).copy()
            out, _ = slm.attention(q, q, v, impl=impl, dropout=p, seed=seed)
            want = dropout_factor(p, seed, B, H, T, T) / T
            if not np.array_equal(out == 0, want == 0):
                bad = int(np.sum((out == 0) != (want == 0)))
                raise AssertionError(f"{bad} of {out.size} elements dropped differently")
            harness.assert_close(out, want, 1e-6, 0, "survivor scale 1/(1-p)")

        for fn, base in ((vs_f64, "matches_torch_float64"), (vs_f32, "matches_torch_float32"),
                         (dropout_vs_f64, "dropout_matches_torch_float64"),
                         (dropout_mask_is_the_hash, "dropout_mask_is_the_ported_hash")):
            fn.__name__ = f"{base}_{iname}"
            tests.append(fn)
    return tests


def oracle_dead_rows_are_zero_not_nan():
    """The oracle itself: a fully masked row gives out 0, lse -inf, no NaN."""
    q, k, v, dout = inputs(1, 1, 4, 2, 8, 1)
    out, lse, dq, dk, dv = torch_attention(q, k, v, dout, torch.float64, causal=True)
    assert np.all(out[0, 0, :2] == 0) and np.all(np.isneginf(lse[0, 0, :2])), "dead rows"
    assert np.all(dq[0, 0, :2] == 0), "dead rows get gradient"
    assert all(np.isfinite(x).all() for x in (out, dq, dk, dv)), "NaN in oracle"


if __name__ == "__main__":
    harness.run([oracle_dead_rows_are_zero_not_nan] + make_tests())
