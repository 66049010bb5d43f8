/*
 * bfloat16 ↔ float32, inline so loops over arrays vectorise: bf16 is the
 * upper half of a float32 (same exponent range, 8 bits of significand).
 * Rounding is to nearest, ties to even; a NaN stays a (quiet) NaN.
 */
#ifndef SLM_KERNELS_BF16_H
#define SLM_KERNELS_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#pragma omp declare simd notinbranch
static inline uint16_t bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r);
}

#pragma omp declare simd notinbranch
static inline float bf16_widen(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* dst (n) = src (n) widened; serial (callers pick the threads). */
static inline void bf16_widen_array(float *dst, const uint16_t *src, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        dst[i] = bf16_widen(src[i]);
}

#endif
