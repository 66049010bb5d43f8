/* CPUID feature bits: Intel SDM vol. 2A, "CPUID—CPU Identification", leaf 7
 * sub-leaf 0 (EBX: AVX2 5, AVX512F 16, AVX512DQ 17, AVX512BW 30, AVX512VL 31;
 * ECX: AVX512_VNNI 11; EDX: AMX-BF16 22, AMX-TILE 24) and sub-leaf 1 (EAX:
 * AVX-VNNI 4, AVX512_BF16 5); leaf 1 ECX: FMA 12, OSXSAVE 27. XCR0 bits 1-2
 * (SSE, AVX state), 5-7 (opmask, ZMM) and 17-18 (tile config and data) say
 * the OS saves those registers. */
#include "core/cpu.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

cpu_features cpu_detect(void)
{
    cpu_features f = {0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1;
    if (!osxsave) return f;
    unsigned long long xcr0 = read_xcr0();
    int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned ecx7 = c, ebx7 = b, edx7 = d;
    f.avx2 = os_avx && fma && ((ebx7 >> 5) & 1);
    f.avx512 = os_avx512 && f.avx2 && ((ebx7 >> 16) & 1) && ((ebx7 >> 17) & 1) &&
               ((ebx7 >> 30) & 1) && ((ebx7 >> 31) & 1);
    f.avx512_vnni = f.avx512 && ((ecx7 >> 11) & 1);
    f.amx_bf16 = f.avx512 && ((edx7 >> 24) & 1) && ((edx7 >> 22) & 1) &&
                 (xcr0 & (3ull << 17)) == (3ull << 17);
    __cpuid_count(7, 1, a, b, c, d);
    f.avx512_bf16 = f.avx512 && ((a >> 5) & 1);
    f.avx_vnni = f.avx2 && ((a >> 4) & 1);
    return f;
}
#else
cpu_features cpu_detect(void)
{
    cpu_features f = {0};
    return f;
}
#endif

int cpu_level(void)
{
    cpu_features f = cpu_detect();
    int level = f.avx512 ? CPU_AVX512 : f.avx2 ? CPU_AVX2 : CPU_PORTABLE;
    const char *cap = getenv("SLM_CPU_LEVEL");
    if (cap && *cap) {
        int want = !strcmp(cap, "avx512") ? CPU_AVX512 : !strcmp(cap, "avx2") ? CPU_AVX2
                                                                                 : CPU_PORTABLE;
        if (want < level) level = want;
    }
    return level;
}

const char *cpu_level_name(int level)
{
    return level == CPU_AVX512 ? "avx512" : level == CPU_AVX2 ? "avx2" : "portable";
}
