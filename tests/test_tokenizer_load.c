/*
 * Loading vocab.json + merges.txt: a small hand-made GPT-2-style vocabulary
 * checks the merge semantics against answers tiktoken gives for the same
 * ranks, and malformed files (truncated, bad escapes, unknown merge parts,
 * empty, missing) must fail with SLM_EFORMAT / SLM_EIO and a message naming
 * the file and line, never crash, never leak (see make asan).
 */
#include "core/rng.h"
#include "slm.h"
#include "test.h"
#include "tokenizer/bpe.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* GPT-2's byte alphabet, written out here independently of src/: printable
 * Latin-1 bytes are themselves, the rest U+0100.. in byte order. */
/* The length of token id's bytes, or the SLM_E* code of token_bytes. */
static int token_len(const slm_tokenizer *t, int32_t id, const char **b)
{
    size_t n;
    int rc = slm_tokenizer_token_bytes(t, id, b, &n);
    return rc ? rc : (int)n;
}

static unsigned byte_cp(int b)
{
    int n = 0;
    for (int c = 0; c < 256; c++) {
        int printable = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
        if (c == b) return printable ? (unsigned)c : 256u + (unsigned)n;
        if (!printable) n++;
    }
    return 0;
}

/* Appends byte string s[0..n) as a JSON key in the alphabet; `style` picks
 * raw UTF-8 or \u escapes so both paths are read. */
static size_t put_key(char *o, const uint8_t *s, size_t n, int style)
{
    size_t k = 0;
    o[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned cp = byte_cp(s[i]);
        if (cp == '"' || cp == '\\') {
            o[k++] = '\\', o[k++] = (char)cp;
        } else if (cp < 0x80 && !(style && cp == '/')) {
            o[k++] = (char)cp;
        } else if (style || cp == '/') {
            k += (size_t)sprintf(o + k, "\\u%04X", cp);
        } else if (cp < 0x800) {
            o[k++] = (char)(0xC0 | cp >> 6), o[k++] = (char)(0x80 | (cp & 63));
        }
    }
    o[k++] = '"';
    return k;
}

/* The test vocabulary: bytes are ids 0..255, then bc, ab, abc, aa and
 * <|endoftext|>; merges "b c", "a b", "ab c", "a a" (ranks 0..3). */
static const char *extra[] = {"bc", "ab", "abc", "aa", "<|endoftext|>"};
#define N_EXTRA 5
static const char good_merges[] = "#version: 0.2\nb c\na b\nab c\na a\n";

static size_t make_vocab(char *o, int skip_byte)
{
    size_t k = 0;
    int id = 0;
    o[k++] = '{';
    for (int b = 0; b < 256; b++) {
        if (b == skip_byte) continue;
        uint8_t c = (uint8_t)b;
        if (id) o[k++] = ',', o[k++] = b % 16 ? ' ' : '\n';
        k += put_key(o + k, &c, 1, b & 1);
        k += (size_t)sprintf(o + k, ": %d", id++);
    }
    for (int i = 0; i < N_EXTRA; i++) {
        o[k++] = ',', o[k++] = ' ';
        k += put_key(o + k, (const uint8_t *)extra[i], strlen(extra[i]), i & 1);
        k += (size_t)sprintf(o + k, ":%d", id++);
    }
    o[k++] = '}';
    o[k] = 0;
    return k;
}

static char dir[64];

static void write_file(const char *name, const char *s, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(s, 1, n, f) == n, "cannot write %s", path);
    if (f) fclose(f);
}

/* Writes the two files and loads them; returns the code, err filled. */
static int load(const char *vocab, size_t vn, const char *merges, size_t mn, slm_tokenizer **t,
                char *err, size_t errlen)
{
    write_file("vocab.json", vocab, vn);
    write_file("merges.txt", merges, mn);
    *t = NULL;
    err[0] = 0;
    int rc = slm_tokenizer_load(SLM_TOKENIZER_GPT2, dir, 0, t, err, errlen);
    if (rc) CHECK(*t == NULL, "failed load left a tokenizer");
    return rc;
}

