"""slm serve: every endpoint and every error of issue 14 through a real HTTP
client on loopback, against known answers (slm generate's ids, byte
tokenizer ids, a float64 NumPy GPT-2 for the attention weights), plus the
concurrency promises: a full queue answers 503 with Retry-After, a client
that vanishes mid-stream frees its slot, a client that does not read stalls
no one, SIGTERM drains the requests in flight and exits 0.

    build/venv/bin/python tests/oracle/test_serve.py
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402
from serve_util import SLM, Server, make_model, sse_events  # noqa: E402

TMP = tempfile.mkdtemp(prefix="slm-serve-")
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def tiny():
    """2 layers, 32 wide, context 64, trained 30 steps: ASCII words."""
    return make_model(TMP, "tiny", steps=30)


def slow():
    """4 layers, 256 wide, context 1024, one step: 1000 tokens take seconds."""
    return make_model(TMP, "slow", layers=4, heads=4, dim=256, context=1024, steps=1)


SERVER = None


def server():
    global SERVER
    if SERVER is None:
        SERVER = Server(tiny(), "--parallel", "2", "--max-body", "4096").__enter__()
    return SERVER


def cli_ids(model, prompt, n, *extra):
    p = subprocess.run([SLM, "generate", "-m", model, "-p", prompt, "-n", str(n), "--ids",
                        *extra], check=True, capture_output=True, timeout=120)
    return [int(x) for x in p.stdout.split()]


def completion(body, path="/v1/completions"):
    status, _, r = server().post(path, body)
    assert status == 200, (status, r)
    return r


# ---- completions ------------------------------------------------------------------


@case
def completion_greedy_matches_slm_generate():
    want = cli_ids(tiny(), "the earth", 40, "--temperature", "0", "--seed", "1")
    r = completion({"prompt": "the earth", "max_tokens": 40, "temperature": 0,
                    "return_tokens": True})
    assert r["object"] == "text_completion" and r["model"] == "tiny", r
    ch = r["choices"][0]
    assert [t["id"] for t in r["tokens"]] == want, (r["tokens"], want)
    assert ch["text"] == bytes(want).decode(errors="replace"), ch
    assert ch["finish_reason"] == "length", ch
    assert [t["id"] for t in r["prompt_tokens"]] == list(b"the earth")
    assert r["usage"] == {"prompt_tokens": 9, "completion_tokens": 40, "total_tokens": 49}


@case
def completion_seeded_sampling_matches_slm_generate():
    want = cli_ids(tiny(), "and", 30, "--temperature", "1", "--top-p", "1", "--seed", "7")
    body = {"prompt": "and", "max_tokens": 30, "temperature": 1, "seed": 7,
            "return_tokens": True}
    for _ in range(2):  # the same seed twice: the same tokens
        r = completion(body)
        assert [t["id"] for t in r["tokens"]] == want, (r["tokens"], want)
    # top_k 1 is greedy whatever the temperature
    greedy = cli_ids(tiny(), "and", 30, "--temperature", "0")
    r = completion({**body, "top_k": 1, "temperature": 1.5})
    assert [t["id"] for t in r["tokens"]] == greedy


@case
def completion_prompt_as_token_ids():
    a = completion({"prompt": "the", "max_tokens": 8, "temperature": 0})
    b = completion({"prompt": list(b"the"), "max_tokens": 8, "temperature": 0})
    c = completion({"prompt": ["the"], "max_tokens": 8, "temperature": 0})
    assert a["choices"][0]["text"] == b["choices"][0]["text"] == c["choices"][0]["text"]
    assert b["usage"]["prompt_tokens"] == 3


@case
def completion_stream_sse():
    whole = completion({"prompt": "in the", "max_tokens": 30, "temperature": 0})
    c, resp = server().stream("/v1/completions", {"prompt": "in the", "max_tokens": 30,
                                                 "temperature": 0, "stream": True})
    try:
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "text/event-stream"
        events = list(sse_events(resp))
    finally:
        c.close()
    assert events[-1] == "[DONE]", events[-3:]
    chunks = events[:-1]
    assert len(chunks) == 31, chunks  # one event per token (ASCII text), then the end
    assert all(e["object"] == "text_completion" for e in chunks)
    assert all(e["choices"][0]["finish_reason"] is None for e in chunks[:-1])
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "length"
    assert last["usage"] == whole["usage"], (last, whole)
    text = "".join(e["choices"][0]["text"] for e in chunks)
    assert text == whole["choices"][0]["text"], (text, whole)


@case
def completion_stop_strings():
    full = completion({"prompt": "the", "max_tokens": 60, "temperature": 0})
    text = full["choices"][0]["text"]
    assert text.isascii(), text
    i = next(i for i in range(5, len(text)) if not text[i].isspace())
    stop = text[i:i + 2]
    want = text[:text.index(stop)]
    r = completion({"prompt": "the", "max_tokens": 60, "temperature": 0, "stop": [stop, "QQQ"]})
    assert r["choices"][0]["text"] == want and r["choices"][0]["finish_reason"] == "stop", r
    # streamed: the stop string never leaks out, even split across tokens
    c, resp = server().stream("/v1/completions", {"prompt": "the", "max_tokens": 60,
                                                 "temperature": 0, "stop": stop,
                                                 "stream": True})
    try:
        events = list(sse_events(resp))
    finally:
        c.close()
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == want
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


# ---- chat ---------------------------------------------------------------------------


@case
def chat_completion_template_and_stream():
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    template = "<|system|>\nbe brief\n<|user|>\nhello\n<|assistant|>\n"
    want = cli_ids(tiny(), template, 20, "--temperature", "0")
    want_text = bytes(want).decode(errors="replace").split("<|")[0]
    r = completion({"messages": msgs, "max_tokens": 20, "temperature": 0},
                   "/v1/chat/completions")
    assert r["object"] == "chat.completion", r
    msg = r["choices"][0]["message"]
    assert msg["role"] == "assistant" and msg["content"] == want_text, (msg, want_text)
    assert r["usage"]["prompt_tokens"] == len(template.encode())
    c, resp = server().stream("/v1/chat/completions", {"messages": msgs, "max_tokens": 20,
                                                      "temperature": 0, "stream": True})
    try:
        events = list(sse_events(resp))
    finally:
        c.close()
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(e["object"] == "chat.completion.chunk" for e in events[:-1])
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == want_text and events[-2]["usage"] == r["usage"], (text, events[-2])


# ---- tokenize, detokenize, models, health, metrics, page ---------------------------


@case
def tokenize_and_detokenize():
    s, _, r = server().post("/v1/tokenize", {"content": "hé!"})
    assert s == 200 and r == {"tokens": [104, 195, 169, 33]}, r
    s, _, r = server().post("/v1/tokenize", {"content": "a", "with_pieces": True})
    assert r == {"tokens": [{"id": 97, "text": "a"}]}, r
    s, _, r = server().post("/v1/detokenize", {"tokens": [104, 195, 169, 33]})
    assert s == 200 and r == {"content": "hé!"}, r
    s, _, r = server().post("/v1/detokenize", {"tokens": [104, 195]})  # half a character
    assert r == {"content": "h\ufffd"}, r


@case
def models_health_page():
    s, _, r = server().get("/v1/models")
    assert s == 200 and r["object"] == "list", r
    m = r["data"][0]
    assert m["id"] == "tiny" and m["object"] == "model" and m["meta"]["n_ctx"] == 64, m
    s, _, r = server().get("/health")
    assert s == 200 and r["status"] == "ok" and r["slots_idle"] + r["slots_processing"] == 2, r
    s, h, page = server().get("/")
    assert s == 200 and h["content-type"].startswith("text/html"), h
    assert b"<html" in page and b"/v1/completions" in page and b"/v1/attention" in page
    assert b"https://" not in page and b"http://" not in page  # no CDN, nothing fetched


@case
def metrics_count_requests_and_tokens():
    srv = server()
    before = srv.metric("slm_generated_tokens_total")
    count0 = srv.metric("slm_request_duration_seconds_count")
    prompt0 = srv.metric("slm_prompt_tokens_total")
    completion({"prompt": "abc", "max_tokens": 7, "temperature": 0})
    completion({"prompt": "abcd", "max_tokens": 5, "temperature": 0})
    assert srv.metric("slm_generated_tokens_total") == before + 12
    assert srv.metric("slm_prompt_tokens_total") == prompt0 + 7
    assert srv.metric("slm_request_duration_seconds_count") == count0 + 2
    text = srv.get("/metrics")[2].decode()
    for line in ("# TYPE slm_request_duration_seconds histogram",
                 'slm_request_duration_seconds_bucket{le="+Inf"}', "slm_queue_depth 0",
                 "# TYPE slm_requests_total counter",
                 'slm_requests_total{endpoint="/v1/completions",status="2xx"}'):
        assert line in text, (line, text)
    infs = [l for l in text.splitlines() if l.startswith("slm_request_duration_seconds_bucket")]
    counts = [float(l.split()[-1]) for l in infs]
    assert counts == sorted(counts), counts  # cumulative buckets


# ---- attention ------------------------------------------------------------------------


def numpy_attention(model_dir, ids, layer):
    """Float64 GPT-2 forward up to `layer`; the last query's softmax weights per head."""
    from safetensors.numpy import load_file
    w = {k.removeprefix("transformer."): v.astype(np.float64)
         for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    H, C = cfg["n_head"], cfg["n_embd"]
    D, T = C // H, len(ids)

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * w[p + ".weight"] + w[p + ".bias"]

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))

    x = w["wte.weight"][ids] + w["wpe.weight"][:T]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(layer + 1):
        p = f"h.{l}."
        qkv = ln(x, p + "ln_1") @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = (qkv[:, i * C:(i + 1) * C].reshape(T, H, D).transpose(1, 0, 2) for i in range(3))
        s = q @ k.transpose(0, 2, 1) / np.sqrt(D) + mask
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        if l == layer:
            return a[:, -1, :]
        y = (a @ v).transpose(1, 0, 2).reshape(T, C)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = gelu(ln(x, p + "ln_2") @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]


