"""slm_model_attention_weights and slm_model_ffn_activations (include/slm.h)
against PyTorch. Attention: the softmax
probabilities of every layer and head of a hand-written float64 GPT-2 built
from the model.safetensors slm writes, and those transformers'
GPT2LMHeadModel returns with output_attentions=True after from_pretrained on
the same directory (its own causal mask and attention code). Masked entries
must be exactly 0 in slm. FFN: the hidden activations act(LN(x)·W_fc + b_fc)
of every block against the same float64 model."""
import ctypes as C
import math
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(__file__))
from harness import assert_close, run  # noqa: E402
import io_ctypes as io  # noqa: E402
from slm_ctypes import LIB  # noqa: E402
from slm_model_ctypes import SLM_ACT_GELU_NEW, SLM_ACT_RELU, Model  # noqa: E402

torch.set_num_threads(2)

LIB.slm_model_attention_weights.argtypes = [C.c_void_p, C.c_void_p, C.c_int, C.c_int,
                                            C.c_void_p, C.c_char_p, C.c_size_t]
LIB.slm_model_ffn_activations.argtypes = LIB.slm_model_attention_weights.argtypes


def slm_ffn(m, tokens, layer):
    T, C4 = len(tokens), 4 * m.cfg.n_embd
    tok = np.ascontiguousarray(tokens, dtype=np.int32)
    out = np.full((T, C4), np.nan, dtype=np.float32)
    err = C.create_string_buffer(256)
    rc = LIB.slm_model_ffn_activations(m.h, tok.ctypes.data, T, layer, out.ctypes.data, err, 256)
    if rc:
        raise RuntimeError(f"slm_model_ffn_activations ({rc}): {err.value.decode()}")
    return out


def slm_weights(m, tokens, layer):
    L, H = m.cfg.n_layer, m.cfg.n_head
    T = len(tokens)
    tok = np.ascontiguousarray(tokens, dtype=np.int32)
    out = np.full((L if layer < 0 else 1, H, T, T), np.nan, dtype=np.float32)
    err = C.create_string_buffer(256)
    rc = LIB.slm_model_attention_weights(m.h, tok.ctypes.data, T, layer, out.ctypes.data,
                                         err, 256)
    if rc:
        raise RuntimeError(f"slm_model_attention_weights ({rc}): {err.value.decode()}")
    return out if layer < 0 else out[0]


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def torch_attention_probs(P, n_layer, n_head, idx, activation, eps=1e-5):
    """GPT-2 forward in float64 (idx [T]); returns softmax probabilities
    [L][H][T][T] of every layer, as the seeds write them, and the FFN hidden
    activations [L][T][4C]."""
    T = idx.shape[0]
    wte = P["wte.weight"]
    C_ = wte.shape[1]
    D = C_ // n_head
    x = wte[idx] + P["wpe.weight"][:T]
    mask = torch.triu(torch.full((T, T), float("-inf"), dtype=x.dtype), diagonal=1)
    probs, ffn = [], []
    for l in range(n_layer):
        p = lambda s: P[f"h.{l}.{s}"]  # noqa: E731
        h = F.layer_norm(x, (C_,), p("ln_1.weight"), p("ln_1.bias"), eps)
        qkv = h @ p("attn.c_attn.weight") + p("attn.c_attn.bias")
        q, k, v = (t.view(T, n_head, D).transpose(0, 1) for t in qkv.split(C_, dim=1))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D) + mask, dim=-1)
        probs.append(att)
        y = (att @ v).transpose(0, 1).reshape(T, C_)
        x = x + (y @ p("attn.c_proj.weight") + p("attn.c_proj.bias"))
        h = F.layer_norm(x, (C_,), p("ln_2.weight"), p("ln_2.bias"), eps)
        h = h @ p("mlp.c_fc.weight") + p("mlp.c_fc.bias")
        h = gelu_new(h) if activation == SLM_ACT_GELU_NEW else torch.relu(h)
        ffn.append(h)
        x = x + (h @ p("mlp.c_proj.weight") + p("mlp.c_proj.bias"))
    return torch.stack(probs).numpy(), torch.stack(ffn).numpy()


def make_model(L, H, C_, V, T, act, seed, spread):
    """A model whose weights are spread `spread`× wider than GPT-2's init, so
    that attention is far from uniform."""
    m = Model(L, H, C_, V, n_positions=T + 5, activation=act, seed=seed)
    rng = np.random.default_rng(seed)
    params = {}
    for name, a in m.params().items():
        if name.endswith("bias"):
            a = 0.1 * rng.standard_normal(a.shape)
        elif ".ln_" not in "." + name:
            a = a * spread
        params[name] = np.asarray(a, dtype=np.float32)
    m.set_params(params)
    tokens = rng.integers(0, V, size=T)
    return m, tokens


def check(L, H, C_, V, T, act, seed, spread=3.0):
    m, tokens = make_model(L, H, C_, V, T, act, seed, spread)
    got = slm_weights(m, tokens, -1)
    assert got.shape == (L, H, T, T)
    upper = np.triu(np.ones((T, T), dtype=bool), k=1)
    assert (got[:, :, upper] == 0.0).all(), "a masked (future) entry is not exactly 0"
    spread = np.abs(got - np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]).max()
    assert spread > 0.1, f"attention nearly uniform ({spread}): too weak a test"
    for layer in range(L):
        assert np.array_equal(slm_weights(m, tokens, layer), got[layer]), f"layer {layer}"
    with tempfile.TemporaryDirectory() as d:
        io.model_save(m.h, d)
        st = load_file(os.path.join(d, "model.safetensors"))
        P = {k.removeprefix("transformer."): torch.tensor(v, dtype=torch.float64)
             for k, v in st.items()}
        want, want_ffn = torch_attention_probs(P, L, H, torch.tensor(tokens), act)
        assert_close(got, want, 1e-4, 1e-5, "weights vs float64 PyTorch")
        for layer in range(L):
            a = want_ffn[layer]
            assert_close(slm_ffn(m, tokens, layer), a, 1e-4, 1e-4 * np.abs(a).max(),
                         f"FFN activations of layer {layer} vs float64 PyTorch")
        if act == SLM_ACT_GELU_NEW:
            from transformers import GPT2LMHeadModel
            hf = GPT2LMHeadModel.from_pretrained(d).eval()
            with torch.no_grad():
                outs = hf(torch.tensor(tokens)[None], output_attentions=True)
            hf_att = np.stack([a[0].numpy() for a in outs.attentions])
            assert_close(got, hf_att, 1e-4, 2e-5, "weights vs transformers output_attentions")


def test_gelu_3_layers_4_heads_vs_torch_and_transformers():
    check(3, 4, 64, 256, 23, SLM_ACT_GELU_NEW, seed=4)


def test_odd_relu_2_layers_3_heads_vs_torch():
    check(2, 3, 48, 301, 17, SLM_ACT_RELU, seed=9)


def test_long_prompt_130_tokens_vs_transformers():
    check(1, 2, 32, 256, 130, SLM_ACT_GELU_NEW, seed=2, spread=8.0)


if __name__ == "__main__":
    run([test_gelu_3_layers_4_heads_vs_torch_and_transformers,
         test_odd_relu_2_layers_3_heads_vs_torch,
         test_long_prompt_130_tokens_vs_transformers])
