/*
 * The one small GEMM every flash attention tile product goes through:
 *
 *   C[m][n] = s_m·C[m][n] + Σ_k A(m,k)·B[k][n]      m < M, n < N, k < K
 *
 * with A(m,k) = A[m·ams + k·aks] read one scalar at a time (so A may be a
 * tile stored either way round: Pᵀ·dO reads P by columns for free) and B
 * row-major with vectors along n. s_m is 0 (overwrite), 1 (accumulate) or a
 * per-row factor (the online-softmax rescale of O, FlashAttention-2 Alg. 1
 * line 10, fused into the load of C).
 *
 * AVX-512: a 6-row × 64-column register block (24 zmm accumulators); per k it
 * loads 4 vectors of B and broadcasts 6 scalars of A into 24 FMAs, so the
 * loop is bound by the FMA pipe rather than by loads. AVX2 (16 ymm
 * registers): 6 rows × 16 columns, 12 accumulators, 2 loads of B and 6
 * broadcasts per 12 FMAs. Portable: 4 × 8 in GCC vector types. Tiles here are at most
 * 64 × 64 × max(64, D), small enough that packing (as a BLAS does) would cost
 * more than it saves: B stays in L1/L2 across the row blocks.
 */
/* First, in a block of its own: it renames this copy's functions. */
#include "attention/flash_isa.h"

#include "attention/flash_internal.h"

#include <stddef.h>
#include <string.h>

#if FLASH_ISA == FLASH_ISA_AVX512
#include <immintrin.h>

#define MR 6 /* rows per register block       */
#define NV 4 /* zmm vectors per register block */

/* One register block: rows [0,mr) × vectors [0,nv) of C, the last vector
 * masked by `tail`. mr and nv are compile-time constants after inlining. */
static inline __attribute__((always_inline)) void block(const int mr, const int nv, int K,
                                                        const float *A, ptrdiff_t ams,
                                                        ptrdiff_t aks, const float *B,
                                                        ptrdiff_t ldb, float *C, ptrdiff_t ldc,
                                                        int mode, const float *rs, __mmask16 tail)
{
    __m512 acc[MR][NV];
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++) {
        __m512 s = mode == FG_ROWSCALE ? _mm512_set1_ps(rs[r]) : _mm512_set1_ps(1.0f);
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            __mmask16 m = v == nv - 1 ? tail : 0xFFFF;
            if (mode == FG_OVERWRITE)
                acc[r][v] = _mm512_setzero_ps();
            else if (mode == FG_ACCUMULATE)
                acc[r][v] = _mm512_maskz_loadu_ps(m, C + r * ldc + v * 16);
            else
                acc[r][v] = _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, C + r * ldc + v * 16));
        }
    }
    for (int k = 0; k < K; k++) {
        const float *b = B + k * ldb;
        const float *a = A + k * aks;
        __m512 bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            bv[v] =
                v == nv - 1 ? _mm512_maskz_loadu_ps(tail, b + v * 16) : _mm512_loadu_ps(b + v * 16);
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            __m512 ar = _mm512_set1_ps(a[r * ams]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            if (v == nv - 1)
                _mm512_mask_storeu_ps(C + r * ldc + v * 16, tail, acc[r][v]);
            else
                _mm512_storeu_ps(C + r * ldc + v * 16, acc[r][v]);
        }
}

typedef void (*block_fn)(int, const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t,
                         float *, ptrdiff_t, int, const float *, __mmask16);

/* One specialised function per (mr, nv), mode resolved by branches hoisted
 * out of the k loop (mode is loop-invariant). */
#define BLOCK_FN(R, V)                                                                             \
    static void block_##R##_##V(int K, const float *A, ptrdiff_t ams, ptrdiff_t aks,               \
                                const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int mode,  \
                                const float *rs, __mmask16 tail)                                   \
    {                                                                                              \
        block(R, V, K, A, ams, aks, B, ldb, C, ldc, mode, rs, tail);                               \
    }
#define BLOCK_ROW(R) BLOCK_FN(R, 1) BLOCK_FN(R, 2) BLOCK_FN(R, 3) BLOCK_FN(R, 4)
BLOCK_ROW(1)
BLOCK_ROW(2)
BLOCK_ROW(3)
BLOCK_ROW(4)
BLOCK_ROW(5)
BLOCK_ROW(6)

