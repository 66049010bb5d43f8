/* The JSON parser and writer (src/io/json*.c): RFC 8259 cases, limits,
 * error positions, the writer's escaping, and GPT-2's vocab.json. */
#include "io/json.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *s, json_doc *d, char *err, size_t errlen)
{
    return json_parse(s, strlen(s), "t.json", d, err, errlen);
}

/* Expects s to be rejected with SLM_EFORMAT and a message containing want. */
static void reject(const char *s, const char *want)
{
    json_doc d;
    char err[256] = "";
    int rc = parse(s, &d, err, sizeof err);
    CHECK(rc == SLM_EFORMAT, "'%s' gave %d, want SLM_EFORMAT", s, rc);
    CHECK(strstr(err, want) != NULL, "'%s': message '%s' lacks '%s'", s, err, want);
    CHECK(d.v == NULL && d.n == 0, "failed parse left a document");
    json_free(&d);
}

static void test_json_values_and_structure(void)
{
    json_doc d;
    char err[256];
    const char *s = " {\"a\": [1, -2.5, 3e2, true, false, null, \"x\"], \"b\": {}, \"c\": [],"
                    " \"d\": {\"e\": 0}} ";
    int rc = parse(s, &d, err, sizeof err);
    CHECK(rc == SLM_OK, "parse: %s", err);
    if (rc) return;
    const json_value *root = json_root(&d);
    CHECK(root->type == SLM_JSON_OBJECT && root->count == 4, "root");
    CHECK(root->span == d.n, "span %u of %zu", root->span, d.n);
    const json_value *a = json_get(root, "a");
    CHECK(a && a->type == SLM_JSON_ARRAY && a->count == 7, "a");
    json_iter it = json_iterate(a);
    const json_value *k, *v;
    int i = 0;
    int64_t x;
    while (json_next(&it, &k, &v)) {
        CHECK(k == NULL, "array key");
        switch (i++) {
        case 0: CHECK(json_int(v, &x) && x == 1, "1"); break;
        case 1: CHECK(!v->is_int && json_number(v) == -2.5, "-2.5"); break;
        case 2: CHECK(!v->is_int && json_number(v) == 300.0, "3e2"); break;
        case 3: CHECK(v->type == SLM_JSON_TRUE, "true"); break;
        case 4: CHECK(v->type == SLM_JSON_FALSE, "false"); break;
        case 5: CHECK(v->type == SLM_JSON_NULL, "null"); break;
        case 6: CHECK(json_str_eq(v, "x"), "x"); break;
        }
    }
    CHECK(i == 7, "iterated %d", i);
    const json_value *b = json_get(root, "b"), *c = json_get(root, "c");
    CHECK(b && b->type == SLM_JSON_OBJECT && b->count == 0 && b->span == 1, "b");
    CHECK(c && c->type == SLM_JSON_ARRAY && c->count == 0, "c");
    const json_value *e = json_get(json_get(root, "d"), "e");
    CHECK(json_int(e, &x) && x == 0, "d.e");
    CHECK(json_get(root, "zz") == NULL && json_get(a, "a") == NULL, "absent");
    json_free(&d);
}

static void test_json_string_escapes_and_surrogates(void)
{
    json_doc d;
    char err[256];
    /* \u00e9 = é (2 bytes), \ud83d\ude00 = U+1F600 (4 bytes), \u0000 embedded. */
    const char *s = "\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0000z\xc3\xa9\"";
    int rc = parse(s, &d, err, sizeof err);
    CHECK(rc == SLM_OK, "parse: %s", err);
    if (rc) return;
    const char want[] = "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\0z\xc3\xa9";
    const json_value *v = json_root(&d);
    CHECK(v->type == SLM_JSON_STRING && v->len == sizeof want - 1, "len %u", v->len);
    CHECK(!memcmp(v->u.str, want, sizeof want - 1), "bytes");
    CHECK(v->u.str[v->len] == '\0', "NUL-terminated");
    json_free(&d);
}

static void test_json_integers_exact_and_large(void)
{
    json_doc d;
    char err[256];
    int rc = parse("[9223372036854775807, -9223372036854775808, 9223372036854775808, 1e400x]", &d,
                   err, sizeof err);
    CHECK(rc == SLM_EFORMAT, "garbage after number accepted");
    rc = parse("[9223372036854775807, -9223372036854775808, 9223372036854775808, 12.0]", &d, err,
               sizeof err);
    CHECK(rc == SLM_OK, "parse: %s", err);
    if (rc) return;
    int64_t x;
    CHECK(json_int(&d.v[1], &x) && x == INT64_MAX, "INT64_MAX");
    CHECK(json_int(&d.v[2], &x) && x == INT64_MIN, "INT64_MIN");
    CHECK(!json_int(&d.v[3], &x) && json_number(&d.v[3]) == 9223372036854775808.0,
          "2^63 is not an int64 but is a number");
    CHECK(!json_int(&d.v[4], &x) && json_number(&d.v[4]) == 12.0, "12.0 is not an int");
    json_free(&d);
}

