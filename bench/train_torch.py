"""PyTorch counterpart of `slm bench train`: the same GPT-2 step (forward +
backward + clip_grad_norm_ + AdamW, fp32) on the same shapes, eager and under
torch.compile, printed as JSON lines ("impl":"pytorch-eager" / "pytorch-compile");
"eager-bf16" runs eager under bf16 autocast.

The model is nanoGPT's, the architecture slm implements: pre-LN GPT-2 blocks,
GELU (tanh), fused QKV, causal F.scaled_dot_product_attention (PyTorch's CPU
flash kernel), LM head tied to the token embedding, GPT-2 init. AdamW is
torch's fused CPU AdamW where the version has it (else foreach).

Timing: warm-up steps are excluded (torch.compile's compilation happens in
them), then --steps timed steps; "ms" is their median (what slm bench train
reports), "ms_best" the fastest. Meant for build/venv-torch (PyPI's PyTorch,
tools/setup-torch-venv.sh), run through bench/anchors.py, which passes slm's
shape so both measure the same thing. Re-executes itself with glibc told to
keep freed memory (MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1e11), otherwise
each step page-faults its activations back in."""
import argparse
import json
import math
import os
import statistics
import sys
import time

ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
if any(os.environ.get(k) != v for k, v in ENV.items()):
    os.environ.update(ENV)
    os.execv(sys.executable, [sys.executable] + sys.argv)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SHAPES = {  # name: L, H, C, V, P, B, T (as src/cli/bench_train.c)
    "a": (12, 12, 768, 50257, 1024, 4, 64),
    "b": (6, 6, 384, 128, 256, 8, 256),
}


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2)
                   for t in self.c_attn(self.ln_1(x)).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, L, H, C, V, P):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(P, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        for n, p in self.named_parameters():  # GPT-2 init
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if n.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif n.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe.weight[:T]
        for block in self.h:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied LM head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def adamw(model):
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() != 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}]
    kw = dict(lr=6e-4, betas=(0.9, 0.95), eps=1e-8)
    try:
        return torch.optim.AdamW(groups, fused=True, **kw), "fused"
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, foreach=True, **kw), "foreach"


def peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def run(mode, shape, steps, warmup):
    L, H, C, V, P, B, T = shape
    torch.manual_seed(1)
    model = GPT(L, H, C, V, P)
    model.train()
    opt, opt_kind = adamw(model)
    g = torch.Generator().manual_seed(12345)
    idx = torch.randint(0, V, (B, T), generator=g)
    tgt = torch.randint(0, V, (B, T), generator=g)
    fwd = torch.compile(model) if mode == "compile" else model
    # eager-bf16: autocast (bf16 matmuls, fp32 master weights, AdamW and loss),
    # the anchor of slm's --dtype bf16 training (issue 11)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "eager-bf16")
    times, losses = [], []
    t_compile = time.perf_counter()
    for step in range(warmup + steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = fwd(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        t = time.perf_counter() - t
        if step == warmup - 1:
            t_compile = time.perf_counter() - t_compile
        if step >= warmup:
            times.append(t * 1e3)
    ms = statistics.median(times)
    n_matmul = 12 * L * C * C + V * C
    flops = B * T * (6 * n_matmul + 12 * L * C * T)
    return dict(bench="train", impl=f"pytorch-{mode}", L=L, H=H, C=C, V=V, P=P, B=B, T=T,
                threads=torch.get_num_threads(), steps=steps, warmup=warmup,
                ms=round(ms, 1), ms_best=round(min(times), 1),
                gflops=round(flops / (ms * 1e-3) / 1e9, 1),
                warmup_s=round(t_compile, 1), peak_mib=round(peak_mib()),
                loss_first=round(losses[0], 4), loss_last=round(losses[-1], 4),
                adamw=opt_kind, torch=torch.__version__)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="b")
    ap.add_argument("--dims", help="L,H,C,V,P,B,T overriding --shape (bench/anchors.py "
                    "passes the shape slm reported)")
    ap.add_argument("--mode", choices=("eager", "compile", "eager-bf16"), default="eager")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    ap.add_argument("--warmup", type=int, default=0,
                    help="untimed steps first (default: 1 eager, 3 compile)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    shape = tuple(int(x) for x in a.dims.split(",")) if a.dims else SHAPES[a.shape]
    warmup = a.warmup or (3 if a.mode == "compile" else 1)
    r = run(a.mode, shape, a.steps, warmup)
    r["shape"] = a.shape
    print(json.dumps(r, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
