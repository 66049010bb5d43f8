"""Data-parallel training with Open MPI: `mpirun -np N slm train ...`.

Every case trains a tiny model (2 layers, width 32, context 16, global batch
8) with one thread per rank, against one process with the same global batch.

Why the results are close and not equal: each rank's gradient is the mean
over its 4 windows, halved, and the halves are summed by MPI_Allreduce; one
process sums all 8 windows inside its GEMMs and bias sums. Same terms,
another order of float32 additions: the step's gradient agrees to ~2e-7
relative (test_one_step_gradient_equals_one_process, 1e-6 asserted). AdamW
then divides each element by its own RMS, so where an element's gradient
is itself at rounding level its update is not: the key bias (gradient
exactly 0 in exact arithmetic, see key_bias) and elements whose gradient is
near AdamW's eps (1e-8), where the update is lr·g/eps and a 1 % rounding
difference in a cancelling sum moves the weight by ~1e-6 of the tensor's
scale. Without dropout, 20 steps stay within 1e-6 (relative L2 per tensor;
measured 2.8e-7); with dropout one such element of h.1.mlp.c_proj.weight
(g = -1.7e-8) makes 3.4e-6, so that case is held to 1e-5 while its losses
and gradient norms of every step agree to 1e-5 (other masks would move them
by ~1e-2). Every rank's parameters are the same bits: the ranks compare a
hash of them at each checkpoint (every step here) and say so at the end.

Also: resume under MPI (with the same rank count, byte-identical; with
another rank count that divides the batch, within the same tolerance), a
batch that does not divide is refused, a rank with other data is refused at
start, and a rank killed mid-run fails the job with mpirun's message while
the last checkpoint stays loadable and resumable.

mpirun is required: `make test` installs openmpi-bin, so a missing mpirun
(or an slm built without MPI) is a failure, not a skip.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

SLM = os.path.abspath(os.environ.get("SLM_BIN", "build/slm"))
MPIRUN = shutil.which("mpirun")
TMP = tempfile.mkdtemp(prefix="slm-mpi-")
STEPS = 20
MODEL = ["--layers", "2", "--heads", "2", "--dim", "32", "--context", "16", "--batch", "8",
         "--steps", str(STEPS), "--lr", "3e-3", "--warmup", "2", "--eval-every", "10",
         "--save-every", "1", "--seed", "11", "--threads", "1"]
# Runs as root in CI; two ranks may share one core; one thread per rank;
# shared-memory transfers without process_vm_readv, which containers
# without CAP_SYS_PTRACE refuse.
MPI_FLAGS = ["--allow-run-as-root", "--oversubscribe", "-x", "OMP_NUM_THREADS=1",
             "--mca", "btl_vader_single_copy_mechanism", "none"]
TIMEOUT = 300


def data_file(name="data.txt", salt=""):
    path = os.path.join(TMP, name)
    if not os.path.exists(path):
        words = ("In the beginning was the word and the word was with the machine; "
                 "gradients flow backward through every layer of the network. " + salt)
        with open(path, "w") as f:
            f.write(words * 40)
    return path


def mpirun(np_, *args):
    """mpirun -np N slm ARGS (or MPMD when args holds ':' groups)."""
    assert MPIRUN, "mpirun not found: install openmpi-bin (tools/install-deps.sh does)"
    return [MPIRUN, *MPI_FLAGS, "-np", str(np_), SLM, *args]


def run(cmd, timeout=TIMEOUT):
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def why(p):
    """The exit status and the end of stderr (the harness shows 400 characters)."""
    return f"exit {p.returncode}: ...{p.stderr.decode(errors='replace')[-300:]}"


def train(out, ranks, *extra, data=None):
    args = ["train", "--data", data or data_file(), "--out", out, *MODEL, *extra]
    cmd = mpirun(ranks, *args) if ranks else [SLM, *args]
    p = run(cmd)
    assert p.returncode == 0, why(p)
    return p


def tensors(path):
    """The tensors of a safetensors file as float64 arrays, by name."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.float32).astype(np.float64)
    return out


def model(out):
    return tensors(os.path.join(out, "model.safetensors"))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def key_bias(name, width):
    """The slice of c_attn.bias that biases the keys: softmax is invariant
    to adding q·b_k to every score of a row, so its gradient is exactly zero
    and what the kernels compute for it is rounding noise, which AdamW
    (dividing by the noise's own RMS) turns into updates of up to lr·g/eps.
    Any change of summation order changes that noise: it is compared by
    staying near 0, not element by element."""
    return slice(width, 2 * width) if name.endswith("attn.c_attn.bias") else None


