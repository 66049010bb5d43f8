/* Internal functions the Python oracles test directly. libslm.so exports only
 * the public slm_* API, so this small test-only library (build/tests/
 * libslm_test_hooks.so, linked against libslm.a) re-exports what they need. */
#include <stdint.h>

#include "tokenizer/unicode.h"

#define HOOK __attribute__((visibility("default")))

/* The pre-tokenizer's class of one code point (0 other, 1 L, 2 N, 3 S). */
HOOK int test_hook_unicode_class(uint32_t cp) { return tok_unicode_class(cp); }
