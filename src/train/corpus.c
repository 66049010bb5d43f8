/*
 * A training corpus: text tokenized once (or read from the token cache
 * when its header says it came from the same text and tokenizer), split
 * into a training head and a validation tail, and the sampler that cuts
 * training windows out of the head.
 *
 *   tokens  [0 ........................ n_train | n_train ....... n)
 *           training windows: random starts       validation: the last
 *                                                 val_fraction (slm_model_eval)
 */
#include "core/error.h"
#include "core/rng.h"
#include "slm.h"

#include <stdlib.h>
#include <string.h>

struct slm_corpus {
    int32_t *tokens; /* train = [0, n_train), val = [n_train, n)              */
    size_t n, n_train;
    slm_token_meta meta; /* what produced the tokens (the cache's header)    */
    int from_cache;      /* read from opts->cache_path, which is current      */
    char *cache_path;    /* where it was read from (NULL if not)               */
};

void slm_corpus_free(slm_corpus *c)
{
    if (!c) return;
    free(c->tokens);
    free(c->cache_path);
    free(c);
}

/* The validation tail: val_fraction of the tokens, at least one window of
 * T+1 when there is one; the rest must hold a training window too. */
static int split(slm_corpus *c, const slm_corpus_opts *o, char *err, size_t errlen)
{
    size_t need = (size_t)o->context + 1;
    size_t n_val = (size_t)((double)c->n * o->val_fraction);
    if (o->val_fraction > 0 && n_val < need) n_val = need;
    if (c->n < need + n_val) {
        if (n_val)
            return fail(err, errlen, SLM_ERANGE,
                        "the data has %zu tokens; a context of %d needs at least %zu (%zu for "
                        "training + %zu for validation)",
                        c->n, o->context, need + n_val, need, n_val);
        return fail(err, errlen, SLM_ERANGE,
                    "the data has %zu tokens; a context of %d needs at least %zu", c->n, o->context,
                    need);
    }
    c->n_train = c->n - n_val;
    return SLM_OK;
}

static int check_opts(const slm_corpus_opts *o, slm_corpus **out, char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!o || !out) return fail(err, errlen, SLM_EINVAL, "corpus: NULL argument");
    if (o->context <= 0)
        return fail(err, errlen, SLM_EINVAL, "corpus: context must be positive (%d)", o->context);
    if (!(o->val_fraction >= 0.0 && o->val_fraction < 1.0))
        return fail(err, errlen, SLM_EINVAL, "corpus: val_fraction %g is outside [0, 1)",
                    o->val_fraction);
    return SLM_OK;
}

/* The cached ids if o->cache_path holds ids of exactly c->meta. */
static int read_cache(slm_corpus *c, const char *path)
{
    slm_token_meta found;
    int32_t *ids = NULL;
    size_t n = 0;
    if (slm_token_file_read(path, &ids, &n, &found, NULL, 0)) return 0;
    if (memcmp(&found, &c->meta, sizeof found)) {
        free(ids);
        return 0;
    }
    c->tokens = ids;
    c->n = n;
    c->from_cache = 1;
    c->cache_path = strdup(path);
    return 1;
}

int slm_corpus_create(const slm_tokenizer *tok, const char *text, size_t len,
                      const slm_corpus_opts *opts, slm_corpus **out, char *err, size_t errlen)
{
    int rc = check_opts(opts, out, err, errlen);
    if (rc) return rc;
    if (!tok || (!text && len)) return fail(err, errlen, SLM_EINVAL, "corpus: NULL argument");
    if (len == 0) return fail(err, errlen, SLM_EINVAL, "the training data is empty");
    slm_corpus *c = calloc(1, sizeof *c);
    if (!c) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    c->meta.tokenizer = slm_tokenizer_kind(tok);
    c->meta.vocab_size = slm_tokenizer_vocab_size(tok);
    c->meta.source_size = len;
    c->meta.source_hash = slm_hash64(text, len);
    if (!opts->cache_path || !read_cache(c, opts->cache_path))
        rc = slm_tokenizer_encode(tok, text, len, &c->tokens, &c->n, err, errlen);
    if (!rc) rc = split(c, opts, err, errlen);
    if (rc) {
        slm_corpus_free(c);
        return rc;
    }
    *out = c;
    return SLM_OK;
}