def assert_same_model(got, want, rtol, what, width=32):
    """Every tensor within rtol of the reference in relative L2 norm
    (‖Δ‖/‖want‖), the key biases apart (see key_bias). Returns the worst
    relative L2 and the worst max-norm difference (|Δ|max / |want|max)."""
    assert got.keys() == want.keys(), what
    worst_l2 = worst_max = 0.0
    for name in want:
        g, w = got[name].copy(), want[name].copy()
        kb = key_bias(name, width)
        if kb is not None:
            assert np.abs(g[kb]).max() < 1e-4 and np.abs(w[kb]).max() < 1e-4, \
                f"{what}: {name}: the key bias moved away from 0"
            g[kb] = w[kb] = 0.0
        l2 = np.linalg.norm(g - w) / max(np.linalg.norm(w), 1e-30)
        worst_l2 = max(worst_l2, l2)
        worst_max = max(worst_max, np.abs(g - w).max() / max(np.abs(w).max(), 1e-30))
        assert l2 <= rtol, f"{what}: {name} differs by {l2:.3g} relative (L2; > {rtol:g})"
    return worst_l2, worst_max


def assert_same_log(got_dir, want_dir, what):
    """The loss and the gradient norm of every step agree (the norm would
    show a gradient summed but not averaged: AdamW alone is blind to scale)."""
    got = [json.loads(l) for l in read(os.path.join(got_dir, "log.jsonl")).splitlines()]
    want = [json.loads(l) for l in read(os.path.join(want_dir, "log.jsonl")).splitlines()]
    assert [g["step"] for g in got] == [w["step"] for w in want], what
    for key in ("loss", "grad_norm"):
        harness.assert_close([g[key] for g in got], [w[key] for w in want], 1e-5, 0,
                             f"{what}: {key} of each step")


ONE = {}


def one_process(*extra):
    key = extra
    if key not in ONE:
        out = os.path.join(TMP, "one" + "".join(e.replace("-", "") for e in extra))
        train(out, 0, *extra)
        ONE[key] = out
    return ONE[key]


def test_mpirun_present():
    assert MPIRUN, "mpirun not found: install openmpi-bin (tools/install-deps.sh does)"
    p = run(mpirun(2, "train", "--help"))
    assert p.returncode == 0, why(p)


def test_two_ranks_equal_one_process_after_20_steps():
    ref = one_process()
    out = os.path.join(TMP, "two")
    p = train(out, 2)
    l2, worst = assert_same_model(model(out), model(ref), 1e-6, "2 ranks vs 1 process")
    assert_same_log(out, ref, "2 ranks vs 1 process")
    # Training did move the weights far beyond the tolerance (the test can fail).
    init = os.path.join(TMP, "init")
    train(init, 0, "--steps", "1", "--lr", "0")
    moved = max(np.abs(model(ref)[k] - model(init)[k]).max() / np.abs(model(ref)[k]).max()
                for k in model(ref))
    assert moved > 1e-2, moved
    # Rank 0 alone prints: one summary line on stdout, and the MPI summary.
    assert p.stdout.decode().count("checkpoint in") == 1, p.stdout
    err = p.stderr.decode()
    assert err.count("layers") == 1, err
    m = re.search(r"2 processes × 4 windows.*summing the gradients took ([0-9.]+) s.*the ranks' "
                  r"parameters were identical at all (\d+) checks", err)
    assert m and int(m.group(2)) == STEPS, err
    assert len(read(os.path.join(out, "log.jsonl")).splitlines()) == STEPS
    print(f"# 2 ranks vs 1 process after {STEPS} steps: worst tensor differs by {l2:.2e} "
          f"(relative L2), {worst:.2e} (max-norm); training moved the weights by "
          f"{moved:.2e}", file=sys.stderr)