@case
def attention_weights_match_numpy():
    ids = list(b"the face of the deep")
    for layer in (0, 1):
        s, _, r = server().post("/v1/attention", {"tokens": ids, "layer": layer})
        assert s == 200, r
        got = np.array(r["weights"])
        assert got.shape == (2, len(ids)) and r["n_head"] == 2 and r["n_layer"] == 2, r
        want = numpy_attention(tiny(), ids, layer)
        assert np.abs(got - want).max() < 1e-4, (layer, np.abs(got - want).max())
        assert [t["id"] for t in r["tokens"]] == ids
    s, _, r = server().post("/v1/attention", {"tokens": ids, "layer": -1})  # every layer
    got = np.array(r["weights"])
    assert got.shape == (2, 2, len(ids)), got.shape
    for layer in (0, 1):
        assert np.abs(got[layer] - numpy_attention(tiny(), ids, layer)).max() < 1e-4
    s, _, r = server().post("/v1/attention", {"text": "the face", "layer": 1})
    assert s == 200 and len(r["weights"][0]) == 8


@case
def openai_python_client():
    """The official client, pointed at the server with base_url, as the README says."""
    from openai import BadRequestError, OpenAI
    client = OpenAI(base_url=f"http://127.0.0.1:{server().port}/v1", api_key="unused",
                    max_retries=0, timeout=60)
    want = completion({"prompt": "the earth", "max_tokens": 20, "temperature": 0})
    r = client.completions.create(model="tiny", prompt="the earth", max_tokens=20,
                                  temperature=0)
    assert r.choices[0].text == want["choices"][0]["text"] and r.usage.completion_tokens == 20
    stream = client.completions.create(model="tiny", prompt="the earth", max_tokens=20,
                                       temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in stream) == want["choices"][0]["text"]
    msgs = [{"role": "user", "content": "hello"}]
    r = client.chat.completions.create(model="tiny", messages=msgs, max_tokens=12,
                                       temperature=0)
    text = r.choices[0].message.content
    chunks = list(client.chat.completions.create(model="tiny", messages=msgs, max_tokens=12,
                                                 temperature=0, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text
    assert chunks[-1].usage.prompt_tokens == r.usage.prompt_tokens
    assert [m.id for m in client.models.list()] == ["tiny"]
    try:
        client.completions.create(model="tiny", prompt="x", max_tokens=0)
        raise AssertionError("max_tokens 0 accepted")
    except BadRequestError as e:
        assert e.status_code == 400 and "max_tokens" in str(e)


def eot_model():
    """A GPT-2-tokenizer model whose every next token is <|endoftext|>: the
    final LayerNorm outputs a constant vector h = e_0 (weight 0, bias e_0) and
    the (tied) embedding row of id 50256 is 100·e_0, so its logit is 100 and
    every other is one weight of N(0, 0.02)."""
    out = os.path.join(TMP, "eot")
    if os.path.exists(out):
        return out
    from safetensors.numpy import load_file, save_file
    src = make_model(TMP, "gpt2", context=32, tokenizer="gpt2")
    shutil.copytree(src, out)
    f = os.path.join(out, "model.safetensors")
    w = load_file(f)
    pre = "transformer." if "transformer.wte.weight" in w else ""
    w[pre + "ln_f.weight"][:] = 0
    w[pre + "ln_f.bias"][:] = 0
    w[pre + "ln_f.bias"][0] = 1
    w[pre + "wte.weight"][50256] = 0
    w[pre + "wte.weight"][50256, 0] = 100
    save_file(w, f)
    return out


@case
def endoftext_ends_the_completion():
    with Server(eot_model()) as srv:
        s, _, r = srv.post("/v1/completions", {"prompt": "Hello world", "max_tokens": 10})
        assert s == 200, r
        assert r["choices"][0] == {"index": 0, "text": "", "logprobs": None,
                                   "finish_reason": "stop"}, r
        assert r["usage"] == {"prompt_tokens": 2, "completion_tokens": 0, "total_tokens": 2}
        c, resp = srv.stream("/v1/chat/completions", {"messages": [{"role": "user",
                                                                    "content": "Hi"}],
                                                      "stream": True})
        events = list(sse_events(resp))
        c.close()
        assert events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] == "stop"
        assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1]) == ""
        # an empty prompt starts from <|endoftext|>, as slm generate does
        s, _, r = srv.post("/v1/completions", {"prompt": "", "return_tokens": True})
        assert [t["id"] for t in r["prompt_tokens"]] == [50256], r


