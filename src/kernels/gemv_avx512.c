/*
 * Matrix-vector products with AVX-512 (built with -mavx512f/bw/dq/vl, run only
 * when CPUID reports them): decoding one token streams every weight once, so
 * these are bound by memory bandwidth, not by FMAs. Shapes in kernels.h.
 */
#include "kernels/kernels.h"

#include <immintrin.h>

static inline __mmask16 tail_mask(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* Y[r][n0,n1) = beta·Y[r] + Σ_k X[r][k]·W[k][n0,n1) for r < R (R small: one
 * token, or a few; W is read once for all R rows). One row of W at a time,
 * left to right: over a thread's part of the rows (gemv_xw_f32) that is one
 * sequential stream, which the prefetcher follows at full speed, where
 * passes over 8 rows at once (8 streams 9 KB apart) ran at 0.75x of it
 * (Zen 5, GPT-2 124M's layers). Y's lines stay in L1/L2 between rows.
 * Every Y[r][n] is summed in k order, the same for any R and any column
 * split. */
void gemv_xw_avx512(int R, int K, int n0, int n1, const float *X, int ldx, const float *W, int ldw,
                    float beta, float *Y, int ldy)
{
    for (int r = 0; r < R; r++)
        for (int n = n0; n < n1; n += 16) {
            float *y = Y + (size_t)r * ldy;
            __mmask16 m = tail_mask(n1 - n);
            __m512 v = beta == 0.0f
                           ? _mm512_setzero_ps()
                           : _mm512_mul_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m, y + n));
            _mm512_mask_storeu_ps(y + n, m, v);
        }
    /* Software prefetch a few KiB ahead (kernels.h; none ran at 0.45x). */
    int rows_ahead = gemv_xw_prefetch_rows(n0, n1);
    for (int k = 0; k < K; k++) {
        const float *w = W + (size_t)k * ldw;
        /* Only rows of this call: the caller's W may end at row K. */
        const float *ahead = k + rows_ahead < K ? w + (size_t)rows_ahead * ldw : NULL;
        __m512 xk[4];
        for (int r = 0; r < R && r < 4; r++)
            xk[r] = _mm512_set1_ps(X[(size_t)r * ldx + k]);
        for (int n = n0; n < n1; n += 16) {
            __mmask16 m = tail_mask(n1 - n);
            if (ahead) _mm_prefetch((const char *)(ahead + n), _MM_HINT_T0);
            __m512 v = _mm512_maskz_loadu_ps(m, w + n);
            for (int r = 0; r < R; r++) {
                float *y = Y + (size_t)r * ldy + n;
                __m512 x = r < 4 ? xk[r] : _mm512_set1_ps(X[(size_t)r * ldx + k]);
                _mm512_mask_storeu_ps(y, m, _mm512_fmadd_ps(x, v, _mm512_maskz_loadu_ps(m, y)));
            }
        }
    }
}

/* y[m0,m1) = beta·y + W[m][:]·x: four rows at a time, one accumulator vector
 * per row (lanes hold k mod 16), reduced across lanes at the end. */
void gemv_wx_avx512(int m0, int m1, int K, const float *W, int ldw, const float *x, float beta,
                    float *y)
{
    __mmask16 mt = tail_mask(K % 16 ? K % 16 : 16);
    int kv = (K + 15) / 16 - 1; /* full vectors before the (possibly short) last one */
    int m = m0;
    for (; m + 4 <= m1; m += 4) {
        const float *w0 = W + (size_t)m * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (int i = 0; i < kv; i++, k += 16) {
            __m512 xv = _mm512_loadu_ps(x + k);
            /* The same columns of the next four rows (the next pass). */
            _mm_prefetch((const char *)(w0 + 4 * (size_t)ldw + k), _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + 4 * (size_t)ldw + k), _MM_HINT_T0);
            _mm_prefetch((const char *)(w2 + 4 * (size_t)ldw + k), _MM_HINT_T0);
            _mm_prefetch((const char *)(w3 + 4 * (size_t)ldw + k), _MM_HINT_T0);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + k), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + k), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + k), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + k), xv, a3);
        }
        __m512 xv = _mm512_maskz_loadu_ps(mt, x + k);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, w0 + k), xv, a0);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, w1 + k), xv, a1);
        a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, w2 + k), xv, a2);
        a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, w3 + k), xv, a3);
        float s[4] = {_mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2),
                      _mm512_reduce_add_ps(a3)};
        for (int r = 0; r < 4; r++)
            y[m + r] = beta == 0.0f ? s[r] : s[r] + beta * y[m + r];
    }
    for (; m < m1; m++) {
        const float *w0 = W + (size_t)m * ldw;
        __m512 a0 = _mm512_setzero_ps();
        int k = 0;
        for (int i = 0; i < kv; i++, k += 16)
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + k), _mm512_loadu_ps(x + k), a0);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, w0 + k), _mm512_maskz_loadu_ps(mt, x + k),
                             a0);
        float s = _mm512_reduce_add_ps(a0);
        y[m] = beta == 0.0f ? s : s + beta * y[m];
    }
}
