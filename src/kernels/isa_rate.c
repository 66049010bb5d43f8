/*
 * Instruction-rate micro-benchmark: CHAINS independent accumulators, each a
 * dependency chain of one instruction (vfmadd231ps, vdpbf16ps, vpdpbusd, or
 * AVX2's vpmaddubsw + vpmaddwd + vpaddd triple), so the loop runs at the
 * instruction's throughput rather than its latency (latency 4-6 cycles ×
 * 2 ports needs at least 8-12 chains in flight; 12 leaves headroom).
 *
 * Operations per instruction count a multiply and an add separately:
 *   vfmadd231ps  zmm: 16 lanes · 2            =  32 FLOP
 *   vdpbf16ps    zmm: 16 lanes · 2 pairs · 2  =  64 FLOP
 *   vpdpbusd     zmm: 16 lanes · 4 bytes · 2  = 128 OP
 *   tdpbf16ps   tiles: 16·16 sums · 32 pairs · 2 = 16,384 FLOP (AMX)
 * and half of each on ymm. Each function is compiled for its instruction
 * set with a target attribute and only called when cpu_detect() and
 * cpu_level() say the CPU runs it, so a PORTABLE=1 build measures too.
 */
#include "kernels/isa_rate.h"

#include "core/cpu.h"
#include "kernels/kernels.h"

#include <immintrin.h>
#include <stdint.h>
#include <time.h>

#define CHAINS 12
#define INNER 64 /* rounds of CHAINS instructions per loop iteration */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each kernel runs `iters` × INNER × CHAINS instructions and returns a value
 * derived from every accumulator, so none of the chains is dead code. */
#define DEFINE_KERNEL(fname, isa, vec, init, initc, step, reduce)                                  \
    __attribute__((target(isa), noinline)) static double fname(long iters, float seed)             \
    {                                                                                              \
        vec acc[CHAINS];                                                                           \
        _Pragma("GCC unroll 16") for (int c = 0; c < CHAINS; c++) acc[c] = initc;                  \
        vec a = init, b = init;                                                                    \
        (void)a, (void)b;                                                                          \
        for (long i = 0; i < iters; i++)                                                           \
            for (int r = 0; r < INNER; r++) {                                                      \
                _Pragma("GCC unroll 16") for (int c = 0; c < CHAINS; c++) acc[c] = step;           \
            }                                                                                      \
        double s = 0;                                                                              \
        _Pragma("GCC unroll 16") for (int c = 0; c < CHAINS; c++) s += reduce;                     \
        return s;                                                                                  \
    }

DEFINE_KERNEL(fma_zmm, "avx512f", __m512, _mm512_set1_ps(seed), _mm512_set1_ps(seed + (float)c),
              _mm512_fmadd_ps(acc[c], a, b), (double)_mm512_reduce_add_ps(acc[c]))
DEFINE_KERNEL(fma_ymm, "avx2,fma", __m256, _mm256_set1_ps(seed), _mm256_set1_ps(seed + (float)c),
              _mm256_fmadd_ps(acc[c], a, b), (double)_mm256_cvtss_f32(acc[c]))
DEFINE_KERNEL(dpbf16_zmm, "avx512f,avx512bf16", __m512, _mm512_set1_ps(seed),
              _mm512_set1_ps(seed + (float)c), _mm512_dpbf16_ps(acc[c], (__m512bh)a, (__m512bh)b),
              (double)_mm512_reduce_add_ps(acc[c]))
DEFINE_KERNEL(dpbf16_ymm, "avx512f,avx512vl,avx512bf16", __m256, _mm256_set1_ps(seed),
              _mm256_set1_ps(seed + (float)c), _mm256_dpbf16_ps(acc[c], (__m256bh)a, (__m256bh)b),
              (double)_mm256_cvtss_f32(acc[c]))
DEFINE_KERNEL(dpbusd_zmm, "avx512f,avx512vnni", __m512i, _mm512_set1_epi32((int)seed),
              _mm512_set1_epi32((int)seed + c), _mm512_dpbusd_epi32(acc[c], a, b),
              (double)_mm512_reduce_add_epi32(acc[c]))
