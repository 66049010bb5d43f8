/*
 * LayerNorm (Ba, Kiros & Hinton 2016) over the channels of each position:
 *   y = (x − μ)/sqrt(σ² + eps) · w + b,   μ, σ² the mean and (biased)
 *   variance of the row. GPT-2 applies it before each sub-layer (pre-LN).
 */
#include "model/layers.h"

#include <math.h>

// inp, out are (N,C); w, b (C); mean, rstd (N)
void layer_norm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                        const float *b, size_t N, int C, float eps)
{
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (size_t r = 0; r < N; r++) {
        const float *x = inp + r * C;
        float *y = out + r * C;
        /* Two passes (mean, then squared deviations): no cancellation when
         * |μ| >> σ, which a residual stream can reach late in training. */
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += x[c];
        float mu = s / (float)C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) v += (x[c] - mu) * (x[c] - mu);
        float rs = 1.0f / sqrtf(v / (float)C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = (x[c] - mu) * rs * w[c] + b[c];
        mean[r] = mu;
        rstd[r] = rs;
    }
}

// dout, inp, dinp are (N,C); w, dw, db (C); mean, rstd (N).
// With x̂ = (x − μ)·rstd and g = dout·w (the gradient w.r.t. x̂):
//   dx = rstd · (g − mean(g) − x̂ · mean(g·x̂))
//   dw = Σ_rows dout·x̂,   db = Σ_rows dout
// dinp accumulates (the residual stream's gradient flows through both paths).
void layer_norm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                         const float *mean, const float *rstd, const float *w, size_t N, int C)
{
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (size_t r = 0; r < N; r++) {
        const float *x = inp + r * C, *dy = dout + r * C;
        float *dx = dinp + r * C;
        float mu = mean[r], rs = rstd[r];
        float g_mean = 0.0f, gx_mean = 0.0f;
#pragma omp simd reduction(+ : g_mean, gx_mean)
        for (int c = 0; c < C; c++) {
            float g = dy[c] * w[c];
            g_mean += g;
            gx_mean += g * (x[c] - mu) * rs;
        }
        g_mean /= (float)C;
        gx_mean /= (float)C;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - mu) * rs;
            dx[c] += rs * (dy[c] * w[c] - g_mean - xh * gx_mean);
        }
    }
    /* Parameter gradients sum over rows: split the channels between threads
     * so each sum runs in row order (deterministic for any thread count). */
    const int block = 64;
    int n_blocks = (C + block - 1) / block;
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int cb = 0; cb < n_blocks; cb++) {
        int c0 = cb * block, c1 = c0 + block < C ? c0 + block : C;
        float sw[64] = {0}, sb[64] = {0};
        for (size_t r = 0; r < N; r++) {
            const float *x = inp + r * C, *dy = dout + r * C;
            float mu = mean[r], rs = rstd[r];
#pragma omp simd
            for (int c = c0; c < c1; c++) {
                sw[c - c0] += dy[c] * (x[c] - mu) * rs;
                sb[c - c0] += dy[c];
            }
        }
        for (int c = c0; c < c1; c++) {
            dw[c] += sw[c - c0];
            db[c] += sb[c - c0];
        }
    }
}
