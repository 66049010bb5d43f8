/* safetensors reader and writer (src/io/safetensors*.c): round trips, exact
 * F16/BF16 conversion of every bit pattern, and one test per malformed input. */
#include "io_util.h"

#include "io/safetensors.h"
#include "test.h"

#include <stdint.h>
#include <sys/resource.h>

/* A file image: 8-byte length, header text, data_len bytes of data. */
static unsigned char *image(const char *hdr, size_t data_len, size_t *len)
{
    size_t n = strlen(hdr);
    *len = 8 + n + data_len;
    unsigned char *b = calloc(1, *len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, hdr, n);
    for (size_t i = 0; i < data_len; i++)
        b[8 + n + i] = (unsigned char)i;
    return b;
}

/* Expects the image to be rejected with code and a message containing want. */
static void reject_image(const unsigned char *b, size_t len, int code, const char *want)
{
    slm_safetensors *f = (slm_safetensors *)1;
    char err[512] = "";
    int rc = st_open_memory(b, len, "x.safetensors", &f, err, sizeof err);
    CHECK(rc == code, "rc %d want %d (%s)", rc, code, err);
    CHECK(f == NULL, "output set on failure");
    CHECK(strstr(err, want) != NULL, "message '%s' lacks '%s'", err, want);
    CHECK(strncmp(err, "x.safetensors", 13) == 0, "message '%s' does not name the file", err);
}

static void reject_header(const char *hdr, size_t data_len, const char *want)
{
    size_t len;
    unsigned char *b = image(hdr, data_len, &len);
    reject_image(b, len, SLM_EFORMAT, want);
    free(b);
}

static void test_st_round_trip_with_metadata_and_int_dtypes(void)
{
    char *dir = tmpdir_make();
    const char *path = path_in(dir, "a.safetensors", 0);
    float w[6] = {1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -0.0f};
    int64_t steps[1] = {123456789012345LL};
    uint8_t rng[5] = {1, 2, 3, 254, 255};
    int64_t s_w[2] = {2, 3}, s_r[1] = {5};
    slm_safetensors_entry t[4] = {{"w", SLM_DTYPE_F32, 2, s_w, w},
                                  {"step", SLM_DTYPE_I64, 0, NULL, steps},
                                  {"rng", SLM_DTYPE_U8, 1, s_r, rng},
                                  {"empty", SLM_DTYPE_F32, 1, (int64_t[]){0}, NULL}};
    const char *meta[4] = {"format", "pt", "note", "quote \" and \xc3\xa9"};
    char err[256];
    int rc = slm_safetensors_save(path, t, 4, meta, 2, err, sizeof err);
    CHECK(rc == SLM_OK, "save: %s", err);
    size_t len;
    unsigned char *b = read_bytes(path, &len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    CHECK((8 + n) % 8 == 0, "data section not 8-byte aligned (header %llu)", (unsigned long long)n);
    size_t close = n;
    while (close > 0 && b[8 + close - 1] == ' ')
        close--;
    CHECK(b[8] == '{' && close > 0 && b[8 + close - 1] == '}' && n - close < 8,
          "header must be JSON padded with < 8 spaces");
    CHECK(len == 8 + n + 24 + 8 + 5, "file length %zu", len);
    free(b);

    slm_safetensors *f;
    rc = slm_safetensors_open(path, &f, err, sizeof err);
    CHECK(rc == SLM_OK, "open: %s", err);
    if (rc) goto out;
    CHECK(slm_safetensors_count(f) == 4, "count");
    CHECK(!strcmp(slm_safetensors_metadata(f, "format"), "pt"), "format");
    CHECK(!strcmp(slm_safetensors_metadata(f, "note"), "quote \" and \xc3\xa9"), "note");
    CHECK(slm_safetensors_metadata(f, "nope") == NULL, "absent metadata");
    const slm_safetensors_tensor *tw = slm_safetensors_find(f, "w");
    CHECK(tw && tw->dtype == SLM_DTYPE_F32 && tw->ndim == 2 && tw->shape[0] == 2 &&
              tw->shape[1] == 3 && tw->numel == 6 && tw->nbytes == 24,
          "w info");
    float got[6];
    CHECK(slm_safetensors_read(f, tw, SLM_DTYPE_F32, 0, 6, got, err, sizeof err) == SLM_OK, "%s",
          err);
    CHECK(!memcmp(got, w, sizeof w), "w bytes differ");
    CHECK(slm_safetensors_read(f, tw, SLM_DTYPE_F32, 4, 2, got, err, sizeof err) == SLM_OK &&
              !memcmp(got, w + 4, 8),
          "range read");
    CHECK(slm_safetensors_read(f, tw, SLM_DTYPE_F32, 5, 2, got, err, sizeof err) == SLM_EINVAL,
          "range past the end accepted");
    const slm_safetensors_tensor *ts = slm_safetensors_find(f, "step");
    int64_t st = 0;
    CHECK(ts && ts->ndim == 0 && ts->numel == 1, "scalar");
    CHECK(slm_safetensors_read(f, ts, SLM_DTYPE_I64, 0, 1, &st, err, sizeof err) == SLM_OK &&
              st == steps[0],
          "i64 %lld", (long long)st);
    CHECK(slm_safetensors_read(f, ts, SLM_DTYPE_F32, 0, 1, got, err, sizeof err) == SLM_EINVAL,
          "I64 read as F32");
    uint8_t r[5];
    const slm_safetensors_tensor *tr = slm_safetensors_find(f, "rng");
    CHECK(tr && slm_safetensors_read(f, tr, SLM_DTYPE_U8, 0, 5, r, err, sizeof err) == SLM_OK &&
              !memcmp(r, rng, 5),
          "u8");
    const slm_safetensors_tensor *te = slm_safetensors_find(f, "empty");
    CHECK(te && te->numel == 0 && te->nbytes == 0, "empty tensor");
    slm_safetensors_close(f);
out:
    tmpdir_remove(dir);
}

/* Reference: value of an IEEE binary16 / bfloat16 pattern in double. */
static double half_ref(uint16_t h, int exp_bits, int man_bits)
{
    int sign = h >> 15, e = (h >> man_bits) & ((1 << exp_bits) - 1);
    int m = h & ((1 << man_bits) - 1), bias = (1 << (exp_bits - 1)) - 1;
    double v;
    if (e == (1 << exp_bits) - 1)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, 1 - bias - man_bits);
    else
        v = ldexp(m + (1 << man_bits), e - bias - man_bits);
    return sign ? -v : v;
}

