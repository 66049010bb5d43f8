"""Bad arguments raise ValueError / slm.Error subclasses carrying slm's
one-line message (the same words the CLI prints after 'slm: CMD: '), and
never crash the interpreter."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import slm
import slm.torch as st
from conftest import cli_message


def broken_dirs(root, good):
    """name → (directory, expected exception class)."""
    out = {}

    def make(name, edit):
        d = root / f"bad-{name}"
        if not d.exists():
            shutil.copytree(good, d)
            edit(d)
        return str(d)

    def truncate(d):
        p = d / "model.safetensors"
        p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2])

    def config(**kw):
        def edit(d):
            c = json.loads((d / "config.json").read_text())
            c.update(kw)
            (d / "config.json").write_text(json.dumps(c))
        return edit

    out["missing"] = (str(root / "no-such-model"), slm.FileError)
    out["truncated"] = (make("truncated", truncate), slm.FormatError)
    out["empty"] = (make("empty", lambda d: (d / "model.safetensors").write_bytes(b"")),
                    slm.FormatError)
    out["malformed_config"] = (make("malformed", lambda d: (d / "config.json").write_text(
        '{"n_layer": 2,')), slm.FormatError)
    out["heads"] = (make("heads", config(n_head=3)), ValueError)
    out["zero"] = (make("zero", config(n_embd=0)), ValueError)
    out["llama"] = (make("llama", config(model_type="llama")), slm.Error)
    out["layers"] = (make("layers", config(n_layer=3)), slm.FormatError)
    return out


def test_model_load_errors_carry_slms_message(tmp_root, cli_model):
    for name, (d, cls) in broken_dirs(tmp_root, cli_model).items():
        with pytest.raises(cls) as e:
            slm.Model.load(d)
        assert isinstance(e.value, slm.Error), name
        assert str(e.value) == cli_message("info", "-m", d), name
        assert "\n" not in str(e.value)


def test_error_classes():
    assert issubclass(slm.InvalidArgumentError, ValueError)
    assert issubclass(slm.RangeError, ValueError)
    assert issubclass(slm.FileError, OSError) and issubclass(slm.OutOfMemoryError, MemoryError)
    for cls in (slm.InvalidArgumentError, slm.RangeError, slm.FileError, slm.FormatError,
                slm.NumericError, slm.Interrupted, slm.UnsupportedError, slm.OutOfMemoryError):
        assert issubclass(cls, slm.Error) and cls.code < 0


def test_tokenizer_errors(tmp_root, cli_model):
    tok = slm.Tokenizer.from_model_dir(cli_model)
    with pytest.raises(slm.RangeError) as e:
        tok.decode([65, 300])
    assert str(e.value) == cli_message("detokenize", "-m", cli_model, 65, 300)
    for bad in ([-1], [2**40], ["a"]):
        with pytest.raises((ValueError, TypeError)):
            tok.decode(bad)
    with pytest.raises(slm.FileError, match="vocab.json"):
        slm.Tokenizer("gpt2", str(tmp_root))
    with pytest.raises(ValueError, match="kind"):
        slm.Tokenizer("bpe")
    with pytest.raises(ValueError, match="smaller than"):
        slm.Tokenizer("gpt2", vocab_size=1000)
    with pytest.raises(TypeError):
        tok.encode(12)


def test_generate_and_eval_errors(cli_model):
    m = slm.Model.load(cli_model)
    bad = [dict(max_tokens=0), dict(temperature=-0.5), dict(temperature=float("nan")),
           dict(top_p=0), dict(top_p=1.5), dict(top_p=float("nan")), dict(top_k=-3),
           dict(seed=-1), dict(max_tokens="3")]
    for kw in bad:
        with pytest.raises(ValueError):
            list(m.generate("x", **{"max_tokens": 3, **kw}))
    with pytest.raises(slm.RangeError, match="'?256'? is not a token id in 0..255"):
        m.generate_tokens([1, 256])
    with pytest.raises(ValueError, match="empty"):
        m.generate_tokens([])
    with pytest.raises(slm.RangeError, match="context holds 32"):
        m.generate_tokens("y" * 120000)
    with pytest.raises(ValueError, match="at least 2"):
        m.eval("x")
    with pytest.raises(ValueError, match="exceeds the model's n_positions"):
        m.eval("hello there", context=33)
    with pytest.raises(slm.RangeError):
        m.logits([[1, 2, 999]])
    with pytest.raises(ValueError):
        m.logits(list(range(33)))  # longer than n_positions: slm's range check


def test_non_finite_weights_warn_and_generate_refuses(tmp_root, cli_model):
    from safetensors.numpy import load_file, save_file
    d = tmp_root / "nan-model"
    if not d.exists():
        shutil.copytree(cli_model, d)
        t = load_file(str(d / "model.safetensors"))
        key = sorted(t)[0]
        t[key].flat[0] = np.nan
        save_file(t, str(d / "model.safetensors"))
    with pytest.warns(RuntimeWarning, match="non-finite"):
        m = slm.Model.load(d)
    assert "non-finite" in m.warning
    with pytest.raises(slm.NumericError, match="refusing to use these weights"):
        m.generate_tokens("x", 3)
    assert m.eval("hello there").tokens == 11  # eval still runs, as the CLI's


def test_create_and_save_errors(tmp_root):
    with pytest.raises(ValueError) as e:
        slm.Model.create(slm.Config(2, 3, 16, 8, 256))
    assert "multiple" in str(e.value) or "n_head" in str(e.value)
    with pytest.raises(ValueError, match="activation"):
        slm.Model.create(slm.Config(1, 1, 8, 8, 256, activation="swish"))
    m = slm.Model.create(slm.Config(1, 1, 8, 8, 256))
    f = tmp_root / "a_file"
    f.write_text("x")
    with pytest.raises(slm.FileError, match="is a file"):
        m.save(f)


def test_attention_argument_errors():
    q = np.zeros((1, 2, 4, 8), np.float32)
    k = np.zeros((1, 2, 6, 8), np.float32)
    cases = [
        (lambda: slm.attention(q, k, k, dropout=1.0), ValueError, "dropout must be in"),
        (lambda: slm.attention(q, k, k, dropout=-0.1), ValueError, "dropout must be in"),
        (lambda: slm.attention(q, k, k, scale=-1.0), ValueError, "scale"),
        (lambda: slm.attention(q, k[:, :1], k, causal=False), ValueError, "k must have shape"),
        (lambda: slm.attention(q, k, k[..., :4]), ValueError, "v must have shape"),
        (lambda: slm.attention(q[0], k[0], k[0]), ValueError, "4 dimensions"),
        (lambda: slm.attention(q, k, k, mask=np.zeros((4, 5), np.float32)), ValueError,
         "mask must have shape"),
        (lambda: slm.attention(q, k, k, kv_len=[7]), ValueError, "kv_len"),
        (lambda: slm.attention(q, k, k, kv_len=[1, 2]), ValueError, "kv_len must have shape"),
        (lambda: slm.attention(q, k, k, kv_len=[1.5]), TypeError, "integers"),
        (lambda: slm.attention(q.astype(np.float64), k, k), TypeError, "float32"),
        (lambda: slm.attention(q, k, k, impl="fast"), ValueError, "impl"),
        (lambda: slm.attention(q, k, k, seed=-1), ValueError, "seed"),
        (lambda: slm.attention(np.zeros((0, 2, 4, 8), np.float32), k, k), ValueError, "B = 0"),
        (lambda: slm.attention(torch.zeros(1, 2, 4, 8, dtype=torch.float64), torch.zeros(
            1, 2, 6, 8), torch.zeros(1, 2, 6, 8)), TypeError, "float32"),
        (lambda: st.scaled_dot_product_attention(torch.zeros(2, 4, 8), torch.zeros(2, 6, 4),
                                                 torch.zeros(2, 6, 4)), ValueError, "head size"),
        (lambda: st.scaled_dot_product_attention(torch.zeros(2, 4, 8), torch.zeros(3, 6, 8),
                                                 torch.zeros(3, 6, 8)), ValueError, "leading"),
        (lambda: st.scaled_dot_product_attention(
            torch.zeros(2, 2, 4, 8), torch.zeros(2, 2, 6, 8), torch.zeros(2, 2, 6, 8),
            attn_mask=torch.zeros(2, 1, 4, 6)), ValueError, "one \\[L, S\\] mask"),
        (lambda: st.scaled_dot_product_attention(
            torch.zeros(1, 1, 4, 8), torch.zeros(1, 1, 4, 8), torch.zeros(1, 1, 4, 8),
            attn_mask=torch.zeros(4, 4, requires_grad=True)), ValueError, "no gradient"),
    ]
    for i, (fn, cls, msg) in enumerate(cases):
        with pytest.raises(cls, match=msg):
            fn()
    out = np.empty((1, 2, 4, 8), np.float32)
    import slm._slm as raw
    with pytest.raises(TypeError, match="writable"):  # read-only output buffer
        out.flags.writeable = False
        raw.attention_forward(q, k, k, out)


def test_bad_calls_never_crash_the_interpreter(tmp_root, cli_model):
    """Every bad call in a fresh interpreter: it must end normally (a crash
    would end it with a signal), each call raising a Python exception."""
    script = f"""
