/* Error codes to words, the version string, and the one-line message helper. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *slm_strerror(int err)
{
    switch (err) {
    case SLM_OK: return "success";
    case SLM_EINVAL: return "invalid argument";
    case SLM_ENOMEM: return "out of memory";
    case SLM_EIO: return "input/output error";
    case SLM_EFORMAT: return "malformed file";
    case SLM_ERANGE: return "value out of range";
    case SLM_ENUMERIC: return "non-finite number";
    case SLM_EINTERRUPTED: return "interrupted";
    case SLM_EUNSUPPORTED: return "not supported";
    default: return "unknown error";
    }
}

const char *slm_version(void) { return SLM_VERSION_STRING; }

int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