static void test_json_rejects_malformed(void)
{
    reject("", "expected a value");
    reject("   ", "expected a value");
    reject("{", "expected a key");
    reject("{\"a\"}", "expected ':'");
    reject("{\"a\":1,}", "expected a string key");
    reject("[1,]", "unexpected character ']'");
    reject("[1 2]", "expected ',' or ']'");
    reject("[1}", "expected ',' or ']'");
    reject("{\"a\":1]", "expected ',' or '}'");
    reject("[1", "unexpected end of input in an array");
    reject("{} {}", "trailing characters");
    reject("[] x", "trailing characters");
    reject("01", "leading zero");
    reject("-", "invalid number");
    reject("1.", "invalid number");
    reject(".5", "unexpected character");
    reject("1e", "invalid number");
    reject("+1", "unexpected character '+'");
    reject("1e999", "out of range");
    reject("tru", "invalid literal");
    reject("nul", "invalid literal");
    reject("NaN", "unexpected character");
    reject("\"abc", "unterminated string");
    reject("\"a\nb\"", "control character 0x0a");
    reject("\"\\x\"", "unknown escape");
    reject("\"\\u12G4\"", "bad \\u escape");
    reject("\"\\ud800\"", "without a low surrogate");
    reject("\"\\ud800\\u0041\"", "without a low surrogate");
    reject("\"\\udc00\"", "lone low surrogate");
    reject("\"\xff\"", "invalid UTF-8");
    reject("\"\xc0\xaf\"", "invalid UTF-8");         /* overlong '/' */
    reject("\"\xed\xa0\x80\"", "invalid UTF-8");     /* encoded surrogate */
    reject("\"\xf4\x90\x80\x80\"", "invalid UTF-8"); /* above U+10FFFF */
    reject("\"\xe2\x82\"", "invalid UTF-8");         /* cut short */
    reject("{\"a\":1,\"b\":2,\"a\":3}", "duplicate key 'a'");
    reject("// c\n{}", "unexpected character '/'");
}

static void test_json_error_has_line_and_column(void)
{
    json_doc d;
    char err[256];
    int rc = parse("{\n  \"a\": 1,\n  \"b\": tru\n}", &d, err, sizeof err);
    CHECK(rc == SLM_EFORMAT, "rc %d", rc);
    CHECK(!strcmp(err, "t.json:3:8: invalid literal"), "message '%s'", err);
}

static void test_json_depth_limit_without_recursion(void)
{
    /* 100k nested arrays: refused at the limit, no stack overflow. */
    size_t n = 100000;
    char *s = malloc(2 * n + 1);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    json_doc d;
    char err[256] = "";
    int rc = json_parse(s, 2 * n, NULL, &d, err, sizeof err);
    CHECK(rc == SLM_EFORMAT && strstr(err, "nesting deeper than"), "deep: %d %s", rc, err);
    /* Exactly at the limit is fine. */
    size_t m = SLM_JSON_MAX_DEPTH;
    memmove(s + m, s + 2 * n - m, m);
    rc = json_parse(s, 2 * m, NULL, &d, err, sizeof err);
    CHECK(rc == SLM_OK, "depth %zu: %s", m, err);
    if (!rc) CHECK(d.n == m && d.v[0].span == m, "tape %zu", d.n);
    json_free(&d);
    free(s);
}

