/*
 * The model's lookup tables, built once at load: token bytes → id and
 * (left id, right id) → merged token, both open addressing with linear
 * probing at load factor <= 1/2, so a lookup is one or two cache lines.
 */
#include "core/error.h"
#include "tokenizer/bpe.h"

#include <stdlib.h>
#include <string.h>

void bpe_alphabet(int16_t cp_to_byte[BPE_ALPHABET_SIZE])
{
    for (int i = 0; i < BPE_ALPHABET_SIZE; i++)
        cp_to_byte[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        cp_to_byte[printable ? b : 256 + n++] = (int16_t)b;
    }
}

static inline uint64_t mix(uint64_t h)
{
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    h ^= h >> 32;
    return h;
}

/* Eight bytes at a time, multiply-mixed: pieces are short (a word), so the
 * tail load is what matters. */
uint64_t bpe_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = mix(h ^ v) * 0x9E3779B97F4A7C15ull;
        p += 8, n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n);
    return mix(h ^ v ^ (n << 59));
}

static uint32_t table_size(size_t n) /* power of two >= 2n, >= 16 */
{
    uint32_t c = 16;
    while (c < 2 * n)
        c <<= 1;
    return c;
}

int32_t bpe_token_find(const bpe_model *m, const uint8_t *p, size_t n, uint64_t hash)
{
    uint32_t h = (uint32_t)hash;
    for (uint32_t i = h & m->tokens_mask;; i = (i + 1) & m->tokens_mask) {
        const bpe_token_slot *s = &m->tokens[i];
        if (s->id < 0) return -1;
        if (s->hash == h && m->tok_len[s->id] == n && !memcmp(m->blob + m->tok_off[s->id], p, n))
            return s->id;
    }
}

int bpe_build_token_map(bpe_model *m, const char *name, char *err, size_t errlen)
{
    uint32_t cap = table_size((size_t)m->n_tokens);
    if (!(m->tokens = malloc(cap * sizeof *m->tokens)))
        return fail(err, errlen, SLM_ENOMEM, "%s: out of memory", name);
    m->tokens_mask = cap - 1;
    for (uint32_t i = 0; i < cap; i++)
        m->tokens[i].id = -1;
    for (int32_t id = 0; id < m->n_tokens; id++) {
        const uint8_t *p = m->blob + m->tok_off[id];
        size_t n = m->tok_len[id];
        uint64_t hash = bpe_hash(p, n);
        int32_t dup = bpe_token_find(m, p, n, hash);
        if (dup >= 0)
            return fail(err, errlen, SLM_EFORMAT, "%s: tokens %d and %d are the same bytes",
                            name, (int)dup, (int)id);
        uint32_t i = (uint32_t)hash & m->tokens_mask;
        while (m->tokens[i].id >= 0)
            i = (i + 1) & m->tokens_mask;
        m->tokens[i].hash = (uint32_t)hash;
        m->tokens[i].id = id;
    }
    m->eot = bpe_token_find(m, (const uint8_t *)"<|endoftext|>", 13,
                            bpe_hash((const uint8_t *)"<|endoftext|>", 13));
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        if ((m->byte_id[b] = bpe_token_find(m, &c, 1, bpe_hash(&c, 1))) < 0)
            return fail(err, errlen, SLM_EFORMAT, "%s: no token for byte 0x%02X", name, b);
    }
    return 0;
}

static void pair_insert(bpe_model *m, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & m->pairs_mask;
    for (;; i = (i + 1) & m->pairs_mask) {
        bpe_pair_slot *s = &m->pairs[i];
        if (s->key == key) return; /* same concatenation, so the same token */
        if (s->key == UINT64_MAX) {
            s->key = key, s->rank = rank, s->merged = merged;
            m->n_pairs++;
            return;
        }
    }
}

/* Every split of every ranked token t into two tokens (l, r) becomes the pair
 * (l, r) → (rank of t, t): tiktoken merges any adjacent pair whose bytes form
 * a ranked token, whichever merge line created it. */
int bpe_build_pairs(bpe_model *m, char *err, size_t errlen)
{
    size_t splits = 0;
    for (int32_t t = 0; t < m->n_tokens; t++)
        if (m->tok_rank[t] != BPE_NO_RANK) splits += m->tok_len[t] - 1;
    uint32_t cap = table_size(splits);
    if (!(m->pairs = malloc(cap * sizeof *m->pairs)))
        return fail(err, errlen, SLM_ENOMEM, "merge table: out of memory");
    m->pairs_mask = cap - 1;
    for (uint32_t i = 0; i < cap; i++)
        m->pairs[i].key = UINT64_MAX;
    for (int32_t t = 0; t < m->n_tokens; t++) {
        if (m->tok_rank[t] == BPE_NO_RANK) continue;
        const uint8_t *p = m->blob + m->tok_off[t];
        size_t n = m->tok_len[t];
        for (size_t k = 1; k < n; k++) {
            int32_t l = bpe_token_find(m, p, k, bpe_hash(p, k));
            if (l < 0) continue;
            int32_t r = bpe_token_find(m, p + k, n - k, bpe_hash(p + k, n - k));
            if (r >= 0) pair_insert(m, l, r, m->tok_rank[t], t);
        }
    }
    return 0;
}

void bpe_model_free(bpe_model *m)
{
    if (!m) return;
    free(m->blob);
    free(m->tok_off);
    free(m->tok_len);
    free(m->tok_rank);
    free(m->tokens);
    free(m->pairs);
    free(m);
}

int bpe_model_from_memory(const uint8_t *vocab, size_t vocab_len, const char *vocab_name,
                          const uint8_t *merges, size_t merges_len, const char *merges_name,
                          bpe_model **out, char *err, size_t errlen)
{
    *out = NULL;
    bpe_model *m = calloc(1, sizeof *m);
    if (!m) return fail(err, errlen, SLM_ENOMEM, "tokenizer: out of memory");
    int rc = bpe_parse_vocab(m, vocab_name, vocab, vocab_len, err, errlen);
    if (!rc) rc = bpe_build_token_map(m, vocab_name, err, errlen);
    if (!rc) rc = bpe_parse_merges(m, merges_name, merges, merges_len, err, errlen);
    if (!rc) rc = bpe_build_pairs(m, err, errlen);
    if (rc) {
        bpe_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
