/* flash_forward.c built for avx2 (see flash_isa.h; Makefile: ISA_avx2). */
#define FLASH_ISA FLASH_ISA_AVX2
#include "flash_forward.c"
