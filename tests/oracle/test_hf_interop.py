"""Hugging Face interop: a GPT2LMHeadModel saved by transformers'
save_pretrained (safetensors) loads in slm with identical parameters, and a
directory saved by slm_model_save loads with GPT2LMHeadModel.from_pretrained
with identical parameters (and identical logits once slm has a forward)."""
import ctypes as C
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from harness import run, assert_close  # noqa: E402
import io_ctypes as io  # noqa: E402
from slm_ctypes import LIB  # noqa: E402


def hf_config(**kw):
    from transformers import GPT2Config
    base = dict(n_layer=2, n_head=2, n_embd=16, n_positions=32, vocab_size=300)
    base.update(kw)
    return GPT2Config(**base)


def hf_params(model):
    return {k[len("transformer."):]: v.detach().numpy()
            for k, v in model.state_dict().items()
            if k.startswith("transformer.") and not k.endswith((".attn.bias", ".attn.masked_bias"))}


def compare_params(slm_model, hf_model):
    mine, theirs = io.model_params(slm_model), hf_params(hf_model)
    assert set(mine) == set(theirs), f"{set(mine) ^ set(theirs)}"
    for k in mine:
        assert mine[k].shape == theirs[k].shape, f"{k}: {mine[k].shape} vs {theirs[k].shape}"
        assert np.array_equal(mine[k], theirs[k]), f"{k} differs"
    lm = hf_model.lm_head.weight.detach().numpy()
    assert np.array_equal(lm, mine["wte.weight"]), "lm_head is not wte"


class Batch(C.Structure):
    """slm_batch of include/slm.h."""
    _fields_ = [("tokens", C.c_void_p), ("targets", C.c_void_p), ("B", C.c_int), ("T", C.c_int)]


def compare_logits(slm_model, hf_model, vocab):
    """Only once slm_model_forward exists in the library."""
    try:
        fwd = LIB.slm_model_forward
    except AttributeError:
        return
    fwd.argtypes = [C.c_void_p, C.c_void_p, C.c_void_p, C.c_void_p, C.c_char_p, C.c_size_t]
    LIB.slm_model_logits.argtypes = [C.c_void_p]
    LIB.slm_model_logits.restype = C.POINTER(C.c_float)
    B, T = 2, 9
    tokens = np.random.default_rng(0).integers(0, vocab, (B, T)).astype(np.int32)
    err = C.create_string_buffer(512)
    batch = Batch(tokens.ctypes.data, None, B, T)
    rc = fwd(slm_model, C.byref(batch), None, None, err, 512)
    assert rc == 0, err.value.decode()
    got = np.ctypeslib.as_array(LIB.slm_model_logits(slm_model), shape=(B, T, vocab)).copy()
    with torch.no_grad():
        want = hf_model(torch.from_numpy(tokens).long()).logits.numpy()
    assert_close(got, want, 1e-4, 1e-4, "logits")


def test_transformers_save_pretrained_loads_in_slm():
    from transformers import GPT2LMHeadModel
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(hf_config()).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d, safe_serialization=True)
        m = io.model_load(d)
        try:
            compare_params(m, hf)
            compare_logits(m, hf, 300)
        finally:
            LIB.slm_model_free(m)


def test_slm_save_loads_in_transformers():
    from transformers import GPT2LMHeadModel
    for act, tok, vocab in ((0, 0, 300), (1, 1, 320)):
        cfg = io.Config(2, 4, 32, 24, vocab, 1e-5, act, tok, 0.1)
        m = io.model_create(cfg, 42)
        try:
            with tempfile.TemporaryDirectory() as d:
                io.model_save(m, d)
                hf, info = GPT2LMHeadModel.from_pretrained(d, output_loading_info=True)
                hf.eval()
                assert not info["unexpected_keys"], info["unexpected_keys"]
                assert not info["missing_keys"], info["missing_keys"]
                assert hf.config.activation_function == ("relu" if act else "gelu_new")
                assert hf.config.n_positions == 24 and hf.config.vocab_size == vocab
                compare_params(m, hf)
                compare_logits(m, hf, vocab)
        finally:
            LIB.slm_model_free(m)


run([test_transformers_save_pretrained_loads_in_slm, test_slm_save_loads_in_transformers])
