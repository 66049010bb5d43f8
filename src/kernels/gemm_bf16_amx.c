/*
 * gemm_bf16_amx: C = A·op(B) + beta·C with bf16 A and B and fp32 C on Intel
 * AMX tiles (Sapphire Rapids and later): tdpbf16ps multiplies a 16×32 bf16
 * tile by a 32×16 one into 16×16 fp32 sums, 16 K FLOP per instruction
 * (Intel SDM vol. 1 ch. 18, "Intel Advanced Matrix Extensions").
 *
 * Why our own: oneDNN 2.6's dnnl_gemm_bf16bf16f32 runs 87-190 GFLOP/s on
 * the demo's shapes (M 4096, K 256) on 2 Emerald Rapids cores, below its
 * own fp32 sgemm, because it repacks for a depth it cannot amortize; the
 * layout below reaches 220-450 on the same shapes (bench: slm bench gemm
 * --bf16). The loop nest is GotoBLAS's (Goto & van de Geijn 2008): each
 * thread owns a range of 32-column blocks of C; per panel of NC_BLOCKS
 * blocks and KC of depth it packs B once into the tiles' pair-interleaved
 * ("VNNI") layout (KC·32·NC_BLOCKS bf16 = 256 KiB, L2), then walks every
 * 32-row block of A (32·KC bf16 = 32 KiB, L1) across the panel. A is read
 * in place (its rows hold K contiguous: op(A) = A only), so the caller
 * hands Aᵀ products over already transposed (f32_to_bf16_transposed).
 *
 * While a block's tiles multiply, the next block's 32 rows of C are
 * fetched for writing (prefetchw, spread over the depth loop): a tile
 * store into lines not in cache otherwise stalls the tile unit on their
 * reads for ownership, and C, written once, is as large as A and B
 * together here (0.90-0.95× the bf16 training step (b), same process).
 *
 * Tiles: 0-3 the 2×2 sums of a 32×32 block of C, 4-5 two 16-row slices of
 * A, 6-7 two 16-column slices of B. Sums in fp32 in the tile unit's own
 * order: the result equals gemm_bf16's to fp32 rounding, not bit for bit.
 */
#include "kernels/kernels.h"

#include "core/cpu.h"

#include <immintrin.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define KC 512       /* depth per pass: an A block, 32×KC bf16, is 32 KiB */
#define NC_BLOCKS 8  /* 32-column blocks per packed B panel               */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* The LDTILECFG operand (SDM vol. 2, "LDTILECFG"): palette 1, 64 bytes. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* Written once under pthread_once, read-only afterwards. */
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static int amx_ok;

/* cpu_detect() says the CPU and the OS have AMX; Linux (5.16+) still hands
 * the 8 KiB of tile data to a process only after it asks (arch_prctl
 * ARCH_REQ_XCOMP_PERM). */
static void amx_probe(void)
{
    /* SLM_AMX=0 leaves the tiles alone (to run or time the AVX512-BF16
     * path of a CPU without AMX on one with it) */
    const char *off = getenv("SLM_AMX");
    if (kernel_level() != CPU_AVX512 || (off && !strcmp(off, "0")) || !cpu_detect().amx_bf16)
        return;
    amx_ok = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int gemm_bf16_amx_supported(void)
{
    pthread_once(&amx_once, amx_probe);
    return amx_ok;
}

static void configure_tiles(void)
{
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
}

/* Packs columns n0..n0+31 and depths k0..k0+kc-1 of op(B) into dst as
 * [kcp/2][32][2]: row p of a B tile holds depths 2p and 2p+1 of 16 columns
 * side by side. Past N or K: zeros (they multiply A's zero padding or add
 * nothing). op(B) = B (K×N, ldb) for 'N', Bᵀ with B (N×K, ldb) for 'T'. */
static void pack_b_edge(uint16_t *dst, char tb, const uint16_t *B, int ldb, int K, int N, int k0,
                        int kcp, int n0)
{
    for (int p = 0; p < kcp / 2; p++)
        for (int j = 0; j < 32; j++)
            for (int h = 0; h < 2; h++) {
                int k = k0 + 2 * p + h, n = n0 + j;
                uint16_t v = 0;
                if (n < N && k < K)
                    v = tb == 'N' ? B[(size_t)k * ldb + n] : B[(size_t)n * ldb + k];
                dst[(size_t)p * 64 + 2 * j + h] = v;
            }
}

static void pack_b(uint16_t *dst, char tb, const uint16_t *B, int ldb, int K, int N, int k0,
                   int kcp, int n0)
{
    if (n0 + 32 > N || k0 + kcp > K) {
        pack_b_edge(dst, tb, B, ldb, K, N, k0, kcp, n0);
        return;
    }
    if (tb == 'N') {
        /* two rows of 32 columns → their pairs: word j of row k, then of k+1 */
        const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9,
                                            40, 8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1,
                                            32, 0);
        const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
        for (int p = 0; p < kcp / 2; p++) {
            const uint16_t *r = B + (size_t)(k0 + 2 * p) * ldb + n0;
            __m512i r0 = _mm512_loadu_si512(r), r1 = _mm512_loadu_si512(r + ldb);
            _mm512_store_si512(dst + (size_t)p * 64, _mm512_permutex2var_epi16(r0, lo, r1));
            _mm512_store_si512(dst + (size_t)p * 64 + 32, _mm512_permutex2var_epi16(r0, hi, r1));
        }
    } else {
        /* a pair of depths is 32 contiguous bits of one row of B: gather 16 */
        const __m512i offsets =
            _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                               _mm512_set1_epi32(ldb * 2));
        const uint16_t *b0 = B + (size_t)n0 * ldb + k0, *b1 = b0 + (size_t)16 * ldb;
        for (int p = 0; p < kcp / 2; p++) {
            _mm512_store_si512(dst + (size_t)p * 64, _mm512_i32gather_epi32(offsets, b0 + 2 * p, 1));
            _mm512_store_si512(dst + (size_t)p * 64 + 32,
                               _mm512_i32gather_epi32(offsets, b1 + 2 * p, 1));
        }
    }
}

