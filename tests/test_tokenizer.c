/*
 * The byte and GPT-2 tokenizers against known answers: the 237 cases that
 * js-tiktoken r50k_base encoded (tests/data/tokenizer-cases.jsonl),
 * hand-derived pre-token splits of GPT-2's regex, ids tiktoken 0.14 gave for
 * tricky inputs, and decode(encode(x)) == x for arbitrary bytes.
 * Run from the repository root (tests/run.sh does).
 */
#include "core/rng.h"
#include "slm.h"
#include "test.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

#define GPT2_DIR "data/gpt2"

/* The length of token id's bytes, or the SLM_E* code of token_bytes. */
static int token_len(const slm_tokenizer *t, int32_t id, const char **b)
{
    size_t n;
    int rc = slm_tokenizer_token_bytes(t, id, b, &n);
    return rc ? rc : (int)n;
}

static slm_tokenizer *gpt2(int vocab_size)
{
    slm_tokenizer *t = NULL;
    char err[512] = "";
    int rc = slm_tokenizer_load(SLM_TOKENIZER_GPT2, GPT2_DIR, vocab_size, &t, err, sizeof err);
    CHECK(rc == 0, "load %s: %d %s", GPT2_DIR, rc, err);
    return rc ? NULL : t;
}

/* Encodes s[0..n) and compares with want[0..nw) (nw < 0: only round trip). */
static void check_encode(const slm_tokenizer *t, const char *s, size_t n, const int32_t *want,
                         int nw)
{
    int32_t *ids = NULL;
    size_t k = 0, len = 0;
    char *back = NULL, err[256] = "";
    int rc = slm_tokenizer_encode(t, s, n, &ids, &k, err, sizeof err);
    CHECK(rc == 0 && ids, "encode: %d %s", rc, err);
    if (rc) return;
    if (nw >= 0) {
        int same = k == (size_t)nw;
        for (size_t i = 0; same && i < k; i++)
            same = ids[i] == want[i];
        if (!same) {
            char got[256] = "";
            for (size_t i = 0, o = 0; i < k && o < 200; i++)
                o += (size_t)snprintf(got + o, sizeof got - o, " %d", (int)ids[i]);
            CHECK(same, "'%.*s': got%s (%zu ids), want %d ids starting %d", (int)(n > 40 ? 40 : n),
                  s, got, k, nw, nw ? (int)want[0] : -1);
        }
    }
    rc = slm_tokenizer_decode(t, ids, k, &back, &len, err, sizeof err);
    CHECK(rc == 0, "decode: %d %s", rc, err);
    if (!rc) {
        CHECK(len == n && !memcmp(back, s, n), "decode(encode(x)) != x for %zu bytes", n);
        CHECK(back[len] == '\0', "decode output not NUL-terminated");
    }
    free(back);
    free(ids);
}

/* ---- tokenizer-cases.jsonl ------------------------------------------ */

static size_t put_utf8(char *o, unsigned cp) /* the test's own, independent writer */
{
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 63)), 2;
    if (cp < 0x10000)
        return o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 63)),
               o[2] = (char)(0x80 | (cp & 63)), 3;
    return o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 63)),
           o[2] = (char)(0x80 | (cp >> 6 & 63)), o[3] = (char)(0x80 | (cp & 63)), 4;
}

/* Unescapes the JSON string starting after the quote at *p into out. */
static size_t json_string(const char **p, char *out)
{
    const char *s = *p;
    size_t n = 0;
    while (*s && *s != '"') {
        if (*s != '\\') {
            out[n++] = *s++;
            continue;
        }
        char c = s[1];
        s += 2;
        const char *map = strchr("b\bf\fn\nr\rt\t\"\"\\\\//", c);
        if (c != 'u' && map) {
            out[n++] = map[1];
            continue;
        }
        unsigned cp = (unsigned)strtoul((char[5]){s[0], s[1], s[2], s[3], 0}, NULL, 16);
        s += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && s[0] == '\\' && s[1] == 'u') {
            unsigned lo = (unsigned)strtoul((char[5]){s[2], s[3], s[4], s[5], 0}, NULL, 16);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            s += 6;
        }
        n += put_utf8(out + n, cp);
    }
    *p = s + (*s == '"');
    return n;
}

