"""slm.Model and slm.Tokenizer against the CLI (same bytes, same numbers) and
transformers' GPT2LMHeadModel (same logits, greedy ids and loss)."""
import math
import os

import numpy as np
import pytest
import torch

import slm
from conftest import TEXT, cli

GEN_SETTINGS = [  # CLI flags, Python keywords
    (["--temperature", "0"], dict(temperature=0)),
    (["--seed", "5"], dict(seed=5)),
    (["--temperature", "1.3", "--top-k", "7", "--seed", "11"],
     dict(temperature=1.3, top_k=7, seed=11)),
    (["--temperature", "0.9", "--top-p", "0.5", "--seed", "2"],
     dict(temperature=0.9, top_p=0.5, seed=2)),
]


def cli_ids(model_dir, prompt_flags, flags, n):
    out = cli("generate", "-m", model_dir, *prompt_flags, "-n", n, *flags, "--ids")[1]
    return [int(x) for x in out.split()]


@pytest.mark.parametrize("flags,kw", GEN_SETTINGS, ids=lambda x: "_".join(map(str, x))
                         if isinstance(x, list) else None)
def test_generate_matches_cli(cli_model, flags, kw):
    m = slm.Model.load(cli_model)
    # 90 tokens from a 32-position model: the context refills twice.
    for prompt in ("It was the", "Ünï", ""):
        ids = list(m.generate_tokens(prompt, 90, **kw))
        assert ids == cli_ids(cli_model, ["-p", prompt], flags, 90), prompt
        text = "".join(m.generate(prompt, 90, errors="surrogateescape", **kw))
        want = cli("generate", "-m", cli_model, "-p", prompt, "-n", 90, *flags)[1]
        assert text.encode("utf-8", "surrogateescape") == want, prompt


def test_generate_streams_whole_characters(cli_model):
    """The text pieces end on character boundaries, as src/cli/text_out.c."""
    from slm._model import _Utf8Stream
    s = _Utf8Stream()
    emoji = "😀".encode()
    assert [s.push(b"a\xc3"), s.push(b"\xa9b")] == [b"a", "éb".encode()]
    assert [s.push(emoji[:1]), s.push(emoji[1:3]), s.push(emoji[3:])] == [b"", b"", emoji]
    assert s.push(b"\x80z") == b"\x80z"  # a stray continuation byte passes through
    assert s.push(b"\xe6\x97") == b"" and s.push(b"a") == b"\xe6\x97a"  # broken: as is
    assert s.push(b"\xe6") == b"" and s.finish() == b"\xe6"
    # generation is lazy: the first token comes before the rest are made
    m = slm.Model.load(cli_model)
    gen = m.generate_tokens("It", 5, seed=1)
    assert next(gen) == cli_ids(cli_model, ["-p", "It"], ["--seed", "1"], 5)[0]


def test_generate_prompt_ids_and_truncate(cli_model):
    m = slm.Model.load(cli_model)
    ids = m.tokenizer.encode(TEXT[:50])  # 50 tokens > 32 positions
    got = list(m.generate_tokens(ids, 20, temperature=0, truncate=True))
    want = cli("generate", "-m", cli_model, "--prompt-ids", " ".join(map(str, ids)), "-n", 20,
               "--temperature", 0, "--truncate", "--ids")[1]
    assert got == [int(x) for x in want.split()]
    with pytest.raises(slm.RangeError, match="the prompt is 50 tokens but the context holds 32"):
        m.generate_tokens(ids, 5)


def test_eval_matches_cli(cli_model, text_file):
    m = slm.Model.load(cli_model)
    for ctx, batch in ((None, 8), (7, 8), (32, 3), (1, 8)):
        r = m.eval(TEXT, context=ctx, batch=batch)
        flags = (["--context", ctx] if ctx else []) + ["--batch", batch]
        want = cli("eval", "-m", cli_model, "--data", text_file, *flags)[1].decode().split()
        assert want[0::2] == ["loss", "perplexity", "tokens"]
        assert [f"{r.loss:.6f}", f"{r.perplexity:.6f}", str(r.tokens)] == want[1::2], ctx
        assert r.perplexity == math.exp(r.loss)
    # bytes and ids give the same as text
    assert m.eval(TEXT.encode()) == m.eval(m.tokenizer.encode(TEXT)) == m.eval(TEXT)


def test_tokenizer_matches_cli(hf_gpt2, cli_model):
    _, d = hf_gpt2
    for directory in (d, cli_model):
        tok = slm.Tokenizer.from_model_dir(directory)
        for text in ("Hello, world! Ünïcödé 日本語 <|endoftext|>", TEXT[:300]):
            want = [int(x) for x in cli("tokenize", "-m", directory, text)[1].split()]
            assert tok.encode(text) == want
            assert tok.decode(want) == text
            assert cli("detokenize", "-m", directory, *want)[1] == text.encode()
        assert tok.encode_batch(["a b", "", "c"]) == [tok.encode("a b"), [], tok.encode("c")]
        assert tok.decode_batch([tok.encode("x y"), []]) == ["x y", ""]


