/*
 * The flash attention kernels are compiled once per instruction set:
 * flash_forward.c, flash_backward.c and flash_gemm.c are the portable
 * translation units, and flash_*_avx2.c / flash_*_avx512.c include them with
 * FLASH_ISA set and the matching compiler flags (Makefile: ISA_avx2,
 * ISA_avx512). Each copy's external names get the ISA as a suffix
 * (attn_flash_forward_avx512, ...), and flash.c picks one at run time from
 * kernel_level(), so one binary runs the widest kernels the CPU has.
 */
#ifndef SLM_ATTENTION_FLASH_ISA_H
#define SLM_ATTENTION_FLASH_ISA_H

#define FLASH_ISA_PORTABLE 0
#define FLASH_ISA_AVX2 1
#define FLASH_ISA_AVX512 2

#ifndef FLASH_ISA
#define FLASH_ISA FLASH_ISA_PORTABLE
#endif

#if FLASH_ISA == FLASH_ISA_AVX512
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__FMA__)
#error "FLASH_ISA_AVX512 needs -mavx512f -mavx512bw -mfma (Makefile ISA_avx512)"
#endif
#define FLASH_NAME(name) name##_avx512
#elif FLASH_ISA == FLASH_ISA_AVX2
#if !defined(__AVX2__) || !defined(__FMA__)
#error "FLASH_ISA_AVX2 needs -mavx2 -mfma (Makefile ISA_avx2)"
#endif
#define FLASH_NAME(name) name##_avx2
#else
#define FLASH_NAME(name) name##_portable
#endif

/* The per-ISA external names (declared in flash_internal.h and
 * attention_internal.h, which then declare the renamed functions). */
#define attn_flash_forward FLASH_NAME(attn_flash_forward)
#define attn_flash_backward FLASH_NAME(attn_flash_backward)
#define flash_forward_bytes FLASH_NAME(flash_forward_bytes)
#define flash_backward_bytes FLASH_NAME(flash_backward_bytes)
#define flash_gemm FLASH_NAME(flash_gemm)

#endif
