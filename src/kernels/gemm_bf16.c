/*
 * bf16 GEMMs for training: inputs rounded to bfloat16 (8-bit mantissa),
 * products summed in fp32 (Kalamkar et al. 2019, "A Study of BFLOAT16 for
 * Deep Learning Training": bf16 operands, fp32 accumulation and master
 * weights train to fp32's accuracy).
 *
 * oneDNN 2.6 exports dnnl_gemm_bf16bf16f32 (row-major, dnnl_sgemm's
 * conventions) but Debian's dnnl.h does not declare it; the prototype below
 * is the library's (src/cpu/gemm/gemm.cpp). Measured on the training step's
 * shapes on one Zen 4 core (M 256/2048, N and K 384-3072, LM head 50257):
 * 1.8-3.2x dnnl_sgemm. On a CPU whose vdpbf16ps runs at half the fp32 FMA
 * rate (Intel Emerald Rapids, issue 11) it would be a slowdown, so whether
 * training uses it is measured once per process (gemm_bf16_enabled).
 */
#include "kernels/bf16.h"
#include "kernels/kernels.h"

#include "core/cpu.h"
#include "kernels/signal_guard.h"

#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N,
                                    dnnl_dim_t K, float alpha, const uint16_t *A, dnnl_dim_t lda,
                                    const uint16_t *B, dnnl_dim_t ldb, float beta, float *C,
                                    dnnl_dim_t ldc);

/* bf16 must beat fp32 by this factor on the probe to be used: Zen 4
 * measures ~2x, the Xeon of issue 11 ~0.5x, so noise on a busy machine does
 * not flip the choice between a run and its resume. */
#define BF16_MIN_SPEEDUP 1.25

uint16_t f32_to_bf16_one(float x)
{
    return bf16_round(x);
}

float bf16_as_f32(uint16_t h)
{
    return bf16_widen(h);
}

void f32_to_bf16_array(uint16_t *dst, const float *src, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        dst[i] = bf16_round(src[i]);
}

int bf16_transposed_ld(int rows)
{
    int ld = (rows + 31) / 32 * 32;
    return ld % 512 == 0 ? ld + 32 : ld;
}

void f32_to_bf16_transposed(uint16_t *dst, int ldd, const float *src, int rows, int cols, int lds)
{
    enum { TILE = 256 };
    int row_tiles = (rows + TILE - 1) / TILE, col_tiles = (cols + TILE - 1) / TILE;
    int avx512 = kernel_level() == CPU_AVX512;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)rows * cols > 65536)
    for (int rt = 0; rt < row_tiles; rt++)
        for (int ct = 0; ct < col_tiles; ct++) {
            int i0 = rt * TILE, i1 = i0 + TILE < rows ? i0 + TILE : rows;
            int j0 = ct * TILE, j1 = j0 + TILE < cols ? j0 + TILE : cols;
            if (avx512) {
                f32_to_bf16_transposed_avx512(dst, ldd, src, lds, i0, i1, j0, j1);
                continue;
            }
            for (int j = j0; j < j1; j++)
#pragma omp simd
                for (int i = i0; i < i1; i++)
                    dst[(size_t)j * ldd + i] = bf16_round(src[(size_t)i * lds + j]);
        }
}

/* The contract of gemm_bf16 in plain C, element by element: the fallback if
 * oneDNN refuses a product, and a second opinion for tests. */
void gemm_bf16_portable(char ta, char tb, int M, int N, int K, float alpha, const uint16_t *A,
                        int lda, const uint16_t *B, int ldb, float beta, float *C, int ldc)
{
#pragma omp parallel for schedule(static) if ((size_t)M * N * K > 65536)
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) {
                uint16_t a = ta == 'N' ? A[(size_t)i * lda + k] : A[(size_t)k * lda + i];
                uint16_t b = tb == 'N' ? B[(size_t)k * ldb + j] : B[(size_t)j * ldb + k];
                s += bf16_as_f32(a) * bf16_as_f32(b);
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = alpha * s + (beta == 0.0f ? 0.0f : beta * *c);
        }
}

int gemm_bf16_onednn(char ta, char tb, int M, int N, int K, float alpha, const uint16_t *A,
                     int lda, const uint16_t *B, int ldb, float beta, float *C, int ldc)
{
    if (!gemm_bf16_supported()) return -1;
    sigset_t saved;
    signal_guard_enter(&saved);
    dnnl_status_t st = dnnl_gemm_bf16bf16f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    signal_guard_leave(&saved);
    return st == dnnl_success ? 0 : -1;
}

void gemm_bf16(char ta, char tb, int M, int N, int K, float alpha, const uint16_t *A, int lda,
               const uint16_t *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (ta == 'N' && alpha == 1.0f && K > 0 &&
        gemm_bf16_amx(tb, M, N, K, A, lda, B, ldb, beta, C, ldc, NULL) == 0)
        return;
    if (gemm_bf16_onednn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == 0) return;
    gemm_bf16_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_epilogue_apply(int M, int N, float *C, int ldc, const gemm_epilogue *ep)
{
    if (!ep) return;
    /* column ranges in whole 64-byte lines, as the GEMVs split theirs */
    int nt = omp_get_max_threads();
    if ((size_t)M * N < 65536) nt = 1;
    int chunk = ((N + nt - 1) / nt + 15) / 16 * 16;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        int c0 = t * chunk, c1 = c0 + chunk < N ? c0 + chunk : N;
        for (int r0 = 0; r0 < M && c0 < c1; r0 += 32)
            ep->fn(ep->ctx, C + (size_t)r0 * ldc + c0, ldc, r0, c0, M - r0 < 32 ? M - r0 : 32,
                   c1 - c0);
    }
}

