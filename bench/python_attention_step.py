"""A nanoGPT-shaped PyTorch training step with slm's attention in place of
PyTorch's: the same model, data and initialisation run once with
`torch.nn.functional.scaled_dot_product_attention` (or, on a torch without it
such as Debian's 1.13, nanoGPT's own fallback: explicit q·kᵀ, causal
masked_fill, softmax, ·v) and once with `slm.torch.scaled_dot_product_attention`
(slm's flash forward and backward through a torch.autograd.Function).

A step is nanoGPT's: forward, cross-entropy, backward, clip_grad_norm_(1.0),
AdamW; fp32, dropout 0. Shapes:
  (a) GPT-2 124M: L12 H12 C768 V50257, B4 T64
  (b) L6 H6 C384 V256, B8 T256
The two variants' steps alternate on the same batches (a busy machine slows
both alike). It prints, per shape: the median step time of each variant, the ratio, the
attention forward+backward alone on that shape (both implementations), and
the losses of both runs (they must agree: same model, same batches).

Runs with any torch >= 1.13:
  build/venv/bin/python bench/python_attention_step.py [--shape a|b|all]
      [--steps N] [--threads N] [--json]
With another environment's torch, point PYTHONPATH at the built package:
  PYTHONPATH=build/python/lib.linux-x86_64-cpython-311 OTHER/bin/python \\
      bench/python_attention_step.py
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
if any(os.environ.get(k) != v for k, v in ENV.items()):  # as bench/train_torch.py
    os.environ.update(ENV)
    os.execv(sys.executable, [sys.executable] + sys.argv)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import slm  # noqa: E402
import slm.torch  # noqa: E402

SHAPES = {  # name: L, H, C, V, B, T
    "a": (12, 12, 768, 50257, 4, 64),
    "b": (6, 6, 384, 256, 8, 256),
}
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def torch_attention(q, k, v):
    if HAS_SDPA:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]  # nanoGPT's path when flash attention is unavailable
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    att = F.softmax(att.masked_fill(~causal, float("-inf")), dim=-1)
    return att @ v


def slm_attention(q, k, v):
    return slm.torch.scaled_dot_product_attention(q, k, v, is_causal=True)


class Block(nn.Module):
    """nanoGPT's Block: x + attn(ln_1(x)), x + mlp(ln_2(x))."""

    def __init__(self, C, H, attend):
        super().__init__()
        self.H, self.attend = H, attend
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2)
                   for t in self.c_attn(self.ln_1(x)).split(C, dim=2))
        y = self.attend(q, k, v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, L, H, C, V, T, attend):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList(Block(C, H, attend) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        self.lm_head = nn.Linear(C, V, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as GPT-2
        for n, p in self.named_parameters():  # GPT-2 init
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if n.endswith(("c_proj.weight", "mlp_proj.weight")) \
                    else 0.02
                nn.init.normal_(p, 0.0, std)
            elif n.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


def make_run(shape, attend):
    """(model, optimizer) from the same seed: both variants start equal."""
    L, H, C, V, B, T = shape
    torch.manual_seed(1337)
    model = GPT(L, H, C, V, T, attend)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)
    return model, opt


def step(model, opt, x, y):
    t0 = time.perf_counter()
    loss = model(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return time.perf_counter() - t0, loss.item()


def train_both(shape, steps):
    """Steps of the two variants alternate on the same batches, so a busy
    machine slows both alike; step 0 of each warms up (allocations, pools).
    Returns {variant: (median seconds, losses)}."""
    L, H, C, V, B, T = shape
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, V, (steps + 1, B, T + 1), generator=g)
    runs = {"torch": make_run(shape, torch_attention), "slm": make_run(shape, slm_attention)}
    times = {k: [] for k in runs}
    losses = {k: [] for k in runs}
    for i in range(steps + 1):
        x, y = data[i, :, :-1], data[i, :, 1:]
        for k, (model, opt) in runs.items():
            t, loss = step(model, opt, x, y)
            times[k].append(t)
            losses[k].append(loss)
    return {k: (statistics.median(times[k][1:]), losses[k]) for k in runs}


def attention_alone(shape, reps):
    """Median seconds of attention forward + backward alone on the step's
    shape, {variant: seconds}, the variants alternating."""
    L, H, C, V, B, T = shape
    g = torch.Generator().manual_seed(1)
    x = [torch.randn(B, H, T, C // H, generator=g, requires_grad=True) for _ in range(3)]
    dout = torch.randn(B, H, T, C // H, generator=g)
    times = {"torch": [], "slm": []}
    for i in range(reps + 1):
        for k, attend in (("torch", torch_attention), ("slm", slm_attention)):
            t0 = time.perf_counter()
            attend(*x).backward(dout)
            times[k].append(time.perf_counter() - t0)
            for t in x:
                t.grad = None
    return {k: statistics.median(v[1:]) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="all", choices=["a", "b", "all"])
    ap.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", action="store_true", help="one JSON object per shape")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    slm.set_num_threads(a.threads)
    base = "sdpa" if HAS_SDPA else "nanogpt-explicit"
    if not a.json:
        print(f"torch {torch.__version__} (baseline: {base}), slm {slm.__version__}, "
              f"{a.threads} threads, median of {a.steps} steps")
        print("| shape | torch step ms | slm-attention step ms | slm / torch | "
              "attn fwd+bwd ms torch | attn fwd+bwd ms slm | losses torch | losses slm |")
        print("|---|---:|---:|---:|---:|---:|---|---|")
    for name in (["a", "b"] if a.shape == "all" else [a.shape]):
        shape = SHAPES[name]
        res = train_both(shape, a.steps)
        (t_torch, l_torch), (t_slm, l_slm) = res["torch"], res["slm"]
        alone = attention_alone(shape, 10)
        at_torch, at_slm = alone["torch"], alone["slm"]
        worst = max(abs(x - y) for x, y in zip(l_torch, l_slm))
        row = dict(bench="python_attention_step", shape=name, L=shape[0], H=shape[1],
                   C=shape[2], V=shape[3], B=shape[4], T=shape[5], torch=torch.__version__,
                   baseline=base, threads=a.threads, torch_ms=t_torch * 1e3,
                   slm_ms=t_slm * 1e3, ratio=t_slm / t_torch, attn_torch_ms=at_torch * 1e3,
                   attn_slm_ms=at_slm * 1e3, loss_torch=l_torch, loss_slm=l_slm,
                   max_loss_diff=worst)
        if a.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"| ({name}) L{shape[0]} H{shape[1]} C{shape[2]} V{shape[3]} B{shape[4]} "
                  f"T{shape[5]} | {t_torch * 1e3:.0f} | {t_slm * 1e3:.0f} | "
                  f"{t_slm / t_torch:.2f} | {at_torch * 1e3:.1f} | {at_slm * 1e3:.1f} | "
                  f"{l_torch[0]:.4f} → {l_torch[-1]:.4f} | {l_slm[0]:.4f} → {l_slm[-1]:.4f} |",
                  flush=True)
        if worst > 1e-3:
            print(f"error: the losses differ by {worst:.2e}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
