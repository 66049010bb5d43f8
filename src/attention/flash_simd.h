/*
 * A 16-lane float vector for the flash attention kernels, so the online
 * softmax and the backward elementwise step are written once, for the
 * instruction set of the translation unit (FLASH_ISA, attention/flash_isa.h):
 *   - avx512: one zmm register, intrinsics.
 *   - avx2: two ymm registers, intrinsics; masks expanded to lane vectors.
 *   - portable: a struct of 16 floats with plain loops, and exp2f from libm.
 * Lane masks are 16-bit integers in all three (an AVX-512 __mmask16).
 */
#ifndef SLM_ATTENTION_FLASH_SIMD_H
#define SLM_ATTENTION_FLASH_SIMD_H

#include "core/dropout_mask.h"
#include "attention/flash_isa.h"

#include <math.h>
#include <stdint.h>

#define VF_W 16 /* lanes per vector */

/* Softmax's exponentials are taken in base 2 (flash_internal.h), so the
 * kernels need 2^x. Coefficients of 2^f on
 * [-1/2, 1/2] after the constant 1: a least-squares fit of the relative
 * error reweighted towards minimax (Lawson); with fp32 FMAs the result is
 * within 1.4·2⁻²⁴ of 2^x over [-126, 0]. */
#define FLASH_EXP2_C1 6.931471824645996e-1f
#define FLASH_EXP2_C2 2.4022647738456726e-1f
#define FLASH_EXP2_C3 5.5503323674201965e-2f
#define FLASH_EXP2_C4 9.61843691766262e-3f
#define FLASH_EXP2_C5 1.3398875016719103e-3f
#define FLASH_EXP2_C6 1.5353361959569156e-4f
typedef uint16_t vmask;

/* Lanes l with start + l < limit (all 16, none, or a prefix). */
static inline vmask vm_prefix(int start, int limit)
{
    int n = limit - start;
    if (n >= VF_W) return 0xFFFFu;
    if (n <= 0) return 0;
    return (vmask)((1u << n) - 1u);
}

#if FLASH_ISA == FLASH_ISA_AVX512
#include <immintrin.h>

typedef __m512 vf;

static inline vf vf_load(const float *p)
{
    return _mm512_loadu_ps(p);
}
static inline vf vf_loadz(vmask m, const float *p)
{
    return _mm512_maskz_loadu_ps(m, p);
}
static inline void vf_store(float *p, vf x)
{
    _mm512_storeu_ps(p, x);
}
static inline void vf_storem(float *p, vmask m, vf x)
{
    _mm512_mask_storeu_ps(p, m, x);
}
static inline vf vf_set1(float a)
{
    return _mm512_set1_ps(a);
}
static inline vf vf_add(vf a, vf b)
{
    return _mm512_add_ps(a, b);
}
static inline vf vf_sub(vf a, vf b)
{
    return _mm512_sub_ps(a, b);
}
static inline vf vf_mul(vf a, vf b)
{
    return _mm512_mul_ps(a, b);
}
static inline vf vf_fmadd(vf a, vf b, vf c)
{
    return _mm512_fmadd_ps(a, b, c);
}
/* a·b − c with one rounding */
static inline vf vf_fmsub(vf a, vf b, vf c)
{
    return _mm512_fmsub_ps(a, b, c);
}
static inline vf vf_max(vf a, vf b)
{
    return _mm512_max_ps(a, b);
}
/* Σ of the 16 lanes (a dot product's end) */
static inline float vf_hsum(vf a)
{
    return _mm512_reduce_add_ps(a);
}
/* m ? a : b per lane */
static inline vf vf_sel(vmask m, vf a, vf b)
{
    return _mm512_mask_blend_ps(m, b, a);
}
static inline vmask vf_eq(vf a, vf b)
{
    return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ);
}
/* Lanes l with lim[l] > j (visibility of key j for 16 queries). */
static inline vmask vi_gt(const int32_t *lim, int j)
{
    return _mm512_cmpgt_epi32_mask(_mm512_loadu_si512(lim), _mm512_set1_epi32(j));
}