/* Rows m0..m0+31, depths k0..k0+kcp-1 of A into dst (32×KC, zero padded). */
static void pack_a_edge(uint16_t *dst, const uint16_t *A, int lda, int M, int K, int m0, int k0,
                        int kcp)
{
    for (int i = 0; i < 32; i++)
        for (int k = 0; k < kcp; k++)
            dst[(size_t)i * KC + k] =
                m0 + i < M && k0 + k < K ? A[(size_t)(m0 + i) * lda + k0 + k] : 0;
}

/* One 32×32 block of C over depth kcp: a (32 rows, stride a_ld elements), b
 * packed by pack_b. load_c: start from C's values, else from zero. A block
 * that C does not fill (mv or nv < 32) goes through tmp. c_next: the next
 * block's first element (NULL: none), whose 64 lines (32 rows of 32
 * floats) are prefetched for writing over the depth loop. */
static void block_32x32(const uint16_t *a, int a_ld, const uint16_t *b, int kcp, float *c, int ldc,
                        int load_c, int mv, int nv, float *tmp, const float *c_next)
{
    float *cc = c;
    int ld = ldc;
    if (mv < 32 || nv < 32) {
        for (int i = 0; i < 32; i++)
            for (int j = 0; j < 32; j++)
                tmp[i * 32 + j] = load_c && i < mv && j < nv ? c[(size_t)i * ldc + j] : 0.0f;
        cc = tmp, ld = 32, load_c = 1;
    }
    if (load_c) {
        _tile_loadd(0, cc, ld * 4);
        _tile_loadd(1, cc + 16, ld * 4);
        _tile_loadd(2, cc + (size_t)16 * ld, ld * 4);
        _tile_loadd(3, cc + (size_t)16 * ld + 16, ld * 4);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    int line = 0; /* of c_next, prefetched so far */
    for (int k = 0; k < kcp; k += 32) {
        _tile_loadd(4, a + k, a_ld * 2);
        _tile_loadd(5, a + (size_t)16 * a_ld + k, a_ld * 2);
        _tile_loadd(6, b + (size_t)k * 32, 128);
        _tile_loadd(7, b + (size_t)k * 32 + 32, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
        for (int end = c_next ? 64 * (k + 32) / kcp : 0; line < end; line++)
            _mm_prefetch((const char *)(c_next + (size_t)(line >> 1) * ldc + 16 * (line & 1)),
                         _MM_HINT_ET0);
    }
    _tile_stored(0, cc, ld * 4);
    _tile_stored(1, cc + 16, ld * 4);
    _tile_stored(2, cc + (size_t)16 * ld, ld * 4);
    _tile_stored(3, cc + (size_t)16 * ld + 16, ld * 4);
    if (cc == tmp)
        for (int i = 0; i < mv; i++)
            for (int j = 0; j < nv; j++) c[(size_t)i * ldc + j] = tmp[i * 32 + j];
}

/* The blocks [b0, b1) of 32 columns, all rows, in one thread. */
static void thread_blocks(int b0, int b1, char tb, int M, int N, int K, const uint16_t *A, int lda,
                          const uint16_t *B, int ldb, float beta, float *C, int ldc,
                          const gemm_epilogue *ep, uint16_t *bpanel, uint16_t *apack, float *tmp)
{
    if (beta != 0.0f && beta != 1.0f) /* then accumulate onto beta·C */
        for (int i = 0; i < M; i++)
            for (int j = b0 * 32; j < b1 * 32 && j < N; j++) C[(size_t)i * ldc + j] *= beta;
    for (int p0 = b0; p0 < b1; p0 += NC_BLOCKS) {
        int p1 = p0 + NC_BLOCKS < b1 ? p0 + NC_BLOCKS : b1;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC, kcp = (kc + 31) / 32 * 32;
            for (int nb = p0; nb < p1; nb++)
                pack_b(bpanel + (size_t)(nb - p0) * KC * 32, tb, B, ldb, K, N, k0, kcp, nb * 32);
            int load_c = k0 > 0 || beta != 0.0f;
            for (int m0 = 0; m0 < M; m0 += 32) {
                const uint16_t *a = A + (size_t)m0 * lda + k0;
                int a_ld = lda;
                if (m0 + 32 > M || kc != kcp) {
                    pack_a_edge(apack, A, lda, M, K, m0, k0, kcp);
                    a = apack, a_ld = KC;
                }
                int mv = M - m0 < 32 ? M - m0 : 32;
                for (int nb = p0; nb < p1; nb++) {
                    int nv = N - nb * 32 < 32 ? N - nb * 32 : 32;
                    /* the next block this thread writes: right, or the
                     * panel's first of the next 32 rows; none where it is
                     * partial (its rows past M or columns past N) */
                    int next_m = nb + 1 < p1 ? m0 : m0 + 32, next_b = nb + 1 < p1 ? nb + 1 : p0;
                    const float *c_next = next_m + 32 <= M && next_b * 32 + 32 <= N
                                              ? C + (size_t)next_m * ldc + next_b * 32
                                              : NULL;
                    block_32x32(a, a_ld, bpanel + (size_t)(nb - p0) * KC * 32, kcp,
                                C + (size_t)m0 * ldc + nb * 32, ldc, load_c, mv, nv, tmp, c_next);
                }
                /* after the last pass over the depth these 32 rows of the
                 * panel are final (and in L1/L2): the epilogue on all of
                 * them at once, for long vector loops */
                if (ep && k0 + KC >= K) {
                    int n0 = p0 * 32, n1 = p1 * 32 < N ? p1 * 32 : N;
                    ep->fn(ep->ctx, C + (size_t)m0 * ldc + n0, ldc, m0, n0, mv, n1 - n0);
                }
            }
        }
    }
}

int gemm_bf16_amx(char tb, int M, int N, int K, const uint16_t *A, int lda, const uint16_t *B,
                  int ldb, float beta, float *C, int ldc, const gemm_epilogue *ep)
{
    if (!gemm_bf16_amx_supported() || (tb != 'N' && tb != 'T')) return -1;
    if (M <= 0 || N <= 0 || K <= 0) return -1;
    int nblocks = (N + 31) / 32;
    /* A thread per ~16 blocks of 32×32×K: small products stay on one core */
    double work = (double)M * N * K;
    int nt = omp_get_max_threads();
    if (work < 4e6) nt = 1;
    if (nt > nblocks) nt = nblocks;
    /* every thread's buffers up front: a failure leaves C untouched */
    enum { PANEL = NC_BLOCKS * KC * 32, APACK = 32 * KC, TMP = 32 * 32 * 2 };
    uint16_t *work_mem = aligned_alloc(64, (size_t)nt * (PANEL + APACK + TMP) * 2);
    if (!work_mem) return -1;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int b0 = nblocks * t / n, b1 = nblocks * (t + 1) / n;
        uint16_t *bpanel = work_mem + (size_t)t * (PANEL + APACK + TMP);
        uint16_t *apack = bpanel + PANEL;
        float *tmp = (float *)(void *)(apack + APACK);
        if (b0 < b1) {
            configure_tiles();
            thread_blocks(b0, b1, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, ep, bpanel, apack,
                          tmp);
            _tile_release();
        }
    }
    free(work_mem);
    return 0;
}

