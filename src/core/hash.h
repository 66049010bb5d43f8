/* The 64-bit mixer and the data hash everything shares:
 *   mix64      the splitmix64 finaliser (Steele et al. 2014): seeds the rng
 *              (core/rng.c), keys the counter-based dropout masks
 *              (core/dropout_mask.h), derives per-site dropout streams.
 *   slm_hash64 (public, slm.h) the content hash of a corpus and of a token
 *              file's ids (core/hash.c), incremental through hash_state. */
#ifndef SLM_CORE_HASH_H
#define SLM_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* slm_hash64 over data given in pieces: every update but the last must be a
 * multiple of 8 bytes. */
typedef struct {
    uint64_t h, total;
} hash_state;

void hash_init(hash_state *s);
void hash_update(hash_state *s, const void *data, size_t len);
uint64_t hash_final(const hash_state *s);

#endif
