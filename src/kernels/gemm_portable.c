/*
 * C (M,N) = alpha·op(A)·op(B) + beta·C in plain C: the GEMM of CPUs without
 * AVX2 (built for the x86-64 baseline, SSE2). Not a BLAS, but blocked the
 * way one is: a KB×NB panel of op(B) is packed row-major (whichever way B is
 * stored) so it stays in L2, and a 4-row × 8-column register block of C
 * (eight 4-float accumulators in GCC vector types: SSE2 here, NEON on ARM)
 * runs over the panel's k, broadcasting 4 scalars of A against 2 vectors of
 * the panel per step. Each C[i][j] is summed in k order within a panel and
 * the panels in k order: the result does not depend on the thread count.
 */
#include "kernels/kernels.h"

#include <stddef.h>
#include <string.h>

#define KB 128 /* k per packed panel                           */
#define NB 256 /* columns per packed panel (128 KiB in all)    */
#define MB 32  /* rows of C per thread work item (multiple of 4) */

typedef float v4f __attribute__((vector_size(16)));

static inline v4f v4_load(const float *p)
{
    v4f x;
    memcpy(&x, p, sizeof x);
    return x;
}

/* Bp[k][j] = op(B)(k0 + k, j0 + j) for k < kc, j < nc; columns nc..ceil8
 * zero, so the register block never needs a column tail. */
static void pack_b(float *Bp, char tb, const float *B, int ldb, int k0, int kc, int j0, int nc)
{
    int nc8 = (nc + 7) / 8 * 8;
    for (int k = 0; k < kc; k++) {
        float *row = Bp + (size_t)k * NB;
        for (int j = 0; j < nc; j++)
            row[j] =
                tb == 'N' ? B[(size_t)(k0 + k) * ldb + j0 + j] : B[(size_t)(j0 + j) * ldb + k0 + k];
        for (int j = nc; j < nc8; j++)
            row[j] = 0.0f;
    }
}

/* C[mr][nr] += alpha·Σ_k a(r,k)·Bp[k][0..8) for one 4×8 block (mr <= 4,
 * nr <= 8), a(r,k) = A[r·ars + k·aks]. Rows >= mr re-read row 0 (never
 * stored), so the k loop has no branches. */
static void block_4x8(int mr, int nr, int kc, const float *A, ptrdiff_t ars, ptrdiff_t aks,
                      const float *Bp, float alpha, float *C, int ldc)
{
    v4f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
    ptrdiff_t r1 = mr > 1 ? ars : 0, r2 = mr > 2 ? 2 * ars : 0, r3 = mr > 3 ? 3 * ars : 0;
    for (int k = 0; k < kc; k++) {
        const float *a = A + k * aks, *b = Bp + (size_t)k * NB;
        v4f b0 = v4_load(b), b1 = v4_load(b + 4);
        float x0 = a[0], x1 = a[r1], x2 = a[r2], x3 = a[r3];
        c00 += x0 * b0, c01 += x0 * b1, c10 += x1 * b0, c11 += x1 * b1;
        c20 += x2 * b0, c21 += x2 * b1, c30 += x3 * b0, c31 += x3 * b1;
    }
    v4f acc[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int r = 0; r < mr; r++) {
        float sum[8], *c = C + (size_t)r * ldc;
        memcpy(sum, &acc[r][0], sizeof acc[r][0]);
        memcpy(sum + 4, &acc[r][1], sizeof acc[r][1]);
        for (int j = 0; j < nr; j++)
            c[j] += alpha * sum[j];
    }
}

void gemm_portable_f32(char ta, char tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc)
{
    /* a(i,k) = A[i·ars + k·aks] for either storage of A. */
    ptrdiff_t ars = ta == 'N' ? lda : 1, aks = ta == 'N' ? 1 : lda;
    int n_items = (M + MB - 1) / MB;
#pragma omp parallel for schedule(dynamic) if ((double)M * N * K > 1e6)
    for (int item = 0; item < n_items; item++) {
        int i0 = item * MB, i1 = i0 + MB < M ? i0 + MB : M;
        float Bp[KB * NB]; /* 128 KiB of the thread's stack */
        for (int i = i0; i < i1; i++) {
            float *c = C + (size_t)i * ldc;
            for (int j = 0; j < N; j++)
                c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        }
        for (int j0 = 0; j0 < N; j0 += NB) {
            int nc = N - j0 < NB ? N - j0 : NB;
            for (int k0 = 0; k0 < K; k0 += KB) {
                int kc = K - k0 < KB ? K - k0 : KB;
                pack_b(Bp, tb, B, ldb, k0, kc, j0, nc);
                for (int i = i0; i < i1; i += 4)
                    for (int j = 0; j < nc; j += 8)
                        block_4x8(i1 - i < 4 ? i1 - i : 4, nc - j < 8 ? nc - j : 8, kc,
                                  A + i * ars + k0 * aks, ars, aks, Bp + j, alpha,
                                  C + (size_t)i * ldc + j0 + j, ldc);
            }
        }
    }
}
