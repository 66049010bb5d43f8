"""Hostile inputs through `slm` (issue 6's table): half-written and wrong model
files, bad config.json and vocabularies, unusable data, impossible requests.

Every row runs its commands with build/slm and, when SLM_ASAN_BIN names an
AddressSanitizer + UBSan build, with that too. A refused command must print
exactly one line on stderr, starting "slm: " and naming the problem; exit 1
(runtime) or 2 (usage); print nothing on stdout; and leave every file under
the test's directory as it was (same names, sizes, inodes and mtimes): no
output file created or changed. A sanitizer report is a failure.

    build/venv/bin/python tests/oracle/test_bad_inputs.py [--table]

--table prints the rows as the README's markdown table, with the messages
this build prints.
"""
import json
import math
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402

SLM = os.environ.get("SLM_BIN", "build/slm")
ASAN = os.environ.get("SLM_ASAN_BIN", "")
TMP = tempfile.mkdtemp(prefix="slm-bad-")
GPT2_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data", "gpt2")
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:exitcode=86:abort_on_error=0",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87"}
TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
        "it was the age of foolishness.\n") * 40


def path(*parts):
    return os.path.join(TMP, *parts)


def write(p, data):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return p


def read(p):
    with open(p, "rb") as f:
        return f.read()


# ---- fixtures: valid tiny models, then damaged copies -------------------------

def fixtures():
    """A byte-tokenizer model and a GPT-2-tokenizer model made by slm train."""
    if os.path.exists(path("good", "model.safetensors")):
        return
    data = write(path("data.txt"), TEXT)
    tiny = ["--layers", "1", "--heads", "2", "--dim", "16", "--context", "16", "--batch", "2",
            "--steps", "2", "--threads", "1", "--eval-every", "0"]
    for out, extra in (("good", []), ("good_gpt2", ["--tokenizer", "gpt2", "--context", "8"])):
        p = subprocess.run([SLM, "train", "--data", data, "--out", path(out), *tiny, *extra],
                           capture_output=True, timeout=300)
        assert p.returncode == 0, p.stderr
        for f in ("log.jsonl", "train_data.tokens", "training_state.safetensors"):
            os.remove(path(out, f))


def copy_model(name, src="good"):
    dst = path(name)
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(path(src), dst)
    return dst


