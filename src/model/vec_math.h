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

/*
 * The same exp on 16 lanes with AVX-512 intrinsics, where the build targets
 * it (-march=native on an AVX-512 machine; PORTABLE=1 builds use the loops
 * above): compiled from `omp declare simd`, vec_expf costs about twice as
 * much per element (GELU forward 1.25 vs 0.65 ns per element from L1 on the
 * Xeon). Same steps, so the same values up to the last bit (the FMAs round
 * once where the C rounds twice): n by vrndscaleps, the Cody–Waite
 * reduction as two FMAs, 2^n by vscalefps. The clamp takes x second, so a
 * NaN passes through it.
 */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define SLM_VEC512 1
#include <immintrin.h>

static inline __m512 vec_expf16(__m512 x)
{
    __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654f), _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_set1_ps(88.37626f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps((__mmask16)~underflow, y, n);
}

/* Lanes [0, n) of 16, n >= 1: the mask of a row's last, short vector. */
static inline __mmask16 vec_tail16(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}
#endif

#endif
