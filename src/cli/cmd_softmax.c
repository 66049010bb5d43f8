/* slm softmax [--causal --row I] S0 S1 ... — the seeds' worked example:
 * token 3 of 4 with affinities [1 1 1 8] → 0.3333 0.3333 0.3333 0.0000. */
#include "cli/canvas.h"
#include "cli/cli.h"
#include "cli/figures.h"
#include "slm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *help =
    "usage: slm softmax [--causal --row I] [-o FILE.png|FILE.svg] [--threads N] [--] S0 S1 ...\n\n"
    "Prints softmax(S) with 4 decimals. With --causal --row I the scores after\n"
    "position I (0-based) are masked to -inf first, as the causal mask does for\n"
    "query row I. A score may itself be -inf (weight 0); scores must fit a float.\n"
    "  slm softmax --causal --row 2 1 1 1 8   →   0.3333 0.3333 0.3333 0.0000\n"
    "With -o FILE it draws the scores, the mask and the weights into FILE instead\n"
    "(PNG or SVG by the extension; up to 64 scores).\n";

/* A score: a finite float32, or -inf (a masked position, as in the seeds). */
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

int cmd_softmax(int argc, char **argv)
{
    int causal = 0;
    long row = -1;
    int first = 1;
    const char *out = NULL;
    for (int a = 1; a < argc; a++)
        if (cli_is_help(argv[a])) {
            fputs(help, stdout);
            return CLI_OK;
        }
    for (; first < argc; first++) {
        const char *a = argv[first];
        long threads;
        if (!strcmp(a, "--causal")) {
            causal = 1;
        } else if (!strcmp(a, "--row")) {
            if (first + 1 >= argc || cli_parse_int(argv[first + 1], 0, 1L << 30, &row))
                return cli_error(CLI_USAGE, "softmax: --row needs a non-negative integer");
            first++;
        } else if (!strcmp(a, "--threads")) {
            if (first + 1 >= argc || cli_parse_int(argv[first + 1], 0, 4096, &threads))
                return cli_error(CLI_USAGE, "softmax: --threads needs a number from 0 to 4096");
            cli_set_threads((int)threads);
            first++;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (first + 1 >= argc) return cli_error(CLI_USAGE, "softmax: %s needs a value", a);
            out = argv[++first];
        } else if (!strcmp(a, "--")) {
            first++;
            break;
        } else if (a[0] == '-' && a[1] == '-') {
            return cli_error(CLI_USAGE, "softmax: unknown option '%s' (try --help)", a);
        } else {
            break;
        }
    }
    /* -o FILE may also follow the scores: "slm softmax 1 2 3 -o w.svg" */
    if (argc - first >= 2 && (!strcmp(argv[argc - 2], "-o") || !strcmp(argv[argc - 2], "--output"))) {
        if (out) return cli_error(CLI_USAGE, "softmax: -o given twice");
        out = argv[argc - 1];
        argc -= 2;
    }
    int n = argc - first;
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
        if (parse_score(argv[first + j], &s[j])) {
            int rc = cli_error(CLI_USAGE, "softmax: '%s' is not a float32 score or -inf",
                               argv[first + j]);
            free(s);
            return rc;
        }
    /* Adding row `row` of the causal mask: -inf for every future position. */
    memcpy(s + n, s, (size_t)n * sizeof *s); /* the scores as given, for -o */
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
