/*
 * bf16 linear layers: weights bf16 (the upper 16 bits of a float32).
 *
 * One token (decoding): each weight is widened to fp32 in registers (a
 * 16-bit shift) and multiplied with the fp32 activation, summed in fp32:
 * exact products, so the paths differ only in the order of the sums.
 * Decoding is bound by the weight bytes streamed, not by the multiplies,
 * so vdpbf16ps (which needs bf16 activations) would gain nothing there.
 *
 * Several tokens (prompt, evaluation) on AVX512-BF16: the activations are
 * rounded to bf16 once per call and vdpbf16ps multiplies 32 pairs per
 * instruction, 2x the fp32 FMA rate on Zen 4 (slm bench isa), in tiles of
 * four rows by four tokens; as llama.cpp and oneDNN do for bf16 weights.
 * Rows four at a time share each activation load; threads split the rows.
 * From GEMM_MIN_ROWS tokens on, the same bf16 operands go to oneDNN's
 * bf16 GEMM instead (kernels/gemm_bf16.c), which runs AMX tiles where the
 * CPU has them: on the Emerald Rapids Xeon, whose vdpbf16ps runs at half
 * its fp32 FMA rate, it multiplies 3x faster than the tiles below.
 */
#include "kernels/bf16.h"
#include "kernels/quant.h"

#include "kernels/kernels.h"

#include <immintrin.h>
#include <string.h>



static void rows_portable(const qmatrix *w, const float *x, const int *rows, float *out)
{
    for (int r = 0; r < 4; r++) {
        const uint16_t *b = w->bf + (size_t)rows[r] * w->in;
        float acc = 0.0f;
        for (int i = 0; i < w->in; i++)
            acc += bf16_widen(b[i]) * x[i];
        out[r] = acc;
    }
}

__attribute__((target("avx2,fma"))) static void rows_avx2(const qmatrix *w, const float *x,
                                                          const int *rows, float *out)
{
    const uint16_t *b[4];
    __m256 acc[4];
    for (int r = 0; r < 4; r++) {
        b[r] = w->bf + (size_t)rows[r] * w->in;
        acc[r] = _mm256_setzero_ps();
    }
    int i = 0;
    for (; i + 8 <= w->in; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(b[r] + i)));
            acc[r] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(h, 16)), xv, acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) {
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[r]), _mm256_extractf128_ps(acc[r], 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        float s = _mm_cvtss_f32(h);
        for (int j = i; j < w->in; j++)
            s += bf16_widen(b[r][j]) * x[j];
        out[r] = s;
    }
}

/* One row after the other, each left to right: the four rows (adjacent in
 * memory) are then one sequential stream, which the prefetcher follows at
 * the machine's read rate; reading the four side by side ran at 0.75-0.8x
 * of it (Zen 5, GPT-2 124M's matrices). Two accumulators per row hide the
 * FMA latency. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) static void
rows_avx512(const qmatrix *w, const float *x, const int *rows, float *out)
{
    int in = w->in;
    for (int r = 0; r < 4; r++) {
        const uint16_t *b = w->bf + (size_t)rows[r] * in;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        int i = 0;
        for (; i + 32 <= in; i += 32) {
            /* The same columns four rows on (the thread's next call): the
             * hardware prefetcher alone keeps fewer lines in flight than
             * DRAM needs (measured with the int8 kernel). */
            _mm_prefetch((const char *)(b + (size_t)4 * in + i), _MM_HINT_T0);
            __m512i h0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(b + i)));
            __m512i h1 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(b + i + 16)));
            a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(h0, 16)),
                                 _mm512_loadu_ps(x + i), a0);
            a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(h1, 16)),
                                 _mm512_loadu_ps(x + i + 16), a1);
        }
        for (; i < in; i += 16) { /* the tail: masked loads, zeros beyond */
            int left = in - i;
            __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, b + i));
            a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(h, 16)),
                                 _mm512_maskz_loadu_ps(m, x + i), a0);
        }
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

