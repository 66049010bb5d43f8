/* GPT-2's pre-tokenizer: splits text into the pieces that BPE then encodes
 * one by one. The pieces are exactly the matches of tiktoken r50k_base's
 * (= GPT-2's) regex, scanned left to right:
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * over UTF-8 code points; each byte of an ill-formed sequence counts as one
 * code point of class OTHER, so any bytes split into pieces that concatenate
 * back to the input. */
#ifndef SLM_TOKENIZER_PRETOKENIZE_H
#define SLM_TOKENIZER_PRETOKENIZE_H

#include <stddef.h>
#include <stdint.h>

/* End (exclusive) of the piece that starts at pos; pos < len. The result is
 * always > pos. */
size_t tok_pretokenize_next(const uint8_t *s, size_t len, size_t pos);

#endif