static void check_all_16bit(int dtype, int exp_bits, int man_bits)
{
    uint16_t *bits = malloc(65536 * 2);
    for (int i = 0; i < 65536; i++)
        bits[i] = (uint16_t)i;
    char hdr[128];
    snprintf(hdr, sizeof hdr,
             "{\"x\":{\"dtype\":\"%s\",\"shape\":[256,256],\"data_offsets\":[0,131072]}}",
             slm_dtype_name(dtype));
    size_t len;
    unsigned char *b = image(hdr, 131072, &len);
    memcpy(b + 8 + strlen(hdr), bits, 131072);
    slm_safetensors *f;
    char err[256];
    int rc = st_open_memory(b, len, "h", &f, err, sizeof err);
    CHECK(rc == SLM_OK, "%s", err);
    float *out = malloc(65536 * 4);
    if (!rc) {
        CHECK(slm_safetensors_read(f, &f->t[0], SLM_DTYPE_F32, 0, 65536, out, err, sizeof err) ==
                  SLM_OK,
              "%s", err);
        int bad = 0;
        for (int i = 0; i < 65536 && bad < 3; i++) {
            double want = half_ref((uint16_t)i, exp_bits, man_bits);
            uint32_t ob;
            memcpy(&ob, &out[i], 4);
            int ok = isnan(want) ? isnan(out[i]) && (ob >> 31) == (unsigned)(i >> 15)
                                 : (double)out[i] == want && !signbit(out[i]) == !signbit(want);
            if (!ok) {
                bad++;
                CHECK(0, "%s 0x%04x -> %g, want %g", slm_dtype_name(dtype), i, out[i], want);
            }
        }
        slm_safetensors_close(f);
    }
    free(out);
    free(b);
    free(bits);
}

static void test_st_f16_every_bit_pattern_exact(void)
{
    check_all_16bit(SLM_DTYPE_F16, 5, 10);
}
static void test_st_bf16_every_bit_pattern_exact(void)
{
    check_all_16bit(SLM_DTYPE_BF16, 8, 7);
}

static void test_st_rejects_short_and_random_files(void)
{
    unsigned char b[64] = {0};
    reject_image(b, 0, SLM_EFORMAT, "too small");
    reject_image(b, 7, SLM_EFORMAT, "too small");
    reject_image(b, 8, SLM_EFORMAT, "x.safetensors: header:1:1: unexpected end of input");
    /* Deterministic random bytes, many seeds: never accepted, never crash. */
    uint64_t s = 42;
    for (int trial = 0; trial < 200; trial++) {
        for (int i = 0; i < 64; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            b[i] = (unsigned char)(s >> 56);
        }
        if (trial & 1) b[0] = 40, memset(b + 1, 0, 7); /* a plausible length */
        slm_safetensors *f;
        char err[256];
        int rc = st_open_memory(b, 64, "r", &f, err, sizeof err);
        CHECK(rc == SLM_EFORMAT, "random file %d accepted (%d)", trial, rc);
    }
}

