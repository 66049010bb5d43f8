"""slm.train over the library's trainer: the same bytes as `slm train` for the
same options, a Python-trained model loads in the CLI and vice versa (and a run
started in one resumes in the other), progress reaches the callback, and
Ctrl-C (SIGINT) stops training with a checkpoint that resumes exactly."""
import json
import math
import os
import signal
import struct
import subprocess
import sys

import pytest

import slm
from conftest import TEXT, cli

ARCH = dict(layers=2, heads=2, dim=32, context=32, batch=4)
STEPS = 40


def cli_flags(**kw):
    out = []
    for k, v in kw.items():
        out += ["--" + k.replace("_", "-"), str(v)]
    return out


@pytest.fixture(scope="module")
def data(tmp_root):
    path = tmp_root / "train.txt"
    path.write_text(TEXT * 3, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def cli_run(tmp_root, data):
    """The reference: `slm train` uninterrupted, STEPS steps."""
    out = tmp_root / "train-cli"
    cli("train", "--data", data, "--out", out, "--steps", STEPS, "--eval-every", 10,
        *cli_flags(**ARCH))
    return str(out)


def state_meta(d):
    b = open(os.path.join(d, "training_state.safetensors"), "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n])["__metadata__"]


def same_files(a, b):
    for f in ("model.safetensors", "training_state.safetensors", "config.json",
              "train_data.tokens"):
        with open(os.path.join(a, f), "rb") as x, open(os.path.join(b, f), "rb") as y:
            assert x.read() == y.read(), f"{f} differs between {a} and {b}"


def test_train_matches_cli_bytes_and_reports_progress(tmp_root, data, cli_run):
    seen = []
    r = slm.train(data, tmp_root / "train-py", steps=STEPS, eval_every=10, callback=seen.append,
                  **ARCH)
    same_files(cli_run, r.out)
    assert [p.step for p in seen] == list(range(1, STEPS + 1))
    assert all(isinstance(p, slm.TrainProgress) and p.steps == STEPS for p in seen)
    assert [p.step for p in seen if p.evaluated] == [10, 20, 30, 40]
    assert seen[-1].checkpointed and r == slm.TrainResult(
        r.out, STEPS, STEPS, seen[-1].loss, seen[-1].val_loss, False)
    # the log's losses are the callback's
    log = [json.loads(line) for line in open(os.path.join(r.out, "log.jsonl"))]
    assert [round(p.loss, 6) for p in seen] == [x["loss"] for x in log]
    assert seen[-1].loss < seen[0].loss - 0.5  # it learns
    # the CLI loads what Python trained: same eval line as Python's eval
    m = slm.Model.load(r.out)
    want = cli("eval", "-m", r.out, "--data", data)[1].decode().split()
    assert f"{m.eval(TEXT * 3).loss:.6f}" == want[1]


def test_cli_run_resumes_in_python_and_python_run_in_cli(tmp_root, data, cli_run):
    a = tmp_root / "cli-then-py"
    cli("train", "--data", data, "--out", a, "--steps", STEPS, "--eval-every", 10,
        "--stop-after", 15, *cli_flags(**ARCH))
    assert state_meta(a)["step"] == "15"
    r = slm.resume_training(a)
    assert (r.step, r.interrupted) == (STEPS, False)
    same_files(cli_run, a)
    b = tmp_root / "py-then-cli"
    r = slm.train(data, b, steps=STEPS, eval_every=10, stop_after=15, **ARCH)
    assert (r.step, state_meta(b)["step"]) == (15, "15")
    cli("train", "--resume", b)
    same_files(cli_run, b)


def test_bf16_matches_cli_and_resumes_as_bf16(tmp_root, data):
    """dtype="bf16" is `slm train --dtype bf16`, byte for byte, and a bf16
    CLI run stopped and resumed in Python stays bf16 (the checkpoint's dtype
    reaches the trainer), ending with the uninterrupted run's bytes."""
    ref = tmp_root / "bf16-cli"
    cli("train", "--data", data, "--out", ref, "--steps", 12, "--eval-every", 6, "--dtype",
        "bf16", *cli_flags(**ARCH))
    assert json.loads(state_meta(ref)["args"])["dtype"] == 2
    r = slm.train(data, tmp_root / "bf16-py", steps=12, eval_every=6, dtype="bf16", **ARCH)
    same_files(ref, r.out)
    a = tmp_root / "bf16-cli-then-py"
    cli("train", "--data", data, "--out", a, "--steps", 12, "--eval-every", 6, "--dtype",
        "bf16", "--stop-after", 5, *cli_flags(**ARCH))
    slm.resume_training(a)
    same_files(ref, a)
    with pytest.raises(slm.InvalidArgumentError, match="dtype"):
        slm.train(data, tmp_root / "bf16-bad", steps=2, dtype="f16", **ARCH)


def test_callback_stops_and_exceptions_propagate(tmp_root, data):
    r = slm.train(data, tmp_root / "cb-stop", steps=STEPS, callback=lambda p: p.step == 7,
                  **ARCH)
    assert (r.step, r.interrupted) == (7, True)
    assert state_meta(r.out)["step"] == "7"

    def boom(p):
        if p.step == 3:
            raise RuntimeError("stop here")
    with pytest.raises(RuntimeError, match="stop here"):
        slm.train(data, tmp_root / "cb-raise", steps=STEPS, callback=boom, **ARCH)
    assert state_meta(tmp_root / "cb-raise")["step"] == "3"  # checkpoint of the last step
    r = slm.resume_training(tmp_root / "cb-raise", stop_after=5)
    assert r.step == 5


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tmp_root, data, cli_run):
    out = tmp_root / "ctrl-c"
    # The child restores Python's Ctrl-C handler: a shell without job control
    # starts background commands with SIGINT ignored, and Python keeps an
    # inherited SIG_IGN (make test run with `&` failed here). Each step
    # waits 20 ms in the callback (which returns None: a true value stops
    # the run), so a loaded machine cannot finish the 40 steps before this
    # process has read "step 3" and sent the signal.
    script = (f"import signal, slm, time\n"
              f"signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              f"try:\n"
              f"    slm.train({data!r}, {str(out)!r}, steps={STEPS}, eval_every=10,\n"
              f"              callback=lambda p: print('step', p.step, flush=True)\n"
              f"                                 or time.sleep(0.02), **{ARCH!r})\n"
              f"    print('finished')\n"
              f"except KeyboardInterrupt:\n"
              f"    print('KeyboardInterrupt')\n")
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.strip() == "step 3":
            p.send_signal(signal.SIGINT)
            break
    rest = p.stdout.read().split()
    assert p.wait(timeout=120) == 0
    assert rest[-1] == "KeyboardInterrupt", rest
    step = int(state_meta(out)["step"])
    assert 3 <= step < STEPS
    assert slm.Model.load(out).config.n_layer == 2  # the model files are written too
    r = slm.resume_training(out)
    assert r.step == STEPS
    same_files(cli_run, out)


def test_train_errors(tmp_root, data, cli_run):
    with pytest.raises(ValueError, match="already holds a model"):
        slm.train(data, cli_run, **ARCH)
    with pytest.raises(slm.FileError, match="cannot open"):
        slm.train(str(tmp_root / "nope.txt"), tmp_root / "e1", **ARCH)
    with pytest.raises(ValueError, match="needs at least"):
        short = tmp_root / "short.txt"
        short.write_text("tiny")
        slm.train(str(short), tmp_root / "e2", **ARCH)
    assert not (tmp_root / "e2").exists()  # refused before anything was written
    with pytest.raises(ValueError, match="multiple"):
        slm.train(data, tmp_root / "e3", layers=1, heads=3, dim=32, context=16)
    for bad in (dict(steps=0), dict(lr=-1), dict(lr=math.nan), dict(tokenizer="bpe"),
                dict(val_fraction=0.95), dict(batch=1.5)):
        with pytest.raises(ValueError):
            slm.train(data, tmp_root / "e4", **{**ARCH, **bad})
    with pytest.raises(slm.FileError, match="cannot resume from"):
        slm.resume_training(tmp_root / "no-run")
    with pytest.raises(ValueError, match="already finished step"):
        slm.resume_training(cli_run)


def test_gpt2_tokenizer_run(tmp_root, data):
    r = slm.train(data, tmp_root / "gpt2-run", tokenizer="gpt2", layers=1, heads=2, dim=16,
                  context=16, batch=2, steps=3, eval_every=0)
    m = slm.Model.load(r.out)  # vocab.json + merges.txt were copied
    assert m.config.tokenizer == "gpt2" and m.config.vocab_size == 50257
    ids = list(m.generate_tokens("It was", 4, seed=1))
    assert ids == [int(x) for x in cli("generate", "-m", r.out, "-p", "It was", "-n", 4,
                                       "--seed", 1, "--ids")[1].split()]
