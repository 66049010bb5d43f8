/* slm bench <what> — dispatches to one file per benchmark (bench_*.c). */
#include "cli/bench.h"
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} benches[] = {
    {"attention", bench_attention, "causal attention, flash vs reference (GFLOP/s)"},
    {"gemm", bench_gemm, "sgemm through slm's kernels, OpenBLAS and BLIS (GFLOP/s, kernel)"},
    {"train", bench_train, "ms per training step (forward+backward+AdamW)"},
    {"generate", bench_generate, "tokens/s of KV-cached decoding"},
    {"tokenize", bench_tokenize, "GPT-2 BPE encode speed (MB/s)"},
    {"quant", bench_quant, "int8 / bf16 linear kernels on GPT-2 shapes, every path (GOP/s)"},
    {"isa", bench_isa, "fp32 / bf16 / int8 instruction rates, one core (GFLOP/s, GOP/s)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: slm bench <what> [--json] [--threads N] [options]\n\n");
    for (size_t i = 0; i < sizeof benches / sizeof *benches; i++)
        fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].summary);
    fprintf(f, "\nslm bench <what> --help for its options.\n");
}

int cmd_bench(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof benches / sizeof *benches; i++)
        if (!strcmp(argv[1], benches[i].name)) return benches[i].run(argc - 1, argv + 1);
    return cli_error(CLI_USAGE, "bench: unknown benchmark '%s' (try slm bench --help)", argv[1]);
}
