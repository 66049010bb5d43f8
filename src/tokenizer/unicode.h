/* Code-point classes of GPT-2's pre-tokenizer regex (see pretokenize.c):
 * \p{L}, \p{N}, \s (Unicode White_Space) and everything else. The ranges are
 * generated (tools/gen_unicode_tables.py → unicode_tables.c). */
#ifndef SLM_TOKENIZER_UNICODE_H
#define SLM_TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum { TOK_UC_OTHER = 0, TOK_UC_LETTER = 1, TOK_UC_NUMBER = 2, TOK_UC_SPACE = 3 };

typedef struct {
    uint32_t first, last; /* inclusive                                      */
    uint8_t cls;          /* TOK_UC_LETTER, _NUMBER or _SPACE               */
} tok_unicode_range;

extern const tok_unicode_range tok_unicode_ranges[]; /* sorted, disjoint   */
extern const size_t tok_unicode_n_ranges;

/* The class of code point cp (any value; > U+10FFFF is OTHER). */
int tok_unicode_class(uint32_t cp);

#endif