#define ROW_FNS(R)                                                                                 \
    {                                                                                              \
        block_##R##_1, block_##R##_2, block_##R##_3, block_##R##_4                                 \
    }
static const block_fn blocks[MR][NV] = {ROW_FNS(1), ROW_FNS(2), ROW_FNS(3),
                                        ROW_FNS(4), ROW_FNS(5), ROW_FNS(6)};

void flash_gemm(int M, int N, int K, const float *A, ptrdiff_t ams, ptrdiff_t aks, const float *B,
                ptrdiff_t ldb, float *C, ptrdiff_t ldc, int mode, const float *rs)
{
    for (int n0 = 0; n0 < N; n0 += 16 * NV) {
        int left = N - n0; /* >= 1 */
        int nv = left >= 16 * NV ? NV : (left + 15) / 16;
        int last = left - 16 * (nv - 1); /* lanes used in the last vector: 1..16 */
        __mmask16 tail = (__mmask16)(last >= 16 ? 0xFFFFu : (1u << last) - 1u);
        const block_fn *row = blocks[MR - 1];
        for (int m0 = 0; m0 < M; m0 += MR) {
            if (M - m0 < MR) row = blocks[(M - m0) % MR - 1]; /* the last, short block */
            row[nv - 1](K, A + m0 * ams, ams, aks, B + n0, ldb, C + m0 * ldc + n0, ldc, mode,
                        mode == FG_ROWSCALE ? rs + m0 : NULL, tail);
        }
    }
}

#elif FLASH_ISA == FLASH_ISA_AVX2
#include <immintrin.h>

#define MR 6 /* rows per register block       */
#define NV 2 /* ymm vectors per register block */

/* Lanes [0, n) of an 8-lane vector as a vmaskmovps mask. */
static inline __m256i lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* One register block: rows [0,mr) × vectors [0,nv) of C, the last vector
 * limited to `tail` lanes (maskload / maskstore: the others are not touched). */
static inline __attribute__((always_inline)) void block(const int mr, const int nv, int K,
                                                        const float *A, ptrdiff_t ams,
                                                        ptrdiff_t aks, const float *B,
                                                        ptrdiff_t ldb, float *C, ptrdiff_t ldc,
                                                        int mode, const float *rs, __m256i tail)
{
    const __m256i all = _mm256_set1_epi32(-1);
    __m256 acc[MR][NV];
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++) {
        __m256 s = mode == FG_ROWSCALE ? _mm256_set1_ps(rs[r]) : _mm256_set1_ps(1.0f);
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            __m256i m = v == nv - 1 ? tail : all;
            if (mode == FG_OVERWRITE)
                acc[r][v] = _mm256_setzero_ps();
            else if (mode == FG_ACCUMULATE)
                acc[r][v] = _mm256_maskload_ps(C + r * ldc + v * 8, m);
            else
                acc[r][v] = _mm256_mul_ps(s, _mm256_maskload_ps(C + r * ldc + v * 8, m));
        }
    }
    for (int k = 0; k < K; k++) {
        const float *b = B + k * ldb;
        const float *a = A + k * aks;
        __m256 bv[NV];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            bv[v] = v == nv - 1 ? _mm256_maskload_ps(b + v * 8, tail) : _mm256_loadu_ps(b + v * 8);
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            __m256 ar = _mm256_set1_ps(a[r * ams]);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            if (v == nv - 1)
                _mm256_maskstore_ps(C + r * ldc + v * 8, tail, acc[r][v]);
            else
                _mm256_storeu_ps(C + r * ldc + v * 8, acc[r][v]);
        }
}

typedef void (*block_fn)(int, const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t,
                         float *, ptrdiff_t, int, const float *, __m256i);

#define BLOCK_FN(R, V)                                                                             \
    static void block_##R##_##V(int K, const float *A, ptrdiff_t ams, ptrdiff_t aks,               \
                                const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int mode,  \
                                const float *rs, __m256i tail)                                     \
    {                                                                                              \
        block(R, V, K, A, ams, aks, B, ldb, C, ldc, mode, rs, tail);                               \
    }
#define BLOCK_ROW(R) BLOCK_FN(R, 1) BLOCK_FN(R, 2)
BLOCK_ROW(1)
BLOCK_ROW(2)
BLOCK_ROW(3)
BLOCK_ROW(4)
BLOCK_ROW(5)
BLOCK_ROW(6)

#define ROW_FNS(R)                                                                                 \
    {                                                                                              \
        block_##R##_1, block_##R##_2                                                               \
    }
