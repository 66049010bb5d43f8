"""Crash safety of `slm train` checkpoints: SIGKILL at random moments of a run
that checkpoints every step (most of its time goes to writing and fsyncing
checkpoint files, so most kills land in the middle of a write), then the
directory must load, resume, and end byte-identical to an uninterrupted run.
SIGINT at random moments must save and exit 0. A run whose loss, gradient or
weights overflow stops naming the step and keeps its last checkpoint.

Without a training state a killed run has no checkpoint yet, and starting
again must work. The Hugging Face files (config.json, model.safetensors) are
written after training_state.safetensors, so only a kill during the very
first checkpoint can leave a directory that resumes but does not load yet.
"""
import collections
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402

SLM = os.environ.get("SLM_BIN", "build/slm")
TMP = tempfile.mkdtemp(prefix="slm-crash-")
STEPS = 16
ARGS = ["--layers", "2", "--heads", "2", "--dim", "128", "--context", "8", "--batch", "1",
        "--steps", str(STEPS), "--save-every", "1", "--eval-every", "0", "--threads", "1",
        "--lr", "3e-3", "--seed", "5"]
FILES = ("training_state.safetensors", "model.safetensors", "config.json")
TEMP = re.compile(r"^\.(training_state\.safetensors|model\.safetensors|config\.json|"
                  r"train_data\.tokens)\.slm-tmp\.[A-Za-z0-9]{6}$")


def slm(*args):
    return subprocess.run([SLM, *args], capture_output=True, timeout=120)


def data_file():
    path = os.path.join(TMP, "data.txt")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("Call me Ishmael. Some years ago, never mind how long precisely, having "
                    "little or no money in my purse, I thought I would sail about a little. " * 20)
    return path


def train_cmd(out):
    return [SLM, "train", "--data", data_file(), "--out", out, *ARGS]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def state_step(out):
    """The step recorded in training_state.safetensors, via slm's own reader."""
    meta = read(os.path.join(out, "training_state.safetensors"))
    m = re.search(rb'"step":"(\d+)"', meta[:4096])
    assert m, "training state without a step"
    return int(m.group(1))


