/*
 * Matrix-vector products in plain C for CPUs without AVX2 (built for the
 * x86-64 baseline, SSE2, whatever -march the rest of the build uses). The
 * same loop order as the vector versions; `omp simd` lets the compiler use
 * the baseline's 4-lane vectors. Shapes in kernels.h.
 */
#include "kernels/kernels.h"

/* Y[r][n0,n1) = beta·Y[r] + Σ_k X[r][k]·W[k][n0,n1) for r < R, summed in k
 * order per Y[r][n]. */
void gemv_xw_portable(int R, int K, int n0, int n1, const float *X, int ldx, const float *W,
                      int ldw, float beta, float *Y, int ldy)
{
    for (int r = 0; r < R; r++) {
        float *y = Y + (size_t)r * ldy;
        for (int n = n0; n < n1; n++)
            y[n] = beta == 0.0f ? 0.0f : beta * y[n];
    }
    int k = 0;
    for (; k + 4 <= K; k += 4) {
        const float *w0 = W + (size_t)k * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        for (int r = 0; r < R; r++) {
            const float *x = X + (size_t)r * ldx + k;
            float *y = Y + (size_t)r * ldy, x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
#pragma omp simd
            for (int n = n0; n < n1; n++)
                y[n] = y[n] + x0 * w0[n] + x1 * w1[n] + x2 * w2[n] + x3 * w3[n];
        }
    }
    for (; k < K; k++) {
        const float *w0 = W + (size_t)k * ldw;
        for (int r = 0; r < R; r++) {
            float *y = Y + (size_t)r * ldy, x0 = X[(size_t)r * ldx + k];
#pragma omp simd
            for (int n = n0; n < n1; n++)
                y[n] += x0 * w0[n];
        }
    }
}

/* y[m0,m1) = beta·y + W[m][:]·x with 8 partial sums per row (k mod 8), so the
 * compiler can keep them in two 4-lane registers. */
void gemv_wx_portable(int m0, int m1, int K, const float *W, int ldw, const float *x, float beta,
                      float *y)
{
    int kv = K / 8 * 8;
    for (int m = m0; m < m1; m++) {
        const float *w = W + (size_t)m * ldw;
        float p[8] = {0};
        for (int k = 0; k < kv; k += 8)
            for (int l = 0; l < 8; l++)
                p[l] += w[k + l] * x[k + l];
        float s = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
        for (int k = kv; k < K; k++)
            s += w[k] * x[k];
        y[m] = beta == 0.0f ? s : s + beta * y[m];
    }
}
