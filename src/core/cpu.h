/* What this CPU can run, read once from CPUID (and XGETBV, so an instruction
 * set the OS does not save the registers of counts as absent). Kernels are
 * chosen at run time from this, never from the compiler's -march, so one
 * binary is fast on every x86-64 CPU and still runs under valgrind (which
 * reports no AVX-512) or on a CPU without AVX2. */
#ifndef SLM_CORE_CPU_H
#define SLM_CORE_CPU_H

typedef struct {
    int avx2;        /* AVX2 + FMA3                                       */
    int avx512;      /* AVX-512 F, BW, DQ, VL (Skylake-X and later, Zen 4) */
    int avx512_bf16; /* vdpbf16ps                                          */
    int avx512_vnni; /* vpdpbusd on zmm                                    */
    int avx_vnni;    /* vpdpbusd on ymm with the VEX encoding (Alder Lake+) */
    int amx_bf16;    /* AMX-TILE + AMX-BF16, tile state enabled by the OS   */
} cpu_features;

/* The features of the CPU this runs on. Reading CPUID is cheap and the answer
 * never changes, so there is no cache (and no global state): callers that
 * need it often keep their own copy. */
cpu_features cpu_detect(void);

/* The widest SIMD level the kernels use on this CPU: one of the names below,
 * after SLM_CPU_LEVEL (an environment variable that may lower it, for tests
 * that run every path on one machine: "avx512", "avx2" or "portable"). */
enum { CPU_PORTABLE = 0, CPU_AVX2 = 1, CPU_AVX512 = 2 };
int cpu_level(void);
const char *cpu_level_name(int level);

#endif
