# slm — build, test, demo. `make help` lists the targets.
#
# Variables: BUILD=dir (default build), PORTABLE=1 (generic code for the
#            x86-64 baseline instead of -march=native), SAN=1 (AddressSanitizer
#            + UndefinedBehaviorSanitizer).
#
# Instruction sets. The kernels (src/kernels/*_avx512.c, *_avx2.c,
# *_portable.c and the flash attention files) are compiled once per
# instruction set with their own flags below, in every build, and the CPU
# picks one at run time (src/kernels/kernels.h, cpu_level()). The rest of the
# code (elementwise loops: LayerNorm, GELU, softmax, AdamW) is built with
# -march=native by default, so it uses the building machine's vectors; the
# binary is then for that machine (or one like it). PORTABLE=1 builds that
# code for the x86-64 baseline instead: a binary for any x86-64, and the
# build tools/valgrind.sh uses (valgrind 3.19 cannot decode AVX-512).

BUILD    ?= build
CC       ?= gcc
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
# oneDNN (Debian's libdnnl, OpenMP runtime) and the OpenMP build of OpenBLAS
# share libgomp's thread pool with our own parallel loops, so library calls
# and OpenMP regions never oversubscribe the cores.
BLAS_INC ?= /usr/include/$(MULTIARCH)/openblas-openmp
BLAS_LIB ?= /usr/lib/$(MULTIARCH)/openblas-openmp

OPT      ?= -O2
ARCH     := $(if $(PORTABLE),,-march=native -mprefer-vector-width=512)
comma    := ,
SANFLAGS := $(if $(SAN),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined,)
CFLAGS   += -fvisibility=hidden -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) $(ARCH) -g \
            -Wall -Wextra -Werror -fPIC -fopenmp -fno-math-errno $(SANFLAGS) \
            -Iinclude -Isrc -I$(BLAS_INC) -MMD -MP -DSLM_DATA_DIR='"$(CURDIR)/data"'
LDFLAGS  += -fopenmp $(SANFLAGS) -L$(BLAS_LIB) -Wl,-rpath,$(BLAS_LIB)
LDLIBS   += -ldnnl -lm
# OpenBLAS is only a comparison in `slm bench gemm`: the CLI links it, the
# library and the tests do not.
CLI_LDLIBS := -lopenblas

# Per-instruction-set flags of the kernel files (see the top of this file).
# -march=x86-64 comes last on the command line, so it overrides -march=native.
ISA_portable := -march=x86-64 -mtune=generic
ISA_avx2     := $(ISA_portable) -mavx2 -mfma
ISA_avx512   := $(ISA_avx2) -mavx512f -mavx512bw -mavx512dq -mavx512vl
%_avx512.o: ISAFLAGS = $(ISA_avx512)
%_avx2.o: ISAFLAGS = $(ISA_avx2)
%_amx.o: ISAFLAGS = $(ISA_avx512) -mamx-tile -mamx-bf16 -mprfchw
%_portable.o %/attention/flash_forward.o %/attention/flash_backward.o \
    %/attention/flash_gemm.o: ISAFLAGS = $(ISA_portable)
# Cairo draws the CLI's PNG pictures (slm attention / plot / mask -o); only
# build/slm links it, libslm stays free of it.
CAIRO_CFLAGS ?= $(shell pkg-config --cflags cairo fontconfig 2>/dev/null)
CAIRO_LIBS   ?= $(shell pkg-config --libs cairo fontconfig 2>/dev/null || echo -lcairo -lfontconfig)

