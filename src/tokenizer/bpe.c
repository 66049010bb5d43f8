/*
 * Encoding with byte-level BPE: pre-tokenize, then per piece
 *   1. a piece that is itself a token is that token (tiktoken does this too,
 *      and it covers most English words: " the", " house", ...);
 *   2. a piece merged earlier in this call comes from the cache;
 *   3. otherwise merge: one symbol per byte in a doubly linked list, a
 *      min-heap of adjacent pairs keyed (rank, position) so the lowest rank
 *      and then the leftmost pair merges first. Stale heap entries are
 *      skipped by checking the symbol's current pair rank. O(n log n) in the
 *      piece length n, so a megabyte of one letter stays fast.
 */
#include "tokenizer/bpe.h"
#include "core/error.h"
#include "tokenizer/pretokenize.h"

#include <stdlib.h>
#include <string.h>

/* The per-call cache of merged pieces: bounded, flushed when full. */
#define CACHE_SLOTS (1u << 14)
#define CACHE_MAX_ENTRIES (CACHE_SLOTS / 2)
#define CACHE_MAX_KEY 64 /* longer pieces rarely repeat */
#define CACHE_KEY_BYTES (256u << 10)
#define CACHE_ID_COUNT (64u << 10)

typedef struct {
    int32_t id;     /* token of this symbol                                   */
    int32_t next;   /* index of the next live symbol (n: none)                */
    int32_t prev;   /* previous live symbol (-1: none)                        */
    int32_t rank;   /* rank of the pair (this, next), BPE_NO_RANK if none/dead */
    int32_t merged; /* the token that pair makes                              */
} sym;

typedef struct {
    uint64_t hash; /* 0: empty                                                */
    uint32_t key_off, ids_off;
    uint16_t key_len, n_ids;
} cache_slot;

struct bpe_encoder {
    int32_t *out;
    size_t n_out, cap_out;
    sym *syms;
    uint64_t *heap;
    size_t cap_piece; /* syms has cap_piece entries, heap 2*cap_piece        */
    cache_slot *slots;
    uint8_t *keys;
    int32_t *ids;
    size_t n_cached, keys_used, ids_used;
};

int bpe_encoder_init(bpe_encoder **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : SLM_ENOMEM;
}

void bpe_encoder_free(bpe_encoder *e)
{
    if (!e) return;
    free(e->out);
    free(e->syms);
    free(e->heap);
    free(e->slots);
    free(e->keys);
    free(e->ids);
    free(e);
}

void bpe_encoder_take(bpe_encoder *e, int32_t **ids, size_t *n)
{
    if (!e->out) e->out = malloc(sizeof *e->out); /* never NULL for the caller */
    *ids = e->out;
    *n = e->n_out;
    e->out = NULL;
    e->n_out = e->cap_out = 0;
}

static int reserve_out(bpe_encoder *e, size_t more)
{
    if (e->n_out + more <= e->cap_out) return 0;
    size_t cap = e->cap_out ? e->cap_out + e->cap_out / 2 : 1024;
    if (cap < e->n_out + more) cap = e->n_out + more;
    if (cap > SIZE_MAX / sizeof *e->out) return SLM_ENOMEM;
    int32_t *g = realloc(e->out, cap * sizeof *g);
    if (!g) return SLM_ENOMEM;
    e->out = g;
    e->cap_out = cap;
    return 0;
}

static inline int emit(bpe_encoder *e, int32_t id)
{
    if (e->n_out == e->cap_out && reserve_out(e, 1)) return SLM_ENOMEM;
    e->out[e->n_out++] = id;
    return 0;
}

/* ---- cache ---------------------------------------------------------- */

static const cache_slot *cache_find(const bpe_encoder *e, const uint8_t *p, size_t n, uint64_t h)
{
    if (!e->slots) return NULL;
    h |= 1; /* 0 marks an empty slot */
    for (uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
        const cache_slot *s = &e->slots[i];
        if (!s->hash) return NULL;
        if (s->hash == h && s->key_len == n && !memcmp(e->keys + s->key_off, p, n)) return s;
    }
}

/* Remembers that p[0..n) encodes to ids[0..k); a full cache is flushed. */
static void cache_put(bpe_encoder *e, const uint8_t *p, size_t n, uint64_t h, const int32_t *ids,
                      size_t k)
{
    if (!e->slots) {
        e->slots = calloc(CACHE_SLOTS, sizeof *e->slots);
        e->keys = malloc(CACHE_KEY_BYTES);
        e->ids = malloc(CACHE_ID_COUNT * sizeof *e->ids);
        if (!e->slots || !e->keys || !e->ids) { /* caching is optional */
            free(e->slots), free(e->keys), free(e->ids);
            e->slots = NULL, e->keys = NULL, e->ids = NULL;
            return;
        }
    }
    if (e->n_cached == CACHE_MAX_ENTRIES || e->keys_used + n > CACHE_KEY_BYTES ||
        e->ids_used + k > CACHE_ID_COUNT) {
        memset(e->slots, 0, CACHE_SLOTS * sizeof *e->slots);
        e->n_cached = e->keys_used = e->ids_used = 0;
    }
    h |= 1;
    uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);
    while (e->slots[i].hash)
        i = (i + 1) & (CACHE_SLOTS - 1);
    cache_slot *s = &e->slots[i];
    s->hash = h;
    s->key_off = (uint32_t)e->keys_used;
    s->key_len = (uint16_t)n;
    s->ids_off = (uint32_t)e->ids_used;
    s->n_ids = (uint16_t)k;
    memcpy(e->keys + e->keys_used, p, n);
    memcpy(e->ids + e->ids_used, ids, k * sizeof *ids);
    e->keys_used += n;
    e->ids_used += k;
    e->n_cached++;
}

