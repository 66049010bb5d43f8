/* slm bench — filled in by the benchmark work (issue 3). */
#include "cli/cli.h"

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error(CLI_RUNTIME, "bench: not built yet");
}