static void expect(const slm_tokenizer *t, const char *s, const int32_t *want, size_t nw)
{
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = slm_tokenizer_encode(t, s, strlen(s), &ids, &n, NULL, 0);
    int same = rc == 0 && n == nw;
    for (size_t i = 0; same && i < n; i++)
        same = ids[i] == want[i];
    CHECK(same, "'%s': %zu ids (first %d), want %zu (first %d)", s, n, n ? (int)ids[0] : -1, nw,
          (int)want[0]);
    free(ids);
}

/* Answers from tiktoken 0.14 with mergeable_ranks {bytes: byte, bc: 256,
 * ab: 257, abc: 258, aa: 259}. "abcx" is the telling one: b+c merges first,
 * then a+bc makes abc although merges.txt only lists "ab c". */
static void test_small_vocab_merges_like_tiktoken(void)
{
    static char vocab[16384];
    char err[512];
    slm_tokenizer *t;
    size_t vn = make_vocab(vocab, -1);
    int rc = load(vocab, vn, good_merges, sizeof good_merges - 1, &t, err, sizeof err);
    CHECK(rc == 0, "load: %d %s", rc, err);
    if (rc) return;
    expect(t, "abcx", (int32_t[]){258, 'x'}, 2);
    expect(t, "abc", (int32_t[]){258}, 1);
    expect(t, "bcab", (int32_t[]){256, 257}, 2);
    expect(t, "aaa", (int32_t[]){259, 'a'}, 2); /* leftmost of equal ranks */
    expect(t, "aaaa", (int32_t[]){259, 259}, 2);
    expect(t, "aaaaa", (int32_t[]){259, 259, 'a'}, 3);
    expect(t, " abcx", (int32_t[]){' ', 258, 'x'}, 3);
    expect(t, "<|endoftext|>",
           (int32_t[]){'<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>'}, 13);
    CHECK(slm_tokenizer_eot(t) == 260, "eot %d", (int)slm_tokenizer_eot(t));
    const char *b;
    CHECK(token_len(t, '"', &b) == 1 && b[0] == '"', "escaped quote token");
    CHECK(token_len(t, 0, &b) == 1 && b[0] == 0, "byte 0 token");
    slm_tokenizer_free(t);

    /* CRLF line ends and trailing blank lines are fine; so is no merges at all. */
    const char crlf[] = "#version: 0.2\r\nb c\r\na b\r\nab c\r\na a\r\n\r\n\n";
    CHECK(load(vocab, vn, crlf, sizeof crlf - 1, &t, err, sizeof err) == 0, "crlf: %s", err);
    if (t) expect(t, "abcx", (int32_t[]){258, 'x'}, 2);
    slm_tokenizer_free(t);
    CHECK(load(vocab, vn, "#version: 0.2\n", 14, &t, err, sizeof err) == 0, "no merges: %s", err);
    if (t) expect(t, "abc", (int32_t[]){258}, 1); /* a whole piece is still looked up */
    if (t) expect(t, "abcx", (int32_t[]){'a', 'b', 'c', 'x'}, 4);
    slm_tokenizer_free(t);
}

typedef struct {
    const char *what;
    const char *from, *to; /* replace the first `from` in the good vocab */
    const char *msg;       /* expected in the message                     */
} vocab_case;

