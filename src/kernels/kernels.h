/*
 * The dense float32 kernels every GEMM of the model goes through, chosen at
 * run time from CPUID (core/cpu.h), never from the compiler's -march:
 *
 *   level     GEMM (M > 4)                          GEMV (M = 1; M <= 4 if 'N','N')
 *   avx512    oneDNN dnnl_sgemm, JIT for AVX-512    own, kernels/gemv_avx512.c
 *   avx2      oneDNN dnnl_sgemm, capped at AVX2     own, kernels/gemv_avx2.c
 *   portable  own blocked C, kernels/gemm_portable.c own, kernels/gemv_portable.c
 *
 * oneDNN picks its JIT kernels by instruction set, not by CPU name, so a CPU
 * newer than the library still gets its widest kernels (Debian's OpenBLAS
 * 0.3.21 falls back to SSE3 on Emerald Rapids). The level is read once per
 * process: cpu_level(), which SLM_CPU_LEVEL=avx2|portable may lower; oneDNN
 * is capped to the same level (dnnl_set_max_cpu_isa) before its first use.
 *
 * All matrices are row-major. Threads: OpenMP's current setting (oneDNN and
 * our loops share libgomp's pool). Results do not depend on the thread count
 * for the own kernels (each output element is summed in a fixed order).
 */
#ifndef SLM_KERNELS_KERNELS_H
#define SLM_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* The level the kernels of this process run at: CPU_AVX512, CPU_AVX2 or
 * CPU_PORTABLE (core/cpu.h), fixed at the first call. */
int kernel_level(void);

/* One line naming the CPU level and the GEMM/GEMV kernels that run, for
 * `slm info` and `slm bench`, e.g. "avx512: GEMM oneDNN 2.6.3 sgemm (JIT
 * avx512_core), GEMV own avx512". Static storage, valid for the process. */
const char *kernel_path_name(void);

/*
 * C (M,N) = alpha·op(A)·op(B) + beta·C, BLAS sgemm semantics, row-major:
 *   op(A) (M,K) is A (M,K) with lda >= K when ta == 'N', Aᵀ of A (K,M) with
 *   lda >= M when ta == 'T'; likewise op(B) (K,N) from B (K,N) or (N,K).
 *   beta == 0 overwrites C (NaN in C is not propagated).
 * M == 1 (and M <= 4 untransposed, alpha = 1) runs the GEMV kernels, which
 * read B once (decoding); anything else the level's GEMM.
 */
