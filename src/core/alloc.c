#include "core/alloc.h"

#include <stdlib.h>

void *alloc_aligned(size_t bytes)
{
    if (bytes == 0) return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) return NULL;
    return aligned_alloc(64, rounded);
}

void free_aligned(void *p) { free(p); }