static void test_malformed_vocab(void)
{
    static char good[16384], bad[16600];
    char err[512];
    slm_tokenizer *t;
    make_vocab(good, -1);
    static const vocab_case cases[] = {
        {"bad escape", "\"\\u0101\"", "\"\\q\"", "vocab.json:1:12: unknown escape '\\q'"},
        {"lone high surrogate", "\"\\u0101\"", "\"\\uD800\"", "without a low surrogate"},
        {"lone low surrogate", "\"\\u0101\"", "\"\\uDC00x\"", "lone low surrogate"},
        {"bad hex", "\"\\u0101\"", "\"\\u01G0\"", "bad \\u escape"},
        {"outside the alphabet", "\"\\u0101\"", "\"\\u0200\"", "U+0200 is not in GPT-2's"},
        {"raw control byte", "\"\\u0101\"", "\"\n\"", "control character 0x0a"},
        {"invalid UTF-8", "\"\\u0101\"", "\"\xc0\x80\"", "invalid UTF-8"},
        {"empty key", "\"\\u0101\"", "\"\"", "empty token string"},
        {"duplicate id", ": 1,", ": 0,", "id 0 is used twice"},
        {"id gap", ": 1,", ": 9999,", "token id 9999 out of range"},
        {"negative id", ": 1,", ": -1,", "negative token id"},
        {"float id", ": 1,", ": 1.0,", "must be an integer"},
        {"leading zero", ": 1,", ": 01,", "leading zero"},
        {"huge id", ": 1,", ": 99999999999,", "too large"},
        {"missing colon", ": 1,", " 1,", "expected ':'"},
        {"missing comma", ": 1,", ": 1 ", "expected ',' or '}'"},
        {"trailing data", "260}", "260} x", "trailing characters after"},
        {"not an object", "{", "[", "expected '{'"},
        {"duplicate token", "\"aa\"", "\"bc\"", "duplicate key 'bc'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *at = strstr(good, cases[i].from);
        CHECK(at != NULL, "%s: pattern not in the vocabulary", cases[i].what);
        if (!at) continue;
        size_t k = (size_t)(at - good), nf = strlen(cases[i].from), nt = strlen(cases[i].to);
        memcpy(bad, good, k);
        memcpy(bad + k, cases[i].to, nt);
        strcpy(bad + k + nt, at + nf);
        int rc = load(bad, strlen(bad), good_merges, sizeof good_merges - 1, &t, err, sizeof err);
        CHECK(rc == SLM_EFORMAT && strstr(err, "vocab.json:") && strstr(err, cases[i].msg),
              "%s: rc %d, message '%s'", cases[i].what, rc, err);
        slm_tokenizer_free(t);
    }
    /* A vocabulary without a token for some byte cannot encode every text. */
    size_t vn = make_vocab(bad, 'q');
    CHECK(load(bad, vn, "#version: 0.2\n", 14, &t, err, sizeof err) == SLM_EFORMAT &&
              strstr(err, "no token for byte 0x71"),
          "missing byte: %s", err);
    CHECK(load("", 0, good_merges, sizeof good_merges - 1, &t, err, sizeof err) == SLM_EFORMAT &&
              strstr(err, "empty file"),
          "empty vocab: %s", err);
    static const char *cut[][2] = {{"{\"\\u01", "vocab.json:1:3: bad \\u escape"},
                                   {"{\"ab", "vocab.json:1:2: unterminated string"},
                                   {"{\"a\": 0,\n\"b\": ", "vocab.json:2:6: unexpected end"}};
    for (size_t i = 0; i < 3; i++)
        CHECK(load(cut[i][0], strlen(cut[i][0]), good_merges, sizeof good_merges - 1, &t, err,
                   sizeof err) == SLM_EFORMAT &&
                  strstr(err, cut[i][1]),
              "cut %zu: %s", i, err);
    CHECK(load("{}", 2, good_merges, sizeof good_merges - 1, &t, err, sizeof err) == SLM_EFORMAT &&
              strstr(err, "no tokens"),
          "{}: %s", err);
}

static void test_malformed_merges(void)
{
    static char vocab[16384];
    char err[512];
    slm_tokenizer *t;
    size_t vn = make_vocab(vocab, -1);
    static const char *cases[][2] = {
        {"#version: 0.2\nb c\nab\n", "merges.txt:3: expected two tokens"},
        {"#version: 0.2\nb  c\n", "merges.txt:2: expected two tokens"},
        {"#version: 0.2\nb c \n", "merges.txt:2: expected two tokens"},
        {"#version: 0.2\n c\n", "merges.txt:2: expected two tokens"},
        {"#version: 0.2\nb c\nx z\n", "merges.txt:3: the merge of 'x z' is not in the vocab"},
        {"#version: 0.2\nb \xc4\x80\n", "merges.txt:2: the merge of"},
        {"#version: 0.2\nb \xc8\x80\n", "merges.txt:2: character U+0200"},
        {"#version: 0.2\nb \xff\n", "merges.txt:2: invalid UTF-8"},
        {"#version: 0.2\nb c\n\na b\n", "merges.txt:3: empty line"},
        {"b c\nzz q\n", "merges.txt:2: token 'zz' is not in the vocab"},
        {"", "merges.txt: empty file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = load(vocab, vn, cases[i][0], strlen(cases[i][0]), &t, err, sizeof err);
        CHECK(rc == SLM_EFORMAT && strstr(err, cases[i][1]), "case %zu: rc %d, message '%s'", i, rc,
              err);
        slm_tokenizer_free(t);
    }
}

static void test_missing_files(void)
{
    char err[512] = "", path[128];
    slm_tokenizer *t = NULL;
    int rc =
        slm_tokenizer_load(SLM_TOKENIZER_GPT2, "/nonexistent/slm-model", 0, &t, err, sizeof err);
    CHECK(rc == SLM_EIO && !t && strstr(err, "/nonexistent/slm-model/vocab.json"),
          "missing dir: %d '%s'", rc, err);
    static char vocab[16384];
    size_t vn = make_vocab(vocab, -1);
    write_file("vocab.json", vocab, vn);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    unlink(path);
    rc = slm_tokenizer_load(SLM_TOKENIZER_GPT2, dir, 0, &t, err, sizeof err);
    CHECK(rc == SLM_EIO && !t && strstr(err, "merges.txt"), "missing merges: %d '%s'", rc, err);
    mkdir(path, 0700); /* merges.txt is a directory */
    rc = slm_tokenizer_load(SLM_TOKENIZER_GPT2, dir, 0, &t, err, sizeof err);
    CHECK(rc == SLM_EIO && !t && strstr(err, "not a regular file"), "directory: %d '%s'", rc, err);
    rmdir(path);
    rc = slm_tokenizer_load(SLM_TOKENIZER_GPT2, NULL, 0, &t, err, sizeof err);
    CHECK(rc == SLM_EINVAL && !t, "NULL dir: %d", rc);
}

/* Every truncation and a few thousand byte flips of a good pair of files:
 * each either loads or fails with SLM_EFORMAT and a message. */
static void test_truncated_and_mutated(void)
{
    static char vocab[16384], buf[16384];
    size_t vn = make_vocab(vocab, -1), mn = sizeof good_merges - 1;
    char err[256];
    bpe_model *m;
    for (size_t n = 0; n < vn; n++) {
        err[0] = 0;
        int rc = bpe_model_from_memory((const uint8_t *)vocab, n, "vocab.json",
                                       (const uint8_t *)good_merges, mn, "merges.txt", &m, err,
                                       sizeof err);
        CHECK(rc == SLM_EFORMAT && !m && err[0], "vocab cut at %zu: rc %d", n, rc);
        if (rc != SLM_EFORMAT) break;
    }
    for (size_t n = 0; n < mn; n++) { /* a cut inside a line leaves a partial merge */
        int rc = bpe_model_from_memory((const uint8_t *)vocab, vn, "vocab.json",
                                       (const uint8_t *)good_merges, n, "merges.txt", &m, err,
                                       sizeof err);
        CHECK(rc == 0 || rc == SLM_EFORMAT, "merges cut at %zu: rc %d", n, rc);
        bpe_model_free(m);
    }
    rng_state r;
    rng_seed(&r, 5);
    for (int i = 0; i < 3000; i++) {
        memcpy(buf, vocab, vn);
        for (int k = 0, flips = 1 + (int)rng_below(&r, 4); k < flips; k++)
            buf[rng_below(&r, vn)] = (char)rng_below(&r, 256);
        err[0] = 0;
        int rc = bpe_model_from_memory((const uint8_t *)buf, vn, "vocab.json",
                                       (const uint8_t *)good_merges, mn, "merges.txt", &m, err,
                                       sizeof err);
        CHECK(rc == 0 || (rc == SLM_EFORMAT && err[0]), "mutation %d: rc %d", i, rc);
        bpe_model_free(m);
    }
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/slm-test-tok-XXXXXX");
    if (!mkdtemp(dir)) {
        printf("FAIL setup: cannot create a temporary directory\n");
        return 1;
    }
    RUN(test_small_vocab_merges_like_tiktoken);
    RUN(test_malformed_vocab);
    RUN(test_malformed_merges);
    RUN(test_missing_files);
    RUN(test_truncated_and_mutated);
    char path[128];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    unlink(path);
    rmdir(dir);
    return test_summary();
}
