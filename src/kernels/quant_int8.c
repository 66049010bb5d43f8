/*
 * int8 linear layers (Q8_0 weights × Q8_0 activations), four paths with the
 * same integer block sums (see quant.h for the algebra):
 *
 *   y[t][o] = bias[o] + Σ_b s_w[o][b] · s_x[t][b] · Σ_{i in block b} q_w[o][i]·q_x[t][i]
 *
 * Activations are quantized once per call by one C function for every path,
 * so all paths see the same q_x and s_x. Rows are processed four at a time
 * so each activation vector load serves four weight rows; threads split the
 * rows (each output is written by one thread: deterministic).
 */
#include "core/alloc.h"
#include "kernels/quant.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Scratch of one call, carved out of `work` (64-byte aligned pieces). */
typedef struct {
    int in, nb, inpad, nbpad, np;
    int8_t *xq;     /* [n][inpad]   q_x, zero padded to a multiple of 64     */
    float *dx;      /* [n][nbpad]   s_x per block                            */
    int32_t *sx;    /* [n][nbpad]   Σ q_x per block                          */
    int32_t *zinit; /* [n][np][16]  avx512: −128·Σq_x in lanes 0 and 8        */
    float *zdx;     /* [n][np][16]  avx512: s_x of the pair's two blocks     */
} qwork;

static size_t up64(size_t b)
{
    return (b + 63) & ~(size_t)63;
}

/* The next `bytes` of the scratch, keeping every piece 64-byte aligned. */
static void *carve(unsigned char **p, size_t bytes)
{
    void *at = *p;
    *p += up64(bytes);
    return at;
}

static void layout(int n, int in, void *work, qwork *k)
{
    k->in = in;
    k->nb = in / QBLOCK;
    k->inpad = (in + 63) & ~63;
    k->nbpad = k->inpad / QBLOCK;
    k->np = k->nbpad / 2;
    unsigned char *p = work;
    k->xq = carve(&p, (size_t)n * k->inpad);
    k->dx = carve(&p, (size_t)n * k->nbpad * sizeof(float));
    k->sx = carve(&p, (size_t)n * k->nbpad * sizeof(int32_t));
    k->zinit = carve(&p, (size_t)n * k->np * 16 * sizeof(int32_t));
    k->zdx = carve(&p, (size_t)n * k->np * 16 * sizeof(float));
}

size_t int8_work_bytes(int n, int in)
{
    size_t inpad = ((size_t)in + 63) & ~(size_t)63, nbpad = inpad / QBLOCK;
    return up64((size_t)n * inpad) + 2 * up64((size_t)n * nbpad * 4) +
           2 * up64((size_t)n * (nbpad / 2) * 16 * 4);
}

/* The pair vectors of the AVX-512 path from s_x and Σ q_x of one token. */
static void pair_vectors(qwork *k, int t)
{
    const float *d = k->dx + (size_t)t * k->nbpad;
    const int32_t *s = k->sx + (size_t)t * k->nbpad;
    int32_t *zi = k->zinit + (size_t)t * k->np * 16;
    float *zd = k->zdx + (size_t)t * k->np * 16;
    memset(zi, 0, (size_t)k->np * 16 * sizeof *zi);
    for (int p = 0; p < k->np; p++) {
        zi[16 * p] = -128 * s[2 * p];
        zi[16 * p + 8] = -128 * s[2 * p + 1];
        for (int l = 0; l < 8; l++) {
            zd[16 * p + l] = d[2 * p];
            zd[16 * p + 8 + l] = d[2 * p + 1];
        }
    }
}

/* q_x = round(x / s_x) (to nearest even), s_x = max|x|/127 per block of
 * 32: Q8_0. */
static void quantize_rows(const float *x, int n, qwork *k)
{
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * k->in;
        int8_t *q = k->xq + (size_t)t * k->inpad;
        float *d = k->dx + (size_t)t * k->nbpad;
        int32_t *s = k->sx + (size_t)t * k->nbpad;
        memset(q + k->in, 0, (size_t)(k->inpad - k->in));
        for (int b = k->nb; b < k->nbpad; b++)
            d[b] = 0.0f, s[b] = 0;
        for (int b = 0; b < k->nb; b++) {
            const float *xb = xr + b * QBLOCK;
            float amax = 0.0f;
            for (int i = 0; i < QBLOCK; i++)
                amax = fmaxf(amax, fabsf(xb[i]));
            float scale = amax / 127.0f, inv = scale > 0.0f ? 1.0f / scale : 0.0f;
            int32_t sum = 0;
            for (int i = 0; i < QBLOCK; i++) {
                int v = (int)nearbyintf(xb[i] * inv); /* |v| <= 127 by construction */
                q[b * QBLOCK + i] = (int8_t)v;
                sum += v;
            }
            d[b] = scale;
            s[b] = sum;
        }
        pair_vectors(k, t);
    }
}