/*
 * 2^x to within 1.4·2⁻²⁴ relative: x = n + f with n = round(x), |f| <= 1/2,
 * 2^f by a degree-6 polynomial (a near-minimax fit on [-1/2, 1/2]), then
 * ·2^n with vscalefps: ten instructions, no range reduction by ln 2 (the
 * callers' FMA that forms the exponent does the change of base). x below
 * -150 (including -inf, a masked score) gives exactly 0; NaN stays NaN.
 */
static inline vf vf_exp2(vf x)
{
    vmask zero = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-150.0f), _CMP_LT_OQ);
    vf n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vf f = _mm512_sub_ps(x, n);
    vf p = _mm512_set1_ps(FLASH_EXP2_C6);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(FLASH_EXP2_C5));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(FLASH_EXP2_C4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(FLASH_EXP2_C3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(FLASH_EXP2_C2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(FLASH_EXP2_C1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps((vmask)~zero, p, n);
}

/* Dropout keep-mask of key j for 16 query rows whose row keys are split into
 * lo/hi 32-bit halves: dropout_bits(), one lane per row. */
static inline vmask drop_keep_rows(const uint32_t *key_lo, const uint32_t *key_hi, int j,
                                   uint32_t threshold)
{
    __m512i x = _mm512_xor_si512(_mm512_loadu_si512(key_lo),
                                 _mm512_set1_epi32((int)((uint32_t)j * 0x9e3779b1u)));
    x = _mm512_add_epi32(x, _mm512_loadu_si512(key_hi));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x846ca68bu));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    return _mm512_cmpge_epu32_mask(x, _mm512_set1_epi32((int)threshold));
}

/* Dropout keep-mask of keys j0 .. j0+15 for one query row. */
static inline vmask drop_keep_cols(uint64_t row_key, int j0, uint32_t threshold)
{
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i j = _mm512_add_epi32(_mm512_set1_epi32(j0), lane);
    __m512i x = _mm512_xor_si512(_mm512_set1_epi32((int)(uint32_t)row_key),
                                 _mm512_mullo_epi32(j, _mm512_set1_epi32((int)0x9e3779b1u)));
    x = _mm512_add_epi32(x, _mm512_set1_epi32((int)(uint32_t)(row_key >> 32)));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x846ca68bu));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    return _mm512_cmpge_epu32_mask(x, _mm512_set1_epi32((int)threshold));
}

#elif FLASH_ISA == FLASH_ISA_AVX2
#include <immintrin.h>

typedef struct {
    __m256 lo, hi; /* lanes 0-7, 8-15 */
} vf;

/* The 8 lanes of mask bits m (bit l = lane l) as all-ones / zero words. */
static inline __m256i m8(unsigned m)
{
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), bit), bit);
}
static inline vmask mask_of(__m256 lo, __m256 hi)
{
    return (vmask)((unsigned)_mm256_movemask_ps(lo) | (unsigned)_mm256_movemask_ps(hi) << 8);
}
static inline vf vf_make(__m256 lo, __m256 hi)
{
    vf r = {lo, hi};
    return r;
}