def straight_run():
    out = os.path.join(TMP, "straight")
    if not os.path.exists(os.path.join(out, FILES[0])):
        p = subprocess.run(train_cmd(out), capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
    return {f: read(os.path.join(out, f)) for f in FILES}


def check_after_kill(out):
    """The directory after a kill: loads (or has no checkpoint yet), resumes,
    and finishes with the straight run's bytes. Returns whether a write was
    cut short (a temporary file was left)."""
    left = [n for n in os.listdir(out) if TEMP.match(n)] if os.path.isdir(out) else []
    state = os.path.join(out, FILES[0])
    SEEN["no checkpoint yet" if not os.path.exists(state) else "resumed"] += 1
    if not os.path.exists(state):
        # Killed before the first checkpoint: --resume refuses cleanly, a new run works.
        p = slm("train", "--resume", out, "--threads", "1")
        assert p.returncode == 1 and p.stderr.count(b"\n") == 1, p.stderr
        p = subprocess.run(train_cmd(out), capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
    else:
        step = state_step(out)
        assert 1 <= step <= STEPS, step
        info = slm("info", "-m", out)
        if info.returncode != 0:
            SEEN["model files not written yet"] += 1
            # Only the first checkpoint can lack its model files.
            assert step == 1, (step, info.stderr)
            assert b"slm train --resume" in info.stderr, info.stderr  # tells what to do
            assert not all(os.path.exists(os.path.join(out, f)) for f in FILES[1:]), info.stderr
        if step < STEPS:
            p = slm("train", "--resume", out, "--threads", "1")
            assert p.returncode == 0, (step, p.stderr)
        else:  # killed after the last training state: the model files may lag behind it
            stale = any(read(os.path.join(out, f)) != STRAIGHT[f] for f in FILES[1:]
                        if os.path.exists(os.path.join(out, f)))
            p = slm("train", "--resume", out, "--threads", "1")
            SEEN["killed after the last state"] += 1
            if stale:
                SEEN["model files rewritten"] += 1
                assert p.returncode == 0 and b"rewritten" in p.stderr, p.stderr
            else:
                assert p.returncode == 2 and b"already finished" in p.stderr, p.stderr
    assert slm("info", "-m", out).returncode == 0
    steps = [int(re.match(rb'{"step":(\d+)', l).group(1)) for l in
             read(os.path.join(out, "log.jsonl")).splitlines()]
    assert steps == list(range(1, STEPS + 1)), f"log.jsonl steps {steps}"
    leftover = [n for n in os.listdir(out) if TEMP.match(n)]
    assert not leftover, f"temporary files survived the next run: {leftover}"
    for f, want in STRAIGHT.items():
        assert read(os.path.join(out, f)) == want, f"{f} differs from the straight run"
    return bool(left)


STRAIGHT = {}
SEEN = collections.Counter()


def test_sigkill_at_random_moments_never_loses_the_checkpoint():
    STRAIGHT.update(straight_run())
    t0 = time.time()
    p = subprocess.run(train_cmd(os.path.join(TMP, "timing")), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    run_time = time.time() - t0
    rng = random.Random(20240607)
    trials, mid_write = 0, 0
    # 24 kills, and more (up to 72) while fewer than 2 have cut a write short:
    # on a busy machine the timing run may not predict the killed runs' pace.
    while trials < 24 or (mid_write < 2 and trials < 72):
        i = trials
        trials += 1
        out = os.path.join(TMP, f"kill{i}")
        delay = rng.uniform(0.0, run_time * 1.05)
        proc = subprocess.Popen(train_cmd(out), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        mid_write += check_after_kill(out)
        shutil.rmtree(out)
    print(f"# {trials} SIGKILLs over a {run_time:.2f} s run, {mid_write} cut a write short; "
          f"{dict(SEEN)}", file=sys.stderr)
    # Writing and fsyncing dominate the run, so several kills must have hit one.
    assert mid_write >= 2, f"only {mid_write} of {trials} kills landed mid-write"


def test_sigint_at_random_moments_saves_and_exits_zero():
    if not STRAIGHT:
        STRAIGHT.update(straight_run())
    rng = random.Random(7)
    for i in range(4):
        out = os.path.join(TMP, f"int{i}")
        proc = subprocess.Popen(train_cmd(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # After the first checkpoint exists, so the run has started training.
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(out, "config.json")) and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (proc.returncode, err)
        assert slm("info", "-m", out).returncode == 0
        step = state_step(out)
        if step < STEPS:
            assert b"interrupted" in err, err
            p = slm("train", "--resume", out, "--threads", "1")
            assert p.returncode == 0, p.stderr
        for f, want in STRAIGHT.items():
            assert read(os.path.join(out, f)) == want, f"{f} differs from the straight run"
        shutil.rmtree(out)


def test_divergence_stops_naming_the_step_and_keeps_the_checkpoint():
    """AdamW with --lr 10, no clipping and --weight-decay 10 multiplies the
    weights by (1 - 100) every step: the gradient overflows within a few
    steps. Training must stop there (exit 1, the step named), keep the
    previous checkpoint (finite, loadable, resumable: resuming meets the same
    overflow at the same step) and write nothing more."""
    out = os.path.join(TMP, "diverge")
    args = [SLM, "train", "--data", data_file(), "--out", out, "--layers", "1", "--heads", "2",
            "--dim", "16", "--context", "16", "--batch", "2", "--steps", "40", "--lr", "10",
            "--grad-clip", "0", "--weight-decay", "10", "--warmup", "0", "--save-every", "1",
            "--eval-every", "0", "--threads", "1"]
    p = subprocess.run(args, capture_output=True, timeout=120)
    assert p.returncode == 1, (p.returncode, p.stderr)
    last = p.stderr.decode().strip().splitlines()[-1]
    m = re.match(r"slm: train: the (loss|gradient|weights) became (NaN|infinite|non-finite) "
                 r"at step (\d+); stopping \(the last checkpoint in .* is kept", last)
    assert m, last
    bad = int(m.group(3))
    assert 2 <= bad < 40, bad
    assert state_step(out) == bad - 1, (state_step(out), bad)
    info = slm("info", "-m", out)
    assert info.returncode == 0 and info.stderr == b"", info.stderr  # no non-finite warning
    before = {f: read(os.path.join(out, f)) for f in FILES}
    p = slm("train", "--resume", out, "--threads", "1")
    assert p.returncode == 1 and f"at step {bad};".encode() in p.stderr, p.stderr
    assert {f: read(os.path.join(out, f)) for f in FILES} == before, "checkpoint changed"


if __name__ == "__main__":
    try:
        run([test_sigkill_at_random_moments_never_loses_the_checkpoint,
             test_sigint_at_random_moments_saves_and_exits_zero,
             test_divergence_stops_naming_the_step_and_keeps_the_checkpoint])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
