#include "cli/cli.h"
#include "cli/model_open.h"
#include "cli/train.h"
#include "core/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void train_data_free(train_data *d)
{
    free(d->tokens);
    d->tokens = NULL;
    d->n = d->n_train = 0;
}

/* Appends the tokens of one file to d. */
static int append_file(const char *path, const slm_tokenizer *tok, train_data *d, size_t *cap)
{
    char *text = NULL, err[512];
    size_t len = 0, n = 0;
    int32_t *ids = NULL;
    int rc = cli_read_file("train", path, &text, &len);
    if (rc) return rc;
    if (slm_tokenizer_encode(tok, text, len, &ids, &n, err, sizeof err)) {
        free(text);
        return cli_error(CLI_RUNTIME, "train: %s: %s", path, err);
    }
    free(text);
    if (d->n + n > *cap) {
        size_t want = (d->n + n) * 2;
        int32_t *bigger = realloc(d->tokens, want * sizeof *bigger);
        if (!bigger) {
            free(ids);
            return cli_error(CLI_RUNTIME, "train: out of memory for %zu tokens", d->n + n);
        }
        d->tokens = bigger;
        *cap = want;
    }
    memcpy(d->tokens + d->n, ids, n * sizeof *ids);
    d->n += n;
    free(ids);
    return 0;
}

int train_data_load(const train_args *a, const slm_tokenizer *tok, train_data *d)
{
    memset(d, 0, sizeof *d);
    size_t cap = 0;
    for (int i = 0; i < a->data.n; i++) {
        int rc = append_file(a->data.items[i], tok, d, &cap);
        if (rc) {
            train_data_free(d);
            return rc;
        }
    }
    size_t need = (size_t)a->context + 1;
    size_t n_val = (size_t)((double)d->n * a->val_fraction);
    if (a->val_fraction > 0 && n_val < need) n_val = need;
    if (d->n < need + n_val) {
        int rc = cli_error(CLI_RUNTIME,
                           "train: the data has %zu tokens; a context of %d needs at least %zu "
                           "(%zu for training + %zu for validation)",
                           d->n, a->context, need + n_val, need, n_val);
        train_data_free(d);
        return rc;
    }
    d->n_train = d->n - n_val;
    return 0;
}

void train_data_batch(const train_data *d, const train_args *a, int step, int micro,
                      int32_t *inputs, int32_t *targets)
{
    slm_rng r;
    slm_rng_seed(&r, a->seed ^ ((uint64_t)step << 20) ^ (uint64_t)micro ^ 0x5eed0fda7aULL);
    int T = a->context;
    uint64_t starts = d->n_train - (size_t)T; /* windows need T+1 tokens */
    for (int b = 0; b < a->batch; b++) {
        size_t s = (size_t)slm_rng_below(&r, starts);
        memcpy(inputs + (size_t)b * T, d->tokens + s, (size_t)T * sizeof *inputs);
        memcpy(targets + (size_t)b * T, d->tokens + s + 1, (size_t)T * sizeof *targets);
    }
}
