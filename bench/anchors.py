#!/usr/bin/env python3
"""slm next to the strongest anchors a user would pick, measured in ONE run on
the same machine with the same thread count, as tables with ratios and as
JSON lines (build/bench/bench-<UTC time>.jsonl, copied to build/bench/latest.jsonl).

  training step      slm bench train   vs  PyPI PyTorch, eager and torch.compile
  causal attention   slm bench attention (flash) vs F.scaled_dot_product_attention
  GPT-2 124M decode  bench/decode (pp512, tg128) vs llama.cpp llama-bench F32/BF16/Q8_0
                     (and slm's int8/bf16 models once `slm quantize` exists)
  stories dims       slm bench generate vs llama2.c run.c (random weights)
  GEMM               slm bench gemm vs torch.mm fp32 and bf16 (not in --quick)
  slm only           slm bench tokenize (not in --quick)

Anchors come from tools/setup-torch-venv.sh (build/venv-torch),
tools/build-llama-cpp.sh and tools/build-llama2c.sh (build/anchors/); a
missing one is reported as MISSING with the reason, never skipped silently.
Ratios are "slm / anchor" of times (below 1: slm is faster) or of tokens/s
(above 1: slm is faster), as each column header says.

  bench/anchors.py [--build DIR] [--quick] [--only LIST] [--threads N] [--shapes a,b]
                   [--rounds R]
Environment: BENCH_QUICK=1 is --quick; BENCH_ONLY=train,attention is --only;
BENCH_ROUNDS=3 is --rounds 3 (attention, training and GPT-2 decoding: every
program runs R times, taking turns, and each keeps its best: a host whose
speed drifts over minutes then skews no ratio).
Only standard-library Python here; PyTorch runs in build/venv-torch.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PY = os.path.join(ROOT, "build/venv-torch/bin/python")
ANCHORS = os.path.join(ROOT, "build/anchors")
MODELS = os.path.join(ROOT, "build/bench-models")
KEEP_MEMORY = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
SECTIONS = ("attention", "train", "decode", "stories", "gemm", "tokenize")


class Run:
    """Collects rows (every one also a JSON line) and prints as it goes."""

    def __init__(self, path):
        self.path, self.rows = path, []
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.f = open(path, "w")

    def add(self, row):
        self.rows.append(row)
        self.f.write(json.dumps(row, separators=(",", ":")) + "\n")
        self.f.flush()

    def missing(self, section, impl, why):
        self.add({"bench": section, "impl": impl, "missing": why})
        print(f"  {impl}: MISSING — {why}", flush=True)


def sh(cmd, timeout=1800, env=None, cwd=None, check=True):
    """Runs cmd, returns stdout; stderr passes through to the terminal."""
    e = dict(os.environ, **(env or {}))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, env=e, cwd=cwd or ROOT)
    if check and p.returncode != 0:
        tail = "\n".join(p.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(cmd[:3])}… exited {p.returncode}: {tail}")
    return p.stdout


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print(flush=True)


def f1(x, nd=1):
    return "—" if x is None else f"{x:,.{nd}f}"


def ratio(a, b, nd=2):
    return "—" if a is None or b is None or not b else f"{a / b:.{nd}f}×"


# ---------------------------------------------------------------- environment

def cpu_env():
    info = {}
    try:
        for line in sh(["lscpu"]).splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "Vendor ID", "CPU(s)", "Thread(s) per core",
                             "L2 cache", "L3 cache"):
                info[k.strip()] = v.strip()
    except (OSError, RuntimeError):
        pass
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    info["features"] = " ".join(x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512_bf16",
                                            "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")
                                if x in flags)
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", "(unset)")
    info["SLM_CPU_LEVEL"] = os.environ.get("SLM_CPU_LEVEL", "(unset)")
    return info


def kernel_fields(rows):
    """Whatever slm says about its compute path: JSON fields whose name speaks
    of a kernel, path, level or BLAS core, from any slm row of this run."""
    seen = {}
    for r in rows:
        if not str(r.get("impl", "")).startswith(("slm", "flash", "sgemm")):
            continue
        for k, v in r.items():
            if re.search(r"kernel|path|level|blas_core|isa|cpu", k) and isinstance(v, (str, int)):
                seen.setdefault(k, set()).add(str(v))
    return {k: ", ".join(sorted(v)) for k, v in seen.items()}


def slm_info_path(slm, model_dir):
    """Lines of `slm info` that name the kernel path (the compute issue adds them)."""
    out = []
    for cmd in ([slm, "info", "-m", model_dir], [slm, "info"]):
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        out += [ln.strip() for ln in p.stdout.splitlines()
                if re.search(r"kernel|path|gemm|blas|isa|avx|cpu", ln, re.I)]
        if out:
            break
    return out


def torch_env():
    if not os.path.exists(TORCH_PY):
        return None
    code = ("import json, torch\n"
            "c = torch.__config__.show()\n"
            "import re\n"
            "mkl = re.search(r'Math Kernel Library Version ([^\\n]*)', c)\n"
            "dnnl = re.search(r'MKL-DNN (v[0-9.]+)', c)\n"
            "print(json.dumps({'torch': torch.__version__, 'path': torch.__file__,\n"
            " 'mkl': mkl.group(1).split('-')[0].strip() if mkl else None,\n"
            " 'onednn': dnnl.group(1) if dnnl else None,\n"
            " 'mkldnn_enabled': torch.backends.mkldnn.is_available(),\n"
            " 'cpu_capability': torch.backends.cpu.get_cpu_capability()}))\n")
    try:
        return json.loads(sh([TORCH_PY, "-c", code], timeout=300).strip().splitlines()[-1])
    except (RuntimeError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


# ---------------------------------------------------------------- attention

def best_of(rows, key):
    """{key(r): the fastest r} over rows (each round's figure of one item)."""
    best = {}
    for r in rows:
        k = key(r)
        if k not in best or r["ms"] < best[k]["ms"]:
            best[k] = r
    return best


def rounds_note(a):
    return (f"; best of {a.rounds} rounds, the programs taking turns" if a.rounds > 1 else "")


def bench_attention(run, a):
    Ts = "1024,2048" if a.quick else "256,1024,2048,4096"
    print(f"== causal attention B=1 H=12 D=64, {a.threads} threads: slm flash vs PyTorch "
          f"F.scaled_dot_product_attention(is_causal=True){rounds_note(a)}", flush=True)
    slm_rows, torch_rows = [], []
    if not a.torch:
        run.missing("attention", "pytorch-sdpa", a.torch_missing)
    for rnd in range(a.rounds):
        for r in json_lines(sh([a.slm, "bench", "attention", "--json", "--threads",
                                str(a.threads), "--T", Ts] + (["--quick"] if a.quick else []))):
            run.add(dict(r, round=rnd))
            slm_rows.append(r)
        if a.torch:
            for r in json_lines(sh([TORCH_PY, "bench/attention_torch.py", "--threads",
                                    str(a.threads), "--T", Ts] + (["--quick"] if a.quick else []),
                                   env=KEEP_MEMORY)):
                run.add(dict(r, round=rnd))
                torch_rows.append(r)
    fl = best_of([r for r in slm_rows if r.get("impl") == "flash" and "ms" in r],
                 lambda r: (r["T"], r["pass"]))
    pt = best_of([r for r in torch_rows if "ms" in r], lambda r: (r["T"], r["pass"]))
    rows = []
    for T in (int(t) for t in Ts.split(",")):
        for p in ("fwd", "fwd+bwd"):
            s, t = fl.get((T, p)), pt.get((T, p))
            sm, tm = s and s["ms"], t and t["ms"]
            rows.append((T, p, f1(sm, 2), f1(s and s["gflops"]), f1(tm, 2), f1(t and t["gflops"]),
                         ratio(sm, tm), ratio(tm, sm)))
            run.add({"bench": "attention", "impl": "ratio", "T": T, "pass": p,
                     "slm_ms": sm, "anchor_ms": tm, "slm_over_anchor_time":
                     round(sm / tm, 4) if sm and tm else None})
    table(("T", "pass", "slm flash ms", "slm GFLOP/s", "PyTorch SDPA ms", "PyTorch GFLOP/s",
           "slm/PyTorch time", "speedup (PyTorch/slm)"), rows)


# ---------------------------------------------------------------- training

def slm_train_bf16(a):
    """True once `slm bench train` takes --dtype (issue 11)."""
    p = subprocess.run([a.slm, "bench", "train", "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return "--dtype" in p.stdout


def torch_train(run, a, mode, shape, dims, steps, rnd):
    env = dict(KEEP_MEMORY, TORCHINDUCTOR_CACHE_DIR=os.path.join(ANCHORS, "inductor-cache"))
    try:
        r = json_lines(sh([TORCH_PY, "bench/train_torch.py", "--mode", mode, "--shape", shape,
                           "--dims", dims, "--steps", steps, "--threads", str(a.threads)],
                          env=env, timeout=2400))[0]
        run.add(dict(r, round=rnd))
        return r
    except (RuntimeError, IndexError, subprocess.TimeoutExpired) as e:
        run.missing("train", f"pytorch-{mode}", str(e))
        return None


def bench_train(run, a):
    steps = "3" if a.quick else "6"
    bf16 = not a.quick
    print(f"== training step (forward + backward + AdamW), {a.threads} threads, median of "
          f"{steps} steps after warm-up; PyTorch best = faster of fp32 eager and torch.compile "
          f"(compilation excluded)" + ("; bf16 columns: PyTorch eager under bf16 autocast, "
                                       "slm --dtype bf16 where it exists" if bf16 else "")
          + rounds_note(a), flush=True)
    slm_bf16 = bf16 and slm_train_bf16(a)
    modes = ("eager", "compile") + (("eager-bf16",) if bf16 else ())
    if not a.torch:
        for mode in modes:
            run.missing("train", f"pytorch-{mode}", a.torch_missing)
    rows = []
    for shape in a.shapes.split(","):
        base = [a.slm, "bench", "train", "--json", "--threads", str(a.threads), "--shape", shape,
                "--steps", steps]
        got = []  # (name, row) of every round; each round runs every program once
        for rnd in range(a.rounds):
            s = [r for r in json_lines(sh(base)) if r.get("impl") == "slm"]
            if not s:
                raise RuntimeError(f"slm bench train --shape {shape} printed no row")
            run.add(dict(s[0], round=rnd))
            got.append(("slm", s[0]))
            if slm_bf16:
                # --dtype bf16 prints an fp32 row first, then the bf16 one
                sb = next((r for r in json_lines(sh(base + ["--dtype", "bf16"]))
                           if r.get("impl") == "slm" and r.get("dtype") == "bf16"), None)
                if sb:
                    run.add(dict(sb, round=rnd))
                    got.append(("slm-bf16", sb))
            dims = ",".join(str(s[0][k]) for k in ("L", "H", "C", "V", "P", "B", "T"))
            for mode in modes if a.torch else ():
                r = torch_train(run, a, mode, shape, dims, steps, rnd)
                if r:
                    got.append((mode, r))
        best = best_of([dict(r, _name=n) for n, r in got], lambda r: r["_name"])
        s, sb = best["slm"], best.get("slm-bf16")
        res = {m: best[m] for m in modes if m in best}
        fp32 = [res[m] for m in ("eager", "compile") if m in res]
        best = min(fp32, key=lambda r: r["ms"]) if fp32 else None
        e, c, eb = res.get("eager"), res.get("compile"), res.get("eager-bf16")
        row = [f"({shape}) L{s['L']} H{s['H']} C{s['C']} V{s['V']} B{s['B']} T{s['T']}",
               f1(s["ms"]), f1(e and e["ms"]), f1(c and c["ms"]), f1(c and c.get("warmup_s"), 0),
               best["impl"].replace("pytorch-", "") if best else "—",
               ratio(s["ms"], best and best["ms"])]
        if bf16:
            row += [f1(eb and eb["ms"]), f1(sb and sb["ms"]), ratio(sb and sb["ms"],
                                                                     best and best["ms"])]
        rows.append(row)
        run.add({"bench": "train", "impl": "ratio", "shape": shape, "slm_ms": s["ms"],
                 "anchor": best and best["impl"], "anchor_ms": best and best["ms"],
                 "slm_over_anchor_time": round(s["ms"] / best["ms"], 4) if best else None,
                 "slm_bf16_ms": sb and sb["ms"], "pytorch_bf16_autocast_ms": eb and eb["ms"]})
    table(["shape", "slm fp32 ms", "PyTorch eager ms", "torch.compile ms", "compile+warm-up s",
           "PyTorch best", "slm/PyTorch best time"]
          + (["PyTorch bf16 autocast ms", "slm bf16 ms", "slm bf16/PyTorch best fp32 time"]
             if bf16 else []), rows)


# ---------------------------------------------------------------- GPT-2 decode

def gpt2_dir(a):
    """A random-weight GPT-2 124M directory written by slm itself (one
    training step on the README; vocab.json + merges.txt from data/gpt2)."""
    d = os.path.join(MODELS, "gpt2-124m")
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return d
    print("  (once) writing a random-weight GPT-2 124M with slm train …", flush=True)
    shutil.rmtree(d, ignore_errors=True)
    for old in os.listdir(MODELS) if os.path.isdir(MODELS) else []:
        if old.startswith("gpt2-124m-"):  # GGUF and quantized copies of the old weights
            p = os.path.join(MODELS, old)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    os.makedirs(MODELS, exist_ok=True)
    text = os.path.join(MODELS, "gpt2-text.txt")
    with open(text, "w") as f:
        for _ in range(3):
            f.write(open(os.path.join(ROOT, "README.md")).read())
    sh([a.slm, "train", "--data", text, "--out", d, "--tokenizer", "gpt2", "--layers", "12",
        "--heads", "12", "--dim", "768", "--context", "1024", "--batch", "1", "--steps", "1",
        "--eval-batches", "1", "--val-fraction", "0.2", "--threads", str(a.threads)])
    for junk in ("training_state.safetensors", "train_data.tokens"):
        try:
            os.remove(os.path.join(d, junk))
        except OSError:
            pass
    return d


def gguf_files(d, a):
    """F32, BF16 (convert_hf_to_gguf.py) and Q8_0 (llama-quantize of the F32)."""
    stamp = open(os.path.join(ANCHORS, "llama.cpp.stamp")).read()
    src = re.search(r"^src (.*)$", stamp, re.M).group(1)
    out = {}
    for t in ("f32", "bf16"):
        path = os.path.join(MODELS, f"gpt2-124m-{t}.gguf")
        if not os.path.exists(path):
            print(f"  (once) convert_hf_to_gguf.py --outtype {t}", flush=True)
            sh([TORCH_PY, os.path.join(src, "convert_hf_to_gguf.py"), d, "--outtype", t,
                "--outfile", path + ".tmp"], timeout=1800)
            os.replace(path + ".tmp", path)
        out[t.upper()] = path
    q8 = os.path.join(MODELS, "gpt2-124m-q8_0.gguf")
    if not os.path.exists(q8):
        print("  (once) llama-quantize F32 → Q8_0", flush=True)
        sh([os.path.join(ANCHORS, "llama.cpp-build/bin/llama-quantize"), out["F32"], q8 + ".tmp",
            "Q8_0", str(a.threads)], timeout=1800)
        os.replace(q8 + ".tmp", q8)
    out["Q8_0"] = q8
    return out


def slm_quantized(run, d, a):
    """slm's own int8/bf16 models, once `slm quantize` exists (issue 11)."""
    p = subprocess.run([a.slm, "quantize", "--help"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if p.returncode != 0:
        return {}, "`slm quantize` is not in this build"
    out = {}
    for to, key in (("bf16", "BF16"), ("int8", "Q8_0")):
        q = f"{d}-{to}"
        cfg = os.path.join(q, "config.json")
        # requantized whenever build/slm is newer: its format may have changed
        if not os.path.exists(cfg) or os.path.getmtime(cfg) < os.path.getmtime(a.slm):
            shutil.rmtree(q, ignore_errors=True)
            try:
                sh([a.slm, "quantize", "-m", d, "--to", to, "-o", q])
            except RuntimeError as e:
                out[key] = None
                run.missing("decode", f"slm-{to}", f"slm quantize --to {to}: {e}")
                continue
        out[key] = q
    return out, None


def llama_cell(run, a, reps, typ, test, path, no_repack, first):
    """One llama-bench run of one model and test, as a table row, or None.
    One run per cell, so a crash costs one cell: this llama.cpp's repacked
    Q8_0 (AMX / VNNI layouts, its default) dies with SIGSEGV on pp512 on the
    AMX Xeon. A failed cell is re-run with --repack 0 (plain Q8_0 kernels),
    later rounds go there directly (no_repack), and the table marks it."""
    bench = os.path.join(ANCHORS, "llama.cpp-build/bin/llama-bench")
    pp, tg = ("512", "0") if test == "pp512" else ("0", "128")
    base = [bench, "-t", str(a.threads), "-p", pp, "-n", tg, "-r", reps, "-o", "jsonl", "-m", path]
    got, note = None, None
    tries = ([["--repack", "0"]] if (typ, test) in no_repack else [[], ["--repack", "0"]])
    for extra in tries:
        try:
            got = json_lines(sh(base + extra, timeout=1800))
            break
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            note = f"the default run failed ({str(e)[:160]}); re-run with --repack 0"
            no_repack.add((typ, test))
            print(f"  llama.cpp {typ} {test}: {note}", flush=True)
    if not got:
        if first:
            run.missing("decode", f"llama.cpp-{typ}-{test}", note or "no result")
        return None
    if (typ, test) in no_repack:
        note = note or "the default run failed in an earlier round; run with --repack 0"
    r = got[0]
    return {"bench": "decode", "impl": "llama.cpp", "type": typ, "test": test,
            "threads": r.get("n_threads"), "tok_s": r.get("avg_ts"),
            "tok_s_sd": r.get("stddev_ts"), "build_commit": r.get("build_commit"),
            "cpu_info": r.get("cpu_info"), "model_type": r.get("model_type"),
            "model_size": r.get("model_size"), "note": note}


def bench_decode(run, a):
    reps = "2" if a.quick else "3"
    print(f"== GPT-2 124M decoding (random weights, GPT-2 tokenizer), {a.threads} threads: "
          f"pp512 (prompt) and tg128 (greedy generation) tokens/s, mean of {reps} after a "
          f"warm-up — bench/decode (slm) vs llama-bench (llama.cpp){rounds_note(a)}", flush=True)
    d = gpt2_dir(a)
    dirs = {"F32": d}
    q, why = slm_quantized(run, d, a)
    dirs.update({k: v for k, v in q.items() if v})
    if why:
        run.missing("decode", "slm-int8/bf16", why)
    ggufs = {}
    if not a.llama:
        run.missing("decode", "llama.cpp", a.llama_missing)
    else:
        try:
            ggufs = gguf_files(d, a)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            run.missing("decode", "llama.cpp", str(e))
    # Per round each type's slm run and then its llama.cpp runs, so the two
    # take turns and a host that drifts over minutes hits both alike; each
    # cell keeps its best round (the highest mean tokens/s).
    slm, llama, failed, no_repack = {}, {}, set(), set()
    for rnd in range(a.rounds):
        for typ in ("F32", "BF16", "Q8_0"):
            if typ in dirs and typ not in failed:
                try:
                    for r in json_lines(sh([a.decode, "-m", dirs[typ], "-p", "512", "-n", "128",
                                            "-r", reps, "--threads", str(a.threads), "--json"],
                                           timeout=1800)):
                        r["type"] = typ
                        run.add(dict(r, round=rnd))
                        k = (typ, r["test"])
                        if k not in slm or r["tok_s"] > slm[k]["tok_s"]:
                            slm[k] = r
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    if typ == "F32":
                        raise
                    failed.add(typ)
                    run.missing("decode", f"slm-{typ}", str(e))
            for test in ("pp512", "tg128") if typ in ggufs else ():
                row = llama_cell(run, a, reps, typ, test, ggufs[typ], no_repack, rnd == 0)
                if row:
                    run.add(dict(row, round=rnd))
                    k = (typ, test)
                    if k not in llama or row["tok_s"] > llama[k]["tok_s"]:
                        llama[k] = row
    rows = []
    for typ in ("F32", "BF16", "Q8_0"):
        for test in ("pp512", "tg128"):
            s, l_ = slm.get((typ, test)), llama.get((typ, test))
            st, lt = s and s["tok_s"], l_ and l_["tok_s"]
            name = {"F32": "fp32", "BF16": "bf16", "Q8_0": "int8"}[typ]
            rows.append((f"{typ} (slm {name})", test,
                         f"{f1(st)} ± {f1(s['tok_s_sd'])}" if s else "—",
                         f"{f1(lt)} ± {f1(l_['tok_s_sd'])}{' (--repack 0)' if l_['note'] else ''}"
                         if l_ else "—", ratio(st, lt)))
            run.add({"bench": "decode", "impl": "ratio", "type": typ, "test": test,
                     "slm_tok_s": st, "anchor_tok_s": lt,
                     "slm_over_anchor_tok_s": round(st / lt, 4) if st and lt else None})
    table(("type", "test", "slm tok/s", "llama.cpp tok/s", "slm/llama.cpp tok/s"), rows)


# ---------------------------------------------------------------- llama2.c dims

def bench_stories(run, a):
    models = ("15m",) if a.quick else ("15m", "110m")
    reps = 2 if a.quick else 3
    print(f"== decoding at llama2.c's stories dims (random weights, 256 tokens, greedy), "
          f"{a.threads} threads: slm bench generate (GPT-2 blocks) vs llama2.c run.c "
          f"(Llama blocks, same matmul sizes), best of {reps}", flush=True)
    rows = []
    for m in models:
        best = None
        for _ in range(reps):
            for r in json_lines(sh([a.slm, "bench", "generate", "--model", m, "--tokens", "256",
                                    "--threads", str(a.threads), "--json"])):
                if r.get("impl") == "slm" and (best is None or r["tok_s"] > best["tok_s"]):
                    best = r
        run.add(dict(best, reps=reps))
        rc_tok = None
        if not a.llama2c:
            run.missing("stories", "llama2.c", a.llama2c_missing)
        else:
            mdir = os.path.join(MODELS, f"llama2c-{m}")
            if not os.path.exists(os.path.join(mdir, "model.bin")):
                sh([TORCH_PY if a.torch else sys.executable, "bench/llama2c_model.py", "--model", m,
                    "--out", mdir])
            got = []
            for _ in range(reps):
                out = sh([os.path.join(ANCHORS, "llama2c/run"), "model.bin", "0.0", "256"],
                         cwd=mdir, env={"OMP_NUM_THREADS": str(a.threads)})
                mt = re.search(r"achieved tok/s: ([0-9.]+)", out)
                if mt:
                    got.append(float(mt.group(1)))
            if got:
                rc_tok = max(got)
                run.add({"bench": "stories", "impl": "llama2.c", "model": m, "tokens": 256,
                         "threads": a.threads, "tok_s": rc_tok, "tok_s_all": got,
                         "source": open(os.path.join(ANCHORS, "llama2c/SOURCE")).read().strip()})
            else:
                run.missing("stories", "llama2.c", "run.c printed no 'achieved tok/s'")
        rows.append((f"stories{m.upper()} C{best['C']} L{best['L']} H{best['H']} V{best['V']}",
                     f1(best["tok_s"]), f1(rc_tok), ratio(best["tok_s"], rc_tok)))
        run.add({"bench": "stories", "impl": "ratio", "model": m, "slm_tok_s": best["tok_s"],
                 "anchor_tok_s": rc_tok, "slm_over_anchor_tok_s":
                 round(best["tok_s"] / rc_tok, 4) if rc_tok else None})
    table(("dims", "slm tok/s", "llama2.c run.c tok/s", "slm/run.c tok/s"), rows)


# ---------------------------------------------------------------- slm only

def bench_gemm(run, a):
    print(f"== GEMM C = A·B, fp32, {a.threads} threads, GFLOP/s: slm bench gemm (slm's kernels "
          f"and the libraries it compares) vs PyTorch torch.mm (fp32: MKL; bf16: oneDNN)",
          flush=True)
    rows = json_lines(sh([a.slm, "bench", "gemm", "--json", "--threads", str(a.threads)]))
    for r in rows:
        run.add(r)
    sizes = list(dict.fromkeys((r["M"], r["N"], r["K"]) for r in rows if "M" in r))
    pt = {}
    if not a.torch:
        run.missing("gemm", "pytorch-mm", a.torch_missing)
    elif sizes:
        for r in json_lines(sh([TORCH_PY, "bench/gemm_torch.py", "--threads", str(a.threads),
                                "--sizes", ",".join("x".join(map(str, z)) for z in sizes)],
                               env=KEEP_MEMORY)):
            run.add(r)
            pt[(r["M"], r["N"], r["K"], r["dtype"])] = r["gflops"]
    impls = list(dict.fromkeys(f"{r['impl']} ({r.get('kernel', '?')})" for r in rows if "M" in r))
    by = {(r["M"], r["N"], r["K"], f"{r['impl']} ({r.get('kernel', '?')})"): r["gflops"]
          for r in rows if "M" in r}
    out = []
    for z in sizes:
        slm_best = max((v for (m, n, k, i), v in by.items() if (m, n, k) == z
                        and i.startswith("slm")), default=None)
        out.append([f"{z[0]}×{z[1]}×{z[2]}"] + [f1(by.get(z + (i,))) for i in impls]
                   + [f1(pt.get(z + ("fp32",))), f1(pt.get(z + ("bf16",))),
                      ratio(pt.get(z + ("fp32",)), slm_best)])
    table(["M×N×K"] + impls + ["PyTorch fp32", "PyTorch bf16", "slm/PyTorch fp32 time"], out)


def bench_slm_only(run, a, what):
    print(f"== slm bench {what} (no anchor), {a.threads} threads", flush=True)
    rows = json_lines(sh([a.slm, "bench", what, "--json", "--threads", str(a.threads)]))
    for r in rows:
        run.add(r)
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("bench", "threads")]
    table(keys, [[r.get(k, "") for k in keys] for r in rows])


# ---------------------------------------------------------------- main

def anchors_available(a):
    a.torch = os.path.exists(TORCH_PY) and subprocess.run(
        [os.path.join(ROOT, "tools/setup-torch-venv.sh"), "--check"]).returncode == 0
    a.torch_missing = "build/venv-torch is missing or broken (tools/setup-torch-venv.sh)"
    a.llama = subprocess.run([os.path.join(ROOT, "tools/build-llama-cpp.sh"), "--check"]
                             ).returncode == 0
    log = os.path.join(ANCHORS, "llama.cpp-build.log")
    a.llama_missing = ("not built (tools/build-llama-cpp.sh failed or was not run"
                       + (f"; see {os.path.relpath(log, ROOT)}" if os.path.exists(log) else "")
                       + ")")
    a.llama2c = subprocess.run([os.path.join(ROOT, "tools/build-llama2c.sh"), "--check"]
                               ).returncode == 0
    a.llama2c_missing = "not built (tools/build-llama2c.sh failed or was not run)"


def describe(run, a):
    cpu = cpu_env()
    env = {"bench": "env", "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "threads": a.threads, "quick": a.quick, "cpu": cpu,
        "slm": sh([a.slm, "--version"]).strip()}
    try:
        env["slm_git"] = sh(["git", "rev-parse", "--short", "HEAD"], check=False).strip()
    except OSError:
        pass
    t = torch_env() if a.torch else None
    env["pytorch"] = t or {"missing": a.torch_missing}
    if a.llama:
        stamp = open(os.path.join(ANCHORS, "llama.cpp.stamp")).read()
        macros = sh(["gcc", "-march=native", "-dM", "-E", "-x", "c", "/dev/null"])
        feats = sorted(set(re.findall(r"#define __(AVX\w*|FMA|F16C|AMX\w*)__ 1", macros)))
        env["llama.cpp"] = {"version": " ".join(stamp.split("\n")[:2]),
                            "path": os.path.join(ANCHORS, "llama.cpp-build/bin/llama-bench"),
                            "build": "cmake Release, GGML_NATIVE (-march=native), OpenMP, static",
                            "cpu_features": " ".join(feats)}
    else:
        env["llama.cpp"] = {"missing": a.llama_missing}
    if a.llama2c:
        env["llama2.c"] = {"source": open(os.path.join(ANCHORS, "llama2c/SOURCE")).read().strip(),
                           "path": os.path.join(ANCHORS, "llama2c/run"),
                           "build": "gcc -Ofast -fopenmp -march=native (its Makefile's runomp)"}
    else:
        env["llama2.c"] = {"missing": a.llama2c_missing}
    run.add(env)
    print(f"CPU: {cpu.get('Model name', '?')} ({cpu.get('CPU(s)', '?')} CPUs; {cpu['features']})")
    print(f"slm: {env['slm']} {env.get('slm_git', '')}, {a.threads} threads, "
          f"OPENBLAS_CORETYPE={cpu['OPENBLAS_CORETYPE']} SLM_CPU_LEVEL={cpu['SLM_CPU_LEVEL']}")
    if t:
        print(f"PyTorch: {t['torch']} ({t['path']}), MKL {t['mkl']}, oneDNN {t['onednn']}, "
              f"CPU capability {t['cpu_capability']}")
    else:
        print(f"PyTorch: MISSING — {a.torch_missing}")
    for k in ("llama.cpp", "llama2.c"):
        v = env[k]
        print(f"{k}: " + (f"MISSING — {v['missing']}" if "missing" in v else
                          "; ".join(f"{x} {y}" for x, y in v.items())))
    print(flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="slm's build directory (default build)")
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1",
                    help="a quick subset (fewer shapes and repetitions)")
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""),
                    help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--threads", type=int, default=2, help="threads for every program (default 2)")
    ap.add_argument("--shapes", default="a,b", help="training shapes (default a,b)")
    ap.add_argument("--rounds", type=int, default=os.environ.get("BENCH_ROUNDS", "1"),
                    help="attention, training and GPT-2 decoding: run every program this many "
                         "times, taking turns, and keep each one's best (default 1; a noisy "
                         "host wants 3)")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error(f"--rounds must be at least 1, got {a.rounds}")
    build = os.path.join(ROOT, a.build) if not os.path.isabs(a.build) else a.build
    a.slm, a.decode = os.path.join(build, "slm"), os.path.join(build, "bench/decode")
    only = [s for s in a.only.split(",") if s] or list(SECTIONS)
    if a.quick and not a.only:
        only = ["attention", "train", "decode", "stories"]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section(s) {bad}; choose from {SECTIONS}")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = os.path.join(build, "bench")
    run = Run(os.path.join(out_dir, f"bench-{stamp}.jsonl"))
    anchors_available(a)
    describe(run, a)
    t0, failed = time.time(), []
    steps = {"attention": bench_attention, "train": bench_train, "decode": bench_decode,
             "stories": bench_stories, "gemm": bench_gemm,
             "tokenize": lambda r, x: bench_slm_only(r, x, "tokenize")}
    for s in only:
        t = time.time()
        try:
            steps[s](run, a)
        except (RuntimeError, OSError, subprocess.TimeoutExpired, KeyError, ValueError) as e:
            failed.append(s)
            run.add({"bench": s, "impl": "slm", "error": str(e)})
            print(f"  {s}: FAILED — {e}\n", flush=True)
        run.add({"bench": "timing", "section": s, "seconds": round(time.time() - t, 1)})
    kp = kernel_fields(run.rows)
    info = slm_info_path(a.slm, os.path.join(MODELS, "gpt2-124m"))
    run.add({"bench": "slm_kernel_path", "fields": kp, "info": info})
    print("slm kernel path: " + ("; ".join(f"{k}={v}" for k, v in kp.items()) or "—")
          + (" | slm info: " + "; ".join(info) if info else ""))
    run.f.close()
    shutil.copyfile(run.path, os.path.join(out_dir, "latest.jsonl"))
    print(f"{len(run.rows)} JSON lines in {os.path.relpath(run.path, ROOT)} "
          f"(also build/bench/latest.jsonl); {time.time() - t0:.0f} s"
          + (f"; FAILED sections: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
