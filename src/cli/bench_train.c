/* slm bench train — not written yet. */
#include "cli/bench.h"
#include "cli/cli.h"

int bench_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error(CLI_RUNTIME, "bench train: not built yet");
}
