"""slm serve under concurrent load: aggregate generated tokens/s and request
latency for a few --threads settings, on loopback.

    build/venv/bin/python bench/serve.py [--layers 4 --dim 256 --context 1024]
        [--clients 4 --requests 4 --tokens 64 --threads 1,2]

The model is made by `slm train --steps 1` (speed does not depend on what
it learned). Each client sends its requests one after another (greedy,
non-streamed); the server runs with --parallel = clients. Compare numbers
only within one run on an otherwise idle machine.
"""
import argparse
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "oracle"))
from serve_util import Server, make_model  # noqa: E402


def run(model, threads, a):
    with Server(model, "--parallel", str(a.clients), "--threads", str(threads)) as srv:
        srv.post("/v1/completions", {"prompt": "a", "max_tokens": 2})  # warm up
        lat, tokens, lock = [], [0], threading.Lock()

        def client():
            for _ in range(a.requests):
                t0 = time.time()
                s, _, r = srv.post("/v1/completions", {"prompt": "in the beginning",
                                                       "max_tokens": a.tokens,
                                                       "temperature": 0})
                assert s == 200, r
                with lock:
                    lat.append(time.time() - t0)
                    tokens[0] += r["usage"]["completion_tokens"]

        t0 = time.time()
        ts = [threading.Thread(target=client) for _ in range(a.clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wall = time.time() - t0
    lat.sort()
    return tokens[0] / wall, lat[len(lat) // 2], lat[min(len(lat) - 1, int(0.99 * len(lat)))]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--context", type=int, default=1024)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--requests", type=int, default=4)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--threads", default="1,2")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="slm-bench-serve-") as tmp:
        model = make_model(tmp, "m", layers=a.layers, heads=a.heads, dim=a.dim,
                           context=a.context)
        print(f"model L{a.layers} H{a.heads} C{a.dim} context {a.context}; {a.clients} clients "
              f"× {a.requests} requests × {a.tokens} tokens")
        print("| --threads | tokens/s | p50 ms | p99 ms |\n|---:|---:|---:|---:|")
        for t in a.threads.split(","):
            tps, p50, p99 = run(model, int(t), a)
            print(f"| {t} | {tps:.0f} | {p50 * 1000:.0f} | {p99 * 1000:.0f} |", flush=True)


if __name__ == "__main__":
    main()