/* The same numbers 16 lanes at a time (max and the products are exact
 * IEEE operations, vrndscaleps rounds to nearest even like nearbyintf):
 * bit-identical to quantize_rows, which costs 10-15 % of a prompt GEMM. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) static void
quantize_rows_avx512(const float *x, int n, qwork *k)
{
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * k->in;
        int8_t *q = k->xq + (size_t)t * k->inpad;
        float *d = k->dx + (size_t)t * k->nbpad;
        int32_t *s = k->sx + (size_t)t * k->nbpad;
        memset(q + k->in, 0, (size_t)(k->inpad - k->in));
        for (int b = k->nb; b < k->nbpad; b++)
            d[b] = 0.0f, s[b] = 0;
        for (int b = 0; b < k->nb; b++) {
            __m512 lo = _mm512_loadu_ps(xr + b * QBLOCK),
                   hi = _mm512_loadu_ps(xr + b * QBLOCK + 16);
            float amax = _mm512_reduce_max_ps(
                _mm512_max_ps(_mm512_andnot_ps(sign, lo), _mm512_andnot_ps(sign, hi)));
            float scale = amax / 127.0f, inv = scale > 0.0f ? 1.0f / scale : 0.0f;
            __m512 iv = _mm512_set1_ps(inv);
            __m512i a = _mm512_cvtps_epi32(_mm512_roundscale_ps(
                _mm512_mul_ps(lo, iv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            __m512i c = _mm512_cvtps_epi32(_mm512_roundscale_ps(
                _mm512_mul_ps(hi, iv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            _mm_storeu_si128((__m128i *)(q + b * QBLOCK), _mm512_cvtepi32_epi8(a));
            _mm_storeu_si128((__m128i *)(q + b * QBLOCK + 16), _mm512_cvtepi32_epi8(c));
            d[b] = scale;
            s[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(a, c));
        }
        pair_vectors(k, t);
    }
}

/* Four rows o..o+3 (one group, quant.h) of one token: the portable path. */
static void rows_portable(const qmatrix *w, const qwork *k, int t, int o, float *out)
{
    const int8_t *xq = k->xq + (size_t)t * k->inpad;
    const float *dx = k->dx + (size_t)t * k->nbpad;
    const int32_t *sx = k->sx + (size_t)t * k->nbpad;
    for (int r = 0; r < 4; r++) {
        float acc = 0.0f;
        for (int b = 0; b < k->nb; b++) {
            const uint8_t *u = qseg(w, o + r, b >> 1) + QBLOCK * (b & 1);
            /* Σ (u − 128)·q_x as Σ u·q_x − 128·Σ q_x: gcc 12 at -march=native
             * vectorizes the first form of this 32-trip loop into a wrong
             * vpdpbusd (its results differed from every other path). */
            int32_t dot = -128 * sx[b];
            for (int i = 0; i < QBLOCK; i++)
                dot += (int32_t)u[i] * (int32_t)xq[b * QBLOCK + i];
            acc += qseg_scales(w, o + r, b >> 1)[b & 1] * dx[b] * (float)dot;
        }
        out[r] = acc;
    }
}

/* Segment 0 of each of four rows and its scales: segment p is 256 bytes and
 * 8 scales further on (quant.h), block b at 256·(b/2) + 32·(b%2). */
static void row_pointers(const qmatrix *w, int o, const uint8_t **u, const float **s)
{
    for (int r = 0; r < 4; r++) {
        u[r] = qseg(w, o + r, 0);
        s[r] = qseg_scales(w, o + r, 0);
    }
}

static inline size_t block_at(int b)
{
    return 256 * (size_t)(b >> 1) + QBLOCK * (b & 1);
}

static inline size_t scale_at(int b)
{
    return 8 * (size_t)(b >> 1) + (b & 1);
}

/* What a VNNI kernel reads for token t and four rows: q_x, the −128·Σq_x
 * and s_x pair vectors, and each row's segment 0 and scales. */
typedef struct {
    const int8_t *xq;
    const int32_t *zi;
    const float *zd;
    const uint8_t *u[4];
    const float *s[4];
} vnni_operands;