def test_one_step_gradient_equals_one_process():
    """The first AdamW moment after step 1 is 0.1·gradient: the reduction
    order alone, with dropout (rank 1's rows draw the masks of rows 4..7)."""
    ref, out = os.path.join(TMP, "grad_one"), os.path.join(TMP, "grad_two")
    train(ref, 0, "--dropout", "0.2", "--steps", "1")
    train(out, 2, "--dropout", "0.2", "--steps", "1")
    g = tensors(os.path.join(out, "training_state.safetensors"))["adam.m"]
    want = tensors(os.path.join(ref, "training_state.safetensors"))["adam.m"]
    rel = np.linalg.norm(g - want) / np.linalg.norm(want)
    assert rel <= 1e-6, f"the gradients of step 1 differ by {rel:.3g} relative (L2)"
    assert_same_log(out, ref, "step 1")


def test_dropout_masks_are_those_of_one_process():
    ref = one_process("--dropout", "0.2")
    out = os.path.join(TMP, "two_dropout")
    train(out, 2, "--dropout", "0.2")
    assert_same_log(out, ref, "dropout: 2 ranks vs 1 process")
    assert_same_model(model(out), model(ref), 1e-5, "dropout: 2 ranks vs 1 process")
    # Dropout was on: the run differs from the one without it.
    plain = model(one_process())
    diff = max(np.abs(model(out)[k] - plain[k]).max() / np.abs(plain[k]).max() for k in plain)
    assert diff > 1e-3, diff


def test_four_ranks_from_a_hostfile_equal_one_process():
    """As across machines (mpirun --hostfile), with this machine as the host."""
    ref = one_process()
    out = os.path.join(TMP, "four")
    hosts = os.path.join(TMP, "hosts")
    with open(hosts, "w") as f:
        f.write("localhost slots=4\n")
    p = run([MPIRUN, *MPI_FLAGS, "--hostfile", hosts, "-np", "4", SLM, "train", "--data",
             data_file(), "--out", out, *MODEL])
    assert p.returncode == 0, why(p)
    assert_same_model(model(out), model(ref), 1e-6, "4 ranks vs 1 process")
    assert_same_log(out, ref, "4 ranks vs 1 process")


def test_resume_under_mpi_equals_an_uninterrupted_run():
    straight = os.path.join(TMP, "two_straight")
    train(straight, 2)
    out = os.path.join(TMP, "two_resumed")
    train(out, 2, "--stop-after", "9")
    assert not os.path.exists(os.path.join(out, "log.jsonl")) or \
        len(read(os.path.join(out, "log.jsonl")).splitlines()) == 9
    p = run(mpirun(2, "train", "--resume", out, "--threads", "1"))
    assert p.returncode == 0, why(p)
    for f in ("training_state.safetensors", "model.safetensors", "config.json"):
        assert read(os.path.join(out, f)) == read(os.path.join(straight, f)), \
            f"{f}: 2 ranks stopped at step 9 and resumed differ from the uninterrupted run"
    # Resuming with another rank count that divides the batch (1 and 4).
    for ranks in (0, 4):
        other = os.path.join(TMP, f"resumed_on_{ranks}")
        train(other, 2, "--stop-after", "9")
        cmd = ["train", "--resume", other, "--threads", "1"]
        p = run(mpirun(ranks, *cmd) if ranks else [SLM, *cmd])
        assert p.returncode == 0, why(p)
        assert_same_model(model(other), model(straight), 1e-6, f"resumed on {ranks or 1}")


def test_batch_not_divisible_is_refused():
    out = os.path.join(TMP, "three")
    p = run(mpirun(3, "train", "--data", data_file(), "--out", out, *MODEL))
    assert p.returncode == 2, (p.returncode, p.stderr)
    err = p.stderr.decode()
    lines = [l for l in err.splitlines() if l.startswith("slm:")]
    assert lines == ["slm: train: --batch 8 (the global batch) cannot be split evenly across "
                     "3 processes; use a multiple of 3"], err
    assert not os.path.exists(out), "a refused run created its directory"


def test_rank_with_other_data_is_refused_at_start():
    out = os.path.join(TMP, "otherdata")
    other = data_file("other.txt", salt="A different sentence on one machine.")
    common = ["--out", out, *MODEL]
    cmd = [MPIRUN, *MPI_FLAGS, "-np", "1", SLM, "train", "--data", data_file(), *common,
           ":", "-np", "1", SLM, "train", "--data", other, *common]
    p = run(cmd)
    assert p.returncode == 1, (p.returncode, p.stderr)
    err = p.stderr.decode()
    lines = [l for l in err.splitlines() if l.startswith("slm:")]
    assert len(lines) == 1 and re.fullmatch(
        r"slm: train: the training data differs between processes: rank 1 has data hash "
        r"[0-9a-f]{16}, rank 0 [0-9a-f]{16} \(every rank needs the same --data\)", lines[0]), err
    assert not os.path.exists(os.path.join(out, "training_state.safetensors"))
    assert not os.path.exists(os.path.join(out, "model.safetensors"))