DEFINE_KERNEL(dpbusd_ymm_evex, "avx512f,avx512vl,avx512vnni", __m256i, _mm256_set1_epi32((int)seed),
              _mm256_set1_epi32((int)seed + c), _mm256_dpbusd_epi32(acc[c], a, b),
              (double)_mm256_extract_epi32(acc[c], 0))
DEFINE_KERNEL(dpbusd_ymm_vex, "avx2,avxvnni", __m256i, _mm256_set1_epi32((int)seed),
              _mm256_set1_epi32((int)seed + c), _mm256_dpbusd_avx_epi32(acc[c], a, b),
              (double)_mm256_extract_epi32(acc[c], 0))
/* What an int8 dot product costs without VNNI: u8·s8 pairs summed to int16
 * (vpmaddubsw), int16 pairs to int32 (vpmaddwd with ones), accumulate. */
DEFINE_KERNEL(maddubs_ymm, "avx2", __m256i, _mm256_set1_epi32((int)seed),
              _mm256_set1_epi32((int)seed + c),
              _mm256_add_epi32(acc[c], _mm256_madd_epi16(_mm256_maddubs_epi16(a, acc[c]),
                                                         _mm256_set1_epi16(1))),
              (double)_mm256_extract_epi32(acc[c], 0))

/* AMX's tdpbf16ps lives in kernels/gemm_bf16_amx.c with the tile setup:
 * the same count of instructions, four chains (the tile registers hold
 * four accumulators beside the two operands). */
static double amx_tiles(long iters, float seed)
{
    (void)seed;
    return gemm_bf16_amx_rate_run(iters * INNER * CHAINS / 4);
}

typedef double (*kernel_fn)(long, float);

/* Best rate over 3 repeats of about `seconds` each, Gop/s. The iteration
 * count is calibrated by a short first run. */
static double measure(kernel_fn fn, double ops_per_instr, double seconds, volatile double *sink)
{
    long iters = 256;
    for (;;) {
        double t0 = now();
        *sink += fn(iters, 1.0f);
        double dt = now() - t0;
        if (dt > seconds / 8 || iters > (1L << 40)) break;
        iters *= 4;
    }
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        *sink += fn(iters, 1.0f);
        double dt = now() - t0;
        double rate = (double)iters * INNER * CHAINS * ops_per_instr / dt / 1e9;
        if (rate > best) best = rate;
    }
    return best;
}

void isa_rates_measure(isa_rate *out, double seconds)
{
    cpu_features f = cpu_detect();
    int level = cpu_level();
    int v512 = level >= CPU_AVX512, v2 = level >= CPU_AVX2;
    struct {
        const char *name, *dtype;
        kernel_fn fn;
        double ops;
        int ok;
    } k[ISA_RATE_COUNT] = {
        {"fp32 vfmadd231ps zmm", "fp32", fma_zmm, 32, v512},
        {"fp32 vfmadd231ps ymm", "fp32", fma_ymm, 16, v2},
        {"bf16 vdpbf16ps zmm", "bf16", dpbf16_zmm, 64, v512 && f.avx512_bf16},
        {"bf16 vdpbf16ps ymm", "bf16", dpbf16_ymm, 32, v512 && f.avx512_bf16},
        {"int8 vpdpbusd zmm", "int8", dpbusd_zmm, 128, v512 && f.avx512_vnni},
        {"int8 vpdpbusd ymm (EVEX)", "int8", dpbusd_ymm_evex, 64, v512 && f.avx512_vnni},
        {"int8 vpdpbusd ymm (AVX-VNNI)", "int8", dpbusd_ymm_vex, 64, v2 && f.avx_vnni},
        {"int8 vpmaddubsw+vpmaddwd+vpaddd ymm", "int8", maddubs_ymm, 64, v2},
        {"bf16 tdpbf16ps (AMX tiles)", "bf16", amx_tiles, 16 * 16 * 32 * 2,
         v512 && gemm_bf16_amx_supported()},
    };
    volatile double sink = 0;
    for (int i = 0; i < ISA_RATE_COUNT; i++) {
        out[i] = (isa_rate){k[i].name, k[i].dtype, k[i].dtype[0] == 'i' ? "GOP/s" : "GFLOP/s",
                            k[i].ok,   0.0,        k[i].ops,
                            k[i].fn == amx_tiles ? 4 : CHAINS};
        if (k[i].ok) out[i].rate = measure(k[i].fn, k[i].ops, seconds, &sink);
    }
}
