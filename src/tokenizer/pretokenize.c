/*
 * The GPT-2 pre-tokenizer regex, written out as a scanner. The alternatives
 * are tried in order at the current position (leftmost-first, as in a
 * backtracking engine); with the classes L = \p{L}, N = \p{N}, S = \s and
 * O = anything else, each reduces to a look at one or two code points:
 *
 *   's 't 're 've 'm 'll 'd        literal, case-sensitive, even inside words
 *   ␠?L+  ␠?N+  ␠?O+               an optional U+0020 glued to the run after it
 *   S+(?!\S)                       a whitespace run that ends the text, or that
 *                                  gives its last character back when a
 *                                  non-space follows ("a  b" → "a" "␠" "␠b")
 *   S+                             a lone whitespace character before a
 *                                  non-space ("\tx" → "\t" "x")
 */
#include "tokenizer/pretokenize.h"

#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

/* Classes of the ASCII bytes, so plain text never reaches the tables. */
#define L_ TOK_UC_LETTER
#define N_ TOK_UC_NUMBER
#define S_ TOK_UC_SPACE
#define O_ TOK_UC_OTHER
static const uint8_t ascii_class[128] = {
    O_, O_, O_, O_, O_, O_, O_, O_, O_, S_, S_, S_, S_, S_, O_, O_, /* \t..\r */
    O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, /* 1C..1F: O */
    S_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, /* space */
    N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, O_, O_, O_, O_, O_, O_, /* 0-9 */
    O_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, /* A-O */
    L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, O_, O_, O_, O_, O_, /* P-Z */
    O_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, /* a-o */
    L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, O_, O_, O_, O_, O_, /* p-z */
};
#undef L_
#undef N_
#undef S_
#undef O_

/* Class of the code point at s[pos] (pos < len); *n = its length in bytes. */
static inline int class_at(const uint8_t *s, size_t len, size_t pos, size_t *n)
{
    if (s[pos] < 0x80) {
        *n = 1;
        return ascii_class[s[pos]];
    }
    uint32_t cp;
    *n = (size_t)tok_utf8_decode(s + pos, len - pos, &cp);
    return cp == TOK_UTF8_INVALID ? TOK_UC_OTHER : tok_unicode_class(cp);
}

/* End of the maximal run of class cls starting at pos. */
static size_t run_end(const uint8_t *s, size_t len, size_t pos, int cls)
{
    size_t n;
    if (cls == TOK_UC_LETTER) { /* the hot loop: ASCII letters */
        while (pos < len && s[pos] < 0x80 && ascii_class[s[pos]] == TOK_UC_LETTER)
            pos++;
    }
    while (pos < len && class_at(s, len, pos, &n) == cls)
        pos += n;
    return pos;
}

/* Length of a contraction ('s 't 're 've 'm 'll 'd) at pos, or 0. */
static size_t contraction(const uint8_t *s, size_t len, size_t pos)
{
    if (pos + 1 >= len) return 0;
    uint8_t a = s[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= len) return 0;
    uint8_t b = s[pos + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

size_t tok_pretokenize_next(const uint8_t *s, size_t len, size_t pos)
{
    size_t n0, n1;
    if (s[pos] == '\'') {
        size_t c = contraction(s, len, pos);
        if (c) return pos + c;
    }
    int c0 = class_at(s, len, pos, &n0);
    if (s[pos] == ' ' && pos + 1 < len) { /* ␠?L+ ␠?N+ ␠?O+ with the space */
        int c1 = class_at(s, len, pos + 1, &n1);
        if (c1 != TOK_UC_SPACE) return run_end(s, len, pos + 1 + n1, c1);
    }
    if (c0 != TOK_UC_SPACE) return run_end(s, len, pos + n0, c0);

    /* Whitespace: find the run and where its last character starts. */
    size_t end = pos + n0, last = pos, k = 1, n;
    while (end < len && class_at(s, len, end, &n) == TOK_UC_SPACE) {
        last = end;
        end += n;
        k++;
    }
    if (end == len || k == 1) return end; /* S+(?!\S) at the end; lone S+ */
    return last;                          /* give the last one back      */
}