static inline vf vf_load(const float *p)
{
    return vf_make(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8));
}
/* vmaskmovps: masked-off lanes are neither read nor faulted on. */
static inline vf vf_loadz(vmask m, const float *p)
{
    return vf_make(_mm256_maskload_ps(p, m8(m & 0xFFu)), _mm256_maskload_ps(p + 8, m8(m >> 8)));
}
static inline void vf_store(float *p, vf x)
{
    _mm256_storeu_ps(p, x.lo);
    _mm256_storeu_ps(p + 8, x.hi);
}
static inline void vf_storem(float *p, vmask m, vf x)
{
    _mm256_maskstore_ps(p, m8(m & 0xFFu), x.lo);
    _mm256_maskstore_ps(p + 8, m8(m >> 8), x.hi);
}
static inline vf vf_set1(float a)
{
    return vf_make(_mm256_set1_ps(a), _mm256_set1_ps(a));
}
static inline vf vf_add(vf a, vf b)
{
    return vf_make(_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi));
}
static inline vf vf_sub(vf a, vf b)
{
    return vf_make(_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi));
}
static inline vf vf_mul(vf a, vf b)
{
    return vf_make(_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi));
}
static inline vf vf_fmadd(vf a, vf b, vf c)
{
    return vf_make(_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi));
}
static inline vf vf_fmsub(vf a, vf b, vf c)
{
    return vf_make(_mm256_fmsub_ps(a.lo, b.lo, c.lo), _mm256_fmsub_ps(a.hi, b.hi, c.hi));
}
static inline vf vf_max(vf a, vf b)
{
    return vf_make(_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi));
}
static inline float vf_hsum(vf a)
{
    __m256 v = _mm256_add_ps(a.lo, a.hi);
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
}
/* m ? a : b per lane */
static inline vf vf_sel(vmask m, vf a, vf b)
{
    return vf_make(_mm256_blendv_ps(b.lo, a.lo, _mm256_castsi256_ps(m8(m & 0xFFu))),
                   _mm256_blendv_ps(b.hi, a.hi, _mm256_castsi256_ps(m8(m >> 8))));
}
static inline vmask vf_eq(vf a, vf b)
{
    return mask_of(_mm256_cmp_ps(a.lo, b.lo, _CMP_EQ_OQ), _mm256_cmp_ps(a.hi, b.hi, _CMP_EQ_OQ));
}
static inline vmask vi_gt(const int32_t *lim, int j)
{
    __m256i jj = _mm256_set1_epi32(j);
    __m256i lo = _mm256_cmpgt_epi32(_mm256_loadu_si256((const __m256i *)lim), jj);
    __m256i hi = _mm256_cmpgt_epi32(_mm256_loadu_si256((const __m256i *)(lim + 8)), jj);
    return mask_of(_mm256_castsi256_ps(lo), _mm256_castsi256_ps(hi));
}

/* 2^x of 8 lanes, the AVX-512 version's scheme; without vscalefps, 2^n is
 * built in the exponent field as 2^(n/2)·2^(n−n/2), both halves normal for
 * every n in [-150, 127] the clamp allows, so results below 2^-126 stay
 * subnormal instead of flushing (one extra rounding there, far below fp32
 * epsilon of anything they are added to). The clamps take x second, so a
 * NaN passes through them, as in the AVX-512 version. */
static inline __m256 exp2_8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-150.0f);
    __m256 zero = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(lo, x));
    __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(x, n);
    __m256 p = _mm256_set1_ps(FLASH_EXP2_C6);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(FLASH_EXP2_C5));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(FLASH_EXP2_C4));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(FLASH_EXP2_C3));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(FLASH_EXP2_C2));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(FLASH_EXP2_C1));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_andnot_ps(zero, _mm256_mul_ps(_mm256_mul_ps(p, s1), s2));
}
static inline vf vf_exp2(vf x)
{
    return vf_make(exp2_8(x.lo), exp2_8(x.hi));
}

/* dropout_bits() on 8 lanes of 32-bit keys (see dropout.h). */
static inline __m256i drop_mix8(__m256i x)
{
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bu));
    return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}
/* Lanes with bits >= threshold (unsigned): AVX2 compares signed, so both
 * sides are shifted by 2^31 first. */
static inline unsigned keep8(__m256i bits, uint32_t threshold)
{
    const __m256i flip = _mm256_set1_epi32((int)0x80000000u);
    __m256i lt = _mm256_cmpgt_epi32(_mm256_xor_si256(_mm256_set1_epi32((int)threshold), flip),
                                    _mm256_xor_si256(bits, flip));
    return ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(lt)) & 0xFFu;
}

/* Dropout keep-mask of key j for 16 query rows (row keys split lo/hi). */
static inline vmask drop_keep_rows(const uint32_t *key_lo, const uint32_t *key_hi, int j,
                                   uint32_t threshold)
{
    __m256i jm = _mm256_set1_epi32((int)((uint32_t)j * 0x9e3779b1u));
    unsigned m = 0;
    for (int h = 0; h < 2; h++) {
        __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(key_lo + 8 * h)), jm);
        x = _mm256_add_epi32(x, _mm256_loadu_si256((const __m256i *)(key_hi + 8 * h)));
        m |= keep8(drop_mix8(x), threshold) << (8 * h);
    }
    return (vmask)m;
}