def st_parse(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def st_build(header, data, pad=True):
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def damaged_st(name, fn):
    """A copy of the good model whose model.safetensors is fn(header, data) → bytes."""
    d = copy_model(name)
    header, data = st_parse(read(os.path.join(d, "model.safetensors")))
    write(os.path.join(d, "model.safetensors"), fn(header, data))
    return d


def damaged_config(name, change, src="good"):
    d = copy_model(name, src)
    cfg = json.loads(read(os.path.join(d, "config.json")))
    change(cfg)
    write(os.path.join(d, "config.json"), json.dumps(cfg))
    return d


def tokenizer_dir(name):
    """config.json of a GPT-2-tokenized model plus the vocabulary; no weights
    (tokenize/detokenize never read them)."""
    d = path(name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(path("good_gpt2", "config.json"), d)
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(GPT2_DATA, f), d)
    return d


# ---- running slm and checking a refusal ---------------------------------------

def snapshot():
    snap = {}
    for root, dirs, files in os.walk(TMP):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            snap[os.path.relpath(p, TMP)] = (st.st_size, st.st_ino, st.st_mtime_ns, st.st_mode)
    return snap


def limit_memory():
    # Safety net for the memory rows: should the check before allocating ever
    # regress, malloc fails instead of the OOM killer taking the machine.
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def slm_run(binary, args, stdin=b"", sanitized=False, cap_memory=False):
    env = dict(os.environ)
    if sanitized:
        env.update(SAN_ENV)
    return subprocess.run([binary, *args], input=stdin, capture_output=True, timeout=120,
                          env=env, preexec_fn=limit_memory if cap_memory and not sanitized
                          else None)


def binaries():
    yield SLM, False
    if ASAN:
        yield ASAN, True


def sanitizer_report(stderr):
    return any(w in stderr for w in (b"Sanitizer", b"runtime error:", b"LeakSanitizer"))


TABLE = []  # (input, command, exit code, message) for --table


def refuse(what, args, code, words, stdin=b"", cap_memory=False):
    """Runs `slm args` (each binary) and checks the refusal; words must all
    appear (case-insensitively) in the one stderr line."""
    before = snapshot()
    for binary, sanitized in binaries():
        p = slm_run(binary, args, stdin, sanitized, cap_memory)
        tag = f"{'asan ' if sanitized else ''}slm {' '.join(args)[:120]}"
        assert not sanitizer_report(p.stderr), f"{tag}: sanitizer: {p.stderr[-2000:]!r}"
        lines = p.stderr.decode(errors="replace").splitlines()
        assert p.returncode == code, f"{tag}: exit {p.returncode}, want {code}: {lines}"
        assert len(lines) == 1 and lines[0].startswith("slm: "), f"{tag}: stderr {lines}"
        low = lines[0].lower()
        for w in words:
            assert w.lower() in low, f"{tag}: {lines[0]!r} lacks {w!r}"
        assert p.stdout == b"", f"{tag}: stdout {p.stdout[:200]!r}"
        after = snapshot()
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        assert not changed, f"{tag}: files created or changed: {changed[:5]}"
        if not sanitized:
            TABLE.append((what, args, p.returncode, lines[0]))


def accept(what, args, stdin=b"", want_stderr_lines=0, want_words=(), check_files=True):
    """Runs a command that must succeed (exit 0) on an odd but valid input."""
    before = snapshot()
    for binary, sanitized in binaries():
        p = slm_run(binary, args, stdin, sanitized)
        tag = f"{'asan ' if sanitized else ''}slm {' '.join(args)[:120]}"
        assert not sanitizer_report(p.stderr), f"{tag}: sanitizer: {p.stderr[-2000:]!r}"
        assert p.returncode == 0, f"{tag}: exit {p.returncode}: {p.stderr[-500:]!r}"
        lines = [l for l in p.stderr.decode(errors="replace").splitlines()
                 if not l.startswith(("slm: train: ", "step "))]
        assert len(lines) == want_stderr_lines, f"{tag}: stderr {lines}"
        for w in want_words:
            assert w.lower() in lines[0].lower(), f"{tag}: {lines} lacks {w!r}"
        if check_files:
            assert snapshot() == before, f"{tag}: files changed"
        if not sanitized:
            TABLE.append((what, args, 0, lines[0] if lines else "(works)"))
        yield p


def model_cmds(d):
    """The commands that load a whole model directory."""
    return [["info", "-m", d], ["generate", "-m", d, "-n", "4", "--seed", "1"],
            ["eval", "-m", d, "--data", path("data.txt")]]


def refuse_model(what, d, words, code=1):
    for args in model_cmds(d):
        refuse(what, args, code, words)


def case(fn):
    CASES.append(fn)
    return fn


CASES = []

# ---- model.safetensors ---------------------------------------------------------


@case
def st_truncated():
    d = copy_model("st_truncated")
    blob = read(os.path.join(d, "model.safetensors"))
    write(os.path.join(d, "model.safetensors"), blob[:len(blob) // 2])
    refuse_model("model.safetensors truncated (half-downloaded)", d,
                 ["model.safetensors", "data"])


@case
def st_empty():
    d = copy_model("st_empty")
    write(os.path.join(d, "model.safetensors"), b"")
    refuse_model("model.safetensors empty", d, ["model.safetensors", "too small"])


@case
def st_random_bytes():
    d = copy_model("st_random")
    write(os.path.join(d, "model.safetensors"), random.Random(6).randbytes(5000))
    refuse_model("model.safetensors random bytes", d, ["model.safetensors", "header length"])


@case
def st_header_longer_than_file():
    d = damaged_st("st_hdr_long", lambda h, data: struct.pack("<Q", 10 ** 6) + b"{}")
    refuse_model("header length larger than the file", d, ["header length", "file size"])


@case
def st_header_over_100mb():
    d = damaged_st("st_hdr_huge",
                   lambda h, data: struct.pack("<Q", 200_000_001) + b"{" + b" " * 100)
    refuse_model("header length > 100 MB", d, ["header length", "limit"])


def with_offsets(change):
    def fn(header, data):
        change(header, data)
        return st_build(header, data)
    return fn


@case
def st_offsets_out_of_bounds():
    def change(h, data):
        h["transformer.ln_f.bias"]["data_offsets"][1] += 4096
    d = damaged_st("st_oob", with_offsets(change))
    refuse_model("tensor offsets past the end of the data", d, ["ln_f.bias", "data_offsets"])


@case
def st_offsets_overlapping():
    def change(h, data):
        a, b = h["transformer.ln_f.weight"], h["transformer.ln_f.bias"]
        b["data_offsets"] = list(a["data_offsets"])  # same bytes twice
    d = damaged_st("st_overlap", with_offsets(change))
    refuse_model("two tensors overlapping", d, ["overlap"])


@case
def st_offsets_not_covering():
    d = damaged_st("st_gap", lambda h, data: st_build(h, data + b"\0" * 64))
    refuse_model("data section not covered (trailing bytes)", d, ["model.safetensors", "64"])


@case
def st_wrong_dtype():
    def change(h, data):
        h["transformer.ln_f.weight"]["dtype"] = "I32"  # same size, not a float
    d = damaged_st("st_dtype", with_offsets(change))
    refuse_model("a tensor of dtype I32", d, ["ln_f.weight", "I32"])


@case
def st_wrong_shape():
    def change(h, data):
        t = h["transformer.h.0.attn.c_attn.weight"]
        t["shape"] = list(reversed(t["shape"]))  # [3C, C]: a transposed Linear
    d = damaged_st("st_shape", with_offsets(change))
    refuse_model("a tensor of the wrong shape (transposed)", d,
                 ["c_attn.weight", "shape", "[48, 16]", "[16, 48]"])


@case
def st_missing_tensor():
    def fn(h, data):
        del h["transformer.h.0.ln_1.bias"]  # leaves a gap, so refill the data
        return repack(h, data)
    d = damaged_st("st_missing", fn)
    refuse_model("a missing tensor", d, ["h.0.ln_1.bias", "missing"])


def repack(h, data, extra=None):
    """Rebuilds a consistent file from h's tensors (plus extra name → bytes)."""
    out, blob = {}, b""
    for name, t in h.items():
        if name == "__metadata__":
            out[name] = t
            continue
        b0, b1 = t["data_offsets"]
        chunk = data[b0:b1] if b1 <= len(data) else b"\0" * (b1 - b0)
        out[name] = dict(t, data_offsets=[len(blob), len(blob) + len(chunk)])
        blob += chunk
    for name, chunk in (extra or {}).items():
        out[name] = {"dtype": "F32", "shape": [len(chunk) // 4],
                     "data_offsets": [len(blob), len(blob) + len(chunk)]}
        blob += chunk
    return st_build(out, blob)


@case
def st_unexpected_tensor():
    d = damaged_st("st_extra", lambda h, data: repack(h, data, {"h.7.mlp.c_fc.bias": b"\0" * 16}))
    refuse_model("a tensor the config does not have", d, ["h.7.mlp.c_fc.bias", "unexpected"])


@case
def st_is_a_directory():
    d = copy_model("st_dir")
    os.remove(os.path.join(d, "model.safetensors"))
    os.makedirs(os.path.join(d, "model.safetensors"))
    refuse_model("model.safetensors is a directory", d, ["model.safetensors"])


@case
def model_dir_missing():
    refuse_model("model directory does not exist", path("no_such_model"), ["no_such_model"])


@case
def weights_with_nan_warn():
    d = copy_model("st_nan")
    h, data = st_parse(read(os.path.join(d, "model.safetensors")))
    b0 = h["transformer.h.0.ln_1.weight"]["data_offsets"][0]
    data = data[:b0 + 8] + struct.pack("<f", math.nan) + data[b0 + 12:]
    write(os.path.join(d, "model.safetensors"), st_build(h, data))
    # info and eval warn (one line) and go on; generate refuses to sample from them.
    for args in (["info", "-m", d], ["eval", "-m", d, "--data", path("data.txt")]):
        for p in accept("NaN in a weight (info, eval: a warning)", args, want_stderr_lines=1,
                        want_words=["warning", "non-finite", "h.0.ln_1.weight"]):
            assert p.stdout, "info/eval still print their result"
    refuse("NaN in a weight (generate)", ["generate", "-m", d, "-n", "3"], 1,
           ["non-finite", "h.0.ln_1.weight", "refusing"])


@case
def tokenize_ignores_damaged_weights():
    d = copy_model("st_tok")
    write(os.path.join(d, "model.safetensors"), b"\x10\0\0\0")
    for p in accept("tokenize with a damaged model.safetensors", ["tokenize", "-m", d, "héllo"]):
        assert p.stdout == b" ".join(str(b).encode() for b in "héllo".encode()) + b"\n"
    for p in accept("detokenize with a damaged model.safetensors",
                    ["detokenize", "-m", d, "104", "105"]):
        assert p.stdout == b"hi"


# ---- config.json ---------------------------------------------------------------


@case
def config_missing():
    d = copy_model("cfg_missing")
    os.remove(os.path.join(d, "config.json"))
    refuse_model("config.json missing", d, ["config.json", "no such file"])
    refuse("config.json missing", ["tokenize", "-m", d, "hi"], 1, ["config.json"])


@case
def config_malformed():
    d = copy_model("cfg_malformed")
    write(os.path.join(d, "config.json"), read(os.path.join(d, "config.json"))[:40])
    refuse_model("config.json malformed (cut short)", d, ["config.json"])
    refuse("config.json malformed (cut short)", ["tokenize", "-m", d, "hi"], 1, ["config.json"])


@case
def config_not_json_object():
    d = copy_model("cfg_array")
    write(os.path.join(d, "config.json"), "[1, 2, 3]")
    refuse_model("config.json not an object", d, ["config.json", "object"])


@case
def config_zero_size():
    d = damaged_config("cfg_zero", lambda c: c.update(n_embd=0))
    refuse_model("n_embd = 0", d, ["n_embd", "positive"])


@case
def config_negative_size():
    d = damaged_config("cfg_negative", lambda c: c.update(n_layer=-2))
    refuse_model("n_layer = -2", d, ["n_layer", "positive"])


@case
def config_size_not_integer():
    d = damaged_config("cfg_float", lambda c: c.update(n_head="2"))
    refuse_model("n_head = \"2\" (a string)", d, ["n_head", "integer"])


@case
def config_inconsistent_heads():
    d = damaged_config("cfg_heads", lambda c: c.update(n_head=3))
    refuse_model("n_embd % n_head != 0", d, ["n_embd", "multiple of n_head"])


@case
def config_absurd_sizes():
    d = damaged_config("cfg_absurd", lambda c: c.update(n_layer=1000, n_embd=65536))
    refuse_model("absurd sizes (1000 layers of width 65536)", d, ["parameters", "exceeds"])
    d = damaged_config("cfg_absurd2", lambda c: c.update(n_positions=2 ** 31))
    refuse_model("n_positions = 2^31", d, ["n_positions", "too large"])


@case
def config_larger_than_weights():
    # Plausible sizes that the file cannot hold: refused before allocating.
    d = damaged_config("cfg_big", lambda c: c.update(n_layer=12, n_embd=4096, n_head=32))
    refuse_model("config larger than the weights file (12 layers × 4096)", d,
                 ["model.safetensors", "cannot hold"])


@case
def config_disagrees_with_weights():
    d = damaged_config("cfg_layers", lambda c: c.update(n_layer=2))
    refuse_model("n_layer = 2 for a 1-layer file", d, ["h.1.", "missing"])
    d = damaged_config("cfg_ctx", lambda c: c.update(n_positions=32))
    refuse_model("n_positions = 32 for a 16-position file", d, ["wpe.weight", "shape"])


@case
def config_unsupported_model():
    d = damaged_config("cfg_llama", lambda c: c.update(model_type="llama"))
    refuse_model("model_type \"llama\"", d, ["model_type", "llama"])


# ---- vocab.json / merges.txt ---------------------------------------------------


def refuse_tokenizer(what, d, words):
    refuse(what, ["tokenize", "-m", d, "hello world"], 1, words)
    refuse(what, ["detokenize", "-m", d, "31373"], 1, words)


@case
def vocab_missing():
    d = tokenizer_dir("vocab_missing")
    os.remove(os.path.join(d, "vocab.json"))
    refuse_tokenizer("vocab.json missing", d, ["vocab.json"])
    g = copy_model("vocab_missing_model", "good_gpt2")
    os.remove(os.path.join(g, "vocab.json"))
    for args in model_cmds(g)[1:]:  # info does not read the vocabulary
        refuse("vocab.json missing", args, 1, ["vocab.json"])


@case
def merges_missing():
    d = tokenizer_dir("merges_missing")
    os.remove(os.path.join(d, "merges.txt"))
    refuse_tokenizer("merges.txt missing", d, ["merges.txt"])


@case
def vocab_malformed():
    d = tokenizer_dir("vocab_bad")
    write(os.path.join(d, "vocab.json"), '{"a": 0, "b": ')
    refuse_tokenizer("vocab.json malformed", d, ["vocab.json"])
    d = tokenizer_dir("vocab_dup")
    write(os.path.join(d, "vocab.json"), '{"a": 0, "b": 0}')
    refuse_tokenizer("vocab.json with a repeated id", d, ["vocab.json"])


@case
def merges_malformed():
    d = tokenizer_dir("merges_bad")
    write(os.path.join(d, "merges.txt"), "#version: 0.2\nĠ t\nnot-a-pair\n")
    refuse_tokenizer("merges.txt malformed line", d, ["merges.txt"])
    d = tokenizer_dir("merges_unknown")
    write(os.path.join(d, "merges.txt"), "#version: 0.2\nzzzq xyzzy\n")
    refuse_tokenizer("merges.txt with tokens not in vocab.json", d, ["merges.txt"])


@case
def vocab_smaller_than_config():
    d = tokenizer_dir("vocab_small")
    cfg = json.loads(read(os.path.join(d, "config.json")))
    cfg["vocab_size"] = 1000
    write(os.path.join(d, "config.json"), json.dumps(cfg))
    refuse_tokenizer("vocab_size smaller than vocab.json", d, ["vocab"])


# ---- training and evaluation data ------------------------------------------------

TRAIN = ["--layers", "1", "--heads", "2", "--dim", "16", "--context", "16", "--batch", "2",
         "--steps", "2", "--threads", "1"]


def train_args(data, out, *extra):
    return ["train", "--data", data, "--out", out, *TRAIN, *extra]


@case
def data_empty():
    e = write(path("data", "empty.txt"), b"")
    refuse("data file empty", train_args(e, path("out_empty")), 1, ["empty"])
    refuse("data file empty", ["eval", "-m", path("good"), "--data", e], 1, ["0 token"])


@case
def data_shorter_than_context():
    s = write(path("data", "short.txt"), "too short")
    refuse("data shorter than one context window", train_args(s, path("out_short")), 1,
           ["9 tokens", "context of 16"])
    refuse("data shorter than one context window", train_args(
        s, path("out_short2"), "--tokenizer", "gpt2"), 1, ["tokens", "context of 16"])
    one = write(path("data", "one.txt"), "x")
    refuse("data of one token", ["eval", "-m", path("good"), "--data", one], 1, ["1 token"])


@case
def data_not_utf8_is_fine():
    raw = bytes(random.Random(3).randrange(256) for _ in range(4000))
    b = write(path("data", "binary.bin"), raw)
    out = path("out_binary")
    for p in accept("data not UTF-8 (byte tokenizer)", train_args(b, out), check_files=False):
        shutil.rmtree(out)
    for p in accept("data not UTF-8 (eval)", ["eval", "-m", path("good"), "--data", b]):
        assert p.stdout.startswith(b"loss ")
    for p in accept("data not UTF-8 (GPT-2 tokenizer)",
                    ["eval", "-m", path("good_gpt2"), "--data", b]):
        assert p.stdout.startswith(b"loss ")


@case
def val_fraction_zero_trains_without_validation():
    """--val-fraction 0 holds nothing out: every token trains and no
    validation loss is reported (it once read past the token buffer)."""
    out = path("out_noval")
    for p in accept("--val-fraction 0 (no validation split)",
                    train_args(path("data.txt"), out, "--val-fraction", "0"), check_files=False):
        assert p.stdout.startswith(b"step 2: train loss ") and b"validation" not in p.stdout, \
            p.stdout
        with open(os.path.join(out, "log.jsonl")) as f:
            assert "val_loss" not in f.read()
        shutil.rmtree(out)


@case
def data_is_a_directory():
    refuse("data file is a directory", train_args(path("data"), path("out_dir")), 1,
           ["directory"])
    refuse("data file is a directory", ["eval", "-m", path("good"), "--data", path("data")], 1,
           ["directory"])


@case
def data_missing():
    refuse("data file missing", train_args(path("nope.txt"), path("out_nope")), 1,
           ["nope.txt", "no such file"])


# ---- generation requests ---------------------------------------------------------


def gen(*args):
    return ["generate", "-m", path("good"), "--seed", "1", *args]


@case
def prompt_longer_than_context():
    refuse("prompt longer than the context", gen("-p", "x" * 17), 1,
           ["17 tokens", "context holds 16", "--truncate"])


@case
def huge_prompt():
    refuse("huge prompt (120 KB)", gen("-p", "y" * 120_000), 1, ["120000 tokens"])
    ids = " ".join(["7"] * 50_000)
    refuse("huge --prompt-ids (50,000 ids)", gen("--prompt-ids", ids), 1, ["50000 tokens"])


@case
def tokens_zero():
    refuse("-n 0", gen("-n", "0"), 2, ["-n", "'0'"])


@case
def temperature_negative_or_nan():
    refuse("negative temperature", gen("--temperature", "-0.5"), 2, ["--temperature"])
    refuse("NaN temperature", gen("--temperature", "nan"), 2, ["--temperature", "finite"])
    refuse("infinite temperature", gen("--temperature", "inf"), 2, ["--temperature"])


@case
def top_p_outside_range():
    for v in ("0", "-0.1", "1.5", "nan"):
        refuse(f"top-p {v}", gen("--top-p", v), 2, ["--top-p"])


@case
def top_k_negative():
    refuse("top-k -3", gen("--top-k", "-3"), 2, ["--top-k"])


@case
def prompt_ids_outside_vocabulary():
    refuse("--prompt-ids outside the vocabulary", gen("--prompt-ids", "1 256"), 2, ["256"])
    refuse("--prompt-ids not numbers", gen("--prompt-ids", "1 two"), 2, ["two"])
    refuse("--prompt-ids empty", gen("--prompt-ids", " "), 2, ["empty"])


@case
def eval_context_too_long():
    refuse("eval --context beyond n_positions",
           ["eval", "-m", path("good"), "--data", path("data.txt"), "--context", "17"], 2,
           ["--context", "17"])


@case
def detokenize_bad_ids():
    refuse("detokenize an id outside the vocabulary", ["detokenize", "-m", path("good"), "300"],
           1, ["300"])
    refuse("detokenize a non-number", ["detokenize", "-m", path("good"), "abc"], 2, ["abc"])


# ---- flags and commands ----------------------------------------------------------


@case
def unknown_flags():
    m = path("good")
    for args in (["train", "--data", path("data.txt"), "--out", path("o_flag"), "--wat"],
                 ["generate", "-m", m, "--temprature", "1"], ["eval", "-m", m, "--dta", "x"],
                 ["tokenize", "-m", m, "--x"], ["detokenize", "-m", m, "--x"],
                 ["info", "-m", m, "--x"], ["mask", "4", "--x"], ["softmax", "--x", "1"]):
        refuse("unknown flag", args, 2, ["unknown option"])
    refuse("unknown command", ["trian"], 2, ["unknown command", "trian"])
    refuse("flag without its value", ["generate", "-m"], 2, ["-m", "needs a value"])
    refuse("no model given", ["generate", "-p", "x"], 2, ["-m"])


@case
def dtype_bad_values():
    for bad in ("fp16", "BF16", "", "bfloat16"):
        refuse("--dtype not fp32 or bf16", train_args(path("data.txt"), path("o_dtype"),
                                                      "--dtype", bad), 2, ["--dtype", "fp32"])
        refuse("bench train --dtype not fp32 or bf16", ["bench", "train", "--dtype", bad], 2,
               ["--dtype", "bf16"])
    refuse("--resume with --dtype", ["train", "--resume", path("good"), "--dtype", "bf16"], 2,
           ["--resume"])


# ---- pictures: slm attention, plot, mask -o, softmax -o ---------------------------


def attn(*args):
    return ["attention", "-m", path("good"), *args]


@case
def attention_requests():
    png = path("attn.png")
    refuse("attention without -o or --json", attn("-p", "hi"), 2, ["no output", "-o"])
    refuse("attention -o with an unknown extension", attn("-p", "hi", "-o", path("a.jpg")), 2,
           ["a.jpg", ".png or .svg"])
    refuse("attention -o without an extension", attn("-p", "hi", "-o", path("attn")), 2,
           [".png or .svg"])
    refuse("attention --layer out of range", attn("-p", "hi", "--layer", "1", "-o", png), 2,
           ["--layer 1", "1 layers"])
    refuse("attention --layer negative", attn("-p", "hi", "--layer", "-1", "-o", png), 2,
           ["--layer"])
    refuse("attention --head out of range", attn("-p", "hi", "--head", "2", "-o", png), 2,
           ["--head 2", "2 heads"])
    refuse("attention --all with --layer", attn("-p", "hi", "--all", "--layer", "0", "-o", png),
           2, ["--all"])
    refuse("attention prompt longer than the context", attn("-p", "x" * 17, "-o", png), 1,
           ["17 tokens", "context holds 16"])
    refuse("attention empty prompt", attn("-p", "", "-o", png), 2, ["empty"])
    refuse("attention without a prompt", attn("-o", png), 2, ["-p"])
    refuse("attention model directory does not exist",
           ["attention", "-m", path("no_such_model"), "-p", "hi", "-o", png], 1, ["config.json"])
    refuse("attention -o into a missing directory",
           attn("-p", "hi", "-o", path("no_dir", "a.svg")), 1, ["no_dir"])


@case
def ffn_requests():
    png = path("ffn.png")
    ffn = ["ffn", "-m", path("good")]
    refuse("ffn without -o or --json", [*ffn, "-p", "hi"], 2, ["no output"])
    refuse("ffn -o with an unknown extension", [*ffn, "-p", "hi", "-o", path("f.tif")], 2,
           [".png or .svg"])
    refuse("ffn --layer out of range", [*ffn, "-p", "hi", "--layer", "1", "-o", png], 2,
           ["--layer 1"])
    refuse("ffn --units more than the model has", [*ffn, "-p", "hi", "--units", "65", "-o", png],
           2, ["--units 65", "64 hidden units"])
    refuse("ffn prompt longer than the context", [*ffn, "-p", "x" * 17, "-o", png], 1,
           ["17 tokens"])


def plot_run(name, log):
    d = path(name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if log is not None:
        write(os.path.join(d, "log.jsonl"), log)
    return d


@case
def plot_requests():
    png = path("plot.png")
    good = '{"step":1,"loss":5.5,"lr":0.001,"grad_norm":1,"tok_s":10}\n'
    refuse("plot a directory that does not exist", ["plot", path("no_run"), "-o", png], 1,
           ["no_run/log.jsonl"])
    refuse("plot a directory without log.jsonl", ["plot", plot_run("run_nolog", None), "-o", png],
           1, ["log.jsonl"])
    refuse("plot an empty log.jsonl", ["plot", plot_run("run_empty", ""), "-o", png], 1,
           ["log.jsonl", "no training steps"])
    refuse("plot a malformed log.jsonl line",
           ["plot", plot_run("run_bad", good + "{\"step\":2,\"loss\":\n" + good), "-o", png], 1,
           ["log.jsonl:2"])
    refuse("plot a log line without loss",
           ["plot", plot_run("run_noloss", '{"step":1,"lr":0.1}\n'), "-o", png], 1,
           ["log.jsonl:1", "loss"])
    write(path("run_dirlog", "log.jsonl", "x"), "")
    refuse("plot log.jsonl is a directory", ["plot", path("run_dirlog"), "-o", png], 1,
           ["log.jsonl", "not a regular file"])
    ok = plot_run("run_ok", good)
    refuse("plot without -o", ["plot", ok], 2, ["no output", "-o"])
    refuse("plot -o with an unknown extension", ["plot", ok, "-o", path("p.gif")], 2,
           [".png or .svg"])
    refuse("plot without a directory", ["plot", "-o", png], 2, ["no run directory"])


@case
def mask_softmax_pictures():
    refuse("mask -o with an unknown extension", ["mask", "4", "-o", path("m.bmp")], 2,
           [".png or .svg"])
    refuse("mask -o with T too large to draw", ["mask", "300", "-o", path("m.png")], 2,
           ["256", "300"])
    refuse("mask -o without a file", ["mask", "4", "-o"], 2, ["-o", "needs a value"])
    refuse("softmax -o with an unknown extension",
           ["softmax", "--causal", "--row", "2", "1", "1", "1", "8", "-o", path("s.txt")], 2,
           [".png or .svg"])


@case
def show_probs_requests():
    refuse("generate --show-probs 0", gen("--show-probs", "0"), 2, ["--show-probs", "'0'"])
    refuse("generate --show-probs 51", gen("--show-probs", "51"), 2, ["--show-probs", "50"])
    refuse("generate --show-probs with --ids", gen("--show-probs", "3", "--ids"), 2,
           ["--show-probs", "--ids"])


@case
def serve_refusals():
    import socket
    m = path("good")
    refuse("serve without a model", ["serve"], 2, ["no model given"])
    refuse("serve --port 70000", ["serve", "-m", m, "--port", "70000"], 2, ["--port", "70000"])
    refuse("serve --parallel 0", ["serve", "-m", m, "--parallel", "0"], 2, ["--parallel"])
    refuse("serve unknown flag", ["serve", "-m", m, "--wat"], 2, ["unknown option"])
    refuse("serve a missing model", ["serve", "-m", path("no_such_model")], 1,
           ["no_such_model", "no such file"])
    with socket.socket() as busy:  # the port is taken: refused after loading, nothing leaks
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = str(busy.getsockname()[1])
        refuse("serve on a port in use", ["serve", "-m", m, "--port", port], 1,
               ["cannot listen", port])


# ---- output directory ------------------------------------------------------------


@case
def out_dir_is_a_file():
    f = write(path("a_file"), "keep me")
    refuse("output dir is a file", train_args(path("data.txt"), f), 1, ["a_file", "is a file"])
    refuse("output dir below a file", train_args(path("data.txt"), os.path.join(f, "sub")), 1,
           ["a_file"])
    assert read(f) == b"keep me"


@case
def out_dir_holds_a_model():
    # A new run into a trained model's directory would replace it: refused.
    refuse("output dir already holds a model",
           train_args(path("data.txt"), path("good")), 2, ["already holds a model", "--resume"])


@case
def out_dir_unwritable():
    if os.geteuid() == 0:  # root writes anywhere: use a place no one can create in
        out = "/proc/slm-unwritable/model"
        refuse("output dir unwritable", train_args(path("data.txt"), out), 1,
               ["/proc/slm-unwritable"])
    else:
        ro = path("readonly")
        os.makedirs(ro, exist_ok=True)
        os.chmod(ro, 0o555)
        try:
            refuse("output dir unwritable", train_args(path("data.txt"), os.path.join(ro, "m")),
                   1, ["readonly", "permission denied"])
            refuse("output dir unwritable", train_args(path("data.txt"), ro), 1,
                   ["readonly", "permission denied"])
        finally:
            os.chmod(ro, 0o755)


# ---- sizes and memory --------------------------------------------------------------


@case
def train_absurd_sizes():
    refuse("slm train --layers 1000 --dim 16384",
           ["train", "--data", path("data.txt"), "--out", path("o_absurd"), "--layers", "1000",
            "--dim", "16384"], 2, ["parameters", "exceeds"])


@case
def train_more_than_memory():
    # 3.2 G parameters: allowed sizes, but 4 floats each (weights, gradients,
    # two AdamW moments) are ~50 GiB; refused before anything is allocated.
    refuse("slm train --layers 4 --dim 8192 (needs ~49 GiB)",
           ["train", "--data", path("data.txt"), "--out", path("o_mem"), "--layers", "4",
            "--dim", "8192", "--context", "16"], 1, ["GiB needed", "memory is available"],
           cap_memory=True)
    refuse("slm train --batch 65536 --context 65536 (activations)",
           ["train", "--data", path("data.txt"), "--out", path("o_mem2"), "--layers", "1",
            "--dim", "64", "--heads", "1", "--context", "65536", "--batch", "65536"], 1,
           ["GiB needed", "memory is available"], cap_memory=True)


# ---- resume --------------------------------------------------------------------------


@case
def resume_without_checkpoint():
    refuse("--resume a directory without a training state", ["train", "--resume", path("good")],
           1, ["training_state.safetensors"])


@case
def resume_damaged_checkpoint():
    out = path("ckpt")
    if not os.path.exists(out):
        p = subprocess.run([SLM, *train_args(path("data.txt"), out)], capture_output=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
    st = os.path.join(out, "training_state.safetensors")
    blob = read(st)
    bad = path("ckpt_cut")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(out, bad)
    write(os.path.join(bad, "training_state.safetensors"), blob[:len(blob) - 100])
    refuse("--resume with a truncated training state", ["train", "--resume", bad, "--steps", "4"],
           1, ["training_state.safetensors"])
    refuse("--resume with other flags", ["train", "--resume", out, "--lr", "1"], 2, ["--resume"])


@case
def resume_repairs_what_it_can():
    """A damaged token cache is rebuilt from the text, and model files that a
    crash left damaged are rewritten from the training state."""
    src = path("ckpt_repair_src")
    if not os.path.exists(src):
        p = subprocess.run([SLM, *train_args(path("data.txt"), src)], capture_output=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
    for binary, sanitized in binaries():
        out = path("ckpt_repair")
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(src, out)
        good = read(os.path.join(out, "model.safetensors"))
        write(os.path.join(out, "train_data.tokens"), b"SLMTOK1\0garbage")
        write(os.path.join(out, "model.safetensors"), good[:100])
        p = slm_run(binary, ["train", "--resume", out, "--steps", "3"], sanitized=sanitized)
        assert not sanitizer_report(p.stderr), p.stderr[-2000:]
        assert p.returncode == 0, p.stderr
        assert slm_run(SLM, ["info", "-m", out]).returncode == 0
        with open(os.path.join(out, "train_data.tokens"), "rb") as f:
            assert f.read(8) == b"SLMTOK1\0" and os.path.getsize(f.name) > 64
        if not sanitized:
            TABLE.append(("damaged train_data.tokens and model.safetensors in a run",
                          ["train", "--resume", out, "--steps", "3"], 0,
                          "(works: the cache is rebuilt, the model files rewritten)"))
        shutil.rmtree(out)


# ---- slm quantize and quantized model directories ------------------------------------


def quantized(name, to="int8"):
    """A 32-wide model (int8 groups of 32 need a multiple of 32) and its
    quantized copy `name` made by slm quantize."""
    src = path("good32")
    if not os.path.exists(os.path.join(src, "model.safetensors")):
        p = subprocess.run([SLM, "train", "--data", path("data.txt"), "--out", src, "--layers",
                            "1", "--heads", "2", "--dim", "32", "--context", "16", "--batch", "2",
                            "--steps", "2", "--threads", "1", "--eval-every", "0"],
                           capture_output=True, timeout=300)
        assert p.returncode == 0, p.stderr
        for f in ("log.jsonl", "train_data.tokens", "training_state.safetensors"):
            os.remove(os.path.join(src, f))
    d = path(name)
    shutil.rmtree(d, ignore_errors=True)
    p = subprocess.run([SLM, "quantize", "-m", src, "--to", to, "-o", d], capture_output=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return d


def damaged_quantized(name, fn, to="int8"):
    d = quantized(name, to)
    header, data = st_parse(read(os.path.join(d, "model.safetensors")))
    write(os.path.join(d, "model.safetensors"), fn(header, data))
    return d


@case
def quantize_usage():
    quantized("q8")
    src = path("good32")
    refuse("quantize to an unknown type", ["quantize", "-m", src, "--to", "int4", "-o",
                                           path("q_int4")], 2, ["--to", "int8 or bf16", "int4"])
    refuse("quantize without -o", ["quantize", "-m", src, "--to", "int8"], 2, ["-o"])
    refuse("quantize -o over an existing model", ["quantize", "-m", src, "--to", "int8", "-o",
                                                  path("good")], 2, ["already holds", "--force"])
    refuse("quantize -o the input directory", ["quantize", "-m", src, "--to", "int8", "-o", src,
                                               "--force"], 2, ["input directory"])
    refuse("quantize a width that groups of 32 do not divide",
           ["quantize", "-m", path("good"), "--to", "int8", "-o", path("q_w16")], 2,
           ["--group-size 32", "width 16"])
    refuse("quantize --group-size not a multiple of 32",
           ["quantize", "-m", src, "--to", "int8", "--group-size", "48", "-o", path("q_g48")], 2,
           ["multiple of 32"])
    refuse("quantize --group-size with bf16",
           ["quantize", "-m", src, "--to", "bf16", "--group-size", "64", "-o", path("q_gb")], 2,
           ["int8 only"])
    refuse("quantize an already quantized model",
           ["quantize", "-m", path("q8"), "--to", "bf16", "-o", path("q_again")], 1,
           ["already quantized", "int8"])


@case
def quantize_over_a_training_run():
    run_dir = path("q_run")
    if not os.path.exists(run_dir):
        p = subprocess.run([SLM, *train_args(path("data.txt"), run_dir)], capture_output=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
    refuse("quantize -o into a training run (even with --force)",
           ["quantize", "-m", path("good32"), "--to", "int8", "-o", run_dir, "--force"], 2,
           ["training run"])


@case
def quantized_scale_shape():
    def change(h, data):
        t = h["transformer.h.0.attn.c_attn.weight_scale"]
        t["shape"] = list(reversed(t["shape"]))  # [1, 96] → [96, 1]: same bytes
    d = damaged_quantized("q_scale_shape", with_offsets(change))
    refuse_model("int8 scale tensor of the wrong shape", d,
                 ["c_attn.weight_scale", "shape [96, 1]", "expected [1, 96]"])


def scale_value(value):
    def fn(h, data):
        t = h["transformer.h.0.mlp.c_fc.weight_scale"]
        at = t["data_offsets"][0] + 4
        return st_build(h, data[:at] + struct.pack("<f", value) + data[at + 4:])
    return fn


@case
def quantized_scale_nan():
    d = damaged_quantized("q_scale_nan", scale_value(float("nan")))
    refuse_model("int8 scale NaN", d, ["c_fc.weight_scale", "nan", "finite"])


@case
def quantized_scale_negative():
    d = damaged_quantized("q_scale_neg", scale_value(-0.5))
    refuse_model("int8 scale negative", d, ["c_fc.weight_scale", "-0.5", ">= 0"])


@case
def quantized_scale_dtype():
    def change(h, data):
        h["transformer.wte.weight_scale"]["dtype"] = "I32"  # same size, not F32
    d = damaged_quantized("q_scale_dtype", with_offsets(change))
    refuse_model("int8 scale of dtype I32", d, ["wte.weight_scale", "I32", "expected F32"])


@case
def quantized_weight_dtype():
    def change(h, data):
        h["transformer.h.0.attn.c_proj.weight"]["dtype"] = "U8"  # same size, not I8
    d = damaged_quantized("q_w_dtype", with_offsets(change))
    refuse_model("int8 weight of dtype U8", d, ["c_proj.weight", "U8", "expected I8"])


@case
def quantized_scale_missing():
    def change(h, data):
        h["transformer.h.0.attn.c_proj.weight_scalx"] = h.pop(
            "transformer.h.0.attn.c_proj.weight_scale")
    d = damaged_quantized("q_scale_missing", with_offsets(change))
    refuse_model("int8 scale tensor missing", d, ["c_proj.weight_scale", "missing"])


@case
def quantized_bf16_as_f16():
    def change(h, data):
        h["transformer.h.0.mlp.c_fc.weight"]["dtype"] = "F16"  # same size
    d = damaged_quantized("qb_f16", with_offsets(change), to="bf16")
    refuse_model("bf16 model with an F16 matrix", d, ["c_fc.weight", "F16", "expected BF16"])


@case
def quantized_config_bad():
    quantized("q8")
    d = damaged_config("q_cfg_type", lambda c: c.update(slm_quantization={"dtype": "int4"}),
                       src="q8")
    refuse_model("slm_quantization dtype int4", d, ["slm_quantization", "int4"])
    d = damaged_config("q_cfg_group", lambda c: c["slm_quantization"].update(group_size=48),
                       src="q8")
    refuse_model("slm_quantization group_size 48", d, ["group_size 48", "multiple of 32"])
    d = damaged_config("q_cfg_fp32", lambda c: c.update(slm_quantization={"dtype": "int8",
                                                                           "group_size": 32}),
                       src="good32")
    refuse_model("config says int8, weights are fp32", d, ["has dtype F32", "expected I8"])


def print_table():
    """One row per input: the first command it was tried with, and its message."""
    fixtures()
    for fn in CASES:
        fn()
    print("| input | command | what slm says | exit |")
    print("|---|---|---|---|")
    seen = set()
    for what, args, code, msg in TABLE:
        if what in seen:
            continue
        seen.add(what)
        shown = [os.path.relpath(a, TMP) if a.startswith(TMP) else a for a in args]
        if shown[0] == "train" and "--layers" in shown and shown[-len(TRAIN):] == TRAIN:
            shown = shown[:-len(TRAIN)] + ["…"]
        shown = [a if len(a) < 30 else a[:12] + "…" for a in shown]
        shown = [a if a and " " not in a else repr(a) for a in shown]
        msg = msg.replace(TMP + "/", "").replace("|", "\\|")
        print(f"| {what} | `slm {' '.join(shown)}` | {msg} | {code} |")


if __name__ == "__main__":
    try:
        if "--table" in sys.argv:
            print_table()
        else:
            fixtures()
            run(CASES)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