/* x (n,in) rounded to bf16 (nearest even) into xb (n,in32), zero padded. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16"))) static void
round_rows_bf16(const float *x, int n, int in, int in32, uint16_t *xb)
{
    for (int t = 0; t < n; t++)
        for (int i = 0; i < in32; i += 32) {
            int left = in - i;
            __mmask16 mlo = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            __mmask16 mhi = left >= 32  ? 0xffff
                            : left > 16 ? (__mmask16)((1u << (left - 16)) - 1)
                                        : 0;
            const float *xr = x + (size_t)t * in + i;
            __m512bh b = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(mhi, xr + 16),
                                             _mm512_maskz_loadu_ps(mlo, xr));
            _mm512_store_si512((void *)(xb + (size_t)t * in32 + i), (__m512i)b);
        }
}

/* Four rows × four tokens with vdpbf16ps (prompt processing): the
 * activations rounded to bf16 once per call, then 32 products per
 * instruction, summed in fp32 (2x the fp32 FMA rate on Zen 4: slm bench
 * isa). Named registers: 16 accumulators, 4 activation vectors. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16"))) static void
tile_bf16(const qmatrix *w, const uint16_t *xb, int in32, const int *ts, const int *rows,
          float out[4][4])
{
    const uint16_t *w0 = w->bf + (size_t)rows[0] * w->in;
    const uint16_t *w1 = w->bf + (size_t)rows[1] * w->in;
    const uint16_t *w2 = w->bf + (size_t)rows[2] * w->in;
    const uint16_t *w3 = w->bf + (size_t)rows[3] * w->in;
    const uint16_t *x0 = xb + (size_t)ts[0] * in32;
    const uint16_t *x1 = xb + (size_t)ts[1] * in32;
    const uint16_t *x2 = xb + (size_t)ts[2] * in32;
    const uint16_t *x3 = xb + (size_t)ts[3] * in32;
    __m512 a00 = _mm512_setzero_ps(), a01 = _mm512_setzero_ps(), a02 = _mm512_setzero_ps(),
           a03 = _mm512_setzero_ps(), a10 = _mm512_setzero_ps(), a11 = _mm512_setzero_ps(),
           a12 = _mm512_setzero_ps(), a13 = _mm512_setzero_ps(), a20 = _mm512_setzero_ps(),
           a21 = _mm512_setzero_ps(), a22 = _mm512_setzero_ps(), a23 = _mm512_setzero_ps(),
           a30 = _mm512_setzero_ps(), a31 = _mm512_setzero_ps(), a32 = _mm512_setzero_ps(),
           a33 = _mm512_setzero_ps();
    for (int i = 0; i < w->in; i += 32) {
        int left = w->in - i;
        __mmask32 m = left >= 32 ? ~(__mmask32)0 : (((__mmask32)1 << left) - 1);
        __m512bh v0 = (__m512bh)_mm512_load_si512((const void *)(x0 + i));
        __m512bh v1 = (__m512bh)_mm512_load_si512((const void *)(x1 + i));
        __m512bh v2 = (__m512bh)_mm512_load_si512((const void *)(x2 + i));
        __m512bh v3 = (__m512bh)_mm512_load_si512((const void *)(x3 + i));
        {
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w0 + i);
            a00 = _mm512_dpbf16_ps(a00, wv, v0);
            a01 = _mm512_dpbf16_ps(a01, wv, v1);
            a02 = _mm512_dpbf16_ps(a02, wv, v2);
            a03 = _mm512_dpbf16_ps(a03, wv, v3);
        }
        {
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w1 + i);
            a10 = _mm512_dpbf16_ps(a10, wv, v0);
            a11 = _mm512_dpbf16_ps(a11, wv, v1);
            a12 = _mm512_dpbf16_ps(a12, wv, v2);
            a13 = _mm512_dpbf16_ps(a13, wv, v3);
        }
        {
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w2 + i);
            a20 = _mm512_dpbf16_ps(a20, wv, v0);
            a21 = _mm512_dpbf16_ps(a21, wv, v1);
            a22 = _mm512_dpbf16_ps(a22, wv, v2);
            a23 = _mm512_dpbf16_ps(a23, wv, v3);
        }
        {
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w3 + i);
            a30 = _mm512_dpbf16_ps(a30, wv, v0);
            a31 = _mm512_dpbf16_ps(a31, wv, v1);
            a32 = _mm512_dpbf16_ps(a32, wv, v2);
            a33 = _mm512_dpbf16_ps(a33, wv, v3);
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

typedef void (*rows_fn)(const qmatrix *, const float *, const int *, float *);

/* Tokens from which a product goes to oneDNN's bf16 GEMM. */
#define GEMM_MIN_ROWS 8

size_t bf16_work_bytes(int n, int in)
{
    return (size_t)n * (size_t)((in + 31) & ~31) * sizeof(uint16_t) + 64;
}

void bf16_linear(int path, float *y, const float *x, const qmatrix *w, const float *bias, int n,
                 void *work)
{
    rows_fn fn = path >= QPATH_AVX512 ? rows_avx512
                 : path == QPATH_AVX2 ? rows_avx2
                                      : rows_portable;
    int tiles = path == QPATH_AVX512_BF16 && n > 1, in32 = (w->in + 31) & ~31;
    uint16_t *xb = work;
    if (tiles) round_rows_bf16(x, n, w->in, in32, xb);
    int out = w->out, blocks = (out + 3) / 4;
    if (tiles && n >= GEMM_MIN_ROWS && gemm_bf16_supported()) {
        gemm_bf16('N', 'T', n, out, w->in, 1.0f, xb, in32, w->bf, w->in, 0.0f, y, out);
        if (bias)
            for (int t = 0; t < n; t++)
                for (int o = 0; o < out; o++)
                    y[(size_t)t * out + o] += bias[o];
        return;
    }
#pragma omp parallel for schedule(static) if ((size_t)out * w->in * n > 32768)
    for (int ob = 0; ob < blocks; ob++) {
        int o = ob * 4, rows[4];
        for (int r = 0; r < 4; r++)
            rows[r] = o + r < out ? o + r : out - 1;
        int t = 0;
        for (; tiles && t < n; t += 4) { /* tokens four at a time */
            int ts[4];
            float v[4][4];
            for (int j = 0; j < 4; j++)
                ts[j] = t + j < n ? t + j : n - 1;
            tile_bf16(w, xb, in32, ts, rows, v);
            for (int j = 0; j < 4 && t + j < n; j++)
                for (int r = 0; r < 4 && o + r < out; r++)
                    y[(size_t)(t + j) * out + o + r] = v[j][r] + (bias ? bias[o + r] : 0.0f);
        }
        for (; t < n; t++) {
            float v[4];
            fn(w, x + (size_t)t * w->in, rows, v);
            for (int r = 0; r < 4 && o + r < out; r++)
                y[(size_t)t * out + o + r] = v[r] + (bias ? bias[o + r] : 0.0f);
        }
    }
}
