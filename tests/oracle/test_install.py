"""make install PREFIX=…: the command, both libraries, the header and the
man page land under PREFIX and work from there: the installed slm runs, a
program compiled against the installed slm.h links the installed libslm.so
and computes the seeds' [1, 1, 1, 8] example through it, and man renders the
page without warnings."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402

BUILD = os.environ.get("SLM_BUILD", "build")
TMP = tempfile.mkdtemp(prefix="slm-install-")
PREFIX = os.path.join(TMP, "prefix")

PROGRAM = r"""
#include <slm.h>
#include <stdio.h>
int main(void)
{
    /* one query, four keys: scores q·k = 1 1 1 8, the last one in the future
       of a query at position 2 (causal, Tq = 3, Tk = 4: bottom-right aligned,
       so query 1 of 3 sees keys 0..2) */
    float q[3] = {1, 1, 1}, k[4] = {1, 1, 1, 8}, v[4] = {0}, out[3], lse[3], w[12];
    slm_attn_opts o = {.causal = 1, .scale = 1.0f};
    if (slm_attention_forward(&o, 1, 1, 3, 4, 1, q, k, v, out, lse)) return 1;
    if (slm_attention_weights(&o, 1, 1, 3, 4, 1, q, k, lse, w)) return 2;
    printf("%s %.4f %.4f %.4f %.4f\n", slm_version(), w[4], w[5], w[6], w[7]);
    return 0;
}
"""


def install():
    if os.path.exists(os.path.join(PREFIX, "bin", "slm")):
        return
    p = subprocess.run(["make", "-s", "--no-print-directory", f"BUILD={BUILD}", "install",
                        f"PREFIX={PREFIX}"], capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode()[-2000:]


def test_files_land_under_prefix():
    install()
    for f in ("bin/slm", "lib/libslm.a", "lib/libslm.so", "include/slm.h",
              "share/man/man1/slm.1"):
        assert os.path.isfile(os.path.join(PREFIX, f)), f
    assert os.access(os.path.join(PREFIX, "bin", "slm"), os.X_OK)
    p = subprocess.run([os.path.join(PREFIX, "bin", "slm"), "--version"], capture_output=True)
    assert p.returncode == 0 and p.stdout.decode().startswith("slm "), p


def test_program_builds_against_installed_header_and_library():
    install()
    src = os.path.join(TMP, "prog.c")
    exe = os.path.join(TMP, "prog")
    with open(src, "w") as f:
        f.write(PROGRAM)
    lib = os.path.join(PREFIX, "lib")
    p = subprocess.run(["cc", "-std=c11", "-I", os.path.join(PREFIX, "include"), src, "-o", exe,
                        "-L", lib, "-lslm", f"-Wl,-rpath,{lib}"], capture_output=True)
    assert p.returncode == 0, p.stderr.decode()
    ldd = subprocess.run(["ldd", exe], capture_output=True).stdout.decode()
    assert os.path.join(lib, "libslm.so") in ldd, ldd
    p = subprocess.run([exe], capture_output=True)
    assert p.returncode == 0, p
    version, *w = p.stdout.decode().split()
    assert w == ["0.3333", "0.3333", "0.3333", "0.0000"], p.stdout


def test_man_page_renders():
    install()
    if not shutil.which("man"):
        raise AssertionError("man is not installed")
    page = os.path.join(PREFIX, "share", "man", "man1", "slm.1")
    p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True,
                       env=dict(os.environ, MANWIDTH="80"))
    assert p.returncode == 0 and not p.stderr, p.stderr.decode()
    text = p.stdout.decode()
    for words in ("slm attention", "slm plot", "--show-probs", "EXIT STATUS", "slm mask T"):
        assert words in text, words


if __name__ == "__main__":
    try:
        run([test_files_land_under_prefix, test_program_builds_against_installed_header_and_library,
             test_man_page_renders])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