# ---- bad input ----------------------------------------------------------------------------


BAD = [  # (what, path, body, status, words in the message)
    ("malformed JSON", "/v1/completions", b'{"prompt": "a",', 400, "malformed json"),
    ("invalid UTF-8 in JSON", "/v1/completions", b'{"prompt": "\xff"}', 400, "malformed json"),
    ("empty body", "/v1/completions", b"", 400, "empty"),
    ("body not an object", "/v1/completions", b"[1, 2]", 400, "object"),
    ("prompt missing", "/v1/completions", {"max_tokens": 3}, 400, "prompt"),
    ("prompt a number", "/v1/completions", {"prompt": 5}, 400, "prompt"),
    ("prompt ids not ints", "/v1/completions", {"prompt": [1, "x"]}, 400, "prompt"),
    ("prompt id outside vocab", "/v1/completions", {"prompt": [1, 256]}, 400, "256"),
    ("max_tokens a string", "/v1/completions", {"prompt": "a", "max_tokens": "5"}, 400,
     "max_tokens"),
    ("max_tokens a float", "/v1/completions", {"prompt": "a", "max_tokens": 2.5}, 400,
     "max_tokens"),
    ("max_tokens 0", "/v1/completions", {"prompt": "a", "max_tokens": 0}, 400, "max_tokens"),
    ("max_tokens -1", "/v1/completions", {"prompt": "a", "max_tokens": -1}, 400, "max_tokens"),
    ("max_tokens beyond the context", "/v1/completions", {"prompt": "a", "max_tokens": 65},
     400, "context"),
    ("prompt longer than the context", "/v1/completions", {"prompt": "x" * 65}, 400,
     "context"),
    ("prompt ids longer than the context", "/v1/completions", {"prompt": [7] * 100}, 400,
     "context"),
    ("temperature a string", "/v1/completions", {"prompt": "a", "temperature": "hot"}, 400,
     "temperature"),
    ("temperature negative", "/v1/completions", {"prompt": "a", "temperature": -1}, 400,
     "temperature"),
    ("top_p 0", "/v1/completions", {"prompt": "a", "top_p": 0}, 400, "top_p"),
    ("top_p 1e-300 (0 as a float)", "/v1/completions", {"prompt": "a", "top_p": 1e-300}, 400,
     "top_p"),
    ("top_k negative", "/v1/completions", {"prompt": "a", "top_k": -2}, 400, "top_k"),
    ("seed a string", "/v1/completions", {"prompt": "a", "seed": "x"}, 400, "seed"),
    ("stream a string", "/v1/completions", {"prompt": "a", "stream": "yes"}, 400, "stream"),
    ("stop a number", "/v1/completions", {"prompt": "a", "stop": 3}, 400, "stop"),
    ("five stop strings", "/v1/completions", {"prompt": "a", "stop": list("abcde")}, 400,
     "stop"),
    ("empty stop string", "/v1/completions", {"prompt": "a", "stop": [""]}, 400, "stop"),
    ("n = 2", "/v1/completions", {"prompt": "a", "n": 2}, 400, "'n'"),
    ("messages missing", "/v1/chat/completions", {"max_tokens": 2}, 400, "messages"),
    ("messages empty", "/v1/chat/completions", {"messages": []}, 400, "messages"),
    ("message without content", "/v1/chat/completions", {"messages": [{"role": "user"}]}, 400,
     "messages"),
    ("chat prompt longer than the context", "/v1/chat/completions",
     {"messages": [{"role": "user", "content": "y" * 60}]}, 400, "context"),
    ("tokenize without content", "/v1/tokenize", {"text": "a"}, 400, "content"),
    ("tokenize content a number", "/v1/tokenize", {"content": 3}, 400, "content"),
    ("detokenize id outside vocab", "/v1/detokenize", {"tokens": [300]}, 400, "300"),
    ("detokenize tokens a string", "/v1/detokenize", {"tokens": "1 2"}, 400, "tokens"),
    ("attention layer outside the model", "/v1/attention", {"tokens": [1, 2], "layer": 2}, 400,
     "layer"),
    ("attention layer -2", "/v1/attention", {"tokens": [1, 2], "layer": -2}, 400, "layer"),
    ("attention context too long", "/v1/attention", {"tokens": [1] * 65}, 400, "context"),
    ("attention without tokens", "/v1/attention", {"layer": 0}, 400, "tokens"),
]


