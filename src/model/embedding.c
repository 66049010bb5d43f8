/*
 * Token + learned position embedding, the input of GPT-2:
 *   x[b,t,:] = wte[token[b,t],:] + wpe[t,:]
 */
#include "model/layers.h"

// out is (B,T,C), tokens (B,T), wte (V,C), wpe (P,C) with T <= P
void encoder_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                     int B, int T, int C)
{
    size_t N = (size_t)B * T;
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (size_t r = 0; r < N; r++) {
        const float *te = wte + (size_t)tokens[r] * C;
        const float *pe = wpe + (size_t)(r % T) * C;
        float *o = out + r * C;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = te[c] + pe[c];
    }
}

// dout is (B,T,C); dwte (V,C), dwpe (P,C) accumulate.
// A token may appear many times, so rows cannot be split between threads
// without a reduction; splitting the channels instead keeps every sum in the
// same row order whatever the thread count (bit-identical runs).
void encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int B,
                      int T, int C)
{
    size_t N = (size_t)B * T;
    const int block = 64;
    int n_blocks = (C + block - 1) / block;
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int cb = 0; cb < n_blocks; cb++) {
        int c0 = cb * block, c1 = c0 + block < C ? c0 + block : C;
        for (size_t r = 0; r < N; r++) {
            const float *d = dout + r * C;
            float *te = dwte + (size_t)tokens[r] * C;
            float *pe = dwpe + (size_t)(r % T) * C;
#pragma omp simd
            for (int c = c0; c < c1; c++) {
                te[c] += d[c];
                pe[c] += d[c];
            }
        }
    }
}
