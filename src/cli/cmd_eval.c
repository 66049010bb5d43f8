/*
 * slm eval — mean cross-entropy (nats/token) and perplexity on a text file,
 * by the library's window rule (slm_model_eval, src/model/evaluate.c): the
 * same rule training's validation uses.
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

/* Progress redrawn in place is for a person at a terminal; in a log it
 * would be one long line of carriage returns. */
static void show_progress(void *ctx, size_t done, size_t total)
{
    (void)ctx;
    fprintf(stderr, "\reval: %zu/%zu predictions", done, total);
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
    slm_eval_opts eo = {.context = ctx, .batch = batch};
    slm_eval_result r;
    int progress = !rc && (n - 2) / (size_t)ctx + 1 > (size_t)batch && isatty(STDERR_FILENO);
    if (progress) eo.on_progress = show_progress;
    if (!rc && slm_model_eval(m, ids, n, &eo, &r, err, sizeof err))
        rc = cli_error(CLI_RUNTIME, "eval: %s", err);
    if (progress) fputc('\n', stderr);
    if (!rc) printf("loss %.6f perplexity %.6f tokens %zu\n", r.loss, exp(r.loss), n);
    free(ids);
    free(text);
    slm_tokenizer_free(tok);
    slm_model_free(m);
    return rc;
}