@case
def bad_requests_answer_4xx_json():
    srv = server()
    for what, path, body, status, words in BAD:
        s, h, r = srv.post(path, body)
        assert s == status, (what, s, r)
        assert h["content-type"] == "application/json", (what, h)
        err = r["error"]
        assert err["code"] == status and words in err["message"].lower(), (what, err)
    assert srv.health()["status"] == "ok"


@case
def unknown_path_404_wrong_method_405():
    srv = server()
    for method, path in (("GET", "/v2/nothing"), ("POST", "/nope"), ("GET", "/v1")):
        s, h, r = srv.request(method, path)
        assert s == 404 and r["error"]["code"] == 404, (path, s, r)
    for method, path, allow in (("GET", "/v1/completions", "POST"),
                                ("DELETE", "/v1/chat/completions", "POST"),
                                ("POST", "/health", "GET"), ("PUT", "/v1/models", "GET"),
                                ("POST", "/metrics", "GET"), ("POST", "/", "GET")):
        s, h, r = srv.request(method, path, b"{}")
        assert s == 405 and h.get("allow") == allow and r["error"]["code"] == 405, (path, s, h)


@case
def body_over_the_limit_413():
    srv = server()
    big = json.dumps({"prompt": "a" * 5000}).encode()
    s, _, r = srv.post("/v1/completions", big)
    assert s == 413 and r["error"]["code"] == 413 and "4096" in r["error"]["message"], (s, r)
    # chunked: no Content-Length to check first, the limit still holds
    c = srv.conn()
    try:
        c.putrequest("POST", "/v1/completions")
        c.putheader("Transfer-Encoding", "chunked")
        c.putheader("Content-Type", "application/json")
        c.endheaders()
        for i in range(0, len(big), 1000):
            part = big[i:i + 1000]
            c.send(b"%x\r\n%s\r\n" % (len(part), part))
        c.send(b"0\r\n\r\n")
        resp = c.getresponse()
        assert resp.status == 413, resp.status
        assert json.loads(resp.read())["error"]["code"] == 413
    finally:
        c.close()
    assert srv.health()["status"] == "ok"


