/*
 * C (M,N) = alpha·op(A)·op(B) + beta·C in plain C: the GEMM of CPUs without
 * AVX2 (built for the x86-64 baseline). Not a BLAS, but blocked so it is not
 * hopeless: a KB×NB panel of op(B) is packed row-major (whichever way B is
 * stored) into a buffer that stays in L1/L2, then every row of the thread's
 * block of C takes axpy updates C[i][j..] += alpha·a(i,k)·Bp[k][j..] that
 * vectorise along j. Each C[i][j] is summed in k order: the result does not
 * depend on the thread count.
 */
#include "kernels/kernels.h"

#include <stddef.h>

#define KB 64  /* k per packed panel                       */
#define NB 256 /* columns per packed panel (64 KiB in all) */
#define MB 32  /* rows of C per thread work item           */

/* Bp[k][j] = op(B)(k0 + k, j0 + j) for k < kc, j < nc. */
static void pack_b(float *Bp, char tb, const float *B, int ldb, int k0, int kc, int j0, int nc)
{
    for (int k = 0; k < kc; k++)
        for (int j = 0; j < nc; j++)
            Bp[k * NB + j] = tb == 'N' ? B[(size_t)(k0 + k) * ldb + j0 + j]
                                       : B[(size_t)(j0 + j) * ldb + k0 + k];
}

void gemm_portable_f32(char ta, char tb, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    int n_items = (M + MB - 1) / MB;
#pragma omp parallel for schedule(dynamic) if ((double)M * N * K > 1e6)
    for (int item = 0; item < n_items; item++) {
        int i0 = item * MB, i1 = i0 + MB < M ? i0 + MB : M;
        float Bp[KB * NB];
        for (int i = i0; i < i1; i++) {
            float *c = C + (size_t)i * ldc;
            for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        }
        for (int j0 = 0; j0 < N; j0 += NB) {
            int nc = N - j0 < NB ? N - j0 : NB;
            for (int k0 = 0; k0 < K; k0 += KB) {
                int kc = K - k0 < KB ? K - k0 : KB;
                pack_b(Bp, tb, B, ldb, k0, kc, j0, nc);
                for (int i = i0; i < i1; i++) {
                    float *c = C + (size_t)i * ldc + j0;
                    for (int k = 0; k < kc; k++) {
                        float a = alpha * (ta == 'N' ? A[(size_t)i * lda + k0 + k]
                                                     : A[(size_t)(k0 + k) * lda + i]);
                        const float *b = Bp + k * NB;
#pragma omp simd
                        for (int j = 0; j < nc; j++) c[j] += a * b[j];
                    }
                }
            }
        }
    }
}
