/*
 * slm eval — mean cross-entropy (nats/token) and perplexity on a text file.
 *
 * Tokens t0..t(N-1) are cut into consecutive windows of `context` inputs:
 * window w feeds t[w·ctx .. w·ctx+ctx-1] and predicts the token after each,
 * so every token but the first is predicted exactly once (the last window
 * may be shorter). Windows go through the model in batches; a short last
 * window is padded with ignored targets.
 */
#include "cli/cli.h"
#include "cli/model_open.h"
#include "cli/options.h"
#include "slm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *help =
    "usage: slm eval -m DIR --data FILE [--context N] [--batch N] [--threads N]\n\n"
    "Prints 'loss X perplexity Y tokens N': X is the mean cross-entropy in nats\n"
    "over the N-1 next-token predictions of FILE's N tokens, windows of\n"
    "--context inputs (default: the model's n_positions). FILE '-' is stdin.\n";

#define EVAL_BATCH 8

/* Sum of cross-entropies over all predictions, window batch by batch. */
static int evaluate(slm_model *m, const int32_t *ids, size_t n, int ctx, int batch, double *sum)
{
    char err[512];
    size_t bt = (size_t)batch * ctx;
    int32_t *in = malloc(bt * sizeof *in), *tgt = malloc(bt * sizeof *tgt);
    if (!in || !tgt) {
        free(in);
        free(tgt);
        return cli_error(CLI_RUNTIME, "eval: out of memory");
    }
    size_t windows = (n - 2) / (size_t)ctx + 1, done = 0;
    /* Progress redrawn in place is for a person at a terminal; in a log it
     * would be one long line of carriage returns. */
    int progress = windows > (size_t)batch && isatty(STDERR_FILENO);
    *sum = 0.0;
    for (size_t w0 = 0; w0 < windows; w0 += (size_t)batch) {
        int b_n = (int)(windows - w0 < (size_t)batch ? windows - w0 : (size_t)batch);
        size_t counted = 0;
        for (int b = 0; b < b_n; b++) {
            size_t start = (w0 + (size_t)b) * ctx;
            for (int t = 0; t < ctx; t++) {
                size_t i = start + (size_t)t;
                int valid = i + 1 < n;
                in[(size_t)b * ctx + t] = valid ? ids[i] : 0;
                tgt[(size_t)b * ctx + t] = valid ? ids[i + 1] : SLM_IGNORE_INDEX;
                counted += (size_t)valid;
            }
        }
        float loss;
        if (slm_model_forward(m, in, tgt, b_n, ctx, 0, 0, &loss, err, sizeof err)) {
            free(in);
            free(tgt);
            return cli_error(CLI_RUNTIME, "eval: %s", err);
        }
        *sum += (double)loss * (double)counted;
        done += counted;
        if (progress)
            fprintf(stderr, "\reval: %zu/%zu predictions", done, n - 1);
    }
    if (progress) fputc('\n', stderr);
    free(in);
    free(tgt);
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *dir = NULL, *data = NULL;
    int ctx = 0, threads = 0, batch = EVAL_BATCH;
    const cli_option opts[] = {
        {"--model", "-m", OPT_STRING, &dir, 0, 0, NULL},
        {"--data", NULL, OPT_STRING, &data, 0, 0, NULL},
        {"--context", NULL, OPT_INT, &ctx, 1, 1 << 20, NULL},
        {"--batch", NULL, OPT_INT, &batch, 1, 4096, NULL},
        {"--threads", NULL, OPT_INT, &threads, 1, 4096, NULL},
    };
    char *pos[1];
    int n_pos;
    int rc = cli_parse_options("eval", argc, argv, opts, sizeof opts / sizeof *opts, pos, 0, &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    if (!dir) return cli_error(CLI_USAGE, "eval: no model given (-m DIR)");
    if (!data) return cli_error(CLI_USAGE, "eval: no data given (--data FILE)");
    cli_set_threads(threads);

    slm_model *m;
    slm_tokenizer *tok;
    if ((rc = cli_open_model("eval", dir, 0, &m, &tok))) return rc;
    const slm_config *c = slm_model_config(m);
    if (ctx == 0) ctx = c->n_positions;
    char *text = NULL;
    int32_t *ids = NULL;
    size_t len = 0, n = 0;
    char err[512];
    if (ctx > c->n_positions) {
        rc = cli_error(CLI_USAGE, "eval: --context %d exceeds the model's n_positions (%d)", ctx,
                       c->n_positions);
    } else if (!(rc = cli_read_file("eval", data, &text, &len))) {
        if (slm_tokenizer_encode(tok, text, len, &ids, &n, err, sizeof err))
            rc = cli_error(CLI_RUNTIME, "eval: %s", err);
        else if (n < 2)
            rc = cli_error(CLI_RUNTIME, "eval: '%s' has %zu token(s); at least 2 are needed", data,
                           n);
    }
    double sum = 0.0;
    if (!rc) rc = evaluate(m, ids, n, ctx, batch, &sum);
    if (!rc) {
        double loss = sum / (double)(n - 1);
        printf("loss %.6f perplexity %.6f tokens %zu\n", loss, exp(loss), n);
    }
    free(ids);
    free(text);
    slm_tokenizer_free(tok);
    slm_model_free(m);
    return rc;
}
