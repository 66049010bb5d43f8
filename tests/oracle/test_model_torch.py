"""GPT-2 in slm vs the same GPT-2 written by hand in PyTorch 1.13 (below, no
`transformers`), built from slm's parameters: logits, loss, every parameter's
gradient, and the parameters after 10 AdamW steps with warmup and clipping,
in float32 against float64 PyTorch (the truth) to 1e-4 relative."""
import math
import os
import sys

import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(__file__))
from harness import assert_close, run  # noqa: E402
import io_ctypes as io  # noqa: E402
from slm_model_ctypes import (SLM_ACT_GELU_NEW, SLM_ACT_RELU, Model,  # noqa: E402
                              lr_schedule)

torch.set_num_threads(2)

SHAPES = {  # name: (L, H, C, V, T, B, activation)
    "gelu": (2, 4, 64, 256, 32, 3, SLM_ACT_GELU_NEW),
    "odd_relu": (2, 3, 96, 300, 17, 2, SLM_ACT_RELU),
    # 300 rows: the FFN's backward runs in blocks of 256 rows and a partial one
    "many_rows_gelu": (1, 2, 32, 64, 100, 3, SLM_ACT_GELU_NEW),
}


# ---- the PyTorch GPT-2 ------------------------------------------------------

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def torch_params(arrays, dtype):
    """{name: array} (GPT-2 names, Conv1D weights [in, out]) → leaf tensors."""
    return {n: torch.tensor(np.asarray(a), dtype=dtype, requires_grad=True)
            for n, a in arrays.items()}


