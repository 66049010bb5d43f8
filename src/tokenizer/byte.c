/* The byte tokenizer: token i is byte i. No merges, no pre-tokenizer; the
 * vocabulary may be padded past 256 (to a multiple of 64, say) and those ids
 * decode to nothing. */
#include "core/alloc.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>

void byte_tokenizer_init(slm_tokenizer *t)
{
    for (int i = 0; i < 256; i++)
        t->bytes[i] = (uint8_t)i;
    t->n_tokens = 256;
}

int byte_encode(const uint8_t *text, size_t len, int32_t **ids, size_t *n_ids, char *err,
                size_t errlen)
{
    size_t bytes;
    if (!mul_size(len ? len : 1, sizeof **ids, &bytes) || !(*ids = malloc(bytes)))
        return fail(err, errlen, SLM_ENOMEM, "encode: out of memory for %zu ids", len);
    for (size_t i = 0; i < len; i++)
        (*ids)[i] = text[i];
    *n_ids = len;
    return 0;
}
