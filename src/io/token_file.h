/* Token file internals (the API is slm_token_file_* in slm.h). */
#ifndef SLM_IO_TOKEN_FILE_H
#define SLM_IO_TOKEN_FILE_H

#include "slm.h"

#define SLM_TOKEN_MAGIC "SLMTOK1" /* 8 bytes with its NUL */
#define SLM_TOKEN_VERSION 1
#define SLM_TOKEN_HEADER_BYTES 64

/* slm_token_file_read on a whole file held in memory (tests, fuzzing). */
int token_file_parse(const void *buf, size_t len, const char *name, int32_t **ids, size_t *n,
                         slm_token_meta *meta, char *err, size_t errlen);

#endif
