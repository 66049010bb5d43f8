/* Internal error helpers shared by every module. */
#ifndef SLM_CORE_ERROR_H
#define SLM_CORE_ERROR_H

#include "slm.h"

#define SLM_VERSION_STRING "0.1.0"

/* Writes a printf-style one-line message into err (if any) and returns code,
 * so failure paths read: `return slm_fail(err, errlen, SLM_EFORMAT, "...", x);` */
int slm_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Programmer errors (broken invariants, never bad input): abort loudly. */
#define SLM_ASSERT(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) slm_assert_fail(#cond, __FILE__, __LINE__);                           \
    } while (0)
void slm_assert_fail(const char *what, const char *file, int line) __attribute__((noreturn));

#endif