int slm_corpus_from_tokens(const int32_t *ids, size_t n, int vocab_size,
                           const slm_corpus_opts *opts, slm_corpus **out, char *err, size_t errlen)
{
    int rc = check_opts(opts, out, err, errlen);
    if (rc) return rc;
    if (!ids || n == 0) return fail(err, errlen, SLM_EINVAL, "the training data is empty");
    if (vocab_size <= 0)
        return fail(err, errlen, SLM_EINVAL, "corpus: vocab_size must be positive");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab_size)
            return fail(err, errlen, SLM_ERANGE, "corpus: token %d at %zu is outside [0, %d)",
                        (int)ids[i], i, vocab_size);
    slm_corpus *c = calloc(1, sizeof *c);
    if (!c || !(c->tokens = malloc(n * sizeof *ids))) {
        slm_corpus_free(c);
        return fail(err, errlen, SLM_ENOMEM, "out of memory");
    }
    memcpy(c->tokens, ids, n * sizeof *ids);
    c->n = n;
    c->meta.tokenizer = -1; /* not from a tokenizer */
    c->meta.vocab_size = vocab_size;
    c->meta.source_size = n * sizeof *ids;
    c->meta.source_hash = slm_hash64(ids, n * sizeof *ids);
    if ((rc = split(c, opts, err, errlen))) {
        slm_corpus_free(c);
        return rc;
    }
    *out = c;
    return SLM_OK;
}

int slm_corpus_save_cache(const slm_corpus *c, const char *path, char *err, size_t errlen)
{
    if (!c || !path) return fail(err, errlen, SLM_EINVAL, "corpus: NULL argument");
    if (c->meta.tokenizer < 0)
        return fail(err, errlen, SLM_EINVAL, "corpus: ids without a tokenizer have no cache");
    if (c->from_cache && !strcmp(c->cache_path, path)) return SLM_OK;
    return slm_token_file_write(path, c->tokens, c->n, &c->meta, err, errlen);
}

uint64_t slm_corpus_hash(const slm_corpus *c)
{
    return c ? c->meta.source_hash : 0;
}

const int32_t *slm_corpus_tokens(const slm_corpus *c, int which, size_t *n)
{
    size_t count = 0;
    const int32_t *p = NULL;
    if (c && which == SLM_SPLIT_TRAIN) {
        count = c->n_train;
        p = c->tokens;
    } else if (c && which == SLM_SPLIT_VAL && c->n > c->n_train) {
        count = c->n - c->n_train;
        p = c->tokens + c->n_train;
    }
    if (n) *n = count;
    return p;
}

int slm_corpus_vocab_size(const slm_corpus *c)
{
    return c ? c->meta.vocab_size : 0;
}

int slm_corpus_batch(const slm_corpus *c, const slm_batch_opts *o, int step, int micro,
                     int32_t *inputs, int32_t *targets, char *err, size_t errlen)
{
    if (!c || !o || !inputs || !targets)
        return fail(err, errlen, SLM_EINVAL, "batch: NULL argument");
    int shards = o->n_shards > 1 ? o->n_shards : 1, T = o->context;
    if (o->batch <= 0 || T <= 0 || (size_t)T >= c->n_train)
        return fail(err, errlen, SLM_EINVAL,
                    "batch: batch %d and context %d must be positive, context below the %zu "
                    "training tokens",
                    o->batch, T, c->n_train);
    if (o->batch % shards || o->shard < 0 || o->shard >= shards)
        return fail(err, errlen, SLM_EINVAL,
                    "batch: shard %d of %d: the batch of %d must divide into %d equal shares",
                    o->shard, shards, o->batch, shards);
    /* One stream per (seed, step, micro); a shard draws every row's start
     * and keeps its own rows, so the windows never depend on the shards. */
    rng_state r;
    rng_seed(&r, o->seed ^ ((uint64_t)step << 20) ^ (uint64_t)micro ^ 0x5eed0fda7aULL);
    uint64_t starts = c->n_train - (size_t)T; /* a window needs T+1 tokens */
    int per = o->batch / shards, lo = o->shard * per;
    for (int b = 0; b < lo + per; b++) {
        size_t s = (size_t)rng_below(&r, starts);
        if (b < lo) continue;
        memcpy(inputs + (size_t)(b - lo) * T, c->tokens + s, (size_t)T * sizeof *inputs);
        memcpy(targets + (size_t)(b - lo) * T, c->tokens + s + 1, (size_t)T * sizeof *targets);
    }
    return SLM_OK;
}
