/*
 * vocab.json: one JSON object mapping token strings to ids,
 *     {"!": 0, "\"": 1, ..., "\u0120the": 262, ..., "<|endoftext|>": 50256}
 * The JSON itself is read by the project's one parser (io/json.c: strict
 * RFC 8259, "file:line:column: what" on any syntax error, duplicate keys
 * refused); this file checks the shape: an object of non-empty string keys
 * and non-negative integer ids, exactly 0..n-1 once each. Anything else is
 * SLM_EFORMAT with "file:line:column: what".
 *
 * Token strings are written in GPT-2's byte alphabet (bytes_to_unicode in
 * OpenAI's encoder.py): printable Latin-1 bytes stand for themselves and the
 * other 68 bytes for U+0100..U+0143 in byte order, so every token is text.
 * We store each token's raw bytes, which is what BPE works on.
 */
#include "core/error.h"
#include "io/json.h"
#include "tokenizer/bpe.h"
#include "tokenizer/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    uint32_t off, len; /* the token's bytes in the blob                      */
    int32_t id;
    const json_value *key; /* where it is in the file, for messages          */
} entry;

typedef struct {
    const char *name;
    char *err;
    size_t errlen;
    int16_t cp_to_byte[BPE_ALPHABET_SIZE]; /* -1: not in the alphabet */
} checker;

/* "name:line:col: message" at the value v. */
static int fail_at(const checker *c, const json_value *v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(const checker *c, const json_value *v, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(c->err, c->errlen, SLM_EFORMAT, "%s:%u:%u: %s", c->name, (unsigned)v->line,
                (unsigned)v->col, msg);
}

/* A key's characters through the byte alphabet, appended to blob. */
static int token_bytes(const checker *c, const json_value *key, uint8_t *blob, size_t *blob_len)
{
    if (key->len == 0) return fail_at(c, key, "empty token string");
    const uint8_t *s = (const uint8_t *)key->u.str;
    for (size_t at = 0; at < key->len;) {
        uint32_t cp;
        at += (size_t)tok_utf8_decode(s + at, key->len - at, &cp);
        if (cp >= BPE_ALPHABET_SIZE || c->cp_to_byte[cp] < 0)
            return fail_at(c, key, "character U+%04X is not in GPT-2's byte alphabet",
                           (unsigned)cp);
        blob[(*blob_len)++] = (uint8_t)c->cp_to_byte[cp];
    }
    return 0;
}

static int token_id(const checker *c, const json_value *v, int32_t *id)
{
    int64_t x;
    if (v->type != SLM_JSON_NUMBER)
        return fail_at(c, v, "expected a token id (a non-negative integer)");
    if (!json_int(v, &x)) {
        double d = json_number(v);
        return fail_at(c, v, d < 0 ? "negative token id" : "token id must be an integer");
    }
    if (x < 0) return fail_at(c, v, "negative token id");
    if (x > INT32_MAX) return fail_at(c, v, "token id too large");
    *id = (int32_t)x;
    return 0;
}

/* Ids must be exactly 0..n-1: the model's embedding rows. */
static int place_tokens(bpe_model *m, const checker *c, const entry *e, size_t n)
{
    if (n > BPE_MAX_TOKENS)
        return fail(c->err, c->errlen, SLM_EFORMAT, "%s: %zu tokens, more than %d", c->name, n,
                    BPE_MAX_TOKENS);
    m->tok_off = malloc(n * sizeof *m->tok_off);
    m->tok_len = malloc(n * sizeof *m->tok_len);
    m->tok_rank = malloc(n * sizeof *m->tok_rank);
    if (!m->tok_off || !m->tok_len || !m->tok_rank)
        return fail(c->err, c->errlen, SLM_ENOMEM, "%s: out of memory", c->name);
    m->n_tokens = (int32_t)n;
    for (size_t i = 0; i < n; i++)
        m->tok_len[i] = 0, m->tok_rank[i] = BPE_NO_RANK;
    for (size_t i = 0; i < n; i++) {
        if ((size_t)e[i].id >= n)
            return fail_at(c, e[i].key, "token id %d out of range: %zu tokens need ids 0..%zu",
                           (int)e[i].id, n, n - 1);
        if (m->tok_len[e[i].id])
            return fail_at(c, e[i].key, "token id %d is used twice", (int)e[i].id);
        m->tok_off[e[i].id] = e[i].off;
        m->tok_len[e[i].id] = e[i].len;
    }
    return 0;
}

/* The members of the root object into the blob and an entry table. */
static int read_tokens(const checker *c, const json_value *root, size_t len, bpe_model *m)
{
    size_t n = root->count, blob_len = 0;
    /* A character is at least one byte of its key: the file size bounds the blob. */
    entry *ents = malloc(n * sizeof *ents);
    m->blob = malloc(len);
    if (!ents || !m->blob) {
        free(ents);
        return fail(c->err, c->errlen, SLM_ENOMEM, "%s: out of memory", c->name);
    }
    json_iter it = json_iterate(root);
    const json_value *k, *v;
    int rc = 0;
    for (size_t i = 0; !rc && json_next(&it, &k, &v); i++) {
        ents[i].key = k;
        ents[i].off = (uint32_t)blob_len;
        rc = token_bytes(c, k, m->blob, &blob_len);
        ents[i].len = (uint32_t)(blob_len - ents[i].off);
        if (!rc) rc = token_id(c, v, &ents[i].id);
    }
    if (!rc) rc = place_tokens(m, c, ents, n);
    free(ents);
    return rc;
}

int bpe_parse_vocab(bpe_model *m, const char *name, const uint8_t *buf, size_t len, char *err,
                    size_t errlen)
{
    checker c = {.name = name, .err = err, .errlen = errlen};
    if (len == 0) return fail(err, errlen, SLM_EFORMAT, "%s: empty file", name);
    if (len >= UINT32_MAX) return fail(err, errlen, SLM_EFORMAT, "%s: larger than 4 GiB", name);
    /* Said before the JSON parser would: a vocabulary is an object. */
    size_t first = 0;
    while (first < len && (buf[first] == ' ' || buf[first] == '\t' || buf[first] == '\n' ||
                           buf[first] == '\r'))
        first++;
    if (first < len && buf[first] != '{')
        return fail(err, errlen, SLM_EFORMAT,
                    "%s: expected '{' (an object mapping token strings to ids)", name);
    bpe_alphabet(c.cp_to_byte);
    json_doc doc;
    int rc = json_parse((const char *)buf, len, name, &doc, err, errlen);
    if (rc) return rc;
    const json_value *root = json_root(&doc);
    if (root->type != SLM_JSON_OBJECT)
        rc = fail_at(&c, root, "expected '{' (an object mapping token strings to ids)");
    else if (root->count == 0)
        rc = fail_at(&c, root, "no tokens");
    else
        rc = read_tokens(&c, root, len, m);
    json_free(&doc);
    return rc;
}
