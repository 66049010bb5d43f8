/*
 * Matrix-vector products with AVX2 + FMA (built with -mavx2 -mfma, run only
 * when CPUID reports them): the same loops as gemv_avx512.c on 8-lane
 * vectors, with scalar tails. Memory-bound; shapes in kernels.h.
 */
#include "kernels/kernels.h"

#include <immintrin.h>

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Y[r][n0,n1) = beta·Y[r] + Σ_k X[r][k]·W[k][n0,n1) for r < R, one row of
 * W at a time with prefetch gemv_prefetch_rows() ahead (see
 * gemv_avx512.c: one sequential stream per thread); every Y[r][n] is summed
 * in k order. */
void gemv_xw_avx2(int R, int K, int n0, int n1, const float *X, int ldx, const float *W, int ldw,
                  float beta, float *Y, int ldy)
{
    int nv = n0 + (n1 - n0) / 8 * 8; /* vector part [n0, nv), scalar tail [nv, n1) */
    for (int r = 0; r < R; r++)
        for (int n = n0; n < n1; n++) {
            float *y = Y + (size_t)r * ldy;
            y[n] = beta == 0.0f ? 0.0f : beta * y[n];
        }
    int rows_ahead = gemv_prefetch_rows((size_t)(n1 - n0) * sizeof(float));
    for (int k = 0; k < K; k++) {
        const float *w = W + (size_t)k * ldw;
        /* rows of this call only */
        const float *ahead = k + rows_ahead < K ? w + (size_t)rows_ahead * ldw : NULL;
        for (int n = n0; n < nv; n += 8) {
            if (ahead && !((n - n0) & 15)) _mm_prefetch((const char *)(ahead + n), _MM_HINT_T0);
            __m256 v = _mm256_loadu_ps(w + n);
            for (int r = 0; r < R; r++) {
                float *y = Y + (size_t)r * ldy + n;
                _mm256_storeu_ps(y, _mm256_fmadd_ps(_mm256_set1_ps(X[(size_t)r * ldx + k]), v,
                                                    _mm256_loadu_ps(y)));
            }
        }
        for (int r = 0; r < R; r++) {
            float xk = X[(size_t)r * ldx + k], *y = Y + (size_t)r * ldy;
            for (int n = nv; n < n1; n++)
                y[n] = __builtin_fmaf(xk, w[n], y[n]);
        }
    }
}

/* y[m0,m1) = beta·y + W[m][:]·x: four rows at a time, 8-lane partial sums
 * reduced at the end, the k tail added in scalar. */
void gemv_wx_avx2(int m0, int m1, int K, const float *W, int ldw, const float *x, float beta,
                  float *y)
{
    int kv = K / 8 * 8;
    int m = m0;
    for (; m + 4 <= m1; m += 4) {
        const float *w[4] = {W + (size_t)m * ldw, W + (size_t)(m + 1) * ldw,
                             W + (size_t)(m + 2) * ldw, W + (size_t)(m + 3) * ldw};
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0; k < kv; k += 8) {
            __m256 xv = _mm256_loadu_ps(x + k);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w[0] + k), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w[1] + k), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w[2] + k), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w[3] + k), xv, a3);
        }
        float s[4] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)};
        for (int r = 0; r < 4; r++) {
            for (int k = kv; k < K; k++)
                s[r] = __builtin_fmaf(w[r][k], x[k], s[r]);
            y[m + r] = beta == 0.0f ? s[r] : s[r] + beta * y[m + r];
        }
    }
    for (; m < m1; m++) {
        const float *w0 = W + (size_t)m * ldw;
        __m256 a0 = _mm256_setzero_ps();
        for (int k = 0; k < kv; k += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), _mm256_loadu_ps(x + k), a0);
        float s = hsum8(a0);
        for (int k = kv; k < K; k++)
            s = __builtin_fmaf(w0[k], x[k], s);
        y[m] = beta == 0.0f ? s : s + beta * y[m];
    }
}
