/*
 * vocab.json: one JSON object mapping token strings to ids,
 *     {"!": 0, "\"": 1, ..., "\u0120the": 262, ..., "<|endoftext|>": 50256}
 * A strict parser for exactly this shape (not general JSON): string keys
 * with every JSON escape (\uXXXX and surrogate pairs included), non-negative
 * integer values, ids exactly 0..n-1 once each. Anything else is SLM_EFORMAT
 * with "file:line:column: what". Never reads outside the buffer.
 *
 * Token strings are written in GPT-2's byte alphabet (bytes_to_unicode in
 * OpenAI's encoder.py): printable Latin-1 bytes stand for themselves and the
 * other 68 bytes for U+0100..U+0143 in byte order, so every token is text.
 * We store each token's raw bytes, which is what BPE works on.
 */
#include "core/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    const char *name;
    const uint8_t *buf;
    size_t len, pos;
    char *err;
    size_t errlen;
    int16_t cp_to_byte[BPE_ALPHABET_SIZE]; /* -1: not in the alphabet */
} parser;

typedef struct {
    uint32_t off, len; /* the token's bytes in the blob                      */
    int32_t id;
    uint32_t at; /* offset of the key in the file, for messages              */
} entry;

/* "name:line:col: message"; line and column (1-based, in bytes) of `at`. */
static int fail_at(const parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(const parser *p, size_t at, const char *fmt, ...)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        if (p->buf[i] == '\n')
            line++, col = 1;
        else
            col++;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(p->err, p->errlen, SLM_EFORMAT, "%s:%zu:%zu: %s", p->name, line, col, msg);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        uint8_t c = p->buf[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int hex4(const parser *p, size_t at, uint32_t *v)
{
    if (at + 4 > p->len) return fail_at(p, at - 2, "truncated \\u escape"); /* at the backslash */
    *v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p->buf[at + (size_t)i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return fail_at(p, at + (size_t)i, "bad hex digit in \\u escape");
        *v = (*v << 4) | (uint32_t)d;
    }
    return 0;
}

/* One escape after a backslash at p->pos - 1; p->pos is left after it. */
static int escape(parser *p, uint32_t *cp)
{
    size_t at = p->pos - 1;
    if (p->pos >= p->len) return fail_at(p, at, "unterminated string");
    uint8_t c = p->buf[p->pos++];
    switch (c) {
    case '"': *cp = '"'; return 0;
    case '\\': *cp = '\\'; return 0;
    case '/': *cp = '/'; return 0;
    case 'b': *cp = '\b'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 't': *cp = '\t'; return 0;
    case 'u': break;
    default:
        if (c >= 0x21 && c < 0x7F) return fail_at(p, at, "bad escape '\\%c' in string", c);
        return fail_at(p, at, "bad escape (byte 0x%02X after '\\') in string", c);
    }
    uint32_t hi, lo;
    int rc = hex4(p, p->pos, &hi);
    if (rc) return rc;
    p->pos += 4;
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return fail_at(p, at, "lone low surrogate \\u%04X in string", (unsigned)hi);
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = hi;
        return 0;
    }
    if (p->pos + 2 > p->len || p->buf[p->pos] != '\\' || p->buf[p->pos + 1] != 'u')
        return fail_at(p, at, "high surrogate \\u%04X not followed by a low one", (unsigned)hi);
    if ((rc = hex4(p, p->pos + 2, &lo))) return rc;
    if (lo < 0xDC00 || lo > 0xDFFF)
        return fail_at(p, at, "high surrogate \\u%04X not followed by a low one", (unsigned)hi);
    p->pos += 6;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 0;
}

/* A token string at p->pos (the opening quote), decoded to raw bytes
 * appended to blob at *blob_len. */
static int token_string(parser *p, uint8_t *blob, size_t *blob_len)
{
    size_t start = p->pos, n0 = *blob_len;
    if (p->pos >= p->len || p->buf[p->pos] != '"')
        return fail_at(p, p->pos,
                       p->pos >= p->len ? "unexpected end of file, expected a string"
                                        : "expected a string");
    p->pos++;
    for (;;) {
        if (p->pos >= p->len) return fail_at(p, start, "unterminated string");
        size_t at = p->pos;
        uint8_t c = p->buf[p->pos++];
        uint32_t cp;
        if (c == '"') break;
        if (c == '\\') {
            int rc = escape(p, &cp);
            if (rc) return rc;
        } else if (c < 0x20) {
            return fail_at(p, at, "control byte 0x%02X in string (must be escaped)", c);
        } else if (c < 0x80) {
            cp = c;
        } else {
            int n = tok_utf8_decode(p->buf + at, p->len - at, &cp);
            if (cp == TOK_UTF8_INVALID) return fail_at(p, at, "invalid UTF-8 in string");
            p->pos = at + (size_t)n;
        }
        if (cp >= BPE_ALPHABET_SIZE || p->cp_to_byte[cp] < 0)
            return fail_at(p, at, "character U+%04X is not in GPT-2's byte alphabet", (unsigned)cp);
        blob[(*blob_len)++] = (uint8_t)p->cp_to_byte[cp];
    }
    if (*blob_len == n0) return fail_at(p, start, "empty token string");
    return 0;
}

static int token_id(parser *p, int32_t *id)
{
    size_t at = p->pos;
    if (p->pos >= p->len) return fail_at(p, at, "unexpected end of file, expected an id");
    if (p->buf[p->pos] == '-') return fail_at(p, at, "negative token id");
    if (p->buf[p->pos] < '0' || p->buf[p->pos] > '9')
        return fail_at(p, at, "expected a token id (a non-negative integer)");
    int64_t v = 0;
    while (p->pos < p->len && p->buf[p->pos] >= '0' && p->buf[p->pos] <= '9') {
        v = v * 10 + (p->buf[p->pos++] - '0');
        if (v > INT32_MAX) return fail_at(p, at, "token id too large");
    }
    if (p->buf[at] == '0' && p->pos - at > 1) return fail_at(p, at, "leading zero in token id");
    if (p->pos < p->len &&
        (p->buf[p->pos] == '.' || p->buf[p->pos] == 'e' || p->buf[p->pos] == 'E'))
        return fail_at(p, at, "token id must be an integer");
    *id = (int32_t)v;
    return 0;
}

static int expect(parser *p, char c, const char *what)
{
    skip_ws(p);
    if (p->pos >= p->len) return fail_at(p, p->pos, "unexpected end of file, expected %s", what);
    if (p->buf[p->pos] != (uint8_t)c) return fail_at(p, p->pos, "expected %s", what);
    p->pos++;
    return 0;
}

/* Ids must be exactly 0..n-1: the model's embedding rows. */
static int place_tokens(bpe_model *m, const parser *p, const entry *e, size_t n)
{
    if (n > BPE_MAX_TOKENS)
        return fail(p->err, p->errlen, SLM_EFORMAT, "%s: %zu tokens, more than %d", p->name, n,
                        BPE_MAX_TOKENS);
    m->tok_off = malloc(n * sizeof *m->tok_off);
    m->tok_len = malloc(n * sizeof *m->tok_len);
    m->tok_rank = malloc(n * sizeof *m->tok_rank);
    if (!m->tok_off || !m->tok_len || !m->tok_rank)
        return fail(p->err, p->errlen, SLM_ENOMEM, "%s: out of memory", p->name);
    m->n_tokens = (int32_t)n;
    for (size_t i = 0; i < n; i++)
        m->tok_len[i] = 0, m->tok_rank[i] = BPE_NO_RANK;
    for (size_t i = 0; i < n; i++) {
        if ((size_t)e[i].id >= n)
            return fail_at(p, e[i].at, "token id %d out of range: %zu tokens need ids 0..%zu",
                           (int)e[i].id, n, n - 1);
        if (m->tok_len[e[i].id])
            return fail_at(p, e[i].at, "token id %d is used twice", (int)e[i].id);
        m->tok_off[e[i].id] = e[i].off;
        m->tok_len[e[i].id] = e[i].len;
    }
    return 0;
}

static int parse(parser *p, bpe_model *m, entry **ents)
{
    size_t n = 0, cap = 0, blob_len = 0;
    int rc;
    if (p->len == 0) return fail(p->err, p->errlen, SLM_EFORMAT, "%s: empty file", p->name);
    /* Decoding never lengthens a string, so the file size bounds the blob. */
    if (!(m->blob = malloc(p->len)))
        return fail(p->err, p->errlen, SLM_ENOMEM, "%s: out of memory", p->name);
    if ((rc = expect(p, '{', "'{'"))) return rc;
    skip_ws(p);
    if (p->pos < p->len && p->buf[p->pos] == '}') return fail_at(p, p->pos, "no tokens");
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            entry *g = realloc(*ents, cap * sizeof *g);
            if (!g) return fail(p->err, p->errlen, SLM_ENOMEM, "%s: out of memory", p->name);
            *ents = g;
        }
        entry *e = &(*ents)[n];
        skip_ws(p);
        e->at = (uint32_t)p->pos;
        e->off = (uint32_t)blob_len;
        if ((rc = token_string(p, m->blob, &blob_len))) return rc;
        e->len = (uint32_t)(blob_len - e->off);
        if ((rc = expect(p, ':', "':'"))) return rc;
        skip_ws(p);
        if ((rc = token_id(p, &e->id))) return rc;
        n++;
        skip_ws(p);
        if (p->pos < p->len && p->buf[p->pos] == '}') break;
        if ((rc = expect(p, ',', "',' or '}'"))) return rc;
    }
    p->pos++;
    skip_ws(p);
    if (p->pos != p->len) return fail_at(p, p->pos, "unexpected data after the object");
    return place_tokens(m, p, *ents, n);
}

int bpe_parse_vocab(bpe_model *m, const char *name, const uint8_t *buf, size_t len, char *err,
                    size_t errlen)
{
    parser p = {.name = name, .buf = buf, .len = len, .err = err, .errlen = errlen};
    if (len >= UINT32_MAX) return fail(err, errlen, SLM_EFORMAT, "%s: larger than 4 GiB", name);
    bpe_alphabet(p.cp_to_byte);
    entry *ents = NULL;
    int rc = parse(&p, m, &ents);
    free(ents);
    return rc;
}
