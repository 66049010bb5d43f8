/*
 * SLM_ATTN_FLASH: tiled attention with online softmax (FlashAttention-2,
 * Dao 2023). This file holds what both passes share: the thread count and
 * the workspace report. The passes are flash_forward.c (Algorithm 1) and
 * flash_backward.c (Algorithm 2); every tile product goes through
 * flash_gemm.c.
 *
 * Each pass exists once per instruction set (flash_isa.h); the entry points
 * here run the copy for kernel_level(): AVX-512, AVX2 or portable.
 *
 * Memory: each thread owns a few tiles (O(D·64) floats) plus O(Tq) row
 * statistics, and in the backward pass, when the heads are too few to keep
 * every thread busy, a private dQ [Tq][D]; nothing is O(Tq·Tk).
 */
#include "attention/flash_internal.h"
#include "core/cpu.h"
#include "kernels/kernels.h"

#include <omp.h>

int flash_threads(void)
{
    int nt = omp_get_max_threads();
    return nt > 0 ? nt : 1;
}

int attn_flash_forward(const attn_call *c, const float *q, const float *k, const float *v,
                       float *out, float *lse)
{
    switch (kernel_level()) {
    case CPU_AVX512: return attn_flash_forward_avx512(c, q, k, v, out, lse);
    case CPU_AVX2: return attn_flash_forward_avx2(c, q, k, v, out, lse);
    default: return attn_flash_forward_portable(c, q, k, v, out, lse);
    }
}

int attn_flash_backward(const attn_call *c, const float *q, const float *k, const float *v,
                        const float *out, const float *lse, const float *dout, float *dq, float *dk,
                        float *dv)
{
    switch (kernel_level()) {
    case CPU_AVX512: return attn_flash_backward_avx512(c, q, k, v, out, lse, dout, dq, dk, dv);
    case CPU_AVX2: return attn_flash_backward_avx2(c, q, k, v, out, lse, dout, dq, dk, dv);
    default: return attn_flash_backward_portable(c, q, k, v, out, lse, dout, dq, dk, dv);
    }
}

/* A backward call allocates only the backward workspace, so the peak of a
 * forward + backward step is the larger of the two. The workspace layout is
 * the same in every instruction set's copy. */
size_t attn_flash_workspace_bytes(const attn_call *c, int backward)
{
    int nt = flash_threads();
    size_t f = flash_forward_bytes_portable(c, nt);
    if (!backward) return f;
    size_t b = flash_backward_bytes_portable(c, nt);
    return b > f ? b : f;
}
