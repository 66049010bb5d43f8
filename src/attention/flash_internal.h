/*
 * Shared by the flash attention files: flash.c (entry points, workspace),
 * flash_forward.c, flash_backward.c and flash_gemm.c (the tile GEMM).
 *
 * FlashAttention-2 (Dao, 2023): the Tq×Tk score matrix is never stored. The
 * forward pass walks key tiles for a block of queries keeping a running max m
 * and sum l per query (online softmax, Algorithm 1); the backward pass walks
 * query tiles for a block of keys and recomputes P = exp(S − lse) from the
 * lse the forward pass saved (Algorithm 2).
 */
#ifndef SLM_ATTENTION_FLASH_INTERNAL_H
#define SLM_ATTENTION_FLASH_INTERNAL_H

#include "attention/attention_internal.h"

#include <stddef.h>

/* Tile sizes. The forward pass keeps a query block transposed, Qᵀ [D][BR],
 * so query rows are vector lanes (BR a multiple of 16); the backward pass
 * keeps a key block transposed, Kᵀ [D][BC], so keys are lanes. 64 × 64 tiles
 * keep one block's working set (Qᵀ, Sᵀ, O: 48 KiB at D = 64) near L1 size. */
#define FLASH_BR 64 /* query rows per tile (forward: at most; multiple of 16) */
#define FLASH_BC 64 /* keys per tile (backward: at most; multiple of 16)      */

/* Softmax's exponentials are powers of two: exp(s − m) = 2^(s·log2 e − m₂)
 * with m₂ = m·log2 e, one FMA for the exponent (the multiply a natural exp
 * spends on range reduction, FlashAttention-2's exp2f). Scores stay in
 * natural units, so the scale applied to Q or K keeps its exactness (a power
 * of two for D = 64) and lse is returned in natural log units. */
#define FLASH_LOG2E 1.4426950408889634
#define FLASH_LN2 0.6931471805599453

/* flash_gemm modes: what happens to C before the product is added. */
enum { FG_OVERWRITE = 0, FG_ACCUMULATE = 1, FG_ROWSCALE = 2 };

/*
 * C[m][n] = s_m·C[m][n] + Σ_k A[m·ams + k·aks]·B[k·ldb + n] for m < M, n < N,
 * k < K, where s_m = 0 (FG_OVERWRITE), 1 (FG_ACCUMULATE) or rs[m]
 * (FG_ROWSCALE). A is read by scalars with any strides, B by row vectors.
 */
void flash_gemm(int M, int N, int K, const float *A, ptrdiff_t ams, ptrdiff_t aks, const float *B,
                ptrdiff_t ldb, float *C, ptrdiff_t ldc, int mode, const float *rs);

/* Threads the next parallel region will use (OpenMP's current setting). */
int flash_threads(void);

/* Bytes of working memory the pass allocates with nt threads. */
size_t flash_forward_bytes(const attn_call *c, int nt);
size_t flash_backward_bytes(const attn_call *c, int nt);

/* The per-instruction-set copies of the passes (flash_isa.h); flash.c's
 * attn_flash_forward / attn_flash_backward call one by kernel_level(). */
#define FLASH_DECLARE_ISA(sfx)                                                                     \
    int attn_flash_forward_##sfx(const attn_call *c, const float *q, const float *k,               \
                                 const float *v, float *out, float *lse);                          \
    int attn_flash_backward_##sfx(const attn_call *c, const float *q, const float *k,              \
                                  const float *v, const float *out, const float *lse,              \
                                  const float *dout, float *dq, float *dk, float *dv);             \
    size_t flash_forward_bytes_##sfx(const attn_call *c, int nt);                                  \
    size_t flash_backward_bytes_##sfx(const attn_call *c, int nt);
FLASH_DECLARE_ISA(portable)
FLASH_DECLARE_ISA(avx2)
FLASH_DECLARE_ISA(avx512)

/* Rounds a float count up to whole 64-byte lines, so every sub-buffer of a
 * workspace stays 64-byte aligned. */
static inline size_t flash_line(size_t floats)
{
    return (floats + 15) & ~(size_t)15;
}

#endif
