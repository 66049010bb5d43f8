/* Allocation helpers: overflow-checked sizes and aligned buffers. */
#ifndef SLM_CORE_ALLOC_H
#define SLM_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* *out = a*b (and returns 1) unless that overflows size_t (returns 0). */
static inline int mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* 64-byte aligned allocation (cache line, one AVX-512 vector); NULL on failure
 * or size 0. Free with free_aligned. */
void *alloc_aligned(size_t bytes);
void free_aligned(void *p);

#endif
