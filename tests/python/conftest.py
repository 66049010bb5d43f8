"""Shared fixtures of the Python package tests (pytest; `import slm` is the
package installed into build/venv by `make python`).

The CLI (build/slm, or $SLM_BIN) is the reference for generation, eval and
error messages; transformers' GPT2LMHeadModel for the numbers; the oracles in
tests/oracle for attention."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("SLM_BUILD", "build"))
SLM_BIN = os.path.abspath(os.environ.get("SLM_BIN") or os.path.join(BUILD, "slm"))
os.environ.setdefault("SLM_LIB", os.path.join(BUILD, "libslm.so"))
os.environ["SLM_LIB"] = os.path.abspath(os.environ["SLM_LIB"])
sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))

TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
        "it was the age of foolishness, it was the epoch of belief, it was the epoch of "
        "incredulity, it was the season of Light, it was the season of Darkness, it was "
        "the spring of hope, it was the winter of despair. Ünïcödé — ça va? 日本語.\n") * 6


def cli(*args, ok=True, input=None):
    """Runs the CLI; returns (returncode, stdout bytes, stderr str)."""
    p = subprocess.run([SLM_BIN, *map(str, args)], capture_output=True, timeout=600,
                       input=input)
    if ok:
        assert p.returncode == 0, f"slm {' '.join(map(str, args))}: {p.stderr.decode()}"
    return p.returncode, p.stdout, p.stderr.decode()


def cli_message(*args):
    """The CLI's one-line error without the 'slm: CMD: ' prefix."""
    rc, out, err = cli(*args, ok=False)
    assert rc != 0, f"slm {' '.join(map(str, args))} succeeded"
    line = err.strip().splitlines()[-1]
    prefix = f"slm: {args[0]}: "
    assert line.startswith(prefix), line
    return line[len(prefix):]


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory):
    return tmp_path_factory.mktemp("slm-python")


@pytest.fixture(scope="session")
def text_file(tmp_root):
    path = tmp_root / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def cli_model(tmp_root, text_file):
    """A byte-level model trained by the CLI (a few steps: text-like, not random)."""
    out = tmp_root / "cli-byte"
    cli("train", "--data", text_file, "--out", out, "--layers", 2, "--heads", 2, "--dim", 32,
        "--context", 32, "--batch", 4, "--steps", 40, "--eval-every", 0, "--lr", 3e-3,
        "--val-fraction", 0.2, "--seed", 7)
    return str(out)


@pytest.fixture(scope="session")
def hf_gpt2(tmp_root):
    """(GPT2LMHeadModel, directory): a random GPT-2 saved by transformers with
    the GPT-2 vocabulary (weights wide enough that greedy choices are clear)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=48, vocab_size=50257,
                     initializer_range=0.3)
    model = GPT2LMHeadModel(cfg).eval()
    d = tmp_root / "hf-gpt2"
    model.save_pretrained(d, safe_serialization=True)
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(ROOT, "data", "gpt2", f), d)
    return model, str(d)
