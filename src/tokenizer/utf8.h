/* Strict UTF-8 decoding (Unicode §3.9, Table 3-7 well-formed sequences). */
#ifndef SLM_TOKENIZER_UTF8_H
#define SLM_TOKENIZER_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define TOK_UTF8_INVALID 0xFFFFFFFFu

/* Decodes the code point at s[0..n), n >= 1. Returns its length in bytes
 * (1-4) and sets *cp; an ill-formed sequence (stray continuation byte,
 * overlong form, surrogate, > U+10FFFF, truncated) returns 1 with
 * *cp = TOK_UTF8_INVALID, so the caller moves on byte by byte. */
int tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Writes cp (<= U+10FFFF, not a surrogate) as UTF-8 into out[4]; returns
 * the length, or 0 for a value that has no UTF-8 form. */
int tok_utf8_encode(uint32_t cp, uint8_t *out);

#endif