/* ---- merging -------------------------------------------------------- */

static void heap_push(uint64_t *heap, size_t *n, uint64_t key)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap[parent] <= key) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = key;
}

static uint64_t heap_pop(uint64_t *heap, size_t *n)
{
    uint64_t top = heap[0], last = heap[--*n];
    size_t i = 0, size = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= size) break;
        if (c + 1 < size && heap[c + 1] < heap[c]) c++;
        if (last <= heap[c]) break;
        heap[i] = heap[c];
        i = c;
    }
    if (size) heap[i] = last;
    return top;
}

/* Sets the pair rank of symbol i (with its next) and queues the pair. */
static void queue_pair(const bpe_model *m, sym *s, int32_t n, int32_t i, uint64_t *heap, size_t *hn)
{
    s[i].rank = BPE_NO_RANK;
    if (s[i].next >= n) return;
    const bpe_pair_slot *p = bpe_pair_find(m, s[i].id, s[s[i].next].id);
    if (!p) return;
    s[i].rank = p->rank;
    s[i].merged = p->merged;
    heap_push(heap, hn, ((uint64_t)(uint32_t)p->rank << 32) | (uint32_t)i);
}

static int reserve_piece(bpe_encoder *e, size_t n)
{
    if (n <= e->cap_piece) return 0;
    size_t cap = n < 256 ? 256 : n + n / 2;
    sym *s = malloc(cap * sizeof *s);
    uint64_t *h = s ? malloc(2 * cap * sizeof *h) : NULL;
    if (!h) {
        free(s);
        return SLM_ENOMEM;
    }
    free(e->syms), free(e->heap);
    e->syms = s, e->heap = h, e->cap_piece = cap;
    return 0;
}

/* Merges piece p[0..n) (n >= 2) and appends its ids. */
static int merge_piece(const bpe_model *m, bpe_encoder *e, const uint8_t *p, int32_t n)
{
    if (reserve_piece(e, (size_t)n)) return SLM_ENOMEM;
    sym *s = e->syms;
    uint64_t *heap = e->heap;
    size_t hn = 0; /* at most n-1 initial pairs + one per merge < 2n */
    for (int32_t i = 0; i < n; i++) {
        s[i].id = m->byte_id[p[i]];
        s[i].prev = i - 1;
        s[i].next = i + 1;
    }
    for (int32_t i = 0; i < n; i++)
        queue_pair(m, s, n, i, heap, &hn);
    while (hn) {
        uint64_t key = heap_pop(heap, &hn);
        int32_t i = (int32_t)(uint32_t)key, rank = (int32_t)(key >> 32);
        if (s[i].rank != rank) continue; /* stale: the pair has changed */
        int32_t j = s[i].next;
        s[i].id = s[i].merged;
        s[i].next = s[j].next;
        if (s[j].next < n) s[s[j].next].prev = i;
        s[j].rank = BPE_NO_RANK; /* j is gone */
        queue_pair(m, s, n, i, heap, &hn);
        if (s[i].prev >= 0) queue_pair(m, s, n, s[i].prev, heap, &hn);
    }
    for (int32_t i = 0; i < n; i = s[i].next)
        if (emit(e, s[i].id)) return SLM_ENOMEM;
    return 0;
}

int bpe_encode(const bpe_model *m, bpe_encoder *e, const uint8_t *text, size_t len, char *err,
               size_t errlen)
{
    /* English is about 0.23 tokens per byte; reserving a bit more up front
     * saves most regrowth. */
    if (reserve_out(e, len / 3 + 16))
        return fail(err, errlen, SLM_ENOMEM, "encode: out of memory");
    for (size_t pos = 0; pos < len;) {
        size_t end = tok_pretokenize_next(text, len, pos), n = end - pos;
        const uint8_t *p = text + pos;
        int rc = 0;
        pos = end;
        if (n == 1) {
            rc = emit(e, m->byte_id[p[0]]);
        } else {
            uint64_t h = bpe_hash(p, n);
            int32_t id = bpe_token_find(m, p, n, h);
            const cache_slot *c;
            if (id >= 0 && id != m->eot) {
                rc = emit(e, id);
            } else if ((c = cache_find(e, p, n, h))) {
                rc = reserve_out(e, c->n_ids);
                if (!rc) memcpy(e->out + e->n_out, e->ids + c->ids_off, c->n_ids * sizeof *e->out);
                e->n_out += rc ? 0 : c->n_ids;
            } else {
                if (n >= INT32_MAX)
                    return fail(err, errlen, SLM_ERANGE,
                                    "encode: a pre-token of %zu bytes (the limit is 2^31-1)", n);
                size_t first = e->n_out;
                rc = merge_piece(m, e, p, (int32_t)n);
                if (!rc && n <= CACHE_MAX_KEY)
                    cache_put(e, p, n, h, e->out + first, e->n_out - first);
            }
        }
        if (rc) return fail(err, errlen, SLM_ENOMEM, "encode: out of memory");
    }
    return 0;
}
