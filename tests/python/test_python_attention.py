"""slm.attention (NumPy, torch) and slm.torch.ScaledDotProductAttention
against float64 references: the oracle of tests/oracle/test_attention_torch.py
(softmax(q·kᵀ·s + M)·v by torch autograd in float64, slm's dropout hash
ported), an explicit top-left-causal SDPA in float64 for the drop-in, torch's
own scaled_dot_product_attention when this torch has it (>= 2.0), and finite
differences of slm's own forward for the gradients."""
import math
import zlib

import numpy as np
import pytest
import torch

import slm
import slm.torch as st
from test_attention_torch import (CASES, DROPOUT_CASES, compare, inputs, random_mask,
                                  torch_attention)

HAS_SDPA = hasattr(torch.nn.functional, "scaled_dot_product_attention")


def case_inputs(case):
    name, B, H, Tq, Tk, D, opts = case
    opts = dict(opts)
    if opts.get("mask") == "random":
        opts["mask"] = random_mask(Tq, Tk, B * 1000 + Tq)
    return (*inputs(B, H, Tq, Tk, D, zlib.crc32(name.encode())), opts)


@pytest.mark.parametrize("impl", ["auto", "flash", "reference"])
@pytest.mark.parametrize("case", CASES + DROPOUT_CASES, ids=lambda c: c[0])
def test_numpy_forward_backward_match_float64(case, impl):
    q, k, v, dout, opts = case_inputs(case)
    kw = {"causal": False, **opts}  # slm.attention's default is causal
    out, lse = slm.attention(q, k, v, return_lse=True, impl=impl, **kw)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == q.shape
    dq, dk, dv = slm.attention_backward(q, k, v, out, lse, dout, impl=impl, **kw)
    want = torch_attention(q, k, v, dout, torch.float64, **opts)
    compare((out, lse, dq, dk, dv), want, q, k, v, dout, opts.get("scale", 0.0), 1e-5, case[0])


@pytest.mark.parametrize("case", CASES + DROPOUT_CASES, ids=lambda c: c[0])
def test_torch_autograd_matches_float64(case):
    q, k, v, dout, opts = case_inputs(case)
    tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    kw = dict(opts)
    if "kv_len" in kw:
        kw["kv_len"] = torch.tensor(kw["kv_len"])
    if "mask" in kw:
        kw["mask"] = torch.from_numpy(kw["mask"])
    out, lse = slm.attention(tq, tk, tv, return_lse=True, causal=kw.pop("causal", False), **kw)
    assert isinstance(out, torch.Tensor) and out.requires_grad and not lse.requires_grad
    out.backward(torch.from_numpy(dout))
    got = tuple(x.detach().numpy() for x in (out, lse, tq.grad, tk.grad, tv.grad))
    want = torch_attention(q, k, v, dout, torch.float64, **opts)
    compare(got, want, q, k, v, dout, opts.get("scale", 0.0), 1e-5, case[0])


def test_numpy_and_torch_give_the_same_bits():
    q, k, v, _ = inputs(2, 3, 19, 23, 32, 5)
    a = slm.attention(q, k, v, dropout=0.2, seed=9)
    b = slm.attention(*(torch.from_numpy(x) for x in (q, k, v)), dropout=0.2, seed=9)
    assert np.array_equal(a, b.numpy())
    # another seed drops other weights
    assert not np.array_equal(a, slm.attention(q, k, v, dropout=0.2, seed=10))


