"""The `slm` command line from outside (README, "Use"): exact output of `slm mask`
and `slm softmax`, usage errors (stderr `slm: ...`, exit 2, nothing on
stdout), --help, --version, and the JSON lines of `slm bench gemm`."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

SLM = os.environ.get("SLM_BIN", "build/slm")


def slm(*args, stdout=subprocess.PIPE):
    p = subprocess.run([SLM, *args], stdout=stdout, stderr=subprocess.PIPE, timeout=120)
    out = p.stdout.decode() if p.stdout is not None else ""
    return p.returncode, out, p.stderr.decode()


def expect_ok(args, want_stdout):
    rc, out, err = slm(*args)
    assert rc == 0, f"slm {' '.join(args)}: exit {rc}, stderr {err!r}"
    assert out == want_stdout, f"slm {' '.join(args)}: stdout {out!r}, want {want_stdout!r}"
    assert err == "", f"slm {' '.join(args)}: stderr {err!r}"


def seed_table(T):
    """The causal mask: row i is i+1 zeros then T-i-1 -inf."""
    return "".join(" ".join(["0"] * (i + 1) + ["-inf"] * (T - i - 1)) + "\n" for i in range(T))


def mask_5_is_the_seed_table():
    expect_ok(["mask", "5"], "0 -inf -inf -inf -inf\n"
                             "0 0 -inf -inf -inf\n"
                             "0 0 0 -inf -inf\n"
                             "0 0 0 0 -inf\n"
                             "0 0 0 0 0\n")


def mask_1_and_other_sizes():
    expect_ok(["mask", "1"], "0\n")
    for T in (2, 7, 64):
        expect_ok(["mask", str(T)], seed_table(T))


def mask_matches_torch_triu():
    # torch.triu(-inf, diagonal=1) is the mask GPT implementations add.
    T = 12
    want = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
    rc, out, _ = slm("mask", str(T))
    assert rc == 0
    got = np.array([[float(x) for x in line.split(" ")] for line in out.splitlines()])
    assert np.array_equal(got, want.numpy()), "mask differs from torch.triu"


def softmax_causal_row_is_the_seed_example():
    expect_ok(["softmax", "--causal", "--row", "2", "1", "1", "1", "8"],
              "0.3333 0.3333 0.3333 0.0000\n")
    expect_ok(["softmax", "--causal", "--row", "0", "5", "1", "2"], "1.0000 0.0000 0.0000\n")
    expect_ok(["softmax", "--causal", "--row", "3", "1", "1", "1", "8"],
              "0.0009 0.0009 0.0009 0.9973\n")


def softmax_plain():
    expect_ok(["softmax", "1", "2", "3"], "0.0900 0.2447 0.6652\n")
    expect_ok(["softmax", "1000", "1000"], "0.5000 0.5000\n")  # no overflow
    expect_ok(["softmax", "-1", "2"], "0.0474 0.9526\n")  # negative scores are not options
    expect_ok(["softmax", "1", "1", "1", "-inf"], "0.3333 0.3333 0.3333 0.0000\n")
    expect_ok(["softmax", "--", "-3", "0"], "0.0474 0.9526\n")


def softmax_matches_torch():
    rng = np.random.default_rng(5)
    s = rng.normal(0, 3, 9).astype(np.float32)
    for row in (None, 4):
        t = torch.tensor(s, dtype=torch.float64)
        args = ["softmax"]
        if row is not None:
            t[row + 1:] = float("-inf")
            args += ["--causal", "--row", str(row)]
        rc, out, err = slm(*args, *[repr(float(x)) for x in s])
        assert rc == 0, err
        got = np.array([float(x) for x in out.split(" ")])
        harness.assert_close(got, torch.softmax(t, 0).numpy(), 0, 5.001e-5, f"row {row}")
        assert all(re.fullmatch(r"\d\.\d{4}", x) for x in out.split()), f"format {out!r}"


USAGE_ERRORS = [
    ["mask", "0"], ["mask", "x"], ["mask"], ["mask", "-3"], ["mask", "4097"], ["mask", " 5"],
    ["mask", "5x"], ["mask", "3", "4"], ["mask", "--bogus", "3"], ["mask", "--threads"],
    ["softmax", "--causal", "--row", "9", "1", "2"], ["softmax", "--bogus", "1"],
    ["softmax"], ["softmax", "--causal", "1", "2"], ["softmax", "--row", "1", "1", "2"],
    ["softmax", "--causal", "--row", "x", "1", "2"], ["softmax", "--causal", "--row"],
    ["softmax", "--causal", "--row", "-1", "1", "2"], ["softmax", "nan"], ["softmax", "inf"],
    ["softmax", "1e40"], ["softmax", "1", "two"], ["frobnicate"], ["--frob"], [],
]


def usage_errors_exit_2_with_message():
    for args in USAGE_ERRORS:
        rc, out, err = slm(*args)
        assert rc == 2, f"slm {args}: exit {rc}"
        assert out == "", f"slm {args}: stdout {out!r}"
        assert err.startswith("slm: ") and len(err.splitlines()[0]) > 6, \
            f"slm {args}: stderr {err!r}"


def help_exits_0_with_usage():
    for args in (["--help"], ["-h"], ["mask", "--help"], ["mask", "-h"], ["mask", "5", "--help"],
                 ["softmax", "--help"], ["softmax", "1", "2", "--help"], ["bench", "--help"],
                 ["bench", "gemm", "--help"]):
        rc, out, err = slm(*args)
        assert rc == 0, f"slm {args}: exit {rc}, {err!r}"
        assert out.startswith("usage: slm"), f"slm {args}: {out[:80]!r}"
        assert err == "", f"slm {args}: stderr {err!r}"
    _, out, _ = slm("--help")
    for cmd in ("mask", "softmax", "bench"):
        assert re.search(rf"^\s+{cmd}\s", out, re.M), f"--help does not list {cmd}"


def version_matches_library():
    import slm_ctypes
    slm_ctypes.LIB.slm_version.restype = slm_ctypes.C.c_char_p
    lib = slm_ctypes.LIB.slm_version().decode()
    assert re.fullmatch(r"\d+\.\d+\.\d+", lib), lib
    expect_ok(["--version"], f"slm {lib}\n")


def write_error_exits_1():
    if not os.path.exists("/dev/full"):
        return
    with open("/dev/full", "w") as full:
        rc, _, err = slm("mask", "200", stdout=full)
    assert rc == 1 and err.startswith("slm: "), f"exit {rc}, stderr {err!r}"


def bench_gemm_json_lines():
    # Format only (speed is for benchmarks): tiny sizes, one thread.
    rc, out, err = slm("bench", "gemm", "--json", "--size", "64", "--size", "96",
                       "--threads", "1", "--repeat", "1")
    assert rc == 0, f"exit {rc}: {err}"
    rows = [json.loads(line) for line in out.splitlines()]
    blas = [r for r in rows if r.get("impl") == "openblas"]
    assert [r["M"] for r in blas] == [64, 96], rows
    for r in rows:
        for key, typ in (("bench", str), ("impl", str), ("M", int), ("N", int), ("K", int),
                         ("threads", int), ("ms", float), ("gflops", float)):
            assert isinstance(r.get(key), typ), f"{key} in {r}"
        assert r["bench"] == "gemm" and r["threads"] == 1 and r["gflops"] > 0 and r["ms"] > 0
        assert abs(2.0 * r["M"] * r["N"] * r["K"] / (r["ms"] * 1e6) - r["gflops"]) \
            <= 1e-3 * r["gflops"], f"gflops inconsistent with ms: {r}"
    assert isinstance(blas[0].get("kernel"), str) and blas[0]["kernel"], blas[0]


def bench_gemm_errors():
    for args in (["--size", "0"], ["--size", "x"], ["--threads", "-1"], ["--bogus"]):
        rc, out, err = slm("bench", "gemm", *args)
        assert rc == 2 and out == "" and err.startswith("slm: "), f"{args}: {rc} {err!r}"


if __name__ == "__main__":
    harness.run([mask_5_is_the_seed_table, mask_1_and_other_sizes, mask_matches_torch_triu,
                 softmax_causal_row_is_the_seed_example, softmax_plain, softmax_matches_torch,
                 usage_errors_exit_2_with_message, help_exits_0_with_usage,
                 version_matches_library, write_error_exits_1, bench_gemm_json_lines,
                 bench_gemm_errors])
