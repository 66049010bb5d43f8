/*
 * bf16 linear layers: weights bf16 (the upper 16 bits of a float32), widened
 * to fp32 in registers by a 16-bit shift, multiplied with the fp32
 * activations and summed in fp32. The products are exact, so the paths
 * differ only in the order of the sums. Rows four at a time share each
 * activation load; threads split the rows.
 *
 * Why not vdpbf16ps (2× the fp32 FMA rate on Zen 4, `slm bench isa`): it
 * needs the activations rounded to bf16 too, and decoding is bound by the
 * weight bytes, not the multiplies.
 */
#include "kernels/quant.h"

#include <immintrin.h>
#include <string.h>

static float bf16_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void rows_portable(const qmatrix *w, const float *x, const int *rows, float *out)
{
    for (int r = 0; r < 4; r++) {
        const uint16_t *b = w->bf + (size_t)rows[r] * w->in;
        float acc = 0.0f;
        for (int i = 0; i < w->in; i++)
            acc += bf16_f32(b[i]) * x[i];
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
            s += bf16_f32(b[r][j]) * x[j];
        out[r] = s;
    }
}

__attribute__((target("avx512f,avx512bw"))) static void
rows_avx512(const qmatrix *w, const float *x, const int *rows, float *out)
{
    const uint16_t *b[4];
    __m512 acc[4];
    for (int r = 0; r < 4; r++) {
        b[r] = w->bf + (size_t)rows[r] * w->in;
        acc[r] = _mm512_setzero_ps();
    }
    for (int i = 0; i < w->in; i += 16) {
        /* The tail loads only what is there (masked, zeros beyond). */
        int left = w->in - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, b[r] + i));
            acc[r] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(h, 16)), xv, acc[r]);
        }
    }
    for (int r = 0; r < 4; r++)
        out[r] = _mm512_reduce_add_ps(acc[r]);
}

typedef void (*rows_fn)(const qmatrix *, const float *, const int *, float *);

void bf16_linear(int path, float *y, const float *x, const qmatrix *w, const float *bias, int n)
{
    rows_fn fn = path == QPATH_AVX512 ? rows_avx512
                 : path == QPATH_AVX2 ? rows_avx2
                                      : rows_portable;
    int out = w->out, blocks = (out + 3) / 4;
#pragma omp parallel for schedule(static) if ((size_t)out * w->in * n > 32768)
    for (int ob = 0; ob < blocks; ob++) {
        int o = ob * 4, rows[4];
        for (int r = 0; r < 4; r++)
            rows[r] = o + r < out ? o + r : out - 1;
        for (int t = 0; t < n; t++) {
            float v[4];
            fn(w, x + (size_t)t * w->in, rows, v);
            for (int r = 0; r < 4 && o + r < out; r++)
                y[(size_t)t * out + o + r] = v[r] + (bias ? bias[o + r] : 0.0f);
        }
    }
}