# Open MPI (data-parallel `mpirun -np N slm train`): when mpicc is on PATH,
# build/slm is linked with libmpi and src/cli/train_mpi.c is compiled with
# -DSLM_WITH_MPI; without it (or with MPI=0) the same sources build an slm
# that trains in one process. The library itself never links MPI.
MPICC    ?= $(if $(filter 0,$(MPI)),,$(shell command -v mpicc 2>/dev/null))
MPI_CFLAGS := $(if $(MPICC),-DSLM_WITH_MPI $(shell $(MPICC) --showme:compile),)
MPI_LIBS   := $(if $(MPICC),$(shell $(MPICC) --showme:link),)

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path 'src/cli/*'))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TCOM_SRC := $(sort $(wildcard tests/common/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TCOM_OBJ := $(TCOM_SRC:%.c=$(BUILD)/obj/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: FORCE all deps test check asan demo tour install clean format lint help bench fuzz fuzz-build python wheel
HOOKS    := $(BUILD)/tests/libslm_test_hooks.so
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(sort $(wildcard examples/*.c)))
all: $(BUILD)/slm $(BUILD)/libslm.a $(BUILD)/libslm.so $(TESTS) $(HOOKS) $(EXAMPLES)

help:
	@echo "make            build build/slm, build/libslm.a, build/libslm.so, the tests and examples"
	@echo "make test       install missing packages, build, run every test (C tests also under ASan)"
	@echo "make demo       install missing packages, build, run the demo"
	@echo "make tour       regenerate docs/tour/ (the guided tour's pictures; trains a tiny model)"
	@echo "make install    install slm, libslm, slm.h and the man page under PREFIX (/usr/local)"
	@echo "make asan       the C test suite under AddressSanitizer + UBSan (build/asan)"
	@echo "make bench      slm vs PyPI PyTorch, llama.cpp, llama2.c (BENCH_QUICK=1: a subset)"
	@echo "make fuzz       libFuzzer targets (tests/fuzz), FUZZ_SECONDS each (default 60)"
	@echo "make wheel      the Python package (import slm) as a wheel in build/dist"
	@echo "make python     pip install the Python package into build/venv (for the tests)"
	@echo "make format / make lint"

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC  $<"
	@$(CC) $(CFLAGS) $(ISAFLAGS) -c $< -o $@

$(BUILD)/libslm.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  AR  $@"
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/libslm.so: $(LIB_OBJ)
	@echo "  LD  $@"
	@$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/src/cli/train_mpi.o: CFLAGS += $(MPI_CFLAGS)
# train_mpi.o is rebuilt when MPI support is switched on or off.
$(BUILD)/obj/src/cli/train_mpi.o: $(BUILD)/mpi-flags
$(BUILD)/mpi-flags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(MPI_CFLAGS) $(MPI_LIBS)' | cmp -s - $@ || echo '$(MPI_CFLAGS) $(MPI_LIBS)' > $@

# Only the CLI links what only the CLI uses: slm serve's libmicrohttpd, the
# pictures' Cairo, Open MPI (slm train under mpirun), OpenBLAS (bench gemm).
$(BUILD)/slm: $(CLI_OBJ) $(BUILD)/libslm.a
	@echo "  LD  $@$(if $(MPICC), (with Open MPI),)"
	@$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libslm.a $(CLI_LDLIBS) $(LDLIBS) $(CAIRO_LIBS) \
	    -lmicrohttpd $(MPI_LIBS)

$(BUILD)/obj/src/cli/canvas_cairo.o: CFLAGS += $(CAIRO_CFLAGS)

# The web page is embedded with .incbin, which -MMD does not see.
$(BUILD)/obj/src/cli/serve_page.o: src/cli/serve_page.html

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TCOM_OBJ) $(BUILD)/libslm.a
	@mkdir -p $(dir $@)
	@$(CC) $(LDFLAGS) -o $@ $< $(TCOM_OBJ) $(BUILD)/libslm.a $(LDLIBS)

# Examples use the public header alone (no -Isrc) and link the shared
# library, found next to them at run time ($ORIGIN/..).
$(BUILD)/examples/%: examples/%.c include/slm.h $(BUILD)/libslm.so
	@mkdir -p $(dir $@)
	@echo "  CC  $<"
	@$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L $(OPT) $(ARCH) -g -Wall -Wextra -Werror \
	    $(SANFLAGS) -Iinclude $< -o $@ -L$(BUILD) -lslm -Wl,-rpath,'$$ORIGIN/..' -lm

# Internal functions re-exported for the Python oracles (tests/hooks).
$(HOOKS): $(BUILD)/obj/tests/hooks/test_hooks.o $(BUILD)/libslm.a
	@mkdir -p $(dir $@)
	@$(CC) -shared $(LDFLAGS) -o $@ $< $(BUILD)/libslm.a $(LDLIBS)

deps:
	@tools/install-deps.sh

# The README's test command: packages, build, every test, "N passed, N failed".
# The C suite runs twice, the second time under ASan + UBSan (build/asan, as
# `make asan`), and tests/oracle/test_bad_inputs.py drives both CLIs.
ASAN_BUILD ?= build/asan
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SAN=1 OPT=-O1 all
	@tools/setup-venv.sh
	@$(MAKE) --no-print-directory python
	@tests/run.sh $(BUILD) $(ASAN_BUILD)

# Tests without the install step (for a quick loop once deps are there).
check: all
	@tests/run.sh $(BUILD)

# The Python package (pyproject.toml, setup.py, python/): its own build
# links the library (built by this Makefile into build/python/lib) into the
# extension slm._slm. `make python`
# installs it into the test venv (build/venv) when a source changed;
# `make wheel` writes build/dist/slm-*.whl with the system Python.
PY_VENV  := build/venv
PY_STAMP := $(PY_VENV)/.slm-package
PY_SRC   := pyproject.toml setup.py setup.cfg $(wildcard python/slm/*.py python/slm/*.pyi \
            python/ext/*.c python/ext/*.h include/*.h src/*/*.h) $(LIB_SRC)
PYTHON   ?= /usr/bin/python3

python: $(PY_STAMP)

$(PY_STAMP): $(PY_SRC)
	@tools/setup-venv.sh
	@echo "  PIP slm -> $(PY_VENV)"
	@$(PY_VENV)/bin/pip install -q --disable-pip-version-check --no-build-isolation \
	    --no-deps --force-reinstall .
	@touch $@

wheel:
	@tools/install-deps.sh --python
	@$(PYTHON) -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
	    -w build/dist .
	@ls build/dist/slm-*.whl

asan:
	@tools/install-deps.sh
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SAN=1 OPT=-O1 all
	@SLM_SKIP_PYTHON=1 tests/run.sh $(ASAN_BUILD)

demo:
	@tools/install-deps.sh --demo
	@$(MAKE) --no-print-directory -j2 $(BUILD)/slm
	@tools/demo.sh $(BUILD)

tour:
	@tools/install-deps.sh --demo
	@$(MAKE) --no-print-directory -j2 $(BUILD)/slm
	@tools/tour.sh $(BUILD)

# make install PREFIX=/opt/slm (DESTDIR for staging): the command, both
# libraries, the public header and the man page.
PREFIX  ?= /usr/local
DESTDIR ?=
install: $(BUILD)/slm $(BUILD)/libslm.a $(BUILD)/libslm.so
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/slm $(DESTDIR)$(PREFIX)/bin/slm
	install -m 644 $(BUILD)/libslm.a $(DESTDIR)$(PREFIX)/lib/libslm.a
	install -m 755 $(BUILD)/libslm.so $(DESTDIR)$(PREFIX)/lib/libslm.so
	install -m 644 include/slm.h $(DESTDIR)$(PREFIX)/include/slm.h
	install -m 644 docs/slm.1 $(DESTDIR)$(PREFIX)/share/man/man1/slm.1

bench: deps
	@tools/install-deps.sh --bench
	@$(MAKE) --no-print-directory -j2 $(BUILD)/slm $(BENCHES)
	@bench/run.sh $(BUILD)
# make bench: slm next to its anchors (bench/run.sh): PyPI's PyTorch in
# build/venv-torch, llama.cpp and llama2.c built under build/anchors (optional,
# cached). BENCH_QUICK=1: a quick subset; BENCH_ONLY=train,decode,...: sections.

# bench/*.c: measurement programs over the public API (bench/decode: llama-bench's pp/tg),
# built by `make all` too so they keep compiling.
all: $(BENCHES)
.SECONDARY: $(BENCH_SRC:%.c=$(BUILD)/obj/%.o)
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libslm.a
	@mkdir -p $(dir $@)
	@$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libslm.a $(LDLIBS)

# libFuzzer targets tests/fuzz/fuzz_*.c, built by clang with ASan + UBSan
# against the library sources (build/fuzz), each run FUZZ_SECONDS from its
# seed corpus tests/fuzz/corpus/NAME. Needs tools/install-deps.sh --fuzz.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_CFLAGS  := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 -fopenmp \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -Iinclude -Isrc -I$(BLAS_INC)

fuzz:
	@tools/install-deps.sh --fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@tools/fuzz.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

fuzz-build: $(FUZZ_BIN)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC (fuzz) $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $(ISAFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/libslm.a: $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
	@rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libslm.a
	@echo "  LD  $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_DIR)/libslm.a -L$(BLAS_LIB) \
	    -Wl,-rpath,$(BLAS_LIB) -ldnnl -lm -o $@

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(TEST_SRC) $(TCOM_SRC) $(wildcard src/*/*.h tests/*.h tests/common/*.h) include/slm.h

lint:
	cppcheck --quiet --inline-suppr --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -Iinclude -Isrc --suppress=missingIncludeSystem src

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
