/* Token cache files (src/io/token_file.c): round trips in both id widths,
 * staleness via the metadata, and one test per corruption. */
#include "io_util.h"

#include "io/token_file.h"
#include "test.h"

static int32_t *ramp(size_t n, int vocab)
{
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)((i * 7919 + 13) % (size_t)vocab);
    return ids;
}

static void round_trip(int vocab, size_t n, size_t want_bytes_per_id)
{
    char *dir = tmpdir_make();
    const char *p = path_in(dir, "tokens.bin", 0);
    int32_t *ids = ramp(n, vocab);
    if (n > 2) ids[n - 1] = vocab - 1, ids[0] = 0;
    const char *src = "the source text";
    slm_token_meta meta = {SLM_TOKENIZER_GPT2, vocab, strlen(src), slm_hash64(src, strlen(src))};
    char err[256];
    CHECK(slm_token_file_write(p, ids, n, &meta, err, sizeof err) == SLM_OK, "%s", err);
    size_t len;
    unsigned char *b = read_bytes(p, &len);
    CHECK(len == SLM_TOKEN_HEADER_BYTES + n * want_bytes_per_id, "file is %zu bytes", len);
    CHECK(b && !memcmp(b, "SLMTOK1\0", 8), "magic");
    int32_t *got = NULL;
    size_t m = 0;
    slm_token_meta back;
    int rc = slm_token_file_read(p, &got, &m, &back, err, sizeof err);
    CHECK(rc == SLM_OK, "read: %s", err);
    CHECK(m == n && got && !memcmp(got, ids, n * sizeof *ids), "ids differ");
    CHECK(!memcmp(&back, &meta, sizeof meta), "meta differs");
    free(got);
    free(b);
    free(ids);
    tmpdir_remove(dir);
}

static void test_tokens_round_trip_u16(void)
{
    round_trip(50257, 100003, 2);
}
static void test_tokens_round_trip_u16_full_range(void)
{
    round_trip(65536, 70000, 2);
}
static void test_tokens_round_trip_u32(void)
{
    round_trip(65537, 20000, 4);
}
static void test_tokens_round_trip_empty(void)
{
    round_trip(256, 0, 2);
}

static void test_tokens_hash_detects_changes(void)
{
    const char *a = "In the beginning God created the heaven and the earth.";
    char b[64];
    strcpy(b, a);
    uint64_t ha = slm_hash64(a, strlen(a));
    CHECK(ha == slm_hash64(b, strlen(b)), "deterministic");
    for (size_t i = 0; i < strlen(a); i++) { /* every single-byte change shows */
        b[i] ^= 1;
        CHECK(slm_hash64(b, strlen(b)) != ha, "change at %zu not detected", i);
        b[i] ^= 1;
    }
    CHECK(slm_hash64(a, 8) != slm_hash64(a, 9) && slm_hash64("", 0) != slm_hash64("\0", 1),
          "length matters");
}

/* Writes a valid file, applies edit(), expects the read to fail. */
typedef void (*edit_fn)(unsigned char *b, size_t *len);

static void put32(unsigned char *p, uint32_t x)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(x >> (8 * i));
}

static void e_truncate(unsigned char *b, size_t *len)
{
    (void)b, *len -= 1;
}
static void e_append(unsigned char *b, size_t *len)
{
    b[(*len)++] = 0;
}
static void e_short(unsigned char *b, size_t *len)
{
    (void)b, *len = 63;
}
static void e_empty(unsigned char *b, size_t *len)
{
    (void)b, *len = 0;
}
static void e_magic(unsigned char *b, size_t *len)
{
    (void)len, b[3] = 'X';
}
static void e_version(unsigned char *b, size_t *len)
{
    (void)len, put32(b + 8, 2);
}
static void e_width(unsigned char *b, size_t *len)
{
    (void)len, put32(b + 12, 3);
}
static void e_width4(unsigned char *b, size_t *len)
{
    (void)len, put32(b + 12, 4);
}
static void e_count(unsigned char *b, size_t *len)
{
    (void)len, memset(b + 16, 0xff, 8);
}
static void e_vocab0(unsigned char *b, size_t *len)
{
    (void)len, put32(b + 24, 0);
}
static void e_vocab_small(unsigned char *b, size_t *len)
{
    (void)len, put32(b + 24, 100);
}
static void e_vocab_wide(unsigned char *b, size_t *len)
{
    (void)len, put32(b + 24, 70000);
}
static void e_tokenizer(unsigned char *b, size_t *len)
{
    (void)len, put32(b + 28, 9);
}
static void e_reserved(unsigned char *b, size_t *len)
{
    (void)len, b[60] = 1;
}
static void e_flip(unsigned char *b, size_t *len)
{
    b[*len - 3] ^= 1;
}

