"""Long calls release the GIL: a Python thread keeps running while
attention, generation, eval or a model load runs in another thread.

The main thread records the time of every loop iteration; the worker (with
one slm thread, so a core stays free) records when its call started and
ended. A call that held the GIL would stop the main loop for its whole
duration: the longest pause of the loop inside the window would be about
the call's length. With the GIL released the loop runs throughout, so the
longest pause is a small part of the call. (Checked: bytes.count, which
holds the GIL, pauses the loop for 97-100 % of its duration.)"""
import threading
import time

import numpy as np
import torch

import slm
import slm.torch as st


def longest_pause(call):
    """(longest pause of this thread's loop while call() ran, call's seconds)."""
    window = {}
    done = threading.Event()

    def worker():
        slm.set_num_threads(1)
        time.sleep(0.05)  # let the main loop start
        window["start"] = time.perf_counter()
        try:
            call()
        finally:
            window["end"] = time.perf_counter()
            done.set()

    t = threading.Thread(target=worker)
    stamps = []
    t.start()
    while not done.is_set():
        stamps.append(time.perf_counter())
    t.join()
    a, b = window["start"], window["end"]
    inside = [a] + [s for s in stamps if a < s < b] + [b]
    return max(y - x for x, y in zip(inside, inside[1:])), b - a


def check(call, what, min_seconds=0.03):
    pause, seconds = longest_pause(call)
    assert seconds >= min_seconds, f"{what}: the call took only {seconds:.3f} s"
    assert pause < 0.5 * seconds, f"{what}: the loop paused {pause:.3f} s of {seconds:.3f} s"


def test_attention_releases_the_gil():
    rng = np.random.default_rng(0)
    # T = 4096: long enough to see a pause (2048 took 0.029 s on a Zen 5).
    q, k, v = (rng.standard_normal((1, 8, 4096, 64), dtype=np.float32) for _ in range(3))
    check(lambda: slm.attention(q, k, v), "attention")


def test_attention_backward_releases_the_gil():
    x = [torch.randn(1, 8, 1024, 64, requires_grad=True) for _ in range(3)]
    y = st.scaled_dot_product_attention(*x, is_causal=True)
    g = torch.ones_like(y)
    check(lambda: y.backward(g), "attention backward")


def test_generate_and_eval_release_the_gil(tmp_root):
    cfg = slm.Config(n_layer=4, n_head=8, n_embd=512, n_positions=512, vocab_size=256)
    m = slm.Model.create(cfg, seed=1)
    prompt = list(range(250)) * 2  # one long prompt decode: a single C call
    check(lambda: next(m.generate_tokens(prompt, 1, seed=1)), "generate")
    check(lambda: m.eval(bytes(range(256)) * 4), "eval")
    m.save(tmp_root / "gil-model")
    check(lambda: slm.Model.load(tmp_root / "gil-model"), "load", 0.01)


def test_two_threads_share_a_model(tmp_root):
    """Forward and decode take the model's lock: two threads generating from
    one model get what each gets alone."""
    m = slm.Model.create(slm.Config(2, 2, 64, 64, 256), seed=2)
    want = [list(m.generate_tokens("ab", 40, seed=s)) for s in (1, 2)]
    got = [None, None]

    def run(i):
        got[i] = list(m.generate_tokens("ab", 40, seed=i + 1))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == want