static void test_gpt2_matches_tiktoken_cases(void)
{
    slm_tokenizer *t = gpt2(0);
    FILE *f = fopen("tests/data/tokenizer-cases.jsonl", "r");
    CHECK(f != NULL, "cannot open tokenizer-cases.jsonl");
    if (!t || !f) {
        if (f) fclose(f);
        slm_tokenizer_free(t);
        return;
    }
    static char line[65536], text[65536];
    int32_t want[8192];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"text\":\"");
        const char *q = strstr(line, "\"ids\":[");
        CHECK(p && q, "line %d: unexpected shape", cases + 1);
        if (!p || !q) break;
        p += 8;
        size_t n = json_string(&p, text);
        int nw = 0;
        for (q += 7; *q && *q != ']' && nw < 8192;) {
            char *end;
            want[nw++] = (int32_t)strtol(q, &end, 10);
            q = end + (*end == ',');
        }
        check_encode(t, text, n, want, nw);
        cases++;
    }
    CHECK(cases == 237, "%d cases, want 237", cases);
    fclose(f);
    slm_tokenizer_free(t);
}

/* ---- the pre-tokenizer regex, by hand ------------------------------ */

/* Pieces of s, joined with '/'. */
static void split(const char *s, char *out)
{
    size_t n = strlen(s), o = 0;
    for (size_t pos = 0; pos < n;) {
        size_t end = tok_pretokenize_next((const uint8_t *)s, n, pos);
        if (pos) out[o++] = '/';
        memcpy(out + o, s + pos, end - pos);
        o += end - pos;
        pos = end;
    }
    out[o] = 0;
}

static void test_pretokenize_splits(void)
{
    static const char *cases[][2] = {
        {"  leading", " / leading"},
        {"a  b", "a/ / b"},
        {"trailing   ", "trailing/   "},
        {"\n\n", "\n\n"},
        {"x\n\ny", "x/\n/\n/y"},
        {"\t\tx", "\t/\t/x"},
        {" \n y", " \n/ y"},
        {"it's", "it/'s"},
        {"'s", "'s"},
        {"'S", "'/S"},
        {"you'll've", "you/'ll/'ve"},
        {"don't'", "don/'t/'"},
        {"'sam", "'s/am"},
        {" 's", " '/s"},
        {"?'s", "?'/s"},
        {"3.14159", "3/./14159"},
        {"abc123 456", "abc/123/ 456"},
        {"Hello,   world!  \n\n  Bye.  ", "Hello/,/  / world/!/  \n\n / Bye/./  "},
        {"<|endoftext|>", "<|/endoftext/|>"},
        {"a\xc2\xa0"
         "b",
         "a/\xc2\xa0/b"}, /* NBSP is \s, alone before b */
        {"a \xc2\x85"
         "b",
         "a/ /\xc2\x85/b"}, /* U+0085 is White_Space */
        {"a \xef\xbb\xbf"
         "b",
         "a/ \xef\xbb\xbf/b"},            /* U+FEFF is not */
        {"e\xcc\x81le", "e/\xcc\x81/le"}, /* combining mark: neither L nor N */
        {"\xe4\xb8\xad\xe6\x96\x87 \xe6\x96\x87", "\xe4\xb8\xad\xe6\x96\x87/ \xe6\x96\x87"},
        {"x\xff\xfe y", "x/\xff\xfe/ y"},     /* invalid bytes are OTHER */
        {"!\xed\xa0\x80!", "!\xed\xa0\x80!"}, /* an encoded surrogate too */
        {" \xc0", " \xc0"},
        {"", ""},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        split(cases[i][0], out);
        CHECK(!strcmp(out, cases[i][1]), "case %zu: got '%s' want '%s'", i, out, cases[i][1]);
    }
}

