/* slm bench generate — not written yet. */
#include "cli/bench.h"
#include "cli/cli.h"

int bench_generate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error(CLI_RUNTIME, "bench generate: not built yet");
}
