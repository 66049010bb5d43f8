/*
 * gemm_f32: the one entry point for every float32 matrix product of the
 * model, routed by the kernel level (kernels.h) and the shape:
 *
 *   M <= 4 ('N','N')  own GEMV: decoding is memory-bound (0.5 flop per weight
 *                     byte), so the kernel streams B once for all rows and
 *                     packs nothing; each output is summed in a fixed order,
 *                     so decoding gives the same bits for any thread count
 *   avx512 / avx2     oneDNN dnnl_sgemm (JIT kernels chosen by instruction set)
 *   portable          own blocked C GEMM
 *
 * Measured (issue 9, Xeon, 2 threads): oneDNN 240-260 GFLOP/s at M = 2048,
 * N 1152/1536, K 384, where Debian's OpenBLAS runs its SSE3 kernels at 34.
 * Here (Zen 4, one thread): oneDNN 105-111 GFLOP/s on most model shapes
 * (OpenBLAS with its Cooperlake kernels 67-99); at M = 4, N 2304, K 768 the
 * GEMV path takes 0.18 ms where oneDNN takes 0.67.
 */
#include "kernels/kernels.h"

#include "core/cpu.h"
#include "kernels/signal_guard.h"

#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>

/* Rows up to which an untransposed product runs on the GEMV kernels. */
#define GEMV_MAX_ROWS 4

/* Written once under pthread_once, read-only afterwards: the level and the
 * report line of this process (oneDNN's ISA cap is process-wide as well). */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int level_of_process;
static char path_name[192];

static const char *dnnl_isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

static void init_kernels(void)
{
    int level = cpu_level();
    level_of_process = level;
    if (level == CPU_PORTABLE) {
        snprintf(path_name, sizeof path_name, "portable: GEMM own blocked C, GEMV own portable");
        return;
    }
    /* Cap oneDNN at our level, so SLM_CPU_LEVEL=avx2 tests its AVX2 kernels
     * on an AVX-512 machine too. Fails only if oneDNN has already JIT-compiled
     * something in this process (then it keeps what it chose). */
    if (level == CPU_AVX2) dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx2);
    const dnnl_version_t *v = dnnl_version();
    snprintf(path_name, sizeof path_name, "%s: GEMM oneDNN %d.%d.%d sgemm (JIT %s), GEMV own %s",
             cpu_level_name(level), v->major, v->minor, v->patch,
             dnnl_isa_name(dnnl_get_effective_cpu_isa()), cpu_level_name(level));
}

int kernel_level(void)
{
    pthread_once(&init_once, init_kernels);
    return level_of_process;
}

const char *kernel_path_name(void)
{
    pthread_once(&init_once, init_kernels);
    return path_name;
}

/* Threads for a memory-bound pass over `bytes`: one per ~64 KiB, so small
 * products (tests, tiny models) do not pay for waking the pool. */
static int gemv_threads(size_t bytes)
{
    int nt = omp_get_max_threads();
    size_t want = bytes / 65536 + 1;
    return want < (size_t)nt ? (int)want : nt;
}

/* Decoding's Conv1D products split W's rows into GEMV_XW_PARTS parts of
 * consecutive rows, fixed by the shape alone (never by the thread count, so
 * the bits do not change with it): part 0 sums into Y, parts 1.. into
 * scratch on this thread's stack, added to Y in part order at the end.
 * Each thread takes whole consecutive parts, so it reads one contiguous
 * stretch of W (Zen 5, GPT-2 124M's layers on 2 threads: 1.3x the rate of
 * splitting the columns, where each thread reads every row's half). Wider
 * products than GEMV_XW_MAX_N columns, or fewer than GEMV_XW_MIN_K rows,
 * split only the columns. With more threads than parts, the parts' columns
 * are split as well (a column split does not change the bits). */
#define GEMV_XW_PARTS 4
#define GEMV_XW_MIN_K 256
#define GEMV_XW_MAX_N 4096

static void gemv_xw_body(int level, int R, int K, int n0, int n1, const float *X, int ldx,
                         const float *W, int ldw, float beta, float *Y, int ldy)
{
    if (level == CPU_AVX512)
        gemv_xw_avx512(R, K, n0, n1, X, ldx, W, ldw, beta, Y, ldy);
    else if (level == CPU_AVX2)
        gemv_xw_avx2(R, K, n0, n1, X, ldx, W, ldw, beta, Y, ldy);
    else
        gemv_xw_portable(R, K, n0, n1, X, ldx, W, ldw, beta, Y, ldy);
}

/* Block q of Q over N outputs, in whole 64-byte lines (threads never share
 * a line of the result). */