static void test_unicode_classes(void)
{
    static const struct {
        uint32_t cp;
        int cls;
    } cases[] = {
        {'A', TOK_UC_LETTER},    {0xE9, TOK_UC_LETTER},    {0x01C5, TOK_UC_LETTER},  /* Lt */
        {0x02B0, TOK_UC_LETTER}, {0x4E2D, TOK_UC_LETTER},  {0x10D50, TOK_UC_LETTER}, /* 16.0 */
        {'7', TOK_UC_NUMBER},    {0x0663, TOK_UC_NUMBER},  {0x00BD, TOK_UC_NUMBER},  /* No */
        {0x216B, TOK_UC_NUMBER}, {0x1FBF0, TOK_UC_NUMBER}, {' ', TOK_UC_SPACE},
        {'\t', TOK_UC_SPACE},    {0x0B, TOK_UC_SPACE},     {0x85, TOK_UC_SPACE},
        {0xA0, TOK_UC_SPACE},    {0x2028, TOK_UC_SPACE},   {0x3000, TOK_UC_SPACE},
        {0x1C, TOK_UC_OTHER},    {0xFEFF, TOK_UC_OTHER},   {0x200B, TOK_UC_OTHER},
        {0x180E, TOK_UC_OTHER},  {0x0301, TOK_UC_OTHER},   {0x1F642, TOK_UC_OTHER},
        {'\'', TOK_UC_OTHER},    {0x10FFFF, TOK_UC_OTHER}, {0x110000, TOK_UC_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(tok_unicode_class(cases[i].cp) == cases[i].cls, "U+%04X: class %d, want %d",
              (unsigned)cases[i].cp, tok_unicode_class(cases[i].cp), cases[i].cls);
}

static void test_utf8_decoder(void)
{
    static const struct {
        const char *s;
        int len;
        uint32_t cp;
    } cases[] = {
        {"A", 1, 'A'},
        {"\xc3\xa9", 2, 0xE9},
        {"\xe4\xb8\xad", 3, 0x4E2D},
        {"\xf0\x9f\x99\x82", 4, 0x1F642},
        {"\xf4\x8f\xbf\xbf", 4, 0x10FFFF},
        {"\xc0\x80", 1, TOK_UTF8_INVALID},         /* overlong NUL */
        {"\xc1\xbf", 1, TOK_UTF8_INVALID},         /* overlong */
        {"\xe0\x80\x80", 1, TOK_UTF8_INVALID},     /* overlong */
        {"\xf0\x80\x80\x80", 1, TOK_UTF8_INVALID}, /* overlong */
        {"\xed\xa0\x80", 1, TOK_UTF8_INVALID},     /* surrogate D800 */
        {"\xf4\x90\x80\x80", 1, TOK_UTF8_INVALID}, /* > U+10FFFF */
        {"\xf8\x88\x80\x80", 1, TOK_UTF8_INVALID},
        {"\x80", 1, TOK_UTF8_INVALID},      /* lone continuation */
        {"\xe4\xb8", 1, TOK_UTF8_INVALID},  /* truncated */
        {"\xe4\xb8x", 1, TOK_UTF8_INVALID}, /* bad continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint32_t cp = 0;
        int n = tok_utf8_decode((const uint8_t *)cases[i].s, strlen(cases[i].s), &cp);
        CHECK(n == cases[i].len && cp == cases[i].cp, "case %zu: len %d cp %X", i, n, (unsigned)cp);
    }
}

/* ---- GPT-2 ids for tricky inputs (from tiktoken 0.14, r50k_base) -------- */

static void test_gpt2_tricky_ids(void)
{
    slm_tokenizer *t = gpt2(0);
    if (!t) return;
#define CASE(text, ...)                                                                            \
    do {                                                                                           \
        static const int32_t w[] = {__VA_ARGS__};                                                  \
        check_encode(t, text, sizeof text - 1, w, (int)(sizeof w / sizeof *w));                    \
    } while (0)
    CASE("  leading", 220, 3756);
    CASE("a  b", 64, 220, 275);
    CASE("trailing   ", 9535, 4386, 220, 220, 220);
    CASE("\n\n", 628);
    CASE("x\n\n", 87, 628);
    CASE("it's", 270, 338);
    CASE("'s", 338);
    CASE("'S", 6, 50);
    CASE("you'll've", 5832, 1183, 1053);
    CASE("don't'", 9099, 470, 6);
    CASE(" 's", 705, 82);
    CASE("12345678", 10163, 2231, 30924);
    CASE("3.14159", 18, 13, 1415, 19707);
    CASE("\xd9\xa3\xd9\xa4\xd9\xa5 \xc2\xbd \xe2\x85\xab", 149, 96, 149, 97, 149, 98, 25208, 2343,
         227, 104);
    CASE("\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97\xe7\xac\xa6", 40792, 23877, 229, 27764, 245, 163,
         105, 99);
    CASE("\xf0\x9f\x99\x82\xf0\x9f\x9a\x80", 8582, 25081, 8582, 248, 222);
    CASE("e\xcc\x81le\xcc\x81ve", 68, 136, 223, 293, 136, 223, 303);
    CASE("a \xc2\x85"
         "b",
         64, 220, 126, 227, 65);
    CASE("a \xef\xbb\xbf"
         "b",
         64, 27332, 119, 123, 65);
    CASE("a\xe3\x80\x80\xe3\x80\x80"
         "b",
         64, 5099, 222, 5099, 222, 65);
    CASE("Hello,   world!  \n\n  Bye.  ", 15496, 11, 220, 220, 995, 0, 220, 220, 628, 220, 47843,
         13, 220, 220);
    /* Plain text, never the special token. */
    CASE("<|endoftext|>", 27, 91, 437, 1659, 5239, 91, 29);
#undef CASE
    CHECK(slm_tokenizer_eot(t) == 50256, "eot %d", (int)slm_tokenizer_eot(t));
    slm_tokenizer_free(t);
}

/* ---- round trips -------------------------------------------------------- */

/* Random bytes drawn from distributions that stress UTF-8 handling: uniform
 * bytes, lead/continuation soup, valid text with invalid bytes mixed in. */
static size_t random_bytes(rng_state *r, char *s, size_t max)
{
    static const char *pieces[] = {" ",
                                   "  ",
                                   "\n",
                                   "\t",
                                   "\r\n",
                                   "'s",
                                   "'t",
                                   "'",
                                   "a",
                                   "the",
                                   " word",
                                   "7",
                                   "42",
                                   ".",
                                   "\xc2\xa0",
                                   "\xe3\x80\x80",
                                   "\xc2\x85",
                                   "\xef\xbb\xbf",
                                   "\xcc\x81",
                                   "\xe4\xb8\xad",
                                   "\xf0\x9f\x99\x82",
                                   "\xed\xa0\x80",
                                   "\xed\xbf\xbf",
                                   "\xc0\x80",
                                   "\xe0\x80\xaf",
                                   "\xf4\x90\x80\x80",
                                   "\x80",
                                   "\xbf",
                                   "\xff",
                                   "\xfe",
                                   "\xc3",
                                   "\xe4\xb8",
                                   "\xf0\x9f\x99",
                                   "",
                                   "<|endoftext|>"};
    size_t n = rng_below(r, max + 1), k = 0;
    int mode = (int)rng_below(r, 3);
    while (k < n) {
        if (mode == 0) {
            s[k++] = (char)rng_below(r, 256);
        } else if (mode == 1) {
            s[k++] = (char)(0x80 + rng_below(r, 128)); /* continuations and leads */
            if (rng_below(r, 4) == 0) s[k - 1] = (char)rng_below(r, 128);
        } else {
            const char *p = pieces[rng_below(r, sizeof pieces / sizeof *pieces)];
            size_t m = strlen(p);
            if (k + m > n) break;
            memcpy(s + k, p, m), k += m;
            if (rng_below(r, 8) == 0 && k < n) s[k++] = 0; /* NUL bytes */
        }
    }
    return k;
}

static void test_gpt2_round_trip_random_bytes(void)
{
    slm_tokenizer *t = gpt2(0);
    if (!t) return;
    rng_state r;
    rng_seed(&r, 7);
    static char s[1 << 16];
    for (int i = 0; i < 2000 && !test_case_failed_; i++) {
        size_t n = random_bytes(&r, s, i < 1990 ? 64 : sizeof s);
        check_encode(t, s, n, NULL, -1);
    }
    slm_tokenizer_free(t);
}

/* Valid UTF-8 of random code points from the whole range (no surrogates),
 * weighted towards spaces, letters and digits so the regex branches meet. */
static void test_gpt2_round_trip_random_unicode(void)
{
    slm_tokenizer *t = gpt2(0);
    if (!t) return;
    rng_state r;
    rng_seed(&r, 11);
    static char s[4096];
    for (int i = 0; i < 2000 && !test_case_failed_; i++) {
        size_t n = 0, want = rng_below(&r, 200);
        while (n + 4 <= want) {
            uint32_t cp;
            switch (rng_below(&r, 4)) {
            case 0: cp = (uint32_t) " \n\t'sa1"[rng_below(&r, 7)]; break;
            case 1: cp = (uint32_t)rng_below(&r, 0x800); break;
            case 2: cp = (uint32_t)rng_below(&r, 0x10000); break;
            default: cp = (uint32_t)rng_below(&r, 0x110000); break;
            }
            n += (size_t)tok_utf8_encode(cp, (uint8_t *)s + n); /* 0 for surrogates */
        }
        check_encode(t, s, n, NULL, -1);
    }
    slm_tokenizer_free(t);
}

/* One pre-token of a megabyte: merging is O(n log n), so this is quick, and
 * a run of one letter merges into the longest 'a' tokens. */
static void test_gpt2_long_piece(void)
{
    slm_tokenizer *t = gpt2(0);
    if (!t) return;
    size_t n = (size_t)1 << 20;
    char *s = malloc(n);
    if (!s) return;
    static const char fills[] = {'a', ' ', '!', '7', '\xff'};
    for (size_t f = 0; f < sizeof fills; f++) {
        memset(s, fills[f], n);
        check_encode(t, s, n, NULL, -1);
    }
    free(s);
    slm_tokenizer_free(t);
}

/* More distinct multi-token words than the per-call cache holds: encoding
 * them in one call (cache filling and flushing) must equal encoding each word
 * alone. */
static void test_gpt2_cache_consistency(void)
{
    slm_tokenizer *t = gpt2(0);
    if (!t) return;
    enum { WORDS = 30000, LEN = 9 };
    char *text = malloc(WORDS * (LEN + 1) * 2);
    int32_t *all = NULL, *one = NULL;
    size_t n_all = 0, n_one = 0, n = 0;
    rng_state r;
    rng_seed(&r, 3);
    for (int w = 0; w < WORDS; w++) { /* repeat earlier words now and then */
        size_t start = n;
        if (w > 100 && rng_below(&r, 3) == 0) {
            size_t from = rng_below(&r, (uint64_t)w / 2) * (LEN + 1);
            memcpy(text + n, text + from, LEN + 1);
            n += LEN + 1;
            continue;
        }
        text[n++] = ' ';
        for (int i = 0; i < LEN; i++)
            text[n++] = (char)('a' + rng_below(&r, 26));
        (void)start;
    }
    int rc = slm_tokenizer_encode(t, text, n, &all, &n_all, NULL, 0);
    CHECK(rc == 0, "encode all: %d", rc);
    size_t k = 0;
    for (size_t pos = 0; !rc && pos < n && !test_case_failed_; pos += LEN + 1) {
        rc = slm_tokenizer_encode(t, text + pos, LEN + 1, &one, &n_one, NULL, 0);
        CHECK(rc == 0 && k + n_one <= n_all && !memcmp(all + k, one, n_one * sizeof *one),
              "word at byte %zu encodes differently inside the text", pos);
        k += n_one;
        free(one);
    }
    CHECK(k == n_all, "%zu ids from the words, %zu from the text", k, n_all);
    free(all);
    free(text);
    slm_tokenizer_free(t);
}

/* ---- vocabulary sizes, padding ids, errors ------------------------------ */

static void test_gpt2_ids_and_padding(void)
{
    slm_tokenizer *t = gpt2(50304); /* padded to a multiple of 64 */
    if (!t) return;
    const char *b;
    CHECK(slm_tokenizer_vocab_size(t) == 50304, "vocab_size");
    CHECK(token_len(t, 50256, &b) == 13 && !memcmp(b, "<|endoftext|>", 13),
          "eot bytes");
    CHECK(token_len(t, 220, &b) == 1 && b[0] == ' ', "token 220 is a space");
    CHECK(token_len(t, 50300, &b) == 0, "padding id has no bytes");
    CHECK(token_len(t, 50304, &b) == SLM_ERANGE, "id past vocab_size");
    CHECK(token_len(t, -1, &b) == SLM_ERANGE, "negative id");
    CHECK(slm_tokenizer_token_bytes(t, 220, &b, NULL) == SLM_EINVAL, "NULL length");
    CHECK(slm_tokenizer_kind(t) == SLM_TOKENIZER_GPT2, "kind");
    int32_t ids[] = {15496, 50300, 995};
    char *text = NULL, err[256] = "";
    size_t len;
    CHECK(slm_tokenizer_decode(t, ids, 3, &text, &len, err, sizeof err) == 0 && len == 11 &&
              !strcmp(text, "Hello world"),
          "padding decodes to nothing");
    free(text);
    text = NULL;
    ids[1] = 50304;
    CHECK(slm_tokenizer_decode(t, ids, 3, &text, &len, err, sizeof err) == SLM_ERANGE && !text &&
              strstr(err, "50304"),
          "out-of-range id: %s", err);
    slm_tokenizer_free(t);

    slm_tokenizer *u = NULL;
    CHECK(slm_tokenizer_load(SLM_TOKENIZER_GPT2, GPT2_DIR, 1000, &u, err, sizeof err) ==
                  SLM_EINVAL &&
              !u && strstr(err, "1000"),
          "vocab_size smaller than the vocabulary: %s", err);
    CHECK((t = gpt2(0)) && slm_tokenizer_vocab_size(t) == 50257, "default vocab_size");
    int32_t *out = NULL;
    size_t n = 9;
    CHECK(slm_tokenizer_encode(t, NULL, 0, &out, &n, NULL, 0) == 0 && out && n == 0, "empty");
    free(out);
    CHECK(slm_tokenizer_encode(t, NULL, 3, &out, &n, NULL, 0) == SLM_EINVAL, "NULL text");
    slm_tokenizer_free(t);
}

static void test_byte_tokenizer(void)
{
    slm_tokenizer *t = NULL;
    char err[256] = "";
    int rc = slm_tokenizer_load(SLM_TOKENIZER_BYTE, NULL, 320, &t, err, sizeof err);
    CHECK(rc == 0, "load byte: %s", err);
    if (rc) return;
    char s[512];
    for (int i = 0; i < 512; i++)
        s[i] = (char)(i * 7 + 3);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(slm_tokenizer_encode(t, s, 512, &ids, &n, NULL, 0) == 0 && n == 512, "encode");
    for (size_t i = 0; ids && i < n; i++)
        CHECK(ids[i] == (uint8_t)s[i], "id %zu is %d, want byte %d", i, (int)ids[i], (uint8_t)s[i]);
    check_encode(t, s, 512, ids, (int)n);
    free(ids);
    int32_t pad[] = {'h', 256, 'i', 319};
    char *text = NULL;
    size_t len;
    CHECK(slm_tokenizer_decode(t, pad, 4, &text, &len, NULL, 0) == 0 && len == 2 &&
              !strcmp(text, "hi"),
          "ids >= 256 decode to nothing");
    free(text);
    text = NULL;
    pad[1] = 320;
    CHECK(slm_tokenizer_decode(t, pad, 4, &text, &len, err, sizeof err) == SLM_ERANGE && !text,
          "id 320 with vocab_size 320");
    pad[1] = -5;
    CHECK(slm_tokenizer_decode(t, pad, 4, &text, &len, NULL, 0) == SLM_ERANGE, "negative id");
    CHECK(slm_tokenizer_eot(t) == -1, "byte has no eot");
    const char *b;
    CHECK(token_len(t, 200, &b) == 1 && (uint8_t)b[0] == 200, "token 200");
    slm_tokenizer_free(t);
    t = NULL;
    CHECK(slm_tokenizer_load(SLM_TOKENIZER_BYTE, NULL, 100, &t, err, sizeof err) == SLM_EINVAL &&
              !t,
          "vocab_size 100 < 256");
    CHECK(slm_tokenizer_load(7, NULL, 0, &t, NULL, 0) == SLM_EINVAL, "unknown kind");
}

int main(void)
{
    RUN(test_utf8_decoder);
    RUN(test_unicode_classes);
    RUN(test_pretokenize_splits);
    RUN(test_gpt2_matches_tiktoken_cases);
    RUN(test_gpt2_tricky_ids);
    RUN(test_gpt2_round_trip_random_bytes);
    RUN(test_gpt2_round_trip_random_unicode);
    RUN(test_gpt2_long_piece);
    RUN(test_gpt2_cache_consistency);
    RUN(test_gpt2_ids_and_padding);
    RUN(test_byte_tokenizer);
    return test_summary();
}
