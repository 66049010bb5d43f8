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
    int rows_ahead = gemv_prefetch_rows((size_t)(n1 - n0) * sizeof(float));
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

/* y[m0,m1) = beta·y + W[m][:]·x: one row after the other, each left to
 * right, so a thread's rows (adjacent in memory) are one sequential stream,
 * prefetched gemv_prefetch_rows() ahead; two accumulator vectors (lanes hold
 * k mod 32), reduced at the end. Zen 5, in one process taking turns (21
 * rounds), against reading four rows side by side with the next four
 * prefetched: stories15M's LM head (32,000 × 288) 1.09x, GPT-2's (50,257 ×
 * 768) level (1.01x). */
void gemv_wx_avx512(int m0, int m1, int K, const float *W, int ldw, const float *x, float beta,
                    float *y)
{
    int k32 = K / 32 * 32, ahead = gemv_prefetch_rows((size_t)ldw * sizeof(float));
    for (int m = m0; m < m1; m++) {
        const float *w = W + (size_t)m * ldw;
        /* Only this call's rows: the next ones are another thread's. */
        const float *pf = m + ahead < m1 ? w + (size_t)ahead * ldw : NULL;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        int k = 0;
        for (; k < k32; k += 32) {
            if (pf) {
                _mm_prefetch((const char *)(pf + k), _MM_HINT_T0);
                _mm_prefetch((const char *)(pf + k + 16), _MM_HINT_T0);
            }
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k + 16), _mm512_loadu_ps(x + k + 16), a1);
        }
        for (; k < K; k += 16) { /* the tail: masked loads, zeros beyond */
            __mmask16 mt = tail_mask(K - k);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, w + k), _mm512_maskz_loadu_ps(mt, x + k),
                                 a0);
        }
        float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        y[m] = beta == 0.0f ? s : s + beta * y[m];
    }
}