static void output_block(int N, int Q, int q, int *n0, int *n1)
{
    int chunk = ((N + Q - 1) / Q + 15) / 16 * 16;
    *n0 = q * chunk < N ? q * chunk : N;
    *n1 = *n0 + chunk < N ? *n0 + chunk : N;
}

void gemv_xw_f32(int level, int R, int K, int N, const float *X, int ldx, const float *W, int ldw,
                 float beta, float *Y, int ldy)
{
    int nt = gemv_threads((size_t)K * N * sizeof(float));
    if (K < GEMV_XW_MIN_K || N > GEMV_XW_MAX_N || R > GEMV_MAX_ROWS) {
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (int t = 0; t < nt; t++) {
            int n0, n1;
            output_block(N, nt, t, &n0, &n1);
            if (n0 < n1) gemv_xw_body(level, R, K, n0, n1, X, ldx, W, ldw, beta, Y, ldy);
        }
        return;
    }
    enum { P = GEMV_XW_PARTS };
    float part[(P - 1) * GEMV_MAX_ROWS * GEMV_XW_MAX_N]; /* 192 KiB at most */
    int Q = (nt + P - 1) / P, tasks = P * Q;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        /* Consecutive tasks, part by part: thread t's rows are contiguous. */
        for (int task = t * tasks / n; task < (t + 1) * tasks / n; task++) {
            int p = task / Q, k0 = p * K / P, k1 = (p + 1) * K / P, n0, n1;
            output_block(N, Q, task % Q, &n0, &n1);
            if (n0 >= n1) continue;
            const float *x = X + k0, *w = W + (size_t)k0 * ldw;
            if (p == 0)
                gemv_xw_body(level, R, k1 - k0, n0, n1, x, ldx, w, ldw, beta, Y, ldy);
            else
                gemv_xw_body(level, R, k1 - k0, n0, n1, x, ldx, w, ldw, 0.0f,
                             part + (size_t)(p - 1) * R * N, N);
        }
#pragma omp barrier
        int n0, n1;
        output_block(N, n, t, &n0, &n1);
        for (int r = 0; r < R; r++) {
            float *y = Y + (size_t)r * ldy;
            for (int c = n0; c < n1; c++) {
                float v = y[c];
                /* Every part was written before the barrier, by whichever
                 * thread took it (cppcheck cannot see across it). */
                for (int p = 1; p < P; p++)
                    // cppcheck-suppress uninitvar
                    v += part[((size_t)(p - 1) * R + r) * N + c];
                y[c] = v;
            }
        }
    }
}

void gemv_wx_f32(int level, int M, int K, const float *W, int ldw, const float *x, float beta,
                 float *y)
{
    int nt = gemv_threads((size_t)M * K * sizeof(float));
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        int m0, m1;
        output_block(M, nt, t, &m0, &m1);
        if (m0 >= m1) continue;
        if (level == CPU_AVX512)
            gemv_wx_avx512(m0, m1, K, W, ldw, x, beta, y);
        else if (level == CPU_AVX2)
            gemv_wx_avx2(m0, m1, K, W, ldw, x, beta, y);
        else
            gemv_wx_portable(m0, m1, K, W, ldw, x, beta, y);
    }
}

/* C = beta·C: the whole product when K == 0 (BLAS leaves alpha·0 out). */
static void scale_c(int M, int N, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
}

void gemm_f32(char ta, char tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    int level = kernel_level();
    /* One row of C: x·op(B), with x a row of A (or a column of Aᵀ, contiguous
     * only when lda == 1 or K == 1; a strided one goes to the GEMM). The
     * GEMVs have no alpha: the model's products all have alpha = 1. */
    if (M == 1 && alpha == 1.0f && (ta == 'N' || lda == 1 || K == 1)) {
        if (tb == 'N')
            gemv_xw_f32(level, 1, K, N, A, K, B, ldb, beta, C, N);
        else
            gemv_wx_f32(level, N, K, B, ldb, A, beta, C);
        return;
    }
    /* A few rows (a short prompt chunk, a tiny batch): still memory-bound,
     * and the GEMV reads B once for all of them where a GEMM's packing costs
     * more than the product (oneDNN: 21 GFLOP/s at M = 4, N 2304, K 768 on
     * one Zen 4 core; this path streams B at memory speed). */
    if (M <= GEMV_MAX_ROWS && alpha == 1.0f && ta == 'N' && tb == 'N') {
        gemv_xw_f32(level, M, K, N, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (level == CPU_PORTABLE) {
        gemm_portable_f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    sigset_t saved;
    signal_guard_enter(&saved);
    dnnl_status_t st = dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    signal_guard_leave(&saved);
    if (st != dnnl_success)
        gemm_portable_f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
