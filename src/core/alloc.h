/* Allocation helpers: overflow-checked sizes and aligned buffers. */
#ifndef SLM_CORE_ALLOC_H
#define SLM_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* *out = a*b (and returns 1) unless that overflows size_t (returns 0). */
static inline int slm_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* 64-byte aligned allocation (cache line, one AVX-512 vector); NULL on failure
 * or size 0. Free with slm_free_aligned. */
void *slm_alloc_aligned(size_t bytes);
void slm_free_aligned(void *p);

#endif
