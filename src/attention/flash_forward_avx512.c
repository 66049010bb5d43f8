/* flash_forward.c built for avx512 (see flash_isa.h; Makefile: ISA_avx512). */
#define FLASH_ISA FLASH_ISA_AVX512
#include "flash_forward.c"
