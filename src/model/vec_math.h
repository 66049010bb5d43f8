/*
 * exp() the compiler can vectorise. glibc's vector expf is only declared
 * under -ffast-math, and a scalar libm call per element costs more than the
 * GEMMs around it for the softmax over a 50k vocabulary and for GELU. This is
 * Cephes' expf (S. Moshier): x = n·ln2 + r with |r| <= ln2/2, a degree-6
 * polynomial for e^r, and 2^n put into the exponent bits. Relative error
 * about 1 ulp (< 2e-7) over the whole range; no branches, so loops using it
 * under `#pragma omp simd` become AVX-512 code.
 */
#ifndef SLM_MODEL_VEC_MATH_H
#define SLM_MODEL_VEC_MATH_H

#include <stdint.h>
#include <string.h>

#pragma omp declare simd notinbranch
static inline float vec_expf(float x)
{
    /* Below -87.3 the result underflows to 0 (also for -inf); above 88.37 it
     * would overflow, so clamp to FLT_MAX-ish (the callers never get there).
     * NaN is carried through to the result, never converted to int. */
    float in = x;
    int underflow = x < -87.33654f;
    x = x > 88.37626f ? 88.37626f : x;
    x = x < -87.33654f ? -87.33654f : x;
    x = x == x ? x : 0.0f;
    /* n = round(x / ln2) with the 1.5·2^23 trick (round-to-nearest mode). */
    const float shifter = 12582912.0f;
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693359375f - n * -2.12194440e-4f; /* Cody–Waite split of ln2 */
    float z = r * r;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    /* 2^n: n in [-126, 128]; split so each factor is a normal float. */
    int32_t ni = (int32_t)n;
    int32_t n1 = ni / 2, n2 = ni - n1;
    uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float p1, p2;
    memcpy(&p1, &b1, 4);
    memcpy(&p2, &b2, 4);
    y = y * p1 * p2;
    y = underflow ? 0.0f : y;
    return in == in ? y : in;
}

#endif