def torch_gpt(P, n_layer, n_head, idx, targets=None, activation=SLM_ACT_GELU_NEW, eps=1e-5):
    """GPT-2 forward: returns (logits [B,T,V], mean cross-entropy or None)."""
    B, T = idx.shape
    wte = P["wte.weight"]
    C = wte.shape[1]
    D = C // n_head
    x = wte[idx] + P["wpe.weight"][:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(n_layer):
        p = lambda s: P[f"h.{l}.{s}"]  # noqa: E731
        h = F.layer_norm(x, (C,), p("ln_1.weight"), p("ln_1.bias"), eps)
        qkv = h @ p("attn.c_attn.weight") + p("attn.c_attn.bias")
        q, k, v = (t.view(B, T, n_head, D).transpose(1, 2) for t in qkv.split(C, dim=2))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        att = torch.softmax(att.masked_fill(~causal, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + (y @ p("attn.c_proj.weight") + p("attn.c_proj.bias"))
        h = F.layer_norm(x, (C,), p("ln_2.weight"), p("ln_2.bias"), eps)
        h = h @ p("mlp.c_fc.weight") + p("mlp.c_fc.bias")
        h = gelu_new(h) if activation == SLM_ACT_GELU_NEW else torch.relu(h)
        x = x + (h @ p("mlp.c_proj.weight") + p("mlp.c_proj.bias"))
    x = F.layer_norm(x, (C,), P["ln_f.weight"], P["ln_f.bias"], eps)
    logits = x @ wte.t()
    loss = None
    if targets is not None:
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1), ignore_index=-1)
    return logits, loss


# ---- helpers ------------------------------------------------------------------

def make_model(shape, seed=7):
    """An slm model with parameters spread wider than GPT-2's init (so every
    nonlinearity is exercised), plus a batch with some ignored targets."""
    L, H, C, V, T, B, act = shape
    m = Model(L, H, C, V, n_positions=T + 3, activation=act, seed=seed)
    rng = np.random.default_rng(seed)
    params = {}
    for name, a in m.params().items():
        if ".ln_" in "." + name and name.endswith("weight"):
            a = 1.0 + 0.2 * rng.standard_normal(a.shape)
        elif name.endswith("bias"):
            a = 0.1 * rng.standard_normal(a.shape)
        else:
            a = a * 5.0
        params[name] = a.astype(np.float32)
    m.set_params(params)
    params = through_safetensors(m)
    tokens = rng.integers(0, V, size=(B, T))
    targets = rng.integers(0, V, size=(B, T))
    targets[0, :3] = -1
    targets[-1, -1] = -1
    return m, params, tokens, targets


def through_safetensors(m):
    """The parameters as the PyTorch side sees them: slm writes its
    model.safetensors, which is read back with the `safetensors` package, so
    both models are built from the same file."""
    with tempfile.TemporaryDirectory() as d:
        io.model_save(m.h, d)
        st = load_file(os.path.join(d, "model.safetensors"))
    return {k.removeprefix("transformer."): v for k, v in st.items()}


def tol_close(got, want, what, rtol=1e-4):
    """1e-4 relative, with an absolute floor of 1e-4 × the tensor's largest
    magnitude for elements near zero (fp32 round-off scales with the terms
    summed, not with their cancelled result)."""
    want = np.asarray(want, dtype=np.float64)
    assert_close(got, want, rtol, rtol * max(np.abs(want).max(), 1e-30), what)


def check_forward_backward(shape):
    L, H, C, V, T, B, act = shape
    m, params, tokens, targets = make_model(shape)
    loss = m.forward(tokens, targets, training=True)
    logits = m.logits()
    m.zero_grad()
    m.backward(1.0)
    grads = m.grads()
    for dtype in (torch.float64, torch.float32):
        P = torch_params(params, dtype)
        ref_logits, ref_loss = torch_gpt(P, L, H, torch.tensor(tokens), torch.tensor(targets),
                                         act)
        ref_loss.backward()
        tag = str(dtype).split(".")[-1]
        tol_close(logits, ref_logits.detach().numpy(), f"logits vs {tag}")
        tol_close(loss, ref_loss.item(), f"loss vs {tag}")
        for n, g in grads.items():
            tol_close(g, P[n].grad.numpy(), f"grad {n} vs {tag}")


def test_gelu_logits_loss_grads():
    check_forward_backward(SHAPES["gelu"])


def test_odd_shape_relu_logits_loss_grads():
    check_forward_backward(SHAPES["odd_relu"])


def test_many_rows_gelu_logits_loss_grads():
    check_forward_backward(SHAPES["many_rows_gelu"])


def check_adamw(shape, steps=10):
    L, H, C, V, T, B, act = shape
    m, params, _, _ = make_model(shape, seed=11)
    rng = np.random.default_rng(3)
    batches = [(rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T)))
               for _ in range(steps)]
    max_lr, warmup, wd = 1e-3, 3, 0.1
    # Clip below the first step's norm so clipping is exercised.
    m.forward(*batches[0], training=True)
    m.zero_grad()
    m.backward()
    clip = 0.5 * float(np.sqrt(sum((g.astype(np.float64) ** 2).sum()
                                   for g in m.grads().values())))
    norms = []
    for s in range(1, steps + 1):
        m.forward(*batches[s - 1], training=True)
        m.zero_grad()
        m.backward()
        norms.append(m.adamw_step(s, lr_schedule(max_lr, s, warmup, steps),
                                  weight_decay=wd, grad_clip=clip))
    got = m.params()

    P = torch_params(params, torch.float64)
    decay = [t for n, t in P.items() if t.ndim == 2]
    other = [t for n, t in P.items() if t.ndim != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd},
                             {"params": other, "weight_decay": 0.0}],
                            lr=max_lr, betas=(0.9, 0.95), eps=1e-8)
    ref_norms = []
    for s in range(1, steps + 1):
        tok, tgt = (torch.tensor(a) for a in batches[s - 1])
        opt.zero_grad()
        torch_gpt(P, L, H, tok, tgt, act)[1].backward()
        ref_norms.append(torch.nn.utils.clip_grad_norm_(list(P.values()), clip).item())
        for g in opt.param_groups:
            g["lr"] = lr_schedule(max_lr, s, warmup, steps)
        opt.step()
    assert min(ref_norms) > clip, f"clipping not exercised: {ref_norms} vs {clip}"
    tol_close(norms, ref_norms, "grad norms")
    C3 = shape[2]
    for n, want in P.items():
        want = want.detach().numpy()
        if n.endswith("attn.c_attn.bias"):
            # The key bias adds q·b_k to every score of a row, which softmax
            # cancels: its gradient is 0 in exact arithmetic, pure round-off
            # in fp32, and Adam (which normalises by |g|) turns round-off into
            # steps of ±lr. Check the key part stayed at lr·steps scale
            # around its start; compare q and v parts strictly.
            k = slice(C3, 2 * C3)
            assert np.abs(got[n][k] - params[n][k]).max() <= max_lr * steps
            keep = np.r_[0:C3, 2 * C3:3 * C3]
            tol_close(got[n][keep], want[keep], f"param {n} (q, v) after {steps} steps")
            continue
        # Parameters move by ~lr per step from O(0.1..1) values: compare the
        # update (θ − θ₀) to 1e-3 of its size and θ itself to 1e-4.
        tol_close(got[n], want, f"param {n} after {steps} steps")
        tol_close(got[n] - params[n], want - params[n], f"update of {n}", rtol=2e-3)


def test_gelu_adamw_10_steps():
    check_adamw(SHAPES["gelu"])


def test_odd_shape_relu_adamw_10_steps():
    check_adamw(SHAPES["odd_relu"])


if __name__ == "__main__":
    run([test_gelu_logits_loss_grads, test_odd_shape_relu_logits_loss_grads,
         test_many_rows_gelu_logits_loss_grads, test_gelu_adamw_10_steps, test_odd_shape_relu_adamw_10_steps])
