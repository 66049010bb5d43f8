/*
 * Training data: the text files are read and concatenated, tokenized once,
 * and cached next to the output as DIR/train_data.tokens (uint16/uint32 ids
 * with a header recording the tokenizer and a hash of the text, so a changed
 * source is noticed). The last --val-fraction of the tokens is the
 * validation split; training windows are drawn at random from the rest.
 */
#include "cli/cli.h"
#include "cli/model_open.h"
#include "cli/train.h"
#include "core/rng.h"
#include "io/atomic_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void train_data_free(train_data *d)
{
    free(d->tokens);
    memset(d, 0, sizeof *d);
}

/* All data files, concatenated into one malloc'd buffer. */
static int read_sources(const train_args *a, char **text, size_t *len)
{
    char *all = NULL;
    size_t n = 0;
    *text = NULL;
    *len = 0;
    for (int i = 0; i < a->data.n; i++) {
        char *part;
        size_t part_len;
        int rc = cli_read_file("train", a->data.items[i], &part, &part_len);
        if (rc) {
            free(all);
            return rc;
        }
        char *bigger = realloc(all, n + part_len + 1);
        if (!bigger) {
            free(part);
            free(all);
            return cli_error(CLI_RUNTIME, "train: out of memory reading the data");
        }
        all = bigger;
        memcpy(all + n, part, part_len);
        n += part_len;
        all[n] = '\0';
        free(part);
    }
    *text = all;
    *len = n;
    return 0;
}

/* Tokens from the cache when it matches d->meta, else by tokenizing (the
 * cache is then stale: train_data_save_cache rewrites it once the run is
 * known to be valid, so a refused run writes nothing). */
static int tokens_for(const train_args *a, const slm_tokenizer *tok, const char *text, size_t len,
                      train_data *d)
{
    char err[512];
    char *cache = path_join(a->out, "train_data.tokens");
    if (!cache) return cli_error(CLI_RUNTIME, "train: out of memory");
    slm_token_meta found;
    int rc = slm_token_file_read(cache, &d->tokens, &d->n, &found, err, sizeof err);
    free(cache);
    if (rc == SLM_OK) {
        if (!memcmp(&found, &d->meta, sizeof found)) return 0;
        free(d->tokens);
        d->tokens = NULL;
    }
    d->cache_stale = 1;
    if (slm_tokenizer_encode(tok, text, len, &d->tokens, &d->n, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: %s", err);
    return 0;
}

int train_data_save_cache(const train_args *a, train_data *d)
{
    if (!d->cache_stale) return 0;
    char err[512];
    char *cache = path_join(a->out, "train_data.tokens");
    if (!cache) return cli_error(CLI_RUNTIME, "train: out of memory");
    int rc = slm_token_file_write(cache, d->tokens, d->n, &d->meta, err, sizeof err);
    free(cache);
    if (rc) return cli_error(CLI_RUNTIME, "train: %s", err);
    d->cache_stale = 0;
    return 0;
}

int train_data_load(const train_args *a, const slm_tokenizer *tok, int vocab_size,
                    uint64_t *source_hash, train_data *d)
{
    memset(d, 0, sizeof *d);
    char *text = NULL;
    size_t len = 0;
    int rc = read_sources(a, &text, &len);
    if (rc) return rc;
    if (len == 0) {
        free(text);
        return cli_error(CLI_RUNTIME, "train: the training data is empty");
    }
    d->meta.tokenizer = a->tokenizer;
    d->meta.vocab_size = vocab_size;
    d->meta.source_size = len;
    d->meta.source_hash = slm_hash64(text, len);
    *source_hash = d->meta.source_hash;
    rc = tokens_for(a, tok, text, len, d);
    free(text);
    if (rc) return rc;
    size_t need = (size_t)a->context + 1;
    size_t n_val = (size_t)((double)d->n * a->val_fraction);
    if (a->val_fraction > 0 && n_val < need) n_val = need;
    if (d->n < need + n_val) {
        rc = cli_error(CLI_RUNTIME,
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
    rng_state r;
    rng_seed(&r, a->seed ^ ((uint64_t)step << 20) ^ (uint64_t)micro ^ 0x5eed0fda7aULL);
    int T = a->context;
    uint64_t starts = d->n_train - (size_t)T; /* a window needs T+1 tokens */
    for (int b = 0; b < a->batch; b++) {
        size_t s = (size_t)rng_below(&r, starts);
        memcpy(inputs + (size_t)b * T, d->tokens + s, (size_t)T * sizeof *inputs);
        memcpy(targets + (size_t)b * T, d->tokens + s + 1, (size_t)T * sizeof *targets);
    }
}