static void test_json_text_need_not_be_nul_terminated(void)
{
    char buf[4] = {'1', '2', '3', '4'}; /* "12" of "1234" */
    json_doc d;
    char err[128];
    int64_t x = 0;
    CHECK(json_parse(buf, 2, NULL, &d, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(json_int(json_root(&d), &x) && x == 12, "got %lld", (long long)x);
    json_free(&d);
}

static void test_json_writer_round_trip(void)
{
    json_writer w;
    jw_init(&w, 2);
    jw_begin_object(&w);
    jw_key(&w, "s", 1);
    jw_string(&w, "q\"\\\n\x01\0\xc3\xa9", 8);
    jw_key(&w, "f", 1);
    jw_float(&w, 1e-5f);
    jw_key(&w, "d", 1);
    jw_double(&w, 0.1);
    jw_key(&w, "i", 1);
    jw_int(&w, -42);
    jw_key(&w, "a", 1);
    jw_begin_array(&w);
    jw_bool(&w, 1);
    jw_null(&w);
    jw_begin_object(&w);
    jw_end_object(&w);
    jw_end_array(&w);
    jw_end_object(&w);
    char *out;
    size_t len;
    char err[128];
    int rc = jw_finish(&w, &out, &len, err, sizeof err);
    CHECK(rc == SLM_OK, "finish: %s", err);
    if (rc) return;
    const char *want = "{\n  \"s\": \"q\\\"\\\\\\n\\u0001\\u0000\xc3\xa9\",\n  \"f\": 1e-05,\n"
                       "  \"d\": 0.1,\n  \"i\": -42,\n  \"a\": [\n    true,\n    null,\n"
                       "    {}\n  ]\n}";
    CHECK(len == strlen(want) && !strcmp(out, want), "got:\n%s", out);
    json_doc d;
    rc = json_parse(out, len, NULL, &d, err, sizeof err);
    CHECK(rc == SLM_OK, "reparse: %s", err);
    if (!rc) {
        const json_value *s = json_get(json_root(&d), "s");
        CHECK(s && s->len == 8 && !memcmp(s->u.str, "q\"\\\n\x01\0\xc3\xa9", 8), "string");
        CHECK((float)json_number(json_get(json_root(&d), "f")) == 1e-5f, "float");
        json_free(&d);
    }
    free(out);
}

static void test_json_writer_compact_and_misuse(void)
{
    json_writer w;
    jw_init(&w, 0);
    jw_begin_object(&w);
    jw_key(&w, "a", 1);
    jw_begin_array(&w);
    jw_int(&w, 1);
    jw_int(&w, 2);
    jw_end_array(&w);
    jw_end_object(&w);
    char *out;
    size_t len;
    int rc = jw_finish(&w, &out, &len, NULL, 0);
    CHECK(rc == SLM_OK && !strcmp(out, "{\"a\":[1,2]}"), "compact: %s", rc ? "" : out);
    if (!rc) free(out);

    jw_init(&w, 0);
    jw_begin_array(&w);
    jw_double(&w, INFINITY);
    jw_end_array(&w);
    CHECK(jw_finish(&w, &out, &len, NULL, 0) == SLM_EINVAL, "inf accepted");
    jw_init(&w, 0);
    jw_begin_array(&w);
    CHECK(jw_finish(&w, &out, &len, NULL, 0) == SLM_EINVAL, "unbalanced accepted");
    jw_init(&w, 0);
    jw_string(&w, "\xff", 1);
    CHECK(jw_finish(&w, &out, &len, NULL, 0) == SLM_EINVAL, "invalid UTF-8 accepted");
}

/* Tests run from the repository root: the vocabulary ships in data/gpt2, or
 * in shared/ beside the repository. */
static void test_json_gpt2_vocab(void)
{
    FILE *f = fopen("data/gpt2/vocab.json", "rb");
    if (!f) f = fopen("../shared/data/gpt2/vocab.json", "rb");
    CHECK(f != NULL, "data/gpt2/vocab.json is missing");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n, "read");
    fclose(f);
    json_doc d;
    char err[256];
    int rc = json_parse(buf, (size_t)n, "vocab.json", &d, err, sizeof err);
    CHECK(rc == SLM_OK, "%s", err);
    if (!rc) {
        const json_value *root = json_root(&d);
        CHECK(root->count == 50257, "members %u", root->count);
        int64_t id = -1;
        CHECK(json_int(json_get(root, "<|endoftext|>"), &id) && id == 50256, "eot %lld",
              (long long)id);
        /* "\u0120the" is "Ġthe" = id 262 in GPT-2's vocabulary. */
        CHECK(json_int(json_get(root, "\xc4\xa0the"), &id) && id == 262, "Gthe %lld",
              (long long)id);
        json_free(&d);
    }
    free(buf);
}

int main(void)
{
    RUN(test_json_values_and_structure);
    RUN(test_json_string_escapes_and_surrogates);
    RUN(test_json_integers_exact_and_large);
    RUN(test_json_rejects_malformed);
    RUN(test_json_error_has_line_and_column);
    RUN(test_json_depth_limit_without_recursion);
    RUN(test_json_text_need_not_be_nul_terminated);
    RUN(test_json_writer_round_trip);
    RUN(test_json_writer_compact_and_misuse);
    RUN(test_json_gpt2_vocab);
    return test_summary();
}
