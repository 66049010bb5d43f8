"""The model commands end to end, through build/slm: train (determinism,
stop + resume byte-identical, Ctrl-C), eval (the window rule, against a
PyTorch GPT-2 built from the saved model.safetensors), generate (greedy ids
against PyTorch, sampling determinism, errors), tokenize/detokenize."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(__file__))
from harness import assert_close, run  # noqa: E402
from test_model_torch import torch_gpt  # noqa: E402

SLM = os.environ.get("SLM_BIN", "build/slm")
TMP = tempfile.mkdtemp(prefix="slm-cli-")
TEXT = ("In the beginning God created the heaven and the earth. And the earth was "
        "without form, and void; and darkness was upon the face of the deep.\n") * 60
TINY = ["--layers", "2", "--heads", "2", "--dim", "32", "--context", "16", "--batch", "4",
        "--eval-every", "3", "--eval-batches", "2", "--lr", "3e-3", "--threads", "2"]


def slm(*args, check=True, input=None):
    p = subprocess.run([SLM, *args], capture_output=True, input=input, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"slm {' '.join(args)} exited {p.returncode}: {p.stderr.decode()}")
    return p


def data_file(text=TEXT, name="data.txt"):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def train(out, *extra, steps=6):
    return slm("train", "--data", data_file(), "--out", out, "--steps", str(steps), *TINY,
               *extra)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def torch_model(d):
    """The saved directory as (params dict without prefix, config) for torch_gpt."""
    cfg = json.load(open(os.path.join(d, "config.json")))
    st = load_file(os.path.join(d, "model.safetensors"))
    P = {k.removeprefix("transformer."): torch.tensor(v, dtype=torch.float64)
         for k, v in st.items()}
    return P, cfg


def test_train_writes_a_hugging_face_directory():
    out = os.path.join(TMP, "hf")
    train(out)
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["model_type"] == "gpt2" and cfg["n_layer"] == 2 and cfg["n_embd"] == 32
    assert cfg["slm_tokenizer"] == "byte" and cfg["vocab_size"] >= 256
    names = set(load_file(os.path.join(out, "model.safetensors")))
    assert "transformer.wte.weight" in names and "transformer.h.1.mlp.c_proj.bias" in names
    assert "lm_head.weight" not in names, "tied head must not be saved"
    log = [json.loads(l) for l in open(os.path.join(out, "log.jsonl"))]
    assert [r["step"] for r in log] == list(range(1, 7)), log
    assert "val_loss" in log[2] and "val_loss" in log[5]


def test_same_seed_same_bytes_other_seed_other_bytes():
    a, b, c = (os.path.join(TMP, n) for n in ("s1", "s2", "s3"))
    train(a)
    train(b)
    train(c, "--seed", "7")
    for f in ("model.safetensors", "training_state.safetensors"):
        assert read(os.path.join(a, f)) == read(os.path.join(b, f)), f"{f} differs"
    assert read(os.path.join(a, "model.safetensors")) != read(os.path.join(c, "model.safetensors"))


def test_stop_and_resume_is_byte_identical():
    straight, split = os.path.join(TMP, "straight"), os.path.join(TMP, "split")
    train(straight, "--dropout", "0.1", steps=8)
    train(split, "--dropout", "0.1", "--stop-after", "3", steps=8)
    assert read(os.path.join(split, "log.jsonl")).count(b"\n") == 3, "stopped after step 3"
    slm("train", "--resume", split, "--threads", "2")
    for f in ("model.safetensors", "training_state.safetensors", "config.json"):
        assert read(os.path.join(straight, f)) == read(os.path.join(split, f)), f"{f} differs"


def test_resume_with_more_steps_and_finished_run():
    out = os.path.join(TMP, "more")
    train(out, steps=4)
    p = slm("train", "--resume", out, check=False)
    assert p.returncode == 2 and b"already finished" in p.stderr, p.stderr
    slm("train", "--resume", out, "--steps", "6", "--threads", "2")
    log = [json.loads(l) for l in open(os.path.join(out, "log.jsonl"))]
    assert log[-1]["step"] == 6


def test_ctrl_c_saves_and_exits_zero():
    out = os.path.join(TMP, "sigint")
    args = [SLM, "train", "--data", data_file(), "--out", out, "--steps", "100000",
            *TINY, "--save-every", "0"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = os.path.join(out, "log.jsonl")
    deadline = time.time() + 60
    while time.time() < deadline and not (os.path.exists(log) and os.path.getsize(log) > 200):
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, (p.returncode, err)
    assert b"interrupted" in err
    steps = sum(1 for _ in open(log))
    meta = slm("info", "-m", out).stdout
    assert b"parameters" in meta
    slm("train", "--resume", out, "--steps", str(steps + 2), "--threads", "2")


def test_eval_follows_the_window_rule():
    out = os.path.join(TMP, "hf")
    if not os.path.exists(out):
        train(out)
    text = TEXT[:100]
    p = slm("eval", "-m", out, "--data", data_file(text, "eval.txt"), "--context", "16")
    last = p.stdout.decode().strip().splitlines()[-1].split()
    assert last[0] == "loss" and last[2] == "perplexity" and last[4] == "tokens", last
    P, cfg = torch_model(out)
    ids = torch.tensor(list(text.encode()))
    total, count = 0.0, 0
    for s in range(0, len(ids) - 1, 16):
        x = ids[s:min(s + 16, len(ids) - 1)]
        y = ids[s + 1:s + 1 + len(x)]
        _, loss = torch_gpt(P, cfg["n_layer"], cfg["n_head"], x[None], y[None])
        total += loss.item() * len(x)
        count += len(x)
    assert count == len(ids) - 1
    assert int(last[5]) == len(ids)
    assert_close(float(last[1]), total / count, 1e-4, 1e-6, "eval loss")
    assert_close(float(last[3]), np.exp(total / count), 1e-4, 1e-6, "perplexity")


def test_validation_loss_is_slm_eval_of_the_held_out_text():
    """Training's validation is `slm eval` on the validation split: with the
    byte tokenizer that split is the text's last val_fraction of bytes."""
    out = os.path.join(TMP, "val_eval")
    # 9060 bytes · 0.05 = 453 held out: 452 predictions in 29 windows of 16,
    # the last one partial; --eval-batches 8 × --batch 4 covers them all.
    train(out, "--val-fraction", "0.05", "--eval-batches", "8", steps=4)
    log = [json.loads(l) for l in open(os.path.join(out, "log.jsonl"))]
    n = len(TEXT.encode())
    tail = data_file(TEXT.encode()[n - int(n * 0.05):].decode(), "val_tail.txt")
    got = slm("eval", "-m", out, "--data", tail, "--context", "16", "--batch", "4").stdout
    loss = float(got.split()[1])
    assert f"{loss:.6f}" == f"{log[-1]['val_loss']:.6f}", (got, log[-1])