# ---- concurrency ----------------------------------------------------------------------------


def open_stream(srv, body):
    """Starts a streamed completion and waits for its first event."""
    c, resp = srv.stream("/v1/completions", {**body, "stream": True})
    assert resp.status == 200, resp.status
    events = sse_events(resp)
    first = next(events)
    assert first != "[DONE]"
    return c, resp, events


@case
def full_queue_answers_503_with_retry_after():
    with Server(slow(), "--parallel", "1", "--queue", "1") as srv:
        long = {"prompt": "a", "max_tokens": 1000, "temperature": 0}
        c, resp, _ = open_stream(srv, long)  # holds the only slot
        queued = {}

        def waiter():
            queued["r"] = srv.post("/v1/completions", {"prompt": "b", "max_tokens": 3})

        t = threading.Thread(target=waiter)
        t.start()
        srv.wait_for(lambda: srv.health()["queue_depth"] == 1, "the queued request")
        s, h, r = srv.post("/v1/completions", {"prompt": "c", "max_tokens": 3})
        assert s == 503 and h.get("retry-after") == "1" and r["error"]["code"] == 503, (s, h, r)
        assert srv.metric("slm_queue_depth") == 1 and srv.metric("slm_slots_busy") == 1
        assert srv.metric("slm_requests_rejected_total") == 1
        c.close()  # the long one goes away: the queued one runs
        t.join(120)
        assert queued["r"][0] == 200 and queued["r"][2]["usage"]["completion_tokens"] == 3


