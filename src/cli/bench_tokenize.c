/* slm bench tokenize — not written yet. */
#include "cli/bench.h"
#include "cli/cli.h"

int bench_tokenize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error(CLI_RUNTIME, "bench tokenize: not built yet");
}
