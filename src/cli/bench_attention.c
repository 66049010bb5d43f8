/* slm bench attention — not written yet. */
#include "cli/bench.h"
#include "cli/cli.h"

int bench_attention(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error(CLI_RUNTIME, "bench attention: not built yet");
}
