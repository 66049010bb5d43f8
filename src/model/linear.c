/*
 * GPT-2's Conv1D layers, y = x·W + b with W stored (IN,OUT), through
 * gemm_f32 (kernels/kernels.h: oneDNN or own kernels, chosen by CPUID). Callers fuse the bias into the loop that follows each GEMM
 * (activation, head split, residual add), so only the GEMMs live here, plus
 * the bias gradient.
 */
#include "model/layers.h"

#include "kernels/kernels.h"

// inp is (N,IN), w (IN,OUT), out (N,OUT)
void matmul_forward(float *out, const float *inp, const float *w, size_t N, int IN, int OUT,
                    float beta)
{
    gemm_f32('N', 'N', (int)N, OUT, IN, 1.0f, inp, IN, w, OUT, beta, out, OUT);
}

// dout is (N,OUT), inp (N,IN), w (IN,OUT):
//   dinp (N,IN) = dout · wᵀ   (overwritten)
//   dw (IN,OUT) += inpᵀ · dout
void matmul_backward(float *dinp, float *dw, const float *dout, const float *inp,
                     const float *w, size_t N, int IN, int OUT)
{
    if (dinp)
        gemm_f32('N', 'T', (int)N, IN, OUT, 1.0f, dout, OUT, w, OUT, 0.0f, dinp, IN);
    gemm_f32('T', 'N', IN, OUT, (int)N, 1.0f, inp, IN, dout, OUT, 1.0f, dw, OUT);
}

// dout is (N,OUT), db (OUT) += Σ_rows dout.
// Threads split the columns, each summing its rows in order: deterministic.
void bias_backward(float *db, const float *dout, size_t N, int OUT)
{
    const int block = 128;
    int n_blocks = (OUT + block - 1) / block;
#pragma omp parallel for schedule(static) if (N * OUT > 32768)
    for (int cb = 0; cb < n_blocks; cb++) {
        int c0 = cb * block, c1 = c0 + block < OUT ? c0 + block : OUT;
        float s[128] = {0};
        for (size_t r = 0; r < N; r++) {
            const float *d = dout + r * OUT;
#pragma omp simd
            for (int c = c0; c < c1; c++) s[c - c0] += d[c];
        }
        for (int c = c0; c < c1; c++) db[c] += s[c - c0];
    }
}
