"""Shared by the slm serve tests: tiny models made by `slm train`, a server
on a free loopback port (always stopped), and a small HTTP client on
http.client (no proxies, loopback only, every call with a timeout)."""
import http.client
import json
import os
import random
import re
import signal
import subprocess
import tempfile
import time

SLM = os.environ.get("SLM_BIN", "build/slm")
TIMEOUT = 60  # seconds for any one HTTP exchange


def words_text(n=4000, seed=1):
    rng = random.Random(seed)
    words = ("in the beginning god created the heaven and the earth and the earth was "
             "without form and void and darkness was upon the face of the deep").split()
    return " ".join(rng.choice(words) for _ in range(n))


def make_model(tmp, name, *, layers=2, heads=2, dim=32, context=64, steps=1,
               tokenizer="byte"):
    """A model trained for `steps` steps (1: random-looking text, made in a
    second)."""
    out = os.path.join(tmp, name)
    if os.path.exists(os.path.join(out, "model.safetensors")):
        return out
    data = os.path.join(tmp, "data.txt")
    if not os.path.exists(data):
        with open(data, "w") as f:
            f.write(words_text())
    subprocess.run([SLM, "train", "--data", data, "--out", out, "--layers", str(layers),
                    "--heads", str(heads), "--dim", str(dim), "--context", str(context),
                    "--batch", "2", "--steps", str(steps), "--seed", "1", "--threads", "1",
                    "--tokenizer", tokenizer],
                   check=True, capture_output=True, timeout=300)
    return out


class Server:
    """`slm serve` on a free port; use as a context manager (always killed)."""

    def __init__(self, model, *args, binary=None):
        # One thread: with tiny models OpenMP's barriers cost more than they
        # save, and on a busy machine far more (see README, slm serve).
        threads = [] if "--threads" in args else ["--threads", "1"]
        self.cmd = [binary or SLM, "serve", "-m", model, "--port", "0", *threads, *args]
        self.proc = None
        self.port = None
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=self.out, stderr=self.err)
        deadline = time.time() + 30
        while time.time() < deadline:
            m = re.search(rb"http://[^ ]*:(\d+)/", self.stdout())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"server did not start: {self.stderr()[-500:]!r}")

    def __exit__(self, *exc):
        self.kill()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends sig and returns the exit status."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def stdout(self):
        self.out.seek(0)
        return self.out.read()

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def conn(self, timeout=TIMEOUT):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=False):
        """Returns (status, headers dict (lower-case), parsed JSON or bytes)."""
        c = self.conn()
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            h = {"Content-Type": "application/json", **(headers or {})}
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            payload = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            if not raw and hdrs.get("content-type", "").startswith("application/json"):
                payload = json.loads(payload)
            return r.status, hdrs, payload
        finally:
            c.close()

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def stream(self, path, body):
        """Opens a streaming request; returns (connection, response)."""
        c = self.conn()
        c.request("POST", path, body=json.dumps(body).encode(),
                  headers={"Content-Type": "application/json"})
        return c, c.getresponse()

    def health(self):
        return self.get("/health")[2]

    def metric(self, name):
        text = self.get("/metrics")[2].decode()
        m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(m.group(1)) if m else None

    def wait_for(self, cond, what, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")


def sse_events(resp):
    """Yields the JSON of each `data:` event of a stream, then the string
    "[DONE]"."""
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            yield "[DONE]"
            return
        yield json.loads(data)