def test_tokenizer_bytes_round_trip():
    for tok in (slm.Tokenizer("byte"), slm.Tokenizer("gpt2")):
        data = bytes(range(256)) + b"\xff\xfe invalid \xc3"
        ids = tok.encode(data)
        assert tok.decode_bytes(ids) == data
        s = tok.decode(ids, errors="surrogateescape")
        assert tok.encode(s) == ids  # str from surrogateescape encodes back exactly
    gpt2 = slm.Tokenizer("gpt2")
    assert gpt2.eot == 50256 and gpt2.vocab_size == 50257
    assert gpt2.encode("<|endoftext|>") != [50256]
    assert gpt2.encode("Hello world") == [15496, 995]
    assert slm.Tokenizer("byte", vocab_size=320).decode_bytes([65, 300]) == b"A"


def test_logits_and_greedy_match_transformers(hf_gpt2):
    hf, d = hf_gpt2
    m = slm.Model.load(d)
    assert m.config.n_layer == 2 and m.config.tokenizer == "gpt2" and m.config.vocab_size == 50257
    ids = m.tokenizer.encode("It was the best of times, it was the")
    with torch.no_grad():
        want = hf(torch.tensor(ids)[None]).logits[0].numpy()
    got = m.logits(ids)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # greedy ids: transformers' argmax step by step (a near-tie may differ)
    seq = list(ids)
    for step, g in enumerate(m.generate_tokens(ids, 10, temperature=0)):
        with torch.no_grad():
            row = hf(torch.tensor(seq)[None]).logits[0, -1].double()
        best = int(row.argmax())
        assert g == best or (row[best] - row[g]).item() < 1e-4, step
        seq.append(g)
    assert seq[len(ids):] == cli_ids(d, ["-p", "It was the best of times, it was the"],
                                     ["--temperature", "0"], 10)


def test_eval_matches_transformers(hf_gpt2):
    hf, d = hf_gpt2
    m = slm.Model.load(d)
    ctx = 24
    r = m.eval(TEXT[:400], context=ctx)
    ids = torch.tensor(m.tokenizer.encode(TEXT[:400]))
    total = 0.0
    with torch.no_grad():
        for s in range(0, len(ids) - 1, ctx):
            x = ids[s:min(s + ctx, len(ids) - 1)]
            y = ids[s + 1:s + 1 + len(x)]
            logits = hf(x[None]).logits[0].double()
            total += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
    assert r.tokens == len(ids)
    assert abs(r.loss - total / (len(ids) - 1)) <= 1e-4 * abs(r.loss)


def test_python_saved_model_loads_in_cli_and_transformers(tmp_root):
    from transformers import GPT2LMHeadModel
    for tok, vocab in (("byte", 256), ("gpt2", 50257)):
        cfg = slm.Config(n_layer=2, n_head=4, n_embd=32, n_positions=40, vocab_size=vocab,
                         tokenizer=tok, activation="gelu_new")
        m = slm.Model.create(cfg, seed=3)
        d = tmp_root / f"py-saved-{tok}"
        m.save(d)
        assert set(os.listdir(d)) >= {"config.json", "model.safetensors"}
        info = cli("info", "-m", d)[1].decode()
        assert f"{m.num_params:,}" in info or str(m.num_params) in info, info
        ids = list(m.generate_tokens("Hello", 12, seed=4))
        assert ids == cli_ids(d, ["-p", "Hello"], ["--seed", "4"], 12)
        again = slm.Model.load(d)
        assert again.config == m.config
        assert list(again.generate_tokens("Hello", 12, seed=4)) == ids
        hf = GPT2LMHeadModel.from_pretrained(d).eval()
        x = m.tokenizer.encode("Hello there")
        with torch.no_grad():
            want = hf(torch.tensor(x)[None]).logits[0].numpy()
        np.testing.assert_allclose(m.logits(x), want, rtol=1e-4, atol=1e-5)


def test_cli_trained_model_loads_in_python(cli_model):
    m = slm.Model.load(cli_model)
    assert m.warning == ""
    assert m.config == slm.Config(n_layer=2, n_head=2, n_embd=32, n_positions=32,
                                  vocab_size=256, tokenizer="byte", dropout=m.config.dropout)
    # trained, not random: it predicts this text far better than chance
    assert m.eval(TEXT).loss < math.log(256) - 1.0


def test_threads_setting():
    n = slm.num_threads()
    slm.set_num_threads(1)
    assert slm.num_threads() == 1
    slm.set_num_threads(n)
    with pytest.raises(ValueError):
        slm.set_num_threads(0)
