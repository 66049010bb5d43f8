/* Internal error helpers shared by every module. */
#ifndef SLM_CORE_ERROR_H
#define SLM_CORE_ERROR_H

#include "slm.h"


/* Writes a printf-style one-line message into err (if any) and returns code,
 * so failure paths read: `return fail(err, errlen, SLM_EFORMAT, "...", x);` */
int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Programmer errors (broken invariants, never bad input): abort loudly. */
#define SLM_ASSERT(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) assert_fail(#cond, __FILE__, __LINE__);                           \
    } while (0)
void assert_fail(const char *what, const char *file, int line) __attribute__((noreturn));

#endif