@case
def client_disconnect_mid_stream_frees_its_slot():
    with Server(slow(), "--parallel", "1") as srv:
        c, resp, events = open_stream(srv, {"prompt": "a", "max_tokens": 1000,
                                            "temperature": 0})
        next(events)
        assert srv.health()["slots_processing"] == 1
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        srv.wait_for(lambda: srv.health()["slots_processing"] == 0, "the slot to free")
        assert srv.metric("slm_requests_cancelled_total") == 1
        generated = srv.metric("slm_generated_tokens_total")
        assert generated < 1000, generated  # freed by the disconnect, not by finishing
        s, _, r = srv.post("/v1/completions", {"prompt": "b", "max_tokens": 4})
        assert s == 200 and r["usage"]["completion_tokens"] == 4
        # a non-streamed request whose client leaves frees its slot too
        c2 = srv.conn()
        c2.request("POST", "/v1/completions",
                   body=json.dumps({"prompt": "x", "max_tokens": 1000}).encode())
        srv.wait_for(lambda: srv.health()["slots_processing"] == 1, "the second request")
        c2.sock.shutdown(socket.SHUT_RDWR)
        c2.close()
        srv.wait_for(lambda: srv.health()["slots_processing"] == 0, "the second slot to free")
        assert srv.metric("slm_requests_cancelled_total") == 2