void gemm_f32(char ta, char tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

/* ---- the own kernels, per level (tests call each level directly) ------- */

/* Y (R,N) = X (R,K) · W (K,N) + beta·Y for a few rows R (1 to 4), W
 * row-major with row stride ldw >= N, X and Y with row strides ldx >= K,
 * ldy >= N: the Conv1D layer for one token (or a few), W streamed once.
 * Threads take fixed parts of W's rows, each one contiguous stretch (the
 * parts' sums added in part order), and split columns where there are more
 * threads than parts (gemm.c). */
void gemv_xw_f32(int level, int R, int K, int N, const float *X, int ldx, const float *W, int ldw,
                 float beta, float *Y, int ldy);

/* y (M) = W (M,K) · x (K) + beta·y, W row-major with row stride ldw >= K:
 * the tied LM head for one token (W = wte). Threads split the rows. */
void gemv_wx_f32(int level, int M, int K, const float *W, int ldw, const float *x, float beta,
                 float *y);

/* gemm_f32's contract in portable C (any M): the level-portable GEMM. */
void gemm_portable_f32(char ta, char tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc);

/* How many rows of W ahead the GEMV bodies prefetch: enough whole rows of
 * `row_bytes` each (the part of a row a thread reads) to cover
 * GEMV_PREFETCH_BYTES of its stream. Zen 5, GPT-2 124M's layer GEMVs in one
 * process taking turns (21 rounds): 4 or 8 KiB ran 1.07x the rate of a
 * fixed 8 rows (74-98 KB at its widths, more than L1 holds: lines fetched
 * that early were evicted again before use), 16 KiB 1.04x, 32 KiB 1.01x;
 * decoding GPT-2 124M 1.06x, stories15M's dims 1.03x. */
#define GEMV_PREFETCH_BYTES 8192
static inline int gemv_prefetch_rows(size_t row_bytes)
{
    return row_bytes == 0 ? 1 : (int)((GEMV_PREFETCH_BYTES + row_bytes - 1) / row_bytes);
}

/* Per-ISA GEMV bodies behind gemv_xw_f32 / gemv_wx_f32, each in its own
 * translation unit built for that instruction set (Makefile: *_avx512.c,
 * *_avx2.c). Serial over [n0,n1) columns or [m0,m1) rows: the caller threads. */
void gemv_xw_avx512(int R, int K, int n0, int n1, const float *X, int ldx, const float *W, int ldw,
                    float beta, float *Y, int ldy);
void gemv_xw_avx2(int R, int K, int n0, int n1, const float *X, int ldx, const float *W, int ldw,
                  float beta, float *Y, int ldy);
void gemv_xw_portable(int R, int K, int n0, int n1, const float *X, int ldx, const float *W,
                      int ldw, float beta, float *Y, int ldy);
void gemv_wx_avx512(int m0, int m1, int K, const float *W, int ldw, const float *x, float beta,
                    float *y);
void gemv_wx_avx2(int m0, int m1, int K, const float *W, int ldw, const float *x, float beta,
                  float *y);
void gemv_wx_portable(int m0, int m1, int K, const float *W, int ldw, const float *x, float beta,
                      float *y);

/* ---- bf16 inputs, fp32 accumulation (kernels/gemm_bf16.c) --------------- */

/* dst[i] = src[i] rounded to the nearest bfloat16 (ties to even; NaN stays
 * NaN, values past bf16's range become ±inf), as the upper 16 bits of the
 * binary32. Threads for large n. */
void f32_to_bf16_array(uint16_t *dst, const float *src, size_t n);
uint16_t f32_to_bf16_one(float x);
float bf16_as_f32(uint16_t h);

/* gemm_f32's contract with A and B in bf16 and C in fp32: each product of
 * two bf16 values is exact in fp32 and summed in fp32. oneDNN's
 * gemm_bf16_amx where it applies (AMX, A not transposed, alpha 1), else
 * dnnl_gemm_bf16bf16f32 where gemm_bf16_supported(), else (or if oneDNN
 * refuses) gemm_bf16_portable, plain C loops. */
void gemm_bf16(char ta, char tb, int M, int N, int K, float alpha, const uint16_t *A, int lda,
               const uint16_t *B, int ldb, float beta, float *C, int ldc);
/* oneDNN's dnnl_gemm_bf16bf16f32 alone: -1 where gemm_bf16_supported() is
 * 0 or oneDNN refuses (then C is untouched). */
int gemm_bf16_onednn(char ta, char tb, int M, int N, int K, float alpha, const uint16_t *A,
                     int lda, const uint16_t *B, int ldb, float beta, float *C, int ldc);
void gemm_bf16_portable(char ta, char tb, int M, int N, int K, float alpha, const uint16_t *A,
                        int lda, const uint16_t *B, int ldb, float beta, float *C, int ldc);
/* Work on each finished block of a product's C while it is still in L1
 * (a fused epilogue: bias and activation after a layer's GEMM, or the
 * activation's derivative and the bias gradient after its backward GEMM):
 * fn(ctx, c, ldc, row0, col0, rows, cols), c the block's first element.
 * Every column belongs to one thread, which visits its blocks in increasing
 * rows: a column sum the callback keeps is summed in row order, the same
 * for any thread count. */
typedef struct {
    void (*fn)(void *ctx, float *c, int ldc, int row0, int col0, int rows, int cols);
    void *ctx;
} gemm_epilogue;

/* ep over all of C (M×N) in that order: threads split the columns, and each
 * walks its columns 32 rows at a time. For products that ran unfused.
 * ep NULL: nothing. */
void gemm_epilogue_apply(int M, int N, float *C, int ldc, const gemm_epilogue *ep);

/* gemm_bf16 (alpha 1), then ep (may be NULL) on C: inside the AMX kernel
 * where that runs, else gemm_epilogue_apply after the product. */
void gemm_bf16_fused(char ta, char tb, int M, int N, int K, const uint16_t *A, int lda,
                     const uint16_t *B, int ldb, float beta, float *C, int ldc,
                     const gemm_epilogue *ep);

/* C = A·op(B) + beta·C (alpha 1, A not transposed) on Intel AMX tiles
 * (kernels/gemm_bf16_amx.c), ep (may be NULL) on each finished block; -1,
 * with C untouched, where the CPU or the OS offers no AMX or the arguments
 * are outside that (then use gemm_bf16).
 * gemm_bf16 takes this path by itself where it applies. */
int gemm_bf16_amx(char tb, int M, int N, int K, const uint16_t *A, int lda, const uint16_t *B,
                  int ldb, float beta, float *C, int ldc, const gemm_epilogue *ep);
/* 1 if AMX-BF16 runs here: CPUID, the OS's tile state, and Linux's
 * permission for this process (asked for at the first call); the
 * environment variable SLM_AMX=0 says 0 (the path of a CPU without AMX). */
int gemm_bf16_amx_supported(void);
/* dst (cols×rows, ld ldd >= rows) = the bf16 rounding of srcᵀ, src
 * (rows×cols, ld lds): what gemm_bf16 wants for an Aᵀ operand on AMX, where
 * A must hold its depth contiguous. */
void f32_to_bf16_transposed(uint16_t *dst, int ldd, const float *src, int rows, int cols, int lds);
/* The ldd to give such an Aᵀ of `rows` rows: rows rounded up to whole
 * 64-byte lines, plus a line where that is a multiple of 1 KiB. A stride of
 * 1, 2 or 4 KiB puts the 16 rows of an A tile into a few L1 sets, so the A
 * block the AMX kernel reads again across its panel thrashes L1
 * (1.05-1.14× on the weight gradients' GEMMs at 2048 tokens). */
int bf16_transposed_ld(int rows);
/* Seconds that `iters` rounds of four independent tdpbf16ps take on this
 * thread (16×16×32 multiply-adds each; bench isa), or -1 without AMX. */
double gemm_bf16_amx_rate_run(long iters);
/* Its AVX-512 body on the tile of source rows [i0, i1) (i0 a multiple of
 * 16) and columns [j0, j1) (gemm_bf16_amx.c). */
void f32_to_bf16_transposed_avx512(uint16_t *dst, int ldd, const float *src, int lds, int i0,
                                   int i1, int j0, int j1);
/* What gemm_bf16 runs on here (A not transposed), for reports. */
const char *gemm_bf16_path_name(void);
/* 1 if the kernel level is avx512 and the CPU has AVX512-BF16 (vdpbf16ps). */
int gemm_bf16_supported(void);
/* 1 if training with dtype bf16 should run its GEMMs in bf16 in this
 * process: decided once, at the first call, by timing a 256x768x768 and a
 * 2048x768x256 GEMM both ways (bf16 must be >= 1.25x fp32 on both), or
 * forced by the environment
 * variable SLM_BF16_GEMM=1 (bf16, even without AVX512-BF16: portable loops)
 * or 0 (fp32). gemm_bf16_reason() says which and why, for logs. */
int gemm_bf16_enabled(void);
const char *gemm_bf16_reason(void);

#endif