/* 16 floats → 16 bf16, rounded to nearest even, NaN kept quiet: round_bf16
 * of gemm_bf16.c, 16 lanes at a time. */
static inline __m256i round_bf16_x16(__m512 x)
{
    __m512i u = _mm512_castps_si512(x);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}

/* r[0..15] (rows of a 16×16 block) → their transpose in place: 32-bit,
 * 64-bit, then two 128-bit-lane interleaves (row j of the result is column
 * j of the block). */
static inline void transpose_16x16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4i + c], lane L: column 4L + c of rows 4i..4i+3 */
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int c = 0; c < 4; c++) {
        __m512 w_lo = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        __m512 w_hi = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        __m512 x_lo = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 x_hi = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_f32x4(w_lo, x_lo, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(w_lo, x_lo, 0xdd);
        r[4 + c] = _mm512_shuffle_f32x4(w_hi, x_hi, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(w_hi, x_hi, 0xdd);
    }
}

/* Source rows [i0, i1) (i0 a multiple of 16) by columns [jb, jb + w),
 * w <= 16, turned over in registers 32 (then 16) rows at a time, so each
 * destination row gets whole 64-byte lines; the last rows % 16 in scalar. */
static void transpose_strip(uint16_t *dst, int ldd, const float *src, int lds, int i0, int i1,
                            int jb, int w)
{
    __mmask16 mask = (__mmask16)((1u << w) - 1);
    int i = i0;
    for (; i + 32 <= i1; i += 32) {
        __m512 r[16], q[16];
        for (int k = 0; k < 16; k++) {
            r[k] = _mm512_maskz_loadu_ps(mask, src + (size_t)(i + k) * lds + jb);
            q[k] = _mm512_maskz_loadu_ps(mask, src + (size_t)(i + 16 + k) * lds + jb);
        }
        transpose_16x16(r);
        transpose_16x16(q);
        for (int j = 0; j < w; j++) {
            uint16_t *d = dst + (size_t)(jb + j) * ldd + i;
            __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(round_bf16_x16(r[j])),
                                           round_bf16_x16(q[j]), 1);
            /* streaming stores where aligned: no read for ownership of a
             * line written whole, and no eviction of the source lines */
            if (((uintptr_t)d & 63) == 0)
                _mm512_stream_si512((void *)d, v);
            else
                _mm512_storeu_si512(d, v);
        }
    }
    for (; i + 16 <= i1; i += 16) {
        __m512 r[16];
        for (int k = 0; k < 16; k++)
            r[k] = _mm512_maskz_loadu_ps(mask, src + (size_t)(i + k) * lds + jb);
        transpose_16x16(r);
        for (int j = 0; j < w; j++)
            _mm256_storeu_si256((__m256i *)(dst + (size_t)(jb + j) * ldd + i),
                                round_bf16_x16(r[j]));
    }
    for (; i < i1; i++)
        for (int j = jb; j < jb + w; j++) {
            __m512 x = _mm512_set1_ps(src[(size_t)i * lds + j]);
            dst[(size_t)j * ldd + i] =
                (uint16_t)_mm_extract_epi16(_mm256_castsi256_si128(round_bf16_x16(x)), 0);
        }
}