void gemm_bf16_fused(char ta, char tb, int M, int N, int K, const uint16_t *A, int lda,
                     const uint16_t *B, int ldb, float beta, float *C, int ldc,
                     const gemm_epilogue *ep)
{
    if (M <= 0 || N <= 0) return;
    if (ta == 'N' && K > 0 && gemm_bf16_amx(tb, M, N, K, A, lda, B, ldb, beta, C, ldc, ep) == 0)
        return;
    gemm_bf16(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    gemm_epilogue_apply(M, N, C, ldc, ep); /* nothing when ep is NULL */
}

const char *gemm_bf16_path_name(void)
{
    return gemm_bf16_amx_supported() ? "own AMX tiles (tdpbf16ps)"
           : gemm_bf16_supported()   ? "oneDNN gemm_bf16bf16f32 (AVX512-BF16)"
                                     : "portable C (no AVX512-BF16 at this level)";
}

int gemm_bf16_supported(void)
{
    return kernel_level() == CPU_AVX512 && cpu_detect().avx512_bf16;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Written once under pthread_once, read-only afterwards. */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int bf16_enabled;
static char bf16_reason[192];

/* fp32 time / bf16 time of one M×N×K product: best of 10 interleaved
 * timings each, after a warm-up of each (oneDNN JIT-compiles on first use):
 * the minimum of many short runs ignores the time other processes take on
 * a busy machine. */
static double probe_speedup(int M, int N, int K)
{
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N),
          *c = malloc(sizeof(float) * M * N);
    uint16_t *ah = malloc(2 * (size_t)M * K), *bh = malloc(2 * (size_t)K * N);
    double ratio = 0.0;
    if (a && b && c && ah && bh) {
        for (int i = 0; i < M * K; i++)
            a[i] = (float)(((unsigned)i * 7919u) % 1000u) * 1e-3f - 0.5f;
        for (int i = 0; i < K * N; i++)
            b[i] = (float)(((unsigned)i * 104729u) % 1000u) * 1e-3f - 0.5f;
        f32_to_bf16_array(ah, a, (size_t)M * K);
        f32_to_bf16_array(bh, b, (size_t)K * N);
        double best32 = 1e30, best16 = 1e30;
        sigset_t saved;
        signal_guard_enter(&saved);
        for (int r = 0; r < 11; r++) {
            double t0 = now_s();
            dnnl_sgemm('N', 'N', M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
            double t1 = now_s();
            gemm_bf16('N', 'N', M, N, K, 1.0f, ah, K, bh, N, 0.0f, c, N);
            double t2 = now_s();
            if (r == 0) continue;
            best32 = t1 - t0 < best32 ? t1 - t0 : best32;
            best16 = t2 - t1 < best16 ? t2 - t1 : best16;
        }
        signal_guard_leave(&saved);
        ratio = best32 / best16;
    }
    free(a), free(b), free(c), free(ah), free(bh);
    return ratio;
}

static void probe(void)
{
    const char *force = getenv("SLM_BF16_GEMM");
    /* Forcing bf16 where the CPU lacks it runs the portable loops: slow, but
     * the same arithmetic, so tests cover the bf16 path on every machine. */
    if (force && (!strcmp(force, "0") || !strcmp(force, "1"))) {
        bf16_enabled = force[0] == '1';
        snprintf(bf16_reason, sizeof bf16_reason, "%s GEMMs: forced by SLM_BF16_GEMM=%s%s",
                 bf16_enabled ? "bf16" : "fp32", force,
                 bf16_enabled && !gemm_bf16_supported() ? " (portable C: no AVX512-BF16)" : "");
        return;
    }
    if (!gemm_bf16_supported()) {
        snprintf(bf16_reason, sizeof bf16_reason, "fp32 GEMMs: no AVX512-BF16 at kernel level %s",
                 cpu_level_name(kernel_level()));
        return;
    }
    /* Two layer shapes, and bf16 must win on both: a GPT-2 layer at
     * B·T = 256 (256×768×768), and a small model's at many rows
     * (2048×768×256, the demo's width), where a library's bf16 GEMM can
     * lose to its own sgemm (oneDNN 2.6 on the Xeon: 0.65× at K = 256).
     * ~0.15 s. A busy moment can still sink one probe (on the 2-core VM,
     * under `perf record`: 1.11x where the same build measures 1.7-2.6x,
     * in 2 of 4 start-ups; none in 10 without it), and a run's path should
     * not depend on it: a probe that says fp32 is repeated, up to three
     * times, keeping each shape's best. Where bf16 really loses, every
     * attempt says so. */
    double wide = 0.0, shallow = 0.0;
    for (int attempt = 0; attempt < 3; attempt++) {
        double w = probe_speedup(256, 768, 768), s = probe_speedup(2048, 768, 256);
        wide = w > wide ? w : wide;
        shallow = s > shallow ? s : shallow;
        if (wide >= BF16_MIN_SPEEDUP && shallow >= BF16_MIN_SPEEDUP) break;
    }
    double x = wide < shallow ? wide : shallow;
    bf16_enabled = x >= BF16_MIN_SPEEDUP;
    snprintf(bf16_reason, sizeof bf16_reason,
             "%s GEMMs: bf16 (%s) measured %.2fx and %.2fx fp32 at start-up (bf16 needs >= "
             "%.2fx on both)",
             bf16_enabled ? "bf16" : "fp32", gemm_bf16_path_name(), wide, shallow,
             BF16_MIN_SPEEDUP);
}

int gemm_bf16_enabled(void)
{
    pthread_once(&probe_once, probe);
    return bf16_enabled;
}

const char *gemm_bf16_reason(void)
{
    pthread_once(&probe_once, probe);
    return bf16_reason;
}