def test_generate_greedy_matches_torch():
    out = os.path.join(TMP, "hf")
    if not os.path.exists(out):
        train(out)
    prompt = "And the earth"
    p = slm("generate", "-m", out, "-p", prompt, "-n", "20", "--temperature", "0", "--ids")
    got = [int(x) for x in p.stdout.split()]
    assert len(got) == 20
    P, cfg = torch_model(out)
    ids = list(prompt.encode())
    for step, g in enumerate(got):
        ctx = torch.tensor(ids[-cfg["n_positions"]:])[None]
        logits, _ = torch_gpt(P, cfg["n_layer"], cfg["n_head"], ctx)
        row = logits[0, -1]
        best = int(row.argmax())
        if g != best:  # only a near-tie may differ between float32 and float64
            gap = (row[best] - row[g]).item()
            assert gap < 1e-4, f"token {step}: slm {g} torch {best} (gap {gap})"
        ids.append(g)
    text = slm("generate", "-m", out, "-p", prompt, "-n", "20", "--temperature", "0").stdout
    assert text == bytes(got), "text output equals the ids' bytes"


def test_generate_sampling_is_seeded():
    out = os.path.join(TMP, "hf")
    if not os.path.exists(out):
        train(out)
    runs = [slm("generate", "-m", out, "-n", "40", "--seed", s, "--ids", "--top-k", "20",
                "--top-p", "0.9").stdout for s in ("1", "1", "2")]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_generate_rejects_bad_requests():
    out = os.path.join(TMP, "hf")
    if not os.path.exists(out):
        train(out)
    long_prompt = "x" * 40  # context is 16
    cases = [
        (["-p", long_prompt], 1, b"context"),
        (["-n", "0"], 2, b"-n"),
        (["--temperature", "-1"], 2, b"temperature"),
        (["--temperature", "nan"], 2, b"temperature"),
        (["--top-p", "0"], 2, b"top-p"),
        (["--top-p", "1.5"], 2, b"top-p"),
        (["--top-k", "-3"], 2, b"top-k"),
        (["--bogus"], 2, b"unknown option"),
        (["--prompt-ids", "1 999"], 2, b"999"),
    ]
    for args, code, what in cases:
        p = slm("generate", "-m", out, *args, check=False)
        assert p.returncode == code, (args, p.returncode, p.stderr)
        assert p.stderr.startswith(b"slm: ") and what in p.stderr, (args, p.stderr)
        assert p.stdout == b"", (args, p.stdout)
    p = slm("generate", "-m", out, "-p", long_prompt, "--truncate", "-n", "5", "--ids")
    assert len(p.stdout.split()) == 5
    p = slm("generate", "-m", os.path.join(TMP, "missing"), check=False)
    assert p.returncode == 1 and p.stderr.startswith(b"slm: ")


