"""A GPT2LMHeadModel saved by transformers (save_pretrained, safetensors) plus
the GPT-2 vocabulary, used through build/slm: `slm eval` gives the loss
transformers computes with the same window rule, and `slm generate
--temperature 0` gives the ids of transformers' greedy search."""
import os
import shutil
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
from harness import assert_close, run  # noqa: E402

SLM = os.environ.get("SLM_BIN", "build/slm")
TMP = tempfile.mkdtemp(prefix="slm-hf-cli-")
MODEL = os.path.join(TMP, "hf-gpt2")
TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
        "it was the age of foolishness, it was the epoch of belief, it was the epoch of "
        "incredulity, it was the season of Light, it was the season of Darkness.\n")
CTX = 24


def slm(*args):
    p = subprocess.run([SLM, *args], capture_output=True, timeout=300)
    assert p.returncode == 0, f"slm {' '.join(args)}: {p.stderr.decode()}"
    return p.stdout


def hf_model():
    """A random GPT-2 (weights wide enough that greedy choices are clear)."""
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=50257,
                     initializer_range=0.3)
    model = GPT2LMHeadModel(cfg).eval()
    model.save_pretrained(MODEL, safe_serialization=True)
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join("data/gpt2", f), MODEL)
    return model


HF = hf_model()


def ids_of(text):
    return [int(x) for x in slm("tokenize", "-m", MODEL, text).split()]


def test_eval_loss_matches_transformers():
    path = os.path.join(TMP, "text.txt")
    with open(path, "w") as f:
        f.write(TEXT)
    last = slm("eval", "-m", MODEL, "--data", path, "--context", str(CTX)).decode().split()
    ids = torch.tensor(ids_of(TEXT))
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(ids) - 1, CTX):
            x = ids[s:min(s + CTX, len(ids) - 1)]
            y = ids[s + 1:s + 1 + len(x)]
            logits = HF(x[None]).logits[0].double()
            total += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
            count += len(x)
    assert int(last[-1]) == len(ids), (last, len(ids))
    assert_close(float(last[1]), total / count, 1e-4, 1e-6, "eval loss")


def test_greedy_ids_match_transformers():
    prompt = "It was the best of"
    got = [int(x) for x in slm("generate", "-m", MODEL, "-p", prompt, "-n", "12",
                               "--temperature", "0", "--ids").split()]
    ids = ids_of(prompt)
    with torch.no_grad():
        for step, g in enumerate(got):
            row = HF(torch.tensor(ids)[None]).logits[0, -1].double()
            best = int(row.argmax())
            if g != best:  # only a near-tie may differ between slm's fp32 and torch
                gap = (row[best] - row[g]).item()
                assert gap < 1e-4, f"token {step}: slm {g}, transformers {best} (gap {gap})"
            ids.append(g)
    assert len(got) == 12 or got[-1] != 50256


if __name__ == "__main__":
    try:
        run([test_eval_loss_matches_transformers, test_greedy_ids_match_transformers])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
