/* slm bench gemm — not written yet. */
#include "cli/bench.h"
#include "cli/cli.h"

int bench_gemm(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error(CLI_RUNTIME, "bench gemm: not built yet");
}