static void vnni_setup(const qmatrix *w, const qwork *k, int t, int o, vnni_operands *a)
{
    a->xq = k->xq + (size_t)t * k->inpad;
    a->zi = k->zinit + (size_t)t * k->np * 16;
    a->zd = k->zdx + (size_t)t * k->np * 16;
    row_pointers(w, o, a->u, a->s);
}

__attribute__((target("avx2"))) static inline float hsum_ymm(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

__attribute__((target("avx2,fma"))) static void rows_avx2(const qmatrix *w, const qwork *k, int t,
                                                          int o, float *out)
{
    const int8_t *xq = k->xq + (size_t)t * k->inpad;
    const float *dx = k->dx + (size_t)t * k->nbpad;
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    const uint8_t *u[4];
    const float *s[4];
    row_pointers(w, o, u, s);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    for (int b = 0; b < k->nb; b++) {
        __m256i xv = _mm256_load_si256((const __m256i *)(xq + b * QBLOCK));
        __m256i ax = _mm256_abs_epi8(xv);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m256i wv =
                _mm256_xor_si256(_mm256_load_si256((const __m256i *)(u[r] + block_at(b))), flip);
            __m256i p16 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv, xv));
            __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
            acc[r] = _mm256_fmadd_ps(f, _mm256_set1_ps(s[r][scale_at(b)] * dx[b]), acc[r]);
        }
    }
    for (int r = 0; r < 4; r++)
        out[r] = hsum_ymm(acc[r]);
}

/* AVX-VNNI: the AVX-512 path's algebra on ymm, one block of 32 per vector:
 * lanes 0-7 of a pair vector belong to its first block, 8-15 to its
 * second, so block b's −128·Σq_x and s_x vectors start at 8·b. */
__attribute__((target("avx2,fma,avxvnni"))) static void
rows_avxvnni(const qmatrix *w, const qwork *k, int t, int o, float *out)
{
    vnni_operands a;
    vnni_setup(w, k, t, o, &a);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    for (int b = 0; b < k->nb; b++) {
        __m256i xv = _mm256_load_si256((const __m256i *)(a.xq + QBLOCK * b));
        __m256i init = _mm256_load_si256((const __m256i *)(a.zi + 8 * b));
        __m256 dxv = _mm256_load_ps(a.zd + 8 * b);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m256i wv = _mm256_load_si256((const __m256i *)(a.u[r] + block_at(b)));
            __m256i dot = _mm256_dpbusd_avx_epi32(init, wv, xv);
            acc[r] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                _mm256_mul_ps(_mm256_set1_ps(a.s[r][scale_at(b)]), dxv), acc[r]);
        }
    }
    for (int r = 0; r < 4; r++)
        out[r] = hsum_ymm(acc[r]);
}

/* Segments (256 bytes of four rows each) the one-token kernel prefetches
 * ahead: 8, 16 and 32 measured alike, 4 less. */
#define PREFETCH_SEGMENTS 16

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))) static void
rows_avx512(const qmatrix *w, const qwork *k, int t, int o, float *out)
{
    vnni_operands a;
    vnni_setup(w, k, t, o, &a);
    const __m512i pair = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    /* Pairs of blocks per zmm: one 64-byte segment (an odd last block's
     * other half is padding: q_w = 0, scale 0, q_x = 0). */
    for (int p = 0; p < k->np; p++) {
        /* The four rows' segments are one stream (quant.h): fetch it 4 KiB
         * ahead, into the next group of rows at the end of this one (the
         * thread's next). A prefetch past the matrix is a no-op. Measured
         * on the Xeon, 50257x768, 2 threads: 17 -> 20-23 GB/s. */
        for (int l = 0; l < 4; l++)
            _mm_prefetch((const char *)(a.u[0] + 256 * (p + PREFETCH_SEGMENTS) + 64 * l),
                         _MM_HINT_T0);
        _mm_prefetch((const char *)(a.s[0] + 8 * (p + PREFETCH_SEGMENTS)), _MM_HINT_T0);
        __m512i xv = _mm512_load_si512((const void *)(a.xq + 64 * p));
        __m512i init = _mm512_load_si512((const void *)(a.zi + 16 * p));
        __m512 dxv = _mm512_load_ps(a.zd + 16 * p);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m512i wv = _mm512_load_si512((const void *)(a.u[r] + 256 * p));
            __m512i dot = _mm512_dpbusd_epi32(init, wv, xv);
            __m128 s2 = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(a.s[r] + 8 * p)));
            __m512 sw = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(s2));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(sw, dxv), acc[r]);
        }
    }
    for (int r = 0; r < 4; r++)
        out[r] = _mm512_reduce_add_ps(acc[r]);
}