def children(pid):
    """PIDs whose parent is pid (mpirun's ranks), from /proc."""
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(name))
    return kids


def rank_pids(mpirun_pid, n):
    """The n slm ranks mpirun started (its children running slm)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        pids = []
        for pid in children(mpirun_pid):
            try:
                if os.readlink(f"/proc/{pid}/exe") == os.path.realpath(SLM):
                    pids.append(pid)
            except OSError:
                pass
        if len(pids) == n:
            return pids
        time.sleep(0.05)
    raise AssertionError("mpirun's ranks did not appear")


def state_step(out):
    meta = read(os.path.join(out, "training_state.safetensors"))
    m = re.search(rb'"step":"(\d+)"', meta[:8192])
    assert m, "training state without a step"
    return int(m.group(1))


def test_rank_killed_mid_run_fails_the_job_and_keeps_the_checkpoint():
    out = os.path.join(TMP, "killed")
    args = ["train", "--data", data_file(), "--out", out, *MODEL, "--steps", "100000",
            "--save-every", "5"]
    proc = subprocess.Popen(mpirun(2, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pids = rank_pids(proc.pid, 2)
        state = os.path.join(out, "training_state.safetensors")
        deadline = time.time() + 120
        while not (os.path.exists(state) and state_step(out) >= 10) and time.time() < deadline:
            time.sleep(0.02)
        assert os.path.exists(state), "no checkpoint appeared"
        # The rank that does not write: its death must stop the job.
        victim = max(pids)
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, proc.returncode
    text = err.decode()
    assert re.search(r"mpirun noticed that process rank \d with PID \d+ on node \S+ exited on "
                     r"signal 9 \(Killed\)", text), text
    step = state_step(out)
    assert step >= 10 and step % 5 == 0, step
    p = run([SLM, "info", "-m", out])
    assert p.returncode == 0, why(p)
    # The checkpoint resumes (a run of 100000 steps: stop soon after).
    p = run(mpirun(2, "train", "--resume", out, "--threads", "1", "--stop-after",
                   str(step + 2)))
    assert p.returncode == 0, why(p)
    assert state_step(out) == step + 2


def test_ctrl_c_on_mpirun_saves_the_last_step():
    """SIGINT to mpirun reaches every rank; they stop after the same step
    and rank 0 saves it. (Open MPI 4.1 sends SIGTERM one timeout after the
    Ctrl-C and SIGKILL one timeout later; the README's knob sets it. The
    run must outlast the first wait on a fast machine: 100,000 steps of
    this model took 25 s on a Zen 5, hence ten million.)"""
    out = os.path.join(TMP, "ctrl_c")
    cmd = [MPIRUN, *MPI_FLAGS, "--mca", "odls_base_sigkill_timeout", "5", "-np", "2", SLM,
           "train", "--data", data_file(), "--out", out, *MODEL, "--steps", "10000000",
           "--save-every", "1000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        log = os.path.join(out, "log.jsonl")
        deadline = time.time() + 120
        while time.time() < deadline and not (os.path.exists(log) and
                                               len(read(log).splitlines()) >= 5):
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = err.decode()
    m = re.search(r"slm: train: interrupted; saved step (\d+) in ", text)
    assert m, text
    step = int(m.group(1))
    assert step >= 5 and state_step(out) == step, (step, state_step(out))
    assert len(read(os.path.join(out, "log.jsonl")).splitlines()) == step
    assert text.count("interrupted") == 1, text  # rank 0 alone says it


if __name__ == "__main__":
    try:
        harness.run([
            test_mpirun_present,
            test_two_ranks_equal_one_process_after_20_steps,
            test_one_step_gradient_equals_one_process,
            test_dropout_masks_are_those_of_one_process,
            test_four_ranks_from_a_hostfile_equal_one_process,
            test_resume_under_mpi_equals_an_uninterrupted_run,
            test_batch_not_divisible_is_refused,
            test_rank_with_other_data_is_refused_at_start,
            test_rank_killed_mid_run_fails_the_job_and_keeps_the_checkpoint,
            test_ctrl_c_on_mpirun_saves_the_last_step,
        ])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