def test_tokenize_detokenize_round_trip():
    out = os.path.join(TMP, "hf")
    if not os.path.exists(out):
        train(out)
    text = "Héllo, wörld!\n"
    ids = slm("tokenize", "-m", out, text).stdout.split()
    assert [int(i) for i in ids] == list(text.encode())
    assert slm("tokenize", "-m", out, input=text.encode()).stdout.split() == ids
    assert slm("detokenize", "-m", out, *[i.decode() for i in ids]).stdout == text.encode()
    p = slm("detokenize", "-m", out, "70000", check=False)
    assert p.returncode != 0 and p.stderr.startswith(b"slm: ")


def test_train_rejects_bad_input_and_creates_nothing():
    empty = data_file("", "empty.txt")
    short = data_file("tiny", "short.txt")
    a_file = data_file("not a directory", "a_file")
    cases = [
        (["--data", empty, "--out", os.path.join(TMP, "e1")], 1, b"empty"),
        (["--data", short, "--out", os.path.join(TMP, "e2")], 1, b"tokens"),
        (["--data", TMP, "--out", os.path.join(TMP, "e3")], 1, b"directory"),
        (["--data", os.path.join(TMP, "nope.txt"), "--out", os.path.join(TMP, "e4")], 1,
         b"nope.txt"),
        (["--data", data_file(), "--out", a_file], 1, b"a_file"),
        (["--data", data_file(), "--out", os.path.join(TMP, "e5"), "--dim", "30",
          "--heads", "4"], 2, b"multiple"),
        (["--data", data_file(), "--out", os.path.join(TMP, "e6"), "--lr", "nan"], 2, b"--lr"),
        (["--data", data_file(), "--out", os.path.join(TMP, "e7"), "--wat"], 2, b"unknown"),
        (["--out", os.path.join(TMP, "e8")], 2, b"--data"),
    ]
    for args, code, what in cases:
        p = slm("train", *args, check=False)
        assert p.returncode == code, (args, p.returncode, p.stderr)
        assert p.stderr.startswith(b"slm: ") and what in p.stderr, (args, p.stderr)
        out = args[args.index("--out") + 1]
        if out != a_file:
            assert not os.path.exists(os.path.join(out, "model.safetensors")), args
    assert read(a_file) == b"not a directory"


def test_info_names_the_kernel_path():
    """`slm info` says which kernels run (CPU level first); SLM_CPU_LEVEL lowers it."""
    out = os.path.join(TMP, "kernels")
    train(out, steps=1)
    levels = ["avx512", "avx2", "portable"]
    line = [ln for ln in slm("info", "-m", out).stdout.decode().splitlines()
            if ln.startswith("kernels ")]
    assert len(line) == 1, line
    level = line[0].split()[1].rstrip(":")
    assert level in levels, line
    for lower in levels[levels.index(level):]:
        p = subprocess.run([SLM, "info", "-m", out], capture_output=True, timeout=60,
                           env=dict(os.environ, SLM_CPU_LEVEL=lower))
        got = [ln for ln in p.stdout.decode().splitlines() if ln.startswith("kernels ")]
        assert p.returncode == 0 and got and got[0].split()[1] == lower + ":", (lower, got)
        assert ("oneDNN" in got[0]) == (lower != "portable"), got
        # the bf16 GEMM: AMX or oneDNN only at avx512, portable C below it
        bf = [ln for ln in p.stdout.decode().splitlines() if ln.startswith("bf16 GEMM ")]
        assert len(bf) == 1, (lower, bf)
        if lower != "avx512":
            assert "portable C" in bf[0], (lower, bf)
        else:
            assert any(k in bf[0] for k in ("AMX tiles", "oneDNN", "portable C")), bf
    p = subprocess.run([SLM, "info", "-m", out], capture_output=True, timeout=60,
                       env=dict(os.environ, SLM_AMX="0"))
    assert "AMX" not in [ln for ln in p.stdout.decode().splitlines()
                         if ln.startswith("bf16 GEMM ")][0], p.stdout


if __name__ == "__main__":
    try:
        run([test_train_writes_a_hugging_face_directory,
             test_same_seed_same_bytes_other_seed_other_bytes,
             test_stop_and_resume_is_byte_identical,
             test_resume_with_more_steps_and_finished_run,
             test_ctrl_c_saves_and_exits_zero,
             test_eval_follows_the_window_rule,
             test_validation_loss_is_slm_eval_of_the_held_out_text,
             test_generate_greedy_matches_torch,
             test_generate_sampling_is_seeded,
             test_generate_rejects_bad_requests,
             test_tokenize_detokenize_round_trip,
             test_train_rejects_bad_input_and_creates_nothing,
             test_info_names_the_kernel_path])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
