/* Class lookup: binary search over the generated ranges (831 of them, so at
 * most 10 steps; ASCII never gets here, pretokenize.c has a byte table). */
#include "tokenizer/unicode.h"

int tok_unicode_class(uint32_t cp)
{
    size_t lo = 0, hi = tok_unicode_n_ranges;
    while (lo < hi) { /* first range with last >= cp */
        size_t mid = lo + (hi - lo) / 2;
        if (tok_unicode_ranges[mid].last < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < tok_unicode_n_ranges && tok_unicode_ranges[lo].first <= cp)
        return tok_unicode_ranges[lo].cls;
    return TOK_UC_OTHER;
}