static void test_st_rejects_header_length(void)
{
    size_t len;
    unsigned char *b = image("{}", 0, &len);
    b[0] = 3; /* says 3, file holds 2 */
    reject_image(b, len, SLM_EFORMAT, "header length 3 exceeds the file size (10 bytes)");
    memset(b, 0, 8);
    b[3] = 0x10; /* 0x10000000 = 268 MB */
    reject_image(b, len, SLM_EFORMAT, "exceeds the 100000000-byte limit");
    memset(b, 0xff, 8); /* 2^64-1: no overflow in 8 + N */
    reject_image(b, len, SLM_EFORMAT, "exceeds the 100000000-byte limit");
    free(b);
}

static void test_st_rejects_bad_headers(void)
{
    const char *ok = "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]";
    char h[512];
    reject_header("[]", 0, "the header is not a JSON object");
    reject_header("{\"a\":{}} x", 0, "trailing characters");
    reject_header("{\"a\":1}", 0, "tensor 'a': entry is not an object");
    reject_header("{\"a\":{\"shape\":[],\"data_offsets\":[0,0]}}", 0, "missing 'dtype'");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing 'shape'");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[]}}", 4, "missing 'data_offsets'");
    reject_header("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                  "unknown dtype 'Q4'");
    reject_header("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                  "non-negative integers");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                  "non-negative integers");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4,
                  "shape is not an array");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                  "\"data_offsets\":[0,4]}}",
                  4, "9 dimensions");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                  "\"data_offsets\":[0,4]}}",
                  4, "is too large");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                  "two non-negative integers");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
                  "end before they begin");
    reject_header("{\"__metadata__\":[]}", 0, "__metadata__ is not an object");
    reject_header("{\"__metadata__\":{\"a\":1}}", 0, "__metadata__ 'a' is not a string");
    reject_header("{\"__metadata__\":{\"a\":\"b\\u0000\"}}", 0, "contains a NUL byte");
    reject_header("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
                  "tensor 'a': name contains a NUL byte");
    snprintf(h, sizeof h, "{\"a\":{%s},\"a\":{%s}}", ok, ok);
    reject_header(h, 8, "duplicate key 'a'");
}

static void test_st_rejects_bad_offsets(void)
{
    /* Out of bounds: the data section holds 8 bytes. */
    reject_header("{\"h.0.ln_1.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                  8,
                  "x.safetensors: tensor 'h.0.ln_1.weight': data_offsets [0, 16] exceed the "
                  "data section (8 bytes)");
    /* Size does not match dtype × shape. */
    reject_header("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16,
                  "data_offsets [0, 16] hold 16 bytes but F16 [2, 2] needs 8");
    /* Overlap. */
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                  12, "tensor 'b': data_offsets [4, 12] overlap tensor 'a'");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                  8, "overlap");
    /* A zero-size tensor inside another one overlaps it too. */
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                  8, "overlap");
    /* Gap at the start, in the middle; trailing bytes. */
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                  "bytes [0, 4) of the data section belong to no tensor");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                  12, "tensor 'b': data_offsets [8, 12] leave a gap");
    reject_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5,
                  "do not cover the data section: 1 trailing bytes after byte 4");
    reject_header("{}", 3, "3 trailing bytes");
}

static void test_st_accepts_edge_cases(void)
{
    /* Empty file header, zero-size tensors at shared offsets, padding spaces,
     * tensors listed out of offset order, unknown extra fields ignored. */
    const char *good[] = {
        "{}",
        "{}      ",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]}}",
        "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"extra\":1}}",
    };
    size_t data[] = {0, 0, 0, 6};
    for (int i = 0; i < 4; i++) {
        size_t len;
        unsigned char *b = image(good[i], data[i], &len);
        slm_safetensors *f;
        char err[256];
        int rc = st_open_memory(b, len, "e", &f, err, sizeof err);
        CHECK(rc == SLM_OK, "case %d: %s", i, err);
        if (!rc) {
            if (i == 3) {
                CHECK(slm_safetensors_find(f, "a") == slm_safetensors_tensor_at(f, 1), "find a");
                CHECK(slm_safetensors_find(f, "b") == slm_safetensors_tensor_at(f, 0), "find b");
                uint8_t u[2];
                CHECK(slm_safetensors_read(f, slm_safetensors_find(f, "b"), SLM_DTYPE_U8, 0, 2, u,
                                           err, sizeof err) == SLM_OK &&
                          u[0] == 4 && u[1] == 5,
                      "offsets honoured");
            }
            slm_safetensors_close(f);
        }
        free(b);
    }
}

