/*
 * GPT-2 byte-level BPE: the vocabulary (token id → raw bytes), the merge
 * table, and encoding one pre-token at a time.
 *
 * Merge semantics are tiktoken's (`byte_pair_merge`), which is what makes the
 * ids identical to r50k_base: start from one symbol per byte, and repeatedly
 * merge the adjacent pair whose concatenation is the mergeable token of
 * lowest rank (leftmost on ties). A token's rank is the line of merges.txt
 * that produces it; the pair table therefore holds every split of every
 * ranked token into two vocabulary tokens, not only the split merges.txt
 * names. A pre-token that is itself a token is emitted directly, as tiktoken
 * does.
 */
#ifndef SLM_TOKENIZER_BPE_H
#define SLM_TOKENIZER_BPE_H

#include <stddef.h>
#include <stdint.h>

#define BPE_NO_RANK INT32_MAX
#define BPE_MAX_TOKENS (1 << 24) /* far above any real vocabulary            */

typedef struct {
    uint32_t hash; /* low 32 bits of bpe_hash of the token's bytes           */
    int32_t id;    /* -1: empty slot                                          */
} bpe_token_slot;

typedef struct {
    uint64_t key;   /* (left id << 32) | right id; UINT64_MAX: empty slot     */
    int32_t rank;   /* rank of the merged token                               */
    int32_t merged; /* its id                                                 */
} bpe_pair_slot;

typedef struct {
    int32_t n_tokens;
    uint8_t *blob;          /* every token's bytes                                */
    uint32_t *tok_off;      /* [n_tokens] token i is blob[tok_off[i]..+tok_len[i]) */
    uint32_t *tok_len;      /* [n_tokens]                                         */
    int32_t *tok_rank;      /* [n_tokens] merges.txt line that makes it, or NO_RANK */
    int32_t byte_id[256];   /* the single-byte tokens                           */
    int32_t eot;            /* id of "<|endoftext|>", or -1                       */
    bpe_token_slot *tokens; /* bytes → id, open addressing                    */
    uint32_t tokens_mask;
    bpe_pair_slot *pairs; /* (id, id) → merge, open addressing              */
    uint32_t pairs_mask;
    size_t n_pairs;
} bpe_model;

/* GPT-2's byte alphabet (bytes_to_unicode in OpenAI's encoder.py): the
 * printable Latin-1 bytes stand for themselves, the other 68 bytes for
 * U+0100..U+0143 in byte order. Fills cp_to_byte[cp] with the byte code
 * point cp stands for, or -1. */
#define BPE_ALPHABET_SIZE 324
void bpe_alphabet(int16_t cp_to_byte[BPE_ALPHABET_SIZE]);

/* Hash of a byte string (also used for the per-call piece cache). */
uint64_t bpe_hash(const uint8_t *p, size_t n);

/* Parsers (vocab.c, merges.c). name is the path used in messages. */
int bpe_parse_vocab(bpe_model *m, const char *name, const uint8_t *buf, size_t len, char *err,
                    size_t errlen);
int bpe_parse_merges(bpe_model *m, const char *name, const uint8_t *buf, size_t len, char *err,
                     size_t errlen);

/* A whole model from the two files' contents (no file I/O: the loaders and
 * the fuzz target share it). *out is freed with bpe_model_free. */
int bpe_model_from_memory(const uint8_t *vocab, size_t vocab_len, const char *vocab_name,
                          const uint8_t *merges, size_t merges_len, const char *merges_name,
                          bpe_model **out, char *err, size_t errlen);
void bpe_model_free(bpe_model *m);

/* Hash-table queries and inserts (bpe_tables.c). */
int32_t bpe_token_find(const bpe_model *m, const uint8_t *p, size_t n, uint64_t hash);
int bpe_build_token_map(bpe_model *m, const char *name, char *err, size_t errlen);
int bpe_build_pairs(bpe_model *m, char *err, size_t errlen);

static inline const bpe_pair_slot *bpe_pair_find(const bpe_model *m, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & m->pairs_mask;
    for (;; i = (i + 1) & m->pairs_mask) {
        const bpe_pair_slot *s = &m->pairs[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

/* Encoding: working memory for one slm_tokenizer_encode call (symbol lists,
 * heap, output ids, a cache of pieces already merged). Allocated lazily and
 * grown, never shrunk, during the call; freed at its end. Owned by the call,
 * so a const model is shared by any number of threads. */
typedef struct bpe_encoder bpe_encoder;

int bpe_encoder_init(bpe_encoder **out);
void bpe_encoder_free(bpe_encoder *e);
/* Appends the ids of text[0..len) to e's output. SLM_ENOMEM or SLM_ERANGE
 * (a pre-token of 2^31 bytes or more). */
int bpe_encode(const bpe_model *m, bpe_encoder *e, const uint8_t *text, size_t len, char *err,
               size_t errlen);
/* Hands the output over: *ids (malloc'd, never NULL) and *n. */
void bpe_encoder_take(bpe_encoder *e, int32_t **ids, size_t *n);

#endif
