/*
 * slm_hash64: 8-byte little-endian words, each through murmur3's 64-bit
 * finaliser (Appleby, MurmurHash3 fmix64), folded with a multiply and a
 * rotation; the length is mixed in at the end. Not cryptographic: it
 * notices a changed corpus or a corrupt token file. The word mixer is
 * murmur's rather than mix64 because hashes already recorded in token
 * caches and checkpoints must keep their values.
 */
#include "core/hash.h"

#include "slm.h"

#include <string.h>

#define HASH_SEED 0x243F6A8885A308D3ULL /* digits of pi: any fixed value */

static uint64_t fmix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

void hash_init(hash_state *s)
{
    s->h = HASH_SEED;
    s->total = 0;
}

void hash_update(hash_state *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    s->total += len;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        s->h = (s->h ^ fmix(w)) * 0x9E3779B97F4A7C15ULL;
        s->h = s->h << 29 | s->h >> 35;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        s->h = (s->h ^ fmix(w ^ 0x8000000000000000ULL)) * 0x9E3779B97F4A7C15ULL;
    }
}

uint64_t hash_final(const hash_state *s)
{
    return fmix(s->h ^ s->total);
}

uint64_t slm_hash64(const void *data, size_t len)
{
    hash_state s;
    hash_init(&s);
    hash_update(&s, data, len);
    return hash_final(&s);
}
