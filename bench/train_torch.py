"""PyTorch 1.13 counterpart of `slm bench train`: the same GPT-2 shapes and
step (forward + backward + clip_grad_norm_ + torch.optim.AdamW), fp32,
printing the same table / JSON ("impl":"pytorch").

Run through bench/train.sh, which sets the allocator variables
(MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000) before Python starts;
this script re-executes itself with them if they are missing."""
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

SHAPES = {  # name: L, H, C, V, P, B, T  (as src/cli/bench_train.c)
    "a": (12, 12, 768, 50257, 1024, 4, 64),
    "b": (6, 6, 384, 128, 256, 8, 256),
}


class Block(nn.Module):
    def __init__(self, C, H, dropout):
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, causal):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2)
                   for t in self.c_attn(self.ln_1(x)).split(C, dim=2))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.H))
        att = self.drop(torch.softmax(att.masked_fill(~causal[:T, :T], float("-inf")), dim=-1))
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.drop(self.c_proj(y))
        return x + self.drop(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")))


class GPT(nn.Module):
    def __init__(self, L, H, C, V, P, dropout):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(P, C)
        self.h = nn.ModuleList(Block(C, H, dropout) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        self.drop = nn.Dropout(dropout)
        self.register_buffer("causal", torch.tril(torch.ones(P, P, dtype=torch.bool)))
        for n, p in self.named_parameters():  # GPT-2 init
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if n.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif n.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe.weight[:T])
        for block in self.h:
            x = block(x, self.causal)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied LM head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def lr_schedule(max_lr, step, warmup, total):
    """slm_lr_schedule: linear warmup, cosine to 10 % of max_lr at total."""
    if step <= warmup:
        return max_lr * step / warmup
    if step >= total:
        return 0.1 * max_lr
    progress = (step - warmup) / (total - warmup)
    return 0.1 * max_lr + 0.45 * max_lr * (1.0 + math.cos(math.pi * progress))


def run(name, steps, dropout):
    L, H, C, V, P, B, T = SHAPES[name]
    reset_peak()
    torch.manual_seed(1)
    model = GPT(L, H, C, V, P, dropout)
    model.train()
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(12345)
    idx = torch.randint(0, V, (B, T), generator=g)
    tgt = torch.randint(0, V, (B, T), generator=g)
    times, losses = [], []
    for step in range(steps + 1):  # step 0 warms up
        t = time.perf_counter()
        for group in opt.param_groups:  # the schedule slm bench train uses
            group["lr"] = lr_schedule(6e-4, step + 1, 2, steps + 1)
        opt.zero_grad(set_to_none=False)
        loss = model(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        t = time.perf_counter() - t
        losses.append(loss.item())
        if step:
            times.append(t * 1e3)
    ms = statistics.median(times)
    n_matmul = 12 * L * C * C + V * C
    flops = B * T * (6 * n_matmul + 12 * L * C * T)
    return dict(bench="train", impl="pytorch", shape=name, L=L, H=H, C=C, V=V, P=P, B=B, T=T,
                threads=torch.get_num_threads(), steps=steps, dropout=dropout,
                ms=round(ms, 1), gflops=round(flops / (ms * 1e-3) / 1e9, 1),
                peak_mib=round(peak_mib()), loss_first=round(losses[0], 4),
                loss_last=round(losses[-1], 4))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), action="append")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if not a.json:
        print(f"pytorch {torch.__version__} bench train: fp32, {a.threads} threads, "
              f"dropout {a.dropout}")
        print("shape    ms/step  GFLOP/s  peak MiB  loss first→last")
    for name in a.shape or sorted(SHAPES):
        r = run(name, a.steps, a.dropout)
        if a.json:
            print(json.dumps(r, separators=(",", ":")), flush=True)
        else:
            print(f"{name:<5} {r['ms']:10.1f} {r['gflops']:8.1f} {r['peak_mib']:9.0f}  "
                  f"{r['loss_first']:.3f}→{r['loss_last']:.3f}", flush=True)


if __name__ == "__main__":
    main()
