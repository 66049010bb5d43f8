/* slm mask T — the causal mask matrix M of masked self-attention
 * (slm_causal_mask; Vaswani et al. 2017, §3.2.3). */
#include "cli/canvas.h"
#include "cli/cli.h"
#include "cli/figures.h"
#include "cli/options.h"
#include "slm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *help =
    "usage: slm mask [--threads N] [-o FILE.png|FILE.svg] T\n\n"
    "Prints the T×T causal mask, one row per line: entry (i,j) is 0 when\n"
    "token i may attend to token j (j <= i) and -inf when j is in its future.\n"
    "T is 1 to 4096. With -o FILE it draws the mask into FILE instead (PNG or\n"
    "SVG by the extension; T up to 256).\n";

#define MASK_MAX_T 4096

static int draw_mask(long T, const char *out)
{
    char err[512];
    if (canvas_kind_of(out) < 0)
        return cli_error(CLI_USAGE, "mask: cannot tell the picture format of '%s': the name must "
                         "end in .png or .svg", out);
    if (T > MASK_DRAW_MAX_T)
        return cli_error(CLI_USAGE, "mask: -o draws T up to %d, got %ld", MASK_DRAW_MAX_T, T);
    if (mask_figure_draw((int)T, out, err, sizeof err))
        return cli_error(CLI_RUNTIME, "mask: %s: %s", out, err);
    return CLI_OK;
}

int cmd_mask(int argc, char **argv)
{
    int threads = 0;
    const char *out = NULL;
    const cli_option opts[] = {{"--threads", NULL, OPT_INT, &threads, 0, 4096, NULL},
                               {"--output", "-o", OPT_STRING, &out, 0, 0, NULL}};
    char *pos[1];
    int n_pos;
    int rc = cli_parse_options("mask", argc, argv, opts, 2, pos, 1, &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    if (n_pos == 0) return cli_error(CLI_USAGE, "mask: missing argument T (try --help)");
    cli_set_threads(threads);
    const char *t_arg = pos[0];
    long T;
    if (cli_parse_int(t_arg, 1, MASK_MAX_T, &T))
        return cli_error(CLI_USAGE, "mask: T must be an integer from 1 to %d, got '%s'", MASK_MAX_T,
                         t_arg);
    if (out) return draw_mask(T, out);
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