static void test_tokens_rejects_corruption(void)
{
    struct {
        edit_fn edit;
        const char *want;
    } cases[] = {
        {e_truncate, "the header says 1000 ids of 2 bytes but the file holds 1999 bytes"},
        {e_append, "the file holds 2001 bytes"},
        {e_short, "63 bytes is too small"},
        {e_empty, "0 bytes is too small"},
        {e_magic, "not an slm token file"},
        {e_version, "version 2 is not supported"},
        {e_width, "3 bytes per id"},
        {e_width4, "the header says 1000 ids of 4 bytes"},
        {e_count, "the header says 18446744073709551615 ids"},
        {e_vocab0, "vocab_size 0 is invalid"},
        {e_vocab_small, "token 1 is 132, not below vocab_size 100"},
        {e_vocab_wide, "vocab_size 70000 is invalid for 2-byte ids"},
        {e_tokenizer, "unknown tokenizer 9"},
        {e_reserved, "reserved header bytes"},
        {e_flip, "checksum mismatch"},
    };
    char *dir = tmpdir_make();
    const char *p = path_in(dir, "t.bin", 0);
    int32_t *ids = ramp(1000, 300);
    slm_token_meta meta = {SLM_TOKENIZER_BYTE, 300, 5, 6};
    char err[256];
    CHECK(slm_token_file_write(p, ids, 1000, &meta, err, sizeof err) == SLM_OK, "%s", err);
    size_t len0;
    unsigned char *orig = read_bytes(p, &len0);
    unsigned char *b = malloc(len0 + 8);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        memcpy(b, orig, len0);
        size_t len = len0;
        cases[i].edit(b, &len);
        write_bytes(p, b, len);
        int32_t *got = (int32_t *)1;
        size_t n = 7;
        err[0] = '\0';
        int rc = slm_token_file_read(p, &got, &n, NULL, err, sizeof err);
        CHECK(rc == SLM_EFORMAT, "case %zu: rc %d (%s)", i, rc, err);
        CHECK(got == NULL && n == 0, "case %zu: outputs set", i);
        CHECK(strstr(err, cases[i].want), "case %zu: '%s' lacks '%s'", i, err, cases[i].want);
        /* The in-memory parser agrees. */
        rc = token_file_parse(b, len, "m", &got, &n, NULL, err, sizeof err);
        CHECK(rc == SLM_EFORMAT, "case %zu (memory): rc %d", i, rc);
    }
    int32_t *none;
    size_t n_none;
    CHECK(slm_token_file_read(path_in(dir, "missing", 1), &none, &n_none, NULL, err, sizeof err) ==
              SLM_EIO,
          "missing file");
    free(b);
    free(orig);
    free(ids);
    tmpdir_remove(dir);
}

static void test_tokens_writer_validates(void)
{
    char *dir = tmpdir_make();
    const char *p = path_in(dir, "t.bin", 0);
    int32_t ids[3] = {1, 300, 2};
    slm_token_meta meta = {SLM_TOKENIZER_BYTE, 300, 0, 0};
    char err[256];
    CHECK(slm_token_file_write(p, ids, 3, &meta, err, sizeof err) == SLM_EINVAL &&
              strstr(err, "token 1 is 300, outside [0, 300)"),
          "%s", err);
    ids[1] = -1;
    CHECK(slm_token_file_write(p, ids, 3, &meta, err, sizeof err) == SLM_EINVAL, "negative id");
    meta.vocab_size = 0;
    CHECK(slm_token_file_write(p, ids, 0, &meta, err, sizeof err) == SLM_EINVAL, "vocab 0");
    CHECK(count_entries(dir) == 0, "rejected writes left files");
    meta.vocab_size = 300;
    CHECK(slm_token_file_write("/proc/self/t.bin", ids, 0, &meta, err, sizeof err) == SLM_EIO,
          "unwritable");
    tmpdir_remove(dir);
}

int main(void)
{
    RUN(test_tokens_round_trip_u16);
    RUN(test_tokens_round_trip_u16_full_range);
    RUN(test_tokens_round_trip_u32);
    RUN(test_tokens_round_trip_empty);
    RUN(test_tokens_hash_detects_changes);
    RUN(test_tokens_rejects_corruption);
    RUN(test_tokens_writer_validates);
    return test_summary();
}
