"""The GPT-2 tokenizer against tiktoken 0.14 (the Rust BPE behind OpenAI's
r50k_base), built offline from data/gpt2 exactly as tiktoken builds its
"gpt2" encoding (data_gym_to_mergeable_bpe_ranks, with OpenAI's file hashes,
and tiktoken's own r50k pattern). Compares ids on real text (licences, the
KJV if bible-kjv is installed, this repository's sources) and on random text
built to hit every branch of the pre-tokenizer regex, and the character class
of every Unicode code point."""
import ctypes as C
import glob
import os
import random
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402
from slm_ctypes import LIB  # noqa: E402

import tiktoken  # noqa: E402
from tiktoken.load import data_gym_to_mergeable_bpe_ranks  # noqa: E402
from tiktoken_ext.openai_public import r50k_pat_str  # noqa: E402

GPT2 = "data/gpt2"
# tiktoken_ext.openai_public.gpt2(): the hashes of OpenAI's vocab.bpe and encoder.json
MERGES_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
VOCAB_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"

ENC = tiktoken.Encoding(
    "gpt2-offline", pat_str=r50k_pat_str,
    mergeable_ranks=data_gym_to_mergeable_bpe_ranks(
        f"{GPT2}/merges.txt", f"{GPT2}/vocab.json", vocab_bpe_hash=MERGES_SHA256,
        encoder_json_hash=VOCAB_SHA256),
    special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)

I32P = C.POINTER(C.c_int32)
LIB.slm_tokenizer_load.argtypes = [C.c_int, C.c_char_p, C.c_int, C.POINTER(C.c_void_p),
                                   C.c_char_p, C.c_size_t]
LIB.slm_tokenizer_encode.argtypes = [C.c_void_p, C.c_char_p, C.c_size_t, C.POINTER(I32P),
                                     C.POINTER(C.c_size_t), C.c_char_p, C.c_size_t]
LIB.slm_tokenizer_decode.argtypes = [C.c_void_p, I32P, C.c_size_t, C.POINTER(C.c_void_p),
                                     C.POINTER(C.c_size_t), C.c_char_p, C.c_size_t]
LIB.slm_tokenizer_free.argtypes = [C.c_void_p]
LIBC = C.CDLL(None)
LIBC.free.argtypes = [C.c_void_p]

_tok = C.c_void_p()
_err = C.create_string_buffer(512)
if LIB.slm_tokenizer_load(0, GPT2.encode(), 0, C.byref(_tok), _err, 512):
    raise SystemExit(f"FAIL load: {_err.value.decode()}")


def slm_encode(data: bytes):
    ids, n = I32P(), C.c_size_t()
    rc = LIB.slm_tokenizer_encode(_tok, data, len(data), C.byref(ids), C.byref(n), _err, 512)
    if rc:
        raise RuntimeError(f"encode: {_err.value.decode()}")
    out = ids[:n.value]
    LIBC.free(ids)
    return out


def slm_decode(ids):
    arr = (C.c_int32 * len(ids))(*ids)
    text, n = C.c_void_p(), C.c_size_t()
    rc = LIB.slm_tokenizer_decode(_tok, C.cast(arr, I32P), len(ids), C.byref(text), C.byref(n),
                                  _err, 512)
    if rc:
        raise RuntimeError(f"decode: {_err.value.decode()}")
    out = C.string_at(text, n.value)
    LIBC.free(text)
    return out


def compare(text: str, what: str):
    want = ENC.encode_ordinary(text)
    got = slm_encode(text.encode("utf-8"))
    if got != want:
        i = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        ctx = ENC.decode(want[max(0, i - 3):i + 3])
        raise AssertionError(f"{what}: first difference at id {i} of {len(want)} "
                             f"(got {got[i:i + 4]}, want {want[i:i + 4]}) near {ctx!r}")
    if slm_decode(got) != text.encode("utf-8"):
        raise AssertionError(f"{what}: decode(encode(x)) != x")
    return len(want)


def test_real_text():
    texts = []
    for p in sorted(glob.glob("/usr/share/common-licenses/*")):
        if os.path.isfile(p):
            texts.append(open(p, encoding="utf-8", errors="replace").read())
    bible = shutil.which("bible")
    if bible:
        kjv = subprocess.run([bible, "gen1:1-deu34:12"], capture_output=True, text=True).stdout
        texts.append(kjv[:400_000])
    for p in sorted(glob.glob("src/**/*.[ch]", recursive=True)) + ["include/slm.h"]:
        texts.append(open(p, encoding="utf-8").read())
    total = sum(map(len, texts))
    assert total > 300_000, f"only {total} characters of real text"
    compare("".join(texts), "real text in one call")
    for i, t in enumerate(texts[:40]):
        compare(t, f"real text {i}")


