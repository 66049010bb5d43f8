/* slm mask T — the causal mask matrix of the seeds. */
#include "cli/cli.h"
#include "slm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *help = "usage: slm mask T\n\n"
                          "Prints the T×T causal mask, one row per line: entry (i,j) is 0 when\n"
                          "token i may attend to token j (j <= i) and -inf when j is in its future.\n";

#define MASK_MAX_T 4096

int cmd_mask(int argc, char **argv)
{
    long T = 0;
    if (argc == 2 && cli_is_help(argv[1])) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (argc != 2) return cli_error(CLI_USAGE, "mask: expected one argument T (try --help)");
    if (cli_parse_int(argv[1], 1, MASK_MAX_T, &T))
        return cli_error(CLI_USAGE, "mask: T must be an integer from 1 to %d, got '%s'",
                         MASK_MAX_T, argv[1]);
    float *m = malloc((size_t)T * (size_t)T * sizeof *m);
    if (!m) return cli_error(CLI_RUNTIME, "mask: out of memory");
    slm_causal_mask((int)T, (int)T, m);
    for (long i = 0; i < T; i++) {
        for (long j = 0; j < T; j++) {
            if (j) putchar(' ');
            fputs(isinf(m[i * T + j]) ? "-inf" : "0", stdout);
        }
        putchar('\n');
    }
    free(m);
    return CLI_OK;
}
