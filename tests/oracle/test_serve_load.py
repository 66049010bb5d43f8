"""slm serve under load on loopback: 200 requests from 8 concurrent clients
(streamed and not, greedy and seeded sampling) within a fixed time limit,
zero errors, and every result identical to the same request made alone
(results never mix between slots). Prints p50 / p99 latency and tokens/s.

    build/venv/bin/python tests/oracle/test_serve_load.py
"""
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402
from serve_util import Server, make_model, sse_events  # noqa: E402

TMP = tempfile.mkdtemp(prefix="slm-serve-load-")
REQUESTS, CLIENTS, LIMIT_S = 200, 8, 120


def body_for(i):
    """Request i of the run: 4 prompts × greedy / 3 seeds × streamed or not."""
    prompt = ["the earth", "and god", "in the beginning", "darkness was"][i % 4]
    b = {"prompt": prompt, "max_tokens": 16 + (i % 3) * 8}
    if i % 2:
        b.update(temperature=0.9, seed=i % 3, top_p=0.95)
    else:
        b.update(temperature=0)
    return b


def key(b):
    return tuple(sorted(b.items()))


def text_of(srv, b, stream):
    if not stream:
        s, _, r = srv.post("/v1/completions", b)
        assert s == 200, (s, r)
        return r["choices"][0]["text"], r["usage"]["completion_tokens"]
    c, resp = srv.stream("/v1/completions", {**b, "stream": True})
    try:
        assert resp.status == 200, resp.status
        events = list(sse_events(resp))
    finally:
        c.close()
    assert events[-1] == "[DONE]", events[-2:]
    return ("".join(e["choices"][0]["text"] for e in events[:-1]),
            events[-2]["usage"]["completion_tokens"])


def load_200_requests_8_concurrent():
    model = make_model(TMP, "tiny", steps=30)
    with Server(model, "--parallel", "4", "--queue", "16") as srv:
        alone = {}
        for i in range(24):  # every distinct request, one at a time
            b = body_for(i)
            alone.setdefault(key(b), text_of(srv, b, False))
        latencies, errors, tokens = [], [], [0]
        lock = threading.Lock()
        next_i = [0]
        deadline = time.time() + LIMIT_S

        def client():
            while time.time() < deadline:
                with lock:
                    i = next_i[0]
                    if i >= REQUESTS:
                        return
                    next_i[0] += 1
                b = body_for(i)
                t0 = time.time()
                try:
                    got = text_of(srv, b, stream=i % 3 == 0)
                    if got != alone[key(b)]:
                        raise AssertionError(f"request {i} {b}: {got!r} != alone "
                                             f"{alone[key(b)]!r}")
                except Exception as e:  # noqa: BLE001 - every error is counted
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}")
                    continue
                with lock:
                    latencies.append(time.time() - t0)
                    tokens[0] += got[1]

        t0 = time.time()
        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(LIMIT_S + 60)
        wall = time.time() - t0
        assert not errors, f"{len(errors)} errors, first: {errors[0]}"
        assert len(latencies) == REQUESTS, f"{len(latencies)} of {REQUESTS} in {LIMIT_S} s"
        lat = sorted(latencies)
        p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(f"# load: {REQUESTS} requests, {CLIENTS} concurrent, 4 slots: {wall:.1f} s, "
              f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
              f"{tokens[0] / wall:.0f} generated tokens/s, 0 errors", flush=True)
        assert srv.health() == {"status": "ok", "slots_idle": 4, "slots_processing": 0,
                                "queue_depth": 0}
        assert srv.metric("slm_requests_rejected_total") == 0


def main():
    try:
        run([load_200_requests_8_concurrent])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