/* f32_to_bf16_transposed on the tile of source rows [i0, i1) (i0 a
 * multiple of 16) and columns [j0, j1) with AVX-512. The caller keeps tiles
 * small enough (256 × 256) that the pages of both sides stay in the TLB:
 * walking a whole column strip touches a new page every source row. */
void f32_to_bf16_transposed_avx512(uint16_t *dst, int ldd, const float *src, int lds, int i0,
                                   int i1, int j0, int j1)
{
    for (int i = i0; i < i1; i += 32) {
        int ie = i + 32 < i1 ? i + 32 : i1;
        for (int jb = j0; jb < j1; jb += 16)
            transpose_strip(dst, ldd, src, lds, i, ie, jb, j1 - jb < 16 ? j1 - jb : 16);
    }
    _mm_sfence(); /* the streaming stores, before another thread reads dst */
}

/* The tile unit's own rate for bench isa: iters rounds of four independent
 * tdpbf16ps (tiles 0-3 += 4 · 6), 16×16×32 multiply-adds each; returns the
 * seconds taken, or -1 without AMX. */
double gemm_bf16_amx_rate_run(long iters)
{
    if (!gemm_bf16_amx_supported()) return -1.0;
    _Alignas(64) uint16_t ab[16 * 32];
    for (int i = 0; i < 16 * 32; i++) ab[i] = 0x3c00; /* 2^-7: sums stay finite */
    configure_tiles();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ab, 64);
    _tile_loadd(6, ab, 64);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < iters; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 6);
        _tile_dpbf16ps(2, 4, 6);
        _tile_dpbf16ps(3, 4, 6);
    }
    _Alignas(64) float sink[16 * 16];
    _tile_stored(0, sink, 64);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    _tile_release();
    __asm__ volatile("" : : "r"(sink) : "memory");
    return (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
}
