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
 * Threads split the columns. */
void gemv_xw_f32(int level, int R, int K, int N, const float *X, int ldx, const float *W, int ldw,
                 float beta, float *Y, int ldy);

/* y (M) = W (M,K) · x (K) + beta·y, W row-major with row stride ldw >= K:
 * the tied LM head for one token (W = wte). Threads split the rows. */
void gemv_wx_f32(int level, int M, int K, const float *W, int ldw, const float *x, float beta,
                 float *y);

/* gemm_f32's contract in portable C (any M): the level-portable GEMM. */
void gemm_portable_f32(char ta, char tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc);

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

#endif
