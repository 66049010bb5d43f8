"""`slm train --dtype` end to end, through build/slm: the choice is printed;
with bf16 GEMMs forced off (SLM_BF16_GEMM=0, or a kernel level without
AVX512-BF16) the math stays fp32 and the activations are stored in bf16:
the first step's loss is fp32's exactly, later ones close; forced on
(SLM_BF16_GEMM=1) the weights differ from fp32's yet stay within what bf16
rounding explains, the checkpoint records the dtype and stays F32, and a
stopped bf16 run resumes to the uninterrupted run's files."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402

SLM = os.environ.get("SLM_BIN", "build/slm")
TMP = tempfile.mkdtemp(prefix="slm-dtype-")
TEXT = ("And God said, Let there be light: and there was light. And God saw the light, "
        "that it was good.\n") * 60
TINY = ["--layers", "2", "--heads", "2", "--dim", "32", "--context", "16", "--batch", "4",
        "--steps", "6", "--eval-every", "3", "--eval-batches", "2", "--lr", "3e-3",
        "--threads", "1"]


def data():
    path = os.path.join(TMP, "data.txt")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(TEXT)
    return path


def train(out, force, *extra, level=None):
    env = dict(os.environ)
    env.pop("SLM_BF16_GEMM", None)
    env.pop("SLM_CPU_LEVEL", None)
    if level is not None:
        env["SLM_CPU_LEVEL"] = level
    if force is not None:
        env["SLM_BF16_GEMM"] = force
    path = os.path.join(TMP, out)
    shutil.rmtree(path, ignore_errors=True)
    p = subprocess.run([SLM, "train", "--data", data(), "--out", path, *TINY, *extra],
                       capture_output=True, env=env, timeout=300)
    assert p.returncode == 0, f"slm train exited {p.returncode}: {p.stderr.decode()}"
    return path, p.stderr.decode()


def resume(path, force, *extra):
    env = dict(os.environ, SLM_BF16_GEMM=force)
    p = subprocess.run([SLM, "train", "--resume", path, *extra], capture_output=True, env=env,
                       timeout=300)
    assert p.returncode == 0, f"slm train --resume exited {p.returncode}: {p.stderr.decode()}"


def read(path, name):
    with open(os.path.join(path, name), "rb") as f:
        return f.read()


def check_close_to_fp32(a, b):
    """Run b (bf16) against run a (fp32) from the same start: the weights
    differ, within what AdamW's steps allow; the checkpoint records dtype
    bf16 in F32 tensors; the logged losses agree within 1 %."""
    wa, wb = load_file(os.path.join(a, "model.safetensors")), load_file(
        os.path.join(b, "model.safetensors"))
    diff = max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)
    assert diff > 0, "bf16 run equals fp32: bf16 not used"
    # AdamW moves a weight by about lr per step whatever the gradient, so
    # this bound only rules out a broken run; the losses below are the test.
    assert diff < 6 * 3e-3, f"bf16 weights differ from fp32 by {diff}"
    print(f"# bf16 vs fp32 weights after 6 steps: max difference {diff:.3g}")
    state = os.path.join(b, "training_state.safetensors")
    with open(state, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    assert json.loads(header["__metadata__"]["args"])["dtype"] == 2, header["__metadata__"]
    assert all(v["dtype"] == "F32" for k, v in header.items() if k != "__metadata__"), header
    log = [json.loads(l) for l in read(b, "log.jsonl").splitlines()]
    la = [json.loads(l) for l in read(a, "log.jsonl").splitlines()]
    assert len(log) == len(la) == 6
    for x, y in zip(log, la):  # bf16's 2^-8 per input: the losses agree within 1 %
        assert abs(x["loss"] - y["loss"]) <= 0.01 * y["loss"], (x, y)
        if "val_loss" in y:
            assert abs(x["val_loss"] - y["val_loss"]) <= 0.01 * y["val_loss"], (x, y)
    return log, la


def test_bf16_forced_off_stores_activations_in_bf16():
    a, _ = train("fp32", None)
    b, err = train("bf16_off", "0", "--dtype", "bf16")
    assert ("dtype bf16: fp32 GEMMs: forced by SLM_BF16_GEMM=0; activations stored in bf16"
            in err), err
    log, la = check_close_to_fp32(a, b)
    assert log[0]["loss"] == la[0]["loss"], "first step's loss is not fp32's: forward rounded"


def test_bf16_below_avx512_stores_activations_in_bf16():
    """The rule keyed on the CPU: without AVX512-BF16 at the kernel level
    (here: the level lowered to avx2) --dtype bf16 keeps fp32 GEMMs and
    stores the activations in bf16."""
    a, _ = train("fp32_avx2", None, level="avx2")
    b, err = train("bf16_avx2", None, "--dtype", "bf16", level="avx2")
    assert "fp32 GEMMs: no AVX512-BF16 at kernel level avx2; activations stored in bf16" in err, err
    log, la = check_close_to_fp32(a, b)
    assert log[0]["loss"] == la[0]["loss"], "first step's loss is not fp32's: forward rounded"


def test_bf16_forced_on_is_close_to_fp32():
    a, err = train("fp32", None)
    assert "dtype" not in err, err
    b, err = train("bf16_on", "1", "--dtype", "bf16")
    assert "dtype bf16: bf16 GEMMs" in err, err
    check_close_to_fp32(a, b)


def test_bf16_resume_matches_uninterrupted():
    a, _ = train("bf16_straight", "1", "--dtype", "bf16")
    b, _ = train("bf16_stopped", "1", "--dtype", "bf16", "--stop-after", "3")
    resume(b, "1")
    for name in ("model.safetensors", "training_state.safetensors"):
        assert read(a, name) == read(b, name), f"{name} differs after resume"


if __name__ == "__main__":
    try:
        run([test_bf16_forced_off_stores_activations_in_bf16,
             test_bf16_below_avx512_stores_activations_in_bf16,
             test_bf16_forced_on_is_close_to_fp32,
             test_bf16_resume_matches_uninterrupted])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