static const block_fn blocks[MR][NV] = {ROW_FNS(1), ROW_FNS(2), ROW_FNS(3),
                                        ROW_FNS(4), ROW_FNS(5), ROW_FNS(6)};

void flash_gemm(int M, int N, int K, const float *A, ptrdiff_t ams, ptrdiff_t aks, const float *B,
                ptrdiff_t ldb, float *C, ptrdiff_t ldc, int mode, const float *rs)
{
    for (int n0 = 0; n0 < N; n0 += 8 * NV) {
        int left = N - n0; /* >= 1 */
        int nv = left >= 8 * NV ? NV : (left + 7) / 8;
        __m256i tail = lanes(left - 8 * (nv - 1)); /* 1..8 lanes of the last vector */
        const block_fn *row = blocks[MR - 1];
        for (int m0 = 0; m0 < M; m0 += MR) {
            if (M - m0 < MR) row = blocks[(M - m0) % MR - 1]; /* the last, short block */
            row[nv - 1](K, A + m0 * ams, ams, aks, B + n0, ldb, C + m0 * ldc + n0, ldc, mode,
                        mode == FG_ROWSCALE ? rs + m0 : NULL, tail);
        }
    }
}

#else /* portable */

/*
 * The same contract without AVX2: 4-row × 8-column blocks in GCC/Clang
 * vector types (SSE2 on any x86-64, NEON on ARM), eight 4-float accumulators
 * that fit the 16 registers of the baseline ISA; columns past the last
 * multiple of 8 take a scalar loop.
 */
typedef float v4f __attribute__((vector_size(16)));

static inline v4f v4_load(const float *p)
{
    v4f x;
    memcpy(&x, p, sizeof x);
    return x;
}

/* C[mr][8] (mr <= 4) = s·C + A·B for one block. */
static void block_portable(int mr, int K, const float *A, ptrdiff_t ams, ptrdiff_t aks,
                           const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int mode,
                           const float *rs)
{
    v4f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
    ptrdiff_t a1 = mr > 1 ? ams : 0, a2 = mr > 2 ? 2 * ams : 0, a3 = mr > 3 ? 3 * ams : 0;
    for (int k = 0; k < K; k++) {
        const float *a = A + k * aks, *b = B + k * ldb;
        v4f b0 = v4_load(b), b1 = v4_load(b + 4);
        float x0 = a[0], x1 = a[a1], x2 = a[a2], x3 = a[a3]; /* rows >= mr re-read row 0 */
        c00 += x0 * b0, c01 += x0 * b1, c10 += x1 * b0, c11 += x1 * b1;
        c20 += x2 * b0, c21 += x2 * b1, c30 += x3 * b0, c31 += x3 * b1;
    }
    v4f acc[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int r = 0; r < mr; r++) {
        float *c = C + r * ldc, s = mode == FG_ROWSCALE ? rs[r] : 1.0f;
        for (int h = 0; h < 2; h++) {
            v4f sum = acc[r][h];
            if (mode != FG_OVERWRITE) sum += s * v4_load(c + 4 * h);
            memcpy(c + 4 * h, &sum, sizeof sum);
        }
    }
}

void flash_gemm(int M, int N, int K, const float *A, ptrdiff_t ams, ptrdiff_t aks, const float *B,
                ptrdiff_t ldb, float *C, ptrdiff_t ldc, int mode, const float *rs)
{
    int n8 = N / 8 * 8;
    for (int n0 = 0; n0 < n8; n0 += 8)
        for (int m0 = 0; m0 < M; m0 += 4)
            block_portable(M - m0 < 4 ? M - m0 : 4, K, A + m0 * ams, ams, aks, B + n0, ldb,
                           C + m0 * ldc + n0, ldc, mode, mode == FG_ROWSCALE ? rs + m0 : NULL);
    for (int m = 0; m < M && n8 < N; m++) { /* remaining columns n8 .. N-1 */
        float *c = C + m * ldc;
        float s = mode == FG_ROWSCALE ? rs[m] : 1.0f;
        for (int n = n8; n < N; n++)
            c[n] = mode == FG_OVERWRITE ? 0.0f : s * c[n];
        for (int k = 0; k < K; k++) {
            float a = A[m * ams + k * aks];
            const float *b = B + k * ldb;
            for (int n = n8; n < N; n++)
                c[n] += a * b[n];
        }
    }
}

#endif
