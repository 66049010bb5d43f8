/*
 * Counter-based dropout masks, shared by attention (src/attention) and the
 * model's embedding and residual dropout (src/model/dropout.c).
 *
 * Whether weight (b,h,i,j) survives is a pure function of (seed,b,h,i,j), so the
 * reference and flash implementations drop the same elements, and backward
 * recomputes the mask instead of storing Tq×Tk bits (as FlashAttention does
 * with Philox). A 64-bit row key is mixed once per query row (splitmix64
 * finaliser); each key j then costs one 32-bit "lowbias32" hash, cheap enough to
 * vectorise in the inner loop.
 */
#ifndef SLM_CORE_DROPOUT_MASK_H
#define SLM_CORE_DROPOUT_MASK_H

#include "core/hash.h"

#include <math.h>
#include <stdint.h>

/* Key of query row (b,h,i) in the dropout stream `seed`. */
static inline uint64_t dropout_row_key(uint64_t seed, int b, int h, int i)
{
    uint64_t k = mix64(seed ^ 0x9e3779b97f4a7c15ULL);
    k = mix64(k ^ (uint64_t)(uint32_t)b);
    k = mix64(k ^ ((uint64_t)(uint32_t)h << 32));
    return mix64(k ^ (uint64_t)(uint32_t)i);
}

/* Uniform 32-bit draw for key column j of a row. */
static inline uint32_t dropout_bits(uint64_t row_key, int j)
{
    uint32_t x = (uint32_t)row_key ^ ((uint32_t)j * 0x9e3779b1u);
    x += (uint32_t)(row_key >> 32);
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* Draws below this threshold are dropped: P(drop) = threshold / 2^32 ≈ p. */
static inline uint32_t dropout_threshold(float p)
{
    double t = (double)p * 4294967296.0;
    if (t <= 0.0) return 0;
    if (t >= 4294967295.0) return 4294967295u;
    return (uint32_t)llround(t);
}

static inline int dropout_keep(uint64_t row_key, int j, uint32_t threshold)
{
    return dropout_bits(row_key, j) >= threshold;
}

#endif