/* Four rows × four tokens (prompt processing): each weight load and scale
 * permute serves four tokens, each activation load four rows. Written out
 * with named registers (16 accumulators, 12 per-token vectors): gcc keeps
 * arrays of vectors on the stack. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))) static void
tile_avx512(const qmatrix *w, const qwork *k, const int *ts, int o, float out[4][4])
{
    const __m512i pair = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const uint8_t *u[4];
    const float *s[4];
    row_pointers(w, o, u, s);
    const uint8_t *u0 = u[0], *u1 = u[1], *u2 = u[2], *u3 = u[3];
    const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3];
    const int8_t *xq0 = k->xq + (size_t)ts[0] * k->inpad;
    const int32_t *zi0 = k->zinit + (size_t)ts[0] * k->np * 16;
    const float *zd0 = k->zdx + (size_t)ts[0] * k->np * 16;
    const int8_t *xq1 = k->xq + (size_t)ts[1] * k->inpad;
    const int32_t *zi1 = k->zinit + (size_t)ts[1] * k->np * 16;
    const float *zd1 = k->zdx + (size_t)ts[1] * k->np * 16;
    const int8_t *xq2 = k->xq + (size_t)ts[2] * k->inpad;
    const int32_t *zi2 = k->zinit + (size_t)ts[2] * k->np * 16;
    const float *zd2 = k->zdx + (size_t)ts[2] * k->np * 16;
    const int8_t *xq3 = k->xq + (size_t)ts[3] * k->inpad;
    const int32_t *zi3 = k->zinit + (size_t)ts[3] * k->np * 16;
    const float *zd3 = k->zdx + (size_t)ts[3] * k->np * 16;
    __m512 a00 = _mm512_setzero_ps(), a01 = _mm512_setzero_ps(), a02 = _mm512_setzero_ps(),
           a03 = _mm512_setzero_ps(), a10 = _mm512_setzero_ps(), a11 = _mm512_setzero_ps(),
           a12 = _mm512_setzero_ps(), a13 = _mm512_setzero_ps(), a20 = _mm512_setzero_ps(),
           a21 = _mm512_setzero_ps(), a22 = _mm512_setzero_ps(), a23 = _mm512_setzero_ps(),
           a30 = _mm512_setzero_ps(), a31 = _mm512_setzero_ps(), a32 = _mm512_setzero_ps(),
           a33 = _mm512_setzero_ps();
    for (int p = 0; p < k->np; p++) {
        __m512i x0 = _mm512_load_si512((const void *)(xq0 + 64 * p));
        __m512i i0 = _mm512_load_si512((const void *)(zi0 + 16 * p));
        __m512 e0 = _mm512_load_ps(zd0 + 16 * p);
        __m512i x1 = _mm512_load_si512((const void *)(xq1 + 64 * p));
        __m512i i1 = _mm512_load_si512((const void *)(zi1 + 16 * p));
        __m512 e1 = _mm512_load_ps(zd1 + 16 * p);
        __m512i x2 = _mm512_load_si512((const void *)(xq2 + 64 * p));
        __m512i i2 = _mm512_load_si512((const void *)(zi2 + 16 * p));
        __m512 e2 = _mm512_load_ps(zd2 + 16 * p);
        __m512i x3 = _mm512_load_si512((const void *)(xq3 + 64 * p));
        __m512i i3 = _mm512_load_si512((const void *)(zi3 + 16 * p));
        __m512 e3 = _mm512_load_ps(zd3 + 16 * p);
        {
            __m512i wv = _mm512_load_si512((const void *)(u0 + 256 * p));
            __m128 sp = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(s0 + 8 * p)));
            __m512 sw = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(sp));
            a00 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i0, wv, x0)),
                                  _mm512_mul_ps(sw, e0), a00);
            a01 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i1, wv, x1)),
                                  _mm512_mul_ps(sw, e1), a01);
            a02 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i2, wv, x2)),
                                  _mm512_mul_ps(sw, e2), a02);
            a03 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i3, wv, x3)),
                                  _mm512_mul_ps(sw, e3), a03);
        }
        {
            __m512i wv = _mm512_load_si512((const void *)(u1 + 256 * p));
            __m128 sp = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(s1 + 8 * p)));
            __m512 sw = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(sp));
            a10 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i0, wv, x0)),
                                  _mm512_mul_ps(sw, e0), a10);
            a11 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i1, wv, x1)),
                                  _mm512_mul_ps(sw, e1), a11);
            a12 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i2, wv, x2)),
                                  _mm512_mul_ps(sw, e2), a12);
            a13 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i3, wv, x3)),
                                  _mm512_mul_ps(sw, e3), a13);
        }
        {
            __m512i wv = _mm512_load_si512((const void *)(u2 + 256 * p));
            __m128 sp = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(s2 + 8 * p)));
            __m512 sw = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(sp));
            a20 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i0, wv, x0)),
                                  _mm512_mul_ps(sw, e0), a20);
            a21 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i1, wv, x1)),
                                  _mm512_mul_ps(sw, e1), a21);
            a22 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i2, wv, x2)),
                                  _mm512_mul_ps(sw, e2), a22);
            a23 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i3, wv, x3)),
                                  _mm512_mul_ps(sw, e3), a23);
        }
        {
            __m512i wv = _mm512_load_si512((const void *)(u3 + 256 * p));
            __m128 sp = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(s3 + 8 * p)));
            __m512 sw = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(sp));
            a30 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i0, wv, x0)),
                                  _mm512_mul_ps(sw, e0), a30);
            a31 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i1, wv, x1)),
                                  _mm512_mul_ps(sw, e1), a31);
            a32 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i2, wv, x2)),
                                  _mm512_mul_ps(sw, e2), a32);
            a33 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(i3, wv, x3)),
                                  _mm512_mul_ps(sw, e3), a33);
        }
    }
    out[0][0] = _mm512_reduce_add_ps(a00);
    out[1][0] = _mm512_reduce_add_ps(a01);
    out[2][0] = _mm512_reduce_add_ps(a02);
    out[3][0] = _mm512_reduce_add_ps(a03);
    out[0][1] = _mm512_reduce_add_ps(a10);
    out[1][1] = _mm512_reduce_add_ps(a11);
    out[2][1] = _mm512_reduce_add_ps(a12);
    out[3][1] = _mm512_reduce_add_ps(a13);
    out[0][2] = _mm512_reduce_add_ps(a20);
    out[1][2] = _mm512_reduce_add_ps(a21);
    out[2][2] = _mm512_reduce_add_ps(a22);
    out[3][2] = _mm512_reduce_add_ps(a23);
    out[0][3] = _mm512_reduce_add_ps(a30);
    out[1][3] = _mm512_reduce_add_ps(a31);
    out[2][3] = _mm512_reduce_add_ps(a32);
    out[3][3] = _mm512_reduce_add_ps(a33);
}

typedef void (*rows_fn)(const qmatrix *, const qwork *, int, int, float *);

void int8_linear(int path, float *y, const float *x, const qmatrix *w, const float *bias, int n,
                 void *work)
{
    qwork k;
    layout(n, w->in, work, &k);
    if (path == QPATH_AVX512)
        quantize_rows_avx512(x, n, &k);
    else
        quantize_rows(x, n, &k);
    rows_fn fn = path == QPATH_AVX512     ? rows_avx512
                 : path == QPATH_AVX_VNNI ? rows_avxvnni
                 : path == QPATH_AVX2     ? rows_avx2
                                          : rows_portable;
    int out = w->out, blocks = (out + 3) / 4;
#pragma omp parallel for schedule(static) if ((size_t)out * w->in * n > 32768)
    for (int ob = 0; ob < blocks; ob++) {
        /* A last group of fewer than four rows reads padding rows (zeros). */
        int o = ob * 4;
        int t = 0;
        for (; path == QPATH_AVX512 && t + 1 < n; t += 4) { /* tokens four at a time */
            int ts[4];
            float v[4][4];
            for (int j = 0; j < 4; j++)
                ts[j] = t + j < n ? t + j : n - 1;
            tile_avx512(w, &k, ts, o, v);
            for (int j = 0; j < 4 && t + j < n; j++)
                for (int r = 0; r < 4 && o + r < out; r++)
                    y[(size_t)(t + j) * out + o + r] = v[j][r] + (bias ? bias[o + r] : 0.0f);
        }
        for (; t < n; t++) {
            float v[4];
            fn(w, &k, t, o, v);
            for (int r = 0; r < 4 && o + r < out; r++)
                y[(size_t)t * out + o + r] = v[r] + (bias ? bias[o + r] : 0.0f);
        }
    }
}