import numpy as np, slm, slm._slm as raw, gc
calls = [
    lambda: raw.attention_forward(None, None, None, None),
    lambda: raw.attention_forward(b"x", b"y", b"z", bytearray(4)),
    lambda: raw.attention_backward(*[np.zeros((1, 1, 2, 2), np.float32)] * 5, None,
                                   *[np.zeros((1, 1, 2, 2), np.float32)] * 3),
    lambda: raw.Model.load(None),
    lambda: raw.Model.load("\\0"),
    lambda: raw.KVCache(None, 3),
    lambda: raw.Sampler(0, 1.0, 0, 1.0, 0),
    lambda: raw.Sampler(10, -1.0, 0, 1.0, 0),
    lambda: raw.Tokenizer(7),
    lambda: raw.Tokenizer(0, "/nonexistent"),
    lambda: slm.Model.load({str(cli_model)!r}).logits(np.zeros((2, 0), np.int32)),
    lambda: slm.Model.load({str(cli_model)!r})._m.forward(np.zeros(3, np.int32), None, 2, 2),
    lambda: slm.Model.load({str(cli_model)!r})._m.decode(
        raw.KVCache(slm.Model.load({str(cli_model)!r})._m, 4), np.zeros(1, np.int32),
        np.zeros(3, np.float32)),
    lambda: raw.KVCache(slm.Model.load({str(cli_model)!r})._m, 10**6),
    lambda: raw.KVCache(slm.Model.load({str(cli_model)!r})._m, -1),
    lambda: raw.Sampler(4, 1.0, 0, 1.0, 0).next(np.zeros(3, np.float32)),
    lambda: raw.Tokenizer(1).decode(np.array([1.0], np.float32)),
    lambda: raw.Tokenizer(1).token_bytes(2**40),
    lambda: raw.all_finite(np.zeros(3)),
]
raised = 0
for c in calls:
    try:
        c()
    except Exception:
        raised += 1
gc.collect()
print("raised", raised, "of", len(calls))
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[1] == p.stdout.split()[3], p.stdout
