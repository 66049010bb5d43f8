/*
 * merges.txt: an optional "#version: ..." first line, then one merge per
 * line, "A B", two tokens in GPT-2's byte alphabet separated by one space
 * (the alphabet has no U+0020: a space byte is written 'Ġ'). Line k of the
 * merges (0-based) gives the token A+B rank k. Every part and every result
 * must be in vocab.json; a malformed line is SLM_EFORMAT "file:line: what".
 */
#include "core/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    char *err;
    size_t errlen;
    int16_t cp_to_byte[BPE_ALPHABET_SIZE];
} ctx;

/* Decodes s[0..n) from the alphabet into out; returns 0 or fails naming line. */
static int decode(const ctx *c, size_t line, const uint8_t *s, size_t n, uint8_t *out,
                  size_t *out_n)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = tok_utf8_decode(s + i, n - i, &cp);
        if (cp == TOK_UTF8_INVALID)
            return fail(c->err, c->errlen, SLM_EFORMAT, "%s:%zu: invalid UTF-8", c->name, line);
        if (cp >= BPE_ALPHABET_SIZE || c->cp_to_byte[cp] < 0)
            return fail(c->err, c->errlen, SLM_EFORMAT,
                            "%s:%zu: character U+%04X is not in GPT-2's byte alphabet", c->name,
                            line, (unsigned)cp);
        out[k++] = (uint8_t)c->cp_to_byte[cp];
        i += (size_t)len;
    }
    *out_n = k;
    return 0;
}

/* The id of b[0..n); `what` and text[0..text_n) name it in the message. */
static int find(const bpe_model *m, const ctx *c, size_t line, const uint8_t *b, size_t n,
                const char *what, const uint8_t *text, size_t text_n, int32_t *id)
{
    *id = bpe_token_find(m, b, n, bpe_hash(b, n));
    if (*id >= 0) return 0;
    return fail(c->err, c->errlen, SLM_EFORMAT, "%s:%zu: %s '%.*s' is not in the vocabulary",
                    c->name, line, what, (int)(text_n > 60 ? 60 : text_n), (const char *)text);
}

/* One line "A B" (already without its newline) with the given rank. */
static int merge_line(bpe_model *m, const ctx *c, size_t line, const uint8_t *s, size_t n,
                      int32_t rank, uint8_t *scratch)
{
    const uint8_t *sp = memchr(s, ' ', n);
    if (!sp || sp == s || sp == s + n - 1 || memchr(sp + 1, ' ', (size_t)(s + n - sp - 1)))
        return fail(c->err, c->errlen, SLM_EFORMAT,
                        "%s:%zu: expected two tokens separated by one space", c->name, line);
    size_t na = (size_t)(sp - s), nb = n - na - 1, ba, bb;
    int32_t ida, idb, idt;
    int rc;
    if ((rc = decode(c, line, s, na, scratch, &ba))) return rc;
    if ((rc = decode(c, line, sp + 1, nb, scratch + ba, &bb))) return rc;
    if ((rc = find(m, c, line, scratch, ba, "token", s, na, &ida))) return rc;
    if ((rc = find(m, c, line, scratch + ba, bb, "token", sp + 1, nb, &idb))) return rc;
    if ((rc = find(m, c, line, scratch, ba + bb, "the merge of", s, n, &idt))) return rc;
    if (idt == m->eot)
        return fail(c->err, c->errlen, SLM_EFORMAT, "%s:%zu: a merge makes <|endoftext|>",
                        c->name, line);
    if (m->tok_rank[idt] == BPE_NO_RANK) m->tok_rank[idt] = rank; /* first line wins */
    return 0;
}

int bpe_parse_merges(bpe_model *m, const char *name, const uint8_t *buf, size_t len, char *err,
                     size_t errlen)
{
    ctx c = {.name = name, .err = err, .errlen = errlen};
    bpe_alphabet(c.cp_to_byte);
    if (len == 0) return fail(err, errlen, SLM_EFORMAT, "%s: empty file", name);
    /* A line decodes to at most as many bytes as it has. */
    uint8_t *scratch = malloc(len);
    if (!scratch) return fail(err, errlen, SLM_ENOMEM, "%s: out of memory", name);
    size_t pos = 0, line = 1;
    int32_t rank = 0;
    int rc = 0;
    if (len >= 8 && !memcmp(buf, "#version", 8)) {
        const uint8_t *nl = memchr(buf, '\n', len);
        pos = nl ? (size_t)(nl - buf) + 1 : len;
        line = 2;
    }
    for (; pos < len && !rc; line++) {
        const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len, next = nl ? end + 1 : len;
        if (end > pos && buf[end - 1] == '\r') end--;
        if (end == pos) { /* blank lines may only end the file */
            size_t k = pos;
            while (k < len && (buf[k] == '\n' || buf[k] == '\r'))
                k++;
            if (k == len) break;
            rc = fail(err, errlen, SLM_EFORMAT, "%s:%zu: empty line", name, line);
            break;
        }
        if (rank == INT32_MAX - 1) {
            rc = fail(err, errlen, SLM_EFORMAT, "%s:%zu: too many merges", name, line);
            break;
        }
        rc = merge_line(m, &c, line, buf + pos, end - pos, rank++, scratch);
        pos = next;
    }
    free(scratch);
    return rc;
}