/* Dropout keep-mask of keys j0 .. j0+15 for one query row. */
static inline vmask drop_keep_cols(uint64_t row_key, int j0, uint32_t threshold)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    unsigned m = 0;
    for (int h = 0; h < 2; h++) {
        __m256i j = _mm256_add_epi32(_mm256_set1_epi32(j0 + 8 * h), lane);
        __m256i x = _mm256_xor_si256(_mm256_set1_epi32((int)(uint32_t)row_key),
                                     _mm256_mullo_epi32(j, _mm256_set1_epi32((int)0x9e3779b1u)));
        x = _mm256_add_epi32(x, _mm256_set1_epi32((int)(uint32_t)(row_key >> 32)));
        m |= keep8(drop_mix8(x), threshold) << (8 * h);
    }
    return (vmask)m;
}

#else /* portable */

typedef struct {
    float f[VF_W];
} vf;

#define VF_MAP(expr)                                                                               \
    vf r_;                                                                                         \
    for (int l = 0; l < VF_W; l++)                                                                 \
        r_.f[l] = (expr);                                                                          \
    return r_

static inline vf vf_load(const float *p)
{
    VF_MAP(p[l]);
}
static inline vf vf_loadz(vmask m, const float *p)
{
    VF_MAP((m >> l) & 1u ? p[l] : 0.0f);
}
static inline void vf_store(float *p, vf x)
{
    for (int l = 0; l < VF_W; l++)
        p[l] = x.f[l];
}
static inline void vf_storem(float *p, vmask m, vf x)
{
    for (int l = 0; l < VF_W; l++)
        if ((m >> l) & 1u) p[l] = x.f[l];
}
static inline vf vf_set1(float a)
{
    VF_MAP(a);
}
static inline vf vf_add(vf a, vf b)
{
    VF_MAP(a.f[l] + b.f[l]);
}
static inline vf vf_sub(vf a, vf b)
{
    VF_MAP(a.f[l] - b.f[l]);
}
static inline vf vf_mul(vf a, vf b)
{
    VF_MAP(a.f[l] * b.f[l]);
}
static inline vf vf_fmadd(vf a, vf b, vf c)
{
    VF_MAP(a.f[l] * b.f[l] + c.f[l]);
}
/* The product of two floats is exact in double: one rounding, as an FMA,
 * without libm's software fmaf on CPUs that lack the instruction. */
static inline vf vf_fmsub(vf a, vf b, vf c)
{
    VF_MAP((float)((double)a.f[l] * b.f[l] - c.f[l]));
}
static inline vf vf_max(vf a, vf b)
{
    VF_MAP(a.f[l] > b.f[l] ? a.f[l] : b.f[l]);
}
static inline float vf_hsum(vf a)
{
    float s = 0.0f;
    for (int l = 0; l < VF_W; l++)
        s += a.f[l];
    return s;
}
static inline vf vf_sel(vmask m, vf a, vf b)
{
    VF_MAP((m >> l) & 1u ? a.f[l] : b.f[l]);
}
static inline vf vf_exp2(vf x)
{
    VF_MAP(x.f[l] < -150.0f ? 0.0f : exp2f(x.f[l] > 127.0f ? 127.0f : x.f[l]));
}
#undef VF_MAP

static inline vmask vf_eq(vf a, vf b)
{
    vmask m = 0;
    for (int l = 0; l < VF_W; l++)
        m |= (vmask)((a.f[l] == b.f[l]) << l);
    return m;
}
static inline vmask vi_gt(const int32_t *lim, int j)
{
    vmask m = 0;
    for (int l = 0; l < VF_W; l++)
        m |= (vmask)((lim[l] > j) << l);
    return m;
}
static inline vmask drop_keep_rows(const uint32_t *key_lo, const uint32_t *key_hi, int j,
                                   uint32_t threshold)
{
    vmask m = 0;
    for (int l = 0; l < VF_W; l++) {
        uint64_t key = (uint64_t)key_hi[l] << 32 | key_lo[l];
        m |= (vmask)((dropout_bits(key, j) >= threshold) << l);
    }
    return m;
}
static inline vmask drop_keep_cols(uint64_t row_key, int j0, uint32_t threshold)
{
    vmask m = 0;
    for (int l = 0; l < VF_W; l++)
        m |= (vmask)((dropout_bits(row_key, j0 + l) >= threshold) << l);
    return m;
}
#endif

#endif
