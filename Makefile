# slm — build, test, demo. `make help` lists the targets.
#
# Variables: BUILD=dir (default build), PORTABLE=1 (no -march=native),
#            SAN=1 (AddressSanitizer + UndefinedBehaviorSanitizer).

BUILD    ?= build
CC       ?= gcc
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
# The OpenMP build of OpenBLAS shares libgomp's thread pool with our own
# parallel loops, so BLAS calls and OpenMP regions never oversubscribe the cores.
BLAS_INC ?= /usr/include/$(MULTIARCH)/openblas-openmp
BLAS_LIB ?= /usr/lib/$(MULTIARCH)/openblas-openmp

OPT      ?= -O2
ARCH     := $(if $(PORTABLE),,-march=native)
comma    := ,
SANFLAGS := $(if $(SAN),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined,)
CFLAGS   += -fvisibility=hidden -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) $(ARCH) -g \
            -Wall -Wextra -Werror -fPIC -fopenmp -fno-math-errno $(SANFLAGS) \
            -Iinclude -Isrc -I$(BLAS_INC) -MMD -MP -DSLM_DATA_DIR='"$(CURDIR)/data"'
LDFLAGS  += -fopenmp $(SANFLAGS) -L$(BLAS_LIB) -Wl,-rpath,$(BLAS_LIB)
LDLIBS   += -lopenblas -lm

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

.PHONY: FORCE all deps test check asan demo clean format lint help bench fuzz fuzz-build
HOOKS    := $(BUILD)/tests/libslm_test_hooks.so
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(sort $(wildcard examples/*.c)))
all: $(BUILD)/slm $(BUILD)/libslm.a $(BUILD)/libslm.so $(TESTS) $(HOOKS) $(EXAMPLES)

help:
	@echo "make            build build/slm, build/libslm.a, build/libslm.so, the tests and examples"
	@echo "make test       install missing packages, build, run every test (C tests also under ASan)"
	@echo "make demo       install missing packages, build, run the demo"
	@echo "make asan       the C test suite under AddressSanitizer + UBSan (build/asan)"
	@echo "make bench      slm bench (attention, gemm, ...) with PyTorch alongside"
	@echo "make fuzz       libFuzzer targets (tests/fuzz), FUZZ_SECONDS each (default 60)"
	@echo "make format / make lint"

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC  $<"
	@$(CC) $(CFLAGS) -c $< -o $@

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

$(BUILD)/slm: $(CLI_OBJ) $(BUILD)/libslm.a
	@echo "  LD  $@$(if $(MPICC), (with Open MPI),)"
	@$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libslm.a $(LDLIBS) $(MPI_LIBS)

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
	@tests/run.sh $(BUILD) $(ASAN_BUILD)

# Tests without the install step (for a quick loop once deps are there).
check: all
	@tests/run.sh $(BUILD)

asan:
	@tools/install-deps.sh
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SAN=1 OPT=-O1 all
	@SLM_SKIP_PYTHON=1 tests/run.sh $(ASAN_BUILD)

demo:
	@tools/install-deps.sh --demo
	@$(MAKE) --no-print-directory -j2 $(BUILD)/slm
	@tools/demo.sh $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory $(BUILD)/slm
	@tools/setup-venv.sh
	@bench/run.sh $(BUILD)

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
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/libslm.a: $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
	@rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libslm.a
	@echo "  LD  $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_DIR)/libslm.a -L$(BLAS_LIB) \
	    -Wl,-rpath,$(BLAS_LIB) -lopenblas -lm -o $@

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(TEST_SRC) $(TCOM_SRC) $(wildcard src/*/*.h tests/*.h tests/common/*.h) include/slm.h

lint:
	cppcheck --quiet --inline-suppr --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -Iinclude -Isrc --suppress=missingIncludeSystem src

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