@case
def a_client_that_does_not_read_stalls_no_one():
    with Server(tiny(), "--parallel", "2") as srv:
        greedy = {"prompt": "the", "max_tokens": 60, "temperature": 0}
        want = srv.post("/v1/completions", greedy)[2]["choices"][0]["text"]
        # opens a stream and reads nothing until the others are done
        c, resp = srv.stream("/v1/completions", {**greedy, "stream": True})
        t0 = time.time()
        for _ in range(10):
            s, _, r = srv.post("/v1/completions", greedy)
            assert s == 200 and r["choices"][0]["text"] == want
        assert time.time() - t0 < 60
        events = list(sse_events(resp))
        c.close()
        assert "".join(e["choices"][0]["text"] for e in events[:-1]) == want


@case
def sigterm_drains_in_flight_requests_and_exits_0():
    with Server(slow(), "--parallel", "2") as srv:
        body = {"prompt": "a", "max_tokens": 40, "temperature": 0}
        c, resp, events = open_stream(srv, body)
        srv.proc.send_signal(signal.SIGTERM)
        rest = list(events)
        assert rest[-1] == "[DONE]", rest[-2:]
        assert rest[-2]["choices"][0]["finish_reason"] == "length"
        assert rest[-2]["usage"]["completion_tokens"] == 40
        c.close()
        assert srv.proc.wait(timeout=60) == 0, srv.stderr()
        assert b"stopped" in srv.stdout() and b"SIGTERM" in srv.stdout()
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()
            raise AssertionError("the port still accepts connections")
        except ConnectionRefusedError:
            pass


@case
def sigint_stops_an_idle_server_with_0():
    with Server(tiny()) as srv:
        assert srv.health()["status"] == "ok"
        assert srv.stop(signal.SIGINT) == 0, srv.stderr()
        assert b"SIGINT" in srv.stdout() and srv.stderr() == b"", srv.stderr()


@case
def sanitizer_build_serves_and_exits_clean():
    """The AddressSanitizer + UBSan build (SLM_ASAN_BIN, as `make test` sets):
    every kind of request, a disconnect, bad input, then SIGTERM: exit 0 and no
    report (leaks included)."""
    asan = os.environ.get("SLM_ASAN_BIN")
    if not asan:
        return
    with Server(tiny(), "--parallel", "2", "--max-body", "4096", binary=asan) as srv:
        greedy = {"prompt": "the earth", "max_tokens": 20, "temperature": 0}
        assert srv.post("/v1/completions", greedy)[2]["choices"][0]["text"] == \
            completion(greedy)["choices"][0]["text"]
        c, resp = srv.stream("/v1/chat/completions", {"messages": [{"role": "user",
                                                                    "content": "hi"}],
                                                      "max_tokens": 10, "stream": True,
                                                      "stop": ["zz"], "seed": 3})
        assert list(sse_events(resp))[-1] == "[DONE]"
        c.close()
        c, resp, _ = open_stream(srv, {"prompt": "a", "max_tokens": 64})
        c.close()  # gone mid-stream (or just after)
        for what, path, body, status, _ in BAD:
            assert srv.post(path, body)[0] == status, what
        assert srv.post("/v1/completions", b"x" * 5000)[0] == 413
        assert srv.get("/nope")[0] == 404
        for path in ("/v1/models", "/health", "/metrics", "/"):
            assert srv.get(path)[0] == 200, path
        assert srv.post("/v1/attention", {"tokens": [1, 2, 3], "layer": 1})[0] == 200
        assert srv.post("/v1/detokenize", {"tokens": [104, 195]})[0] == 200
        assert srv.stop(signal.SIGTERM) == 0, srv.stderr()[-3000:]
        err = srv.stderr()
        assert b"Sanitizer" not in err and b"runtime error" not in err, err[-3000:]


def main():
    try:
        run(CASES)
    finally:
        if SERVER is not None:
            SERVER.kill()
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