static void test_st_file_errors(void)
{
    char *dir = tmpdir_make();
    slm_safetensors *f;
    char err[256];
    CHECK(slm_safetensors_open(path_in(dir, "missing", 0), &f, err, sizeof err) == SLM_EIO &&
              strstr(err, "No such file"),
          "missing: %s", err);
    CHECK(slm_safetensors_open(dir, &f, err, sizeof err) == SLM_EIO &&
              strstr(err, "not a regular file"),
          "directory: %s", err);
    write_bytes(path_in(dir, "empty", 0), "", 0);
    CHECK(slm_safetensors_open(path_in(dir, "empty", 0), &f, err, sizeof err) == SLM_EFORMAT &&
              strstr(err, "0 bytes is too small"),
          "empty: %s", err);
    /* A valid file cut short by one byte. */
    float x[4] = {1, 2, 3, 4};
    int64_t shape[1] = {4};
    slm_safetensors_entry e = {"x", SLM_DTYPE_F32, 1, shape, x};
    const char *p = path_in(dir, "x.safetensors", 1);
    CHECK(slm_safetensors_save(p, &e, 1, NULL, 0, err, sizeof err) == SLM_OK, "%s", err);
    size_t len;
    unsigned char *b = read_bytes(p, &len);
    write_bytes(p, b, len - 1);
    CHECK(slm_safetensors_open(p, &f, err, sizeof err) == SLM_EFORMAT &&
              strstr(err, "exceed the data section (15 bytes)"),
          "truncated: %s", err);
    /* The file shrinks after it was opened: reading reports it. */
    write_bytes(p, b, len);
    int rc = slm_safetensors_open(p, &f, err, sizeof err);
    CHECK(rc == SLM_OK, "%s", err);
    if (!rc) {
        CHECK(truncate(p, (off_t)len - 8) == 0, "truncate");
        float y[4];
        CHECK(slm_safetensors_read(f, &f->t[0], SLM_DTYPE_F32, 0, 4, y, err, sizeof err) ==
                      SLM_EIO &&
                  strstr(err, "shrank"),
              "shrunk: %s", err);
        slm_safetensors_close(f);
    }
    free(b);
    tmpdir_remove(dir);
}

static void test_st_writer_rejects_bad_entries(void)
{
    char *dir = tmpdir_make();
    float x[2] = {1, 2};
    int64_t shape[1] = {2}, neg[1] = {-2};
    char err[256];
    const char *p = path_in(dir, "w.safetensors", 0);
    slm_safetensors_entry dup[2] = {{"a", SLM_DTYPE_F32, 1, shape, x},
                                    {"a", SLM_DTYPE_F32, 1, shape, x}};
    CHECK(slm_safetensors_save(p, dup, 2, NULL, 0, err, sizeof err) == SLM_EINVAL &&
              strstr(err, "'a' given twice"),
          "dup: %s", err);
    slm_safetensors_entry bad[4] = {{"__metadata__", SLM_DTYPE_F32, 1, shape, x},
                                    {"b", 99, 1, shape, x},
                                    {"c", SLM_DTYPE_F32, 1, neg, x},
                                    {"d", SLM_DTYPE_F32, 1, shape, NULL}};
    for (int i = 0; i < 4; i++)
        CHECK(slm_safetensors_save(p, &bad[i], 1, NULL, 0, err, sizeof err) == SLM_EINVAL,
              "bad entry %d accepted", i);
    slm_safetensors_entry utf[1] = {{"\xff", SLM_DTYPE_F32, 1, shape, x}};
    CHECK(slm_safetensors_save(p, utf, 1, NULL, 0, err, sizeof err) == SLM_EINVAL &&
              strstr(err, "UTF-8"),
          "utf8: %s", err);
    CHECK(count_entries(dir) == 0, "a rejected save left files behind");
    /* Writing under a regular file fails with EIO, as root too. */
    write_bytes(path_in(dir, "file", 1), "x", 1);
    CHECK(slm_safetensors_save(path_in(dir, "file/w.safetensors", 2), dup, 1, NULL, 0, err,
                               sizeof err) == SLM_EIO &&
              strstr(err, "Not a directory"),
          "under a file: %s", err);
    tmpdir_remove(dir);
}

int main(void)
{
    RUN(test_st_round_trip_with_metadata_and_int_dtypes);
    RUN(test_st_f16_every_bit_pattern_exact);
    RUN(test_st_bf16_every_bit_pattern_exact);
    RUN(test_st_rejects_short_and_random_files);
    RUN(test_st_rejects_header_length);
    RUN(test_st_rejects_bad_headers);
    RUN(test_st_rejects_bad_offsets);
    RUN(test_st_accepts_edge_cases);
    RUN(test_st_file_errors);
    RUN(test_st_writer_rejects_bad_entries);
    return test_summary();
}
