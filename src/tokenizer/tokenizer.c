/* The public tokenizer API: loading, and dispatch to the byte or BPE
 * tokenizer. Decoding is shared: every token is a byte string. */
#include "tokenizer/tokenizer.h"
#include "core/alloc.h"
#include "core/error.h"
#include "io/atomic_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILE_BYTES ((size_t)1 << 30)

static int load_gpt2(slm_tokenizer *t, const char *dir, char *err, size_t errlen)
{
    char vpath[4096], mpath[4096];
    if (!dir) return fail(err, errlen, SLM_EINVAL, "gpt2 tokenizer: no directory given");
    if ((size_t)snprintf(vpath, sizeof vpath, "%s/vocab.json", dir) >= sizeof vpath ||
        (size_t)snprintf(mpath, sizeof mpath, "%s/merges.txt", dir) >= sizeof mpath)
        return fail(err, errlen, SLM_EINVAL, "tokenizer directory path too long");
    char *vocab = NULL, *merges = NULL;
    size_t vlen, mlen;
    int rc = read_file(vpath, MAX_FILE_BYTES, &vocab, &vlen, err, errlen);
    if (!rc) rc = read_file(mpath, MAX_FILE_BYTES, &merges, &mlen, err, errlen);
    if (!rc)
        rc = bpe_model_from_memory((const uint8_t *)vocab, vlen, vpath, (const uint8_t *)merges,
                                   mlen, mpath, &t->bpe, err, errlen);
    free(vocab);
    free(merges);
    if (!rc) t->n_tokens = t->bpe->n_tokens;
    return rc;
}

int slm_tokenizer_load(int kind, const char *dir, int vocab_size, slm_tokenizer **out, char *err,
                       size_t errlen)
{
    if (!out) return fail(err, errlen, SLM_EINVAL, "tokenizer: out is NULL");
    *out = NULL;
    if (kind != SLM_TOKENIZER_BYTE && kind != SLM_TOKENIZER_GPT2)
        return fail(err, errlen, SLM_EINVAL, "unknown tokenizer kind %d", kind);
    slm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return fail(err, errlen, SLM_ENOMEM, "tokenizer: out of memory");
    t->kind = kind;
    int rc = 0;
    if (kind == SLM_TOKENIZER_BYTE)
        byte_tokenizer_init(t);
    else
        rc = load_gpt2(t, dir, err, errlen);
    if (!rc && vocab_size > 0 && vocab_size < t->n_tokens)
        rc = fail(err, errlen, SLM_EINVAL, "vocab_size %d is smaller than the tokenizer's %d",
                      vocab_size, (int)t->n_tokens);
    if (rc) {
        slm_tokenizer_free(t);
        return rc;
    }
    t->vocab_size = vocab_size > 0 ? vocab_size : t->n_tokens;
    *out = t;
    return 0;
}

void slm_tokenizer_free(slm_tokenizer *t)
{
    if (!t) return;
    bpe_model_free(t->bpe);
    free(t);
}

int slm_tokenizer_encode(const slm_tokenizer *t, const char *text, size_t len, int32_t **ids,
                         size_t *n_ids, char *err, size_t errlen)
{
    if (!t || !ids || !n_ids || (!text && len))
        return fail(err, errlen, SLM_EINVAL, "encode: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    const uint8_t *s = (const uint8_t *)text;
    if (t->kind == SLM_TOKENIZER_BYTE) return byte_encode(s, len, ids, n_ids, err, errlen);
    bpe_encoder *e;
    if (bpe_encoder_init(&e)) return fail(err, errlen, SLM_ENOMEM, "encode: out of memory");
    int rc = bpe_encode(t->bpe, e, s, len, err, errlen);
    if (!rc) {
        bpe_encoder_take(e, ids, n_ids);
        if (!*ids) rc = fail(err, errlen, SLM_ENOMEM, "encode: out of memory");
    }
    bpe_encoder_free(e);
    return rc;
}

/* The bytes of token id; -1 outside [0, vocab_size). */
static int token_span(const slm_tokenizer *t, int32_t id, const char **bytes)
{
    static const char nothing[1] = "";
    if (id < 0 || id >= t->vocab_size) return -1;
    if (id >= t->n_tokens) {
        *bytes = nothing;
        return 0;
    }
    if (t->kind == SLM_TOKENIZER_BYTE) {
        *bytes = (const char *)&t->bytes[id];
        return 1;
    }
    *bytes = (const char *)t->bpe->blob + t->bpe->tok_off[id];
    return (int)t->bpe->tok_len[id];
}

int slm_tokenizer_token_bytes(const slm_tokenizer *t, int32_t id, const char **bytes,
                              size_t *len)
{
    if (len) *len = 0;
    if (!t || !bytes || !len) return SLM_EINVAL;
    int n = token_span(t, id, bytes);
    if (n < 0) return SLM_ERANGE;
    *len = (size_t)n;
    return SLM_OK;
}

int slm_tokenizer_kind(const slm_tokenizer *t) { return t ? t->kind : SLM_TOKENIZER_BYTE; }

int slm_tokenizer_decode(const slm_tokenizer *t, const int32_t *ids, size_t n_ids, char **text,
                         size_t *len, char *err, size_t errlen)
{
    if (!t || !text || !len || (!ids && n_ids))
        return fail(err, errlen, SLM_EINVAL, "decode: NULL argument");
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) { /* validate and size before writing */
        const char *b = NULL;
        int n = token_span(t, ids[i], &b);
        if (n < 0)
            return fail(err, errlen, SLM_ERANGE,
                            "decode: token id %d at position %zu is outside [0, %d)", (int)ids[i],
                            i, (int)t->vocab_size);
        if ((size_t)n > SIZE_MAX - 1 - total)
            return fail(err, errlen, SLM_ENOMEM, "decode: output too large");
        total += (size_t)n;
    }
    char *out = malloc(total + 1);
    if (!out) return fail(err, errlen, SLM_ENOMEM, "decode: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n_ids; i++) {
        const char *b = NULL;
        int n = token_span(t, ids[i], &b);
        memcpy(out + k, b, (size_t)n);
        k += (size_t)n;
    }
    out[k] = '\0';
    *text = out;
    *len = k;
    return 0;
}

int32_t slm_tokenizer_eot(const slm_tokenizer *t)
{
    return t && t->kind == SLM_TOKENIZER_GPT2 ? t->bpe->eot : -1;
}

int slm_tokenizer_vocab_size(const slm_tokenizer *t)
{
    return t ? (int)t->vocab_size : 0;
}