def test_non_contiguous_inputs_are_made_contiguous():
    q, k, v, _ = inputs(2, 5, 4, 16, 8, 3)  # [B,H,T,D] from a [B,T,H,D] view
    qt, kt, vt = (np.ascontiguousarray(x.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
                  for x in (q, k, v))
    assert not qt.flags.c_contiguous
    assert np.array_equal(slm.attention(qt, kt, vt), slm.attention(q, k, v))
    tq = torch.from_numpy(np.ascontiguousarray(q.transpose(0, 2, 1, 3))).transpose(1, 2)
    assert not tq.is_contiguous()
    assert np.array_equal(slm.attention(tq, torch.from_numpy(k), torch.from_numpy(v)).numpy(),
                          slm.attention(q, k, v))


def test_bool_mask_means_attend():
    q, k, v, _ = inputs(1, 2, 6, 6, 8, 4)
    keep = np.random.default_rng(1).uniform(size=(6, 6)) < 0.6
    keep[:, 0] = True
    additive = np.where(keep, 0, -np.inf).astype(np.float32)
    assert np.array_equal(slm.attention(q, k, v, causal=False, mask=keep),
                          slm.attention(q, k, v, causal=False, mask=additive))


# ---- the drop-in -------------------------------------------------------------


def explicit_sdpa(q, k, v, attn_mask=None, is_causal=False, scale=None):
    """PyTorch's documented SDPA in float64 (top-left causal)."""
    L, S = q.shape[-2], k.shape[-2]
    s = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    bias = torch.zeros(L, S, dtype=torch.float64)
    if is_causal:
        bias = bias.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
    if attn_mask is not None:
        bias = (bias.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool
                else bias + attn_mask.double())
    w = torch.softmax(q @ k.transpose(-2, -1) * s + bias, dim=-1)
    return w @ v


SDPA_CASES = [  # name, q shape, S, kwargs
    ("causal_square", (2, 3, 17, 16), 17, dict(is_causal=True)),
    ("causal_top_left_L5_S12", (2, 2, 5, 16), 12, dict(is_causal=True)),
    ("causal_top_left_L12_S5", (1, 2, 12, 8), 5, dict(is_causal=True)),
    ("bool_mask", (2, 2, 9, 16), 11, dict(attn_mask="bool")),
    ("float_mask_scale", (1, 3, 10, 32), 10, dict(attn_mask="float", scale=0.3)),
    ("mask_and_causal_L7_S9", (1, 2, 7, 16), 9, dict(attn_mask="float", is_causal=True)),
    ("3d_inputs", (4, 13, 8), 13, dict(is_causal=True)),
    ("5d_inputs", (2, 2, 2, 6, 8), 6, dict()),
    ("nanogpt_shape", (2, 4, 64, 16), 64, dict(is_causal=True)),
]


def sdpa_inputs(qshape, S, kw, seed):
    g = torch.Generator().manual_seed(seed)
    kshape = (*qshape[:-2], S, qshape[-1])
    q, k, v = (torch.rand(s, generator=g, dtype=torch.float64) * 4 - 2
               for s in (qshape, kshape, kshape))
    L = qshape[-2]
    mask = kw.get("attn_mask")
    if mask == "bool":
        m = torch.rand(L, S, generator=g) < 0.7
        m[:, 0] = True
        kw = {**kw, "attn_mask": m[None, None]}
    elif mask == "float":
        kw = {**kw, "attn_mask": (torch.rand(L, S, generator=g, dtype=torch.float64) - 0.5)}
    dout = torch.rand(qshape, generator=g, dtype=torch.float64) - 0.5
    return q, k, v, dout, kw


def f32_kw(kw):
    m = kw.get("attn_mask")
    return {**kw, "attn_mask": m.float()} if m is not None and m.is_floating_point() else kw


@pytest.mark.parametrize("case", SDPA_CASES, ids=lambda c: c[0])
def test_sdpa_dropin_matches_float64(case):
    name, qshape, S, kw = case
    q, k, v, dout, kw = sdpa_inputs(qshape, S, kw, zlib.crc32(name.encode()))
    x32 = [t.float().requires_grad_() for t in (q, k, v)]
    out = st.scaled_dot_product_attention(*x32, **f32_kw(kw))
    out.backward(dout.float())
    x64 = [t.clone().requires_grad_() for t in (q, k, v)]
    want = explicit_sdpa(*x64, **kw)
    want.backward(dout)
    refs = [want] + [t.grad for t in x64]
    # The function it replaces, in float64, where torch has it (it refuses
    # attn_mask together with is_causal).
    if HAS_SDPA and not ("attn_mask" in kw and kw.get("is_causal")):
        x = [t.clone().requires_grad_() for t in (q, k, v)]
        theirs = torch.nn.functional.scaled_dot_product_attention(*x, **kw)
        theirs.backward(dout)
        for a, b in zip(refs, [theirs] + [t.grad for t in x]):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    for what, got, ref in zip(("out", "dq", "dk", "dv"), [out] + [t.grad for t in x32], refs):
        assert got.shape == ref.shape and got.dtype == torch.float32
        err = (got.double() - ref.detach()).abs().max().item()
        scale = max(1.0, ref.abs().max().item())
        assert err <= 3e-5 * scale, f"{name} {what}: max error {err}"


def test_sdpa_bottom_right_is_slm_causal():
    q, k, v, _ = inputs(2, 2, 5, 12, 16, 11)
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
    a = st.scaled_dot_product_attention(tq, tk, tv, is_causal=True,
                                         causal_alignment="bottom_right")
    assert torch.equal(a, slm.attention(tq, tk, tv, causal=True))
    b = st.scaled_dot_product_attention(tq, tk, tv, is_causal=True)  # top-left differs
    assert (a - b).abs().max() > 1e-3


def test_sdpa_function_apply_and_dropout_seed():
    q, k, v, _ = inputs(1, 2, 16, 16, 8, 12)
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
    a = st.ScaledDotProductAttention.apply(tq, tk, tv, None, 0.3, True, None, 5, "top_left")
    assert torch.equal(a, slm.attention(tq, tk, tv, causal=True, dropout=0.3, seed=5))
    torch.manual_seed(3)
    b = st.scaled_dot_product_attention(tq, tk, tv, dropout_p=0.3)
    torch.manual_seed(3)
    c = st.scaled_dot_product_attention(tq, tk, tv, dropout_p=0.3)
    assert torch.equal(b, c), "torch.manual_seed makes the dropout repeatable"
    assert not torch.equal(b, st.scaled_dot_product_attention(tq, tk, tv, dropout_p=0.3))


def test_sdpa_gradients_match_finite_differences():
    """gradcheck-style: <grad, u> against central differences of slm's own
    forward along random directions u, in float64 arithmetic around float32
    evaluations (so the check is of backward against forward)."""
    g = torch.Generator().manual_seed(1)
    shape = (1, 2, 9, 8)
    x = [torch.rand(shape, generator=g) * 2 - 1 for _ in range(3)]
    w = torch.rand(shape, generator=g, dtype=torch.float64) - 0.5

    def f(q, k, v):
        return (st.scaled_dot_product_attention(q, k, v, is_causal=True).double() * w).sum()

    xs = [t.clone().requires_grad_() for t in x]
    f(*xs).backward()
    eps = 1e-2
    for i in range(3):
        for trial in range(3):
            u = torch.rand(shape, generator=g) - 0.5
            plus = [t.clone() for t in x]
            minus = [t.clone() for t in x]
            plus[i] += eps * u
            minus[i] -= eps * u
            fd = (f(*plus) - f(*minus)).item() / (2 * eps)
            an = (xs[i].grad.double() * u.double()).sum().item()
            assert abs(fd - an) <= 2e-3 * max(1.0, abs(an)), (i, trial, fd, an)


def test_dead_rows_are_zero_not_nan():
    q, k, v, _ = inputs(1, 1, 6, 3, 8, 2)
    tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    out = slm.attention(tq, tk, tv, causal=True)  # bottom-right: rows 0..2 see nothing
    out.sum().backward()
    assert torch.all(out[0, 0, :3] == 0) and torch.isfinite(out).all()
    assert torch.all(tq.grad[0, 0, :3] == 0) and torch.isfinite(tk.grad).all()