# Building blocks for random text: every regex branch, contractions with and
# without letters around, all the whitespace kinds (incl. U+0085 which is \s
# and U+FEFF, U+001C which are not), numbers of several scripts, marks, CJK.
PIECES = (["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'", "’s", "''", " '"] +
          [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\x0b", "\x0c", "\x85", "\xa0",
           "\u1680", "\u2000", "\u2028", "\u2029", "\u202f", "\u3000", "\ufeff", "\x1c",
           "\u200b", "\u180e"] +
          ["a", "the", "The", "don", "Hello", "world", "é", "ß", "Ω", "ǅ", "ʰ", "中文", "日本語",
           "한국어", "Привет", "مرحبا", "\U00010d50", "e\u0301", "\u0301", "\u0915\u093f"] +
          ["0", "42", "1999", "٣", "½", "Ⅻ", "\U0001fbf0", "²"] +
          [".", ",", "!", "?", "...", "--", "—", "“", "”", "€", "$", "@", "#", "<|endoftext|>",
           "🙂", "🚀", "👍🏽", "\x00", "\x7f", "\ue000", "\U0010ffff"])


def random_text(r, n_pieces):
    out = []
    for _ in range(n_pieces):
        if r.random() < 0.1:  # any code point but surrogates
            cp = r.randrange(0x110000 - 0x800)
            out.append(chr(cp + 0x800 if cp >= 0xD800 else cp))
        else:
            out.append(r.choice(PIECES))
    return "".join(out)


def test_random_text():
    r = random.Random(2024)
    total = 0
    for i in range(3000):
        total += compare(random_text(r, r.randrange(0, 60)), f"random string {i}")
    big = random_text(r, 60_000)
    total += compare(big, "random text in one call")
    assert total > 100_000, f"only {total} tokens compared"


def test_whitespace_runs():
    """\\s+(?!\\S) and \\s+: runs of mixed whitespace before letters, digits,
    punctuation and the end of the text."""
    r = random.Random(7)
    ws = [" ", "\t", "\n", "\r", "\xa0", "\x85", "\u3000", "\u2028"]
    after = ["", "a", " a", "1", "!", "'s", "\ufeff", "中"]
    for i in range(4000):
        s = "".join(r.choice(ws) for _ in range(r.randrange(1, 7)))
        s = r.choice(after) + s + r.choice(after) + "".join(r.choice(ws) for _ in range(r.randrange(3)))
        compare(s, f"whitespace case {i}")


def test_every_code_point_class():
    """tok_unicode_class (internal; re-exported by build/tests/libslm_test_hooks.so)
    against the class
    tiktoken's regex engine gives each code point, found with a probe
    encoding: tokens X*3+"a" (one piece iff X is \\p{L}), X*3+"1" (iff X is
    \\p{N}) and X*3 (a piece of its own iff X is neither and not \\s)."""
    hooks = C.CDLL(os.path.join(os.environ.get("SLM_BUILD", "build"), "tests",
                                "libslm_test_hooks.so"))
    cls_fn = hooks.test_hook_unicode_class
    cls_fn.argtypes, cls_fn.restype = [C.c_uint32], C.c_int
    names = {1: "L", 2: "N", 3: "S", 0: "O"}
    cps = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]
    bad = []
    for i in range(0, len(cps), 20000):
        batch = cps[i:i + 20000]
        ranks = {bytes([b]): b for b in range(256)}
        for k, cp in enumerate(batch):
            x = chr(cp).encode() * 3
            ranks[x + b"a"], ranks[x + b"1"], ranks[x] = 256 + 3 * k, 257 + 3 * k, 258 + 3 * k
        probe = tiktoken.Encoding("probe", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                                  special_tokens={})
        for k, cp in enumerate(batch):
            s = chr(cp) * 3
            if probe.encode_ordinary(s + "a") == [256 + 3 * k]:
                want = "L"
            elif probe.encode_ordinary(s + "1") == [257 + 3 * k]:
                want = "N"
            elif probe.encode_ordinary(s + "a")[0] == 258 + 3 * k:
                want = "O"
            else:
                want = "S"
            if names[cls_fn(cp)] != want:
                bad.append(f"U+{cp:04X} {names[cls_fn(cp)]} want {want}")
    if bad:
        raise AssertionError(f"{len(bad)} code points differ: {bad[:10]}")


run([test_real_text, test_random_text, test_whitespace_runs, test_every_code_point_class])
