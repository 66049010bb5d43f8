/*
 * SLM_ATTN_FLASH: tiled attention with online softmax (FlashAttention-2,
 * Dao 2023). This file holds what both passes share: the thread count and
 * the workspace report. The passes are flash_forward.c (Algorithm 1) and
 * flash_backward.c (Algorithm 2); every tile product goes through
 * flash_gemm.c.
 *
 * Memory: each thread owns a few tiles (O(D·64) floats) plus O(Tq) row
 * statistics, and in the backward pass, when the heads are too few to keep
 * every thread busy, a private dQ [Tq][D]; nothing is O(Tq·Tk).
 */
#include "attention/flash_internal.h"

#include <omp.h>

int flash_threads(void)
{
    int nt = omp_get_max_threads();
    return nt > 0 ? nt : 1;
}

/* A backward call allocates only the backward workspace, so the peak of a
 * forward + backward step is the larger of the two. */
size_t attn_flash_workspace_bytes(const attn_call *c, int backward)
{
    int nt = flash_threads();
    size_t f = flash_forward_bytes(c, nt);
    if (!backward) return f;
    size_t b = flash_backward_bytes(c, nt);
    return b > f ? b : f;
}
