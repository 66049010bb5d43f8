/* The landing spot of SLM_ASSERT: invariants only, never input validation. */
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>

void assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "slm: internal error: %s (%s:%d)\n", what, file, line);
    abort();
}
