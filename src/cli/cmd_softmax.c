/* slm softmax [--causal --row I] S0 S1 ... — a masked softmax row by hand,
 * e.g. token 3 of 4 with affinities [1 1 1 8] → 0.3333 0.3333 0.3333 0.0000
 * (the example README shows). */
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
    "usage: slm softmax [--causal --row I] [--threads N] [--] S0 S1 ...\n\n"
    "Prints softmax(S) with 4 decimals. With --causal --row I the scores after\n"
    "position I (0-based) are masked to -inf first, as the causal mask does for\n"
    "query row I. A score may itself be -inf (weight 0); scores must fit a float.\n"
    "  slm softmax --causal --row 2 1 1 1 8   →   0.3333 0.3333 0.3333 0.0000\n"
    "With -o FILE it draws the scores, the mask and the weights into FILE instead\n"
    "(PNG or SVG by the extension; up to 64 scores).\n";

/* A score: a finite float32, or -inf (a masked position, as slm mask shows). */
static int parse_score(const char *s, float *out)
{
    double v;
    if (!strcmp(s, "-inf")) {
        *out = -INFINITY;
        return 0;
    }
    if (cli_parse_float(s, &v) || isinf((float)v)) return -1; /* 1e40 overflows a float */
    *out = (float)v;
    return 0;
}

static int softmax_of(char **score_args, int n, int causal, long row, const char *out);

int cmd_softmax(int argc, char **argv)
{
    int causal = 0, row = -1, row_given = 0, threads = 0;
    const char *out = NULL;
    const cli_option opts[] = {
        {"--causal", NULL, OPT_FLAG, &causal, 0, 0, NULL},
        {"--row", NULL, OPT_INT, &row, 0, 1 << 30, &row_given},
        {"--threads", NULL, OPT_INT, &threads, 0, 4096, NULL},
        {"--output", "-o", OPT_STRING, &out, 0, 0, NULL},
    };
    /* Every argument but the options is a score: at most argc of them. */
    char **scores = malloc((size_t)argc * sizeof *scores);
    if (!scores) return cli_error(CLI_RUNTIME, "softmax: out of memory");
    int n;
    int rc = cli_parse_options("softmax", argc, argv, opts, 4, scores, argc, &n);
    if (rc) {
        free(scores);
        if (rc == -1) fputs(help, stdout);
        return rc == -1 ? CLI_OK : rc;
    }
    cli_set_threads(threads);
    rc = softmax_of(scores, n, causal, row, out);
    free(scores);
    return rc;
}

/* Prints (or with out, draws) softmax of the n scores, row `row` of the
 * causal mask applied. */
static int softmax_of(char **score_args, int n, int causal, long row, const char *out)
{
    if (n <= 0) return cli_error(CLI_USAGE, "softmax: no scores given (try --help)");
    if (causal && row < 0) return cli_error(CLI_USAGE, "softmax: --causal needs --row I");
    if (!causal && row >= 0)
        return cli_error(CLI_USAGE, "softmax: --row only makes sense with --causal");
    if (causal && row >= n)
        return cli_error(CLI_USAGE, "softmax: --row %ld is past the last score (%d given)", row, n);
    if (out && canvas_kind_of(out) < 0)
        return cli_error(CLI_USAGE, "softmax: cannot tell the picture format of '%s': the name "
                         "must end in .png or .svg", out);
    if (out && n > SOFTMAX_DRAW_MAX)
        return cli_error(CLI_USAGE, "softmax: -o draws up to %d scores, got %d", SOFTMAX_DRAW_MAX, n);
    float *s = malloc(2 * (size_t)n * sizeof *s);
    if (!s) return cli_error(CLI_RUNTIME, "softmax: out of memory");
    for (int j = 0; j < n; j++)
        if (parse_score(score_args[j], &s[j])) {
            int rc = cli_error(CLI_USAGE, "softmax: '%s' is not a float32 score or -inf",
                               score_args[j]);
            free(s);
            return rc;
        }
    memcpy(s + n, s, (size_t)n * sizeof *s); /* the scores as given, for -o */
    /* Adding row `row` of the causal mask: -inf for every future position. */
    if (causal)
        for (int j = (int)row + 1; j < n; j++)
            s[j] = -INFINITY;
    slm_softmax(s, n);
    int rc = CLI_OK;
    char err[512];
    if (out) {
        if (softmax_figure_draw(s + n, n, causal ? (int)row : -1, s, out, err, sizeof err))
            rc = cli_error(CLI_RUNTIME, "softmax: %s: %s", out, err);
    } else {
        for (int j = 0; j < n; j++)
            printf(j ? " %.4f" : "%.4f", s[j]);
        putchar('\n');
    }
    free(s);
    return rc;
}
