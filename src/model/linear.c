/*
 * GPT-2's Conv1D layers, y = x·W + b with W stored (IN,OUT), through
 * gemm_f32 (kernels/kernels.h: oneDNN or own kernels, chosen by CPUID), or
 * gemm_bf16 when the pass runs its GEMMs in bf16 (gpt_gemm, model/gpt.h).
 * Callers fuse the bias into the loop that follows each GEMM
 * (activation, head split, residual add), so only the GEMMs live here, plus
 * the bias gradient.
 */
#include "model/layers.h"

#include "kernels/kernels.h"

/* The bf16 copy of weight w (a view into the parameters), made by
 * gpt_gemm_prepare for this pass. */
static const uint16_t *weight_bf16(const gpt_gemm *mm, const float *w)
{
    return mm->wbf + (w - mm->params);
}

// inp is (N,IN), w (IN,OUT), out (N,OUT)
void matmul_forward(const gpt_gemm *mm, float *out, const float *inp, const float *w, size_t N,
                    int IN, int OUT, float beta, const gemm_epilogue *ep)
{
    if (!mm->bf16) {
        gemm_f32('N', 'N', (int)N, OUT, IN, 1.0f, inp, IN, w, OUT, beta, out, OUT);
        gemm_epilogue_apply((int)N, OUT, out, OUT, ep);
        return;
    }
    f32_to_bf16_array(mm->xa, inp, N * (size_t)IN);
    gemm_bf16_fused('N', 'N', (int)N, OUT, IN, mm->xa, IN, weight_bf16(mm, w), OUT, beta, out, OUT,
                    ep);
}

/* dw (IN,OUT) = inpᵀ·dout + beta·dw with dout_bf the rounded dout (N,OUT)
 * and scratch room for bf16_transposed_ld(N)·IN bf16. AMX reads A with its
 * depth contiguous, so there inpᵀ is rounded and turned over in one pass. */
static void weight_gradient_bf16(uint16_t *scratch, float *dw, const uint16_t *dout_bf,
                                 const float *inp, size_t N, int IN, int OUT, float beta)
{
    if (gemm_bf16_amx_supported()) {
        int ld = bf16_transposed_ld((int)N);
        f32_to_bf16_transposed(scratch, ld, inp, (int)N, IN, IN);
        gemm_bf16('N', 'N', IN, OUT, (int)N, 1.0f, scratch, ld, dout_bf, OUT, beta, dw, OUT);
    } else {
        f32_to_bf16_array(scratch, inp, N * (size_t)IN);
        gemm_bf16('T', 'N', IN, OUT, (int)N, 1.0f, scratch, IN, dout_bf, OUT, beta, dw, OUT);
    }
}

// dout is (N,OUT), inp (N,IN), w (IN,OUT):
//   dinp (N,IN) = dout · wᵀ   (overwritten)
//   dw (IN,OUT) = inpᵀ · dout + mm->grad_beta·dw
void matmul_backward(const gpt_gemm *mm, float *dinp, float *dw, const float *dout,
                     const float *inp, const float *w, size_t N, int IN, int OUT,
                     const gemm_epilogue *ep)
{
    if (!mm->bf16) {
        if (dinp) {
            gemm_f32('N', 'T', (int)N, IN, OUT, 1.0f, dout, OUT, w, OUT, 0.0f, dinp, IN);
            gemm_epilogue_apply((int)N, IN, dinp, IN, ep);
        }
        gemm_f32('T', 'N', IN, OUT, (int)N, 1.0f, inp, IN, dout, OUT, mm->grad_beta, dw, OUT);
        return;
    }
    /* dout is rounded once for both products; inp again (the forward's
     * copy was overwritten by the next layer's) */
    f32_to_bf16_array(mm->xa, dout, N * (size_t)OUT);
    if (dinp)
        gemm_bf16_fused('N', 'T', (int)N, IN, OUT, mm->xa, OUT, weight_bf16(mm, w), OUT, 0.0f,
                        dinp, IN, ep);
    weight_gradient_bf16(mm->xb, dw, mm->xa, inp, N, IN, OUT, mm->grad_beta);
}

// dout is (N,OUT), db (OUT) += Σ_rows dout.
// Threads split the columns, each summing its rows in order: deterministic.
void bias_backward(float *db, const float *dout, size_t N, int OUT)
{
    /* Blocks of 64 columns: the model's widths (384, 768, 1152, 2304, 3072)
     * then split evenly between 2 threads (128 gave 384 three blocks). */
    const int block = 64;
    int n_blocks = (OUT + block - 1) / block;
#pragma omp parallel for schedule(static) if (N * OUT > 32768)
    for (int cb = 0; cb < n_blocks; cb++) {
        int c0 = cb * block, c1 = c0 + block < OUT ? c0 + block : OUT;
        float s[64] = {0};
        for (size_t r = 0; r < N; r++) {
            const float *d = dout + r * OUT;
#pragma omp simd
            for (int c = c0; c < c1; c++) s[c - c0] += d[c];
        }
        for (int c = c0; c < c1; c++) db[c] += s[c - c0];
    }
}
