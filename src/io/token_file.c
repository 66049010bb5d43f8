/*
 * The tokenized-corpus cache. Layout, all little-endian:
 *
 *   0  char[8]  "SLMTOK1\0"
 *   8  u32      version (1)
 *  12  u32      bytes per id: 2 (vocab_size <= 65536) or 4
 *  16  u64      count of ids
 *  24  u32      vocab_size (every id is below it)
 *  28  u32      tokenizer (SLM_TOKENIZER_*)
 *  32  u64      source size in bytes
 *  40  u64      slm_hash64 of the source bytes
 *  48  u64      slm_hash64 of the id bytes that follow
 *  56  u64      reserved, 0
 *  64  ids
 *
 * The source size and hash detect a stale cache (a changed corpus, even with
 * its mtime preserved); the id hash detects a corrupt one.
 */
#include "io/token_file.h"

#include "core/error.h"
#include "core/hash.h"
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 8192 /* ids converted per step (a multiple of 8 bytes) */

/* One chunk of ids in either width. */
typedef union {
    uint16_t u16[CHUNK];
    uint32_t u32[CHUNK];
} id_chunk;

static void put32(unsigned char *p, uint32_t x)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(x >> (8 * i));
}
static void put64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(x >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ids[0..k) in the file's width, little-endian (the host is little-endian). */
static void narrow(const int32_t *ids, size_t k, unsigned width, id_chunk *out)
{
    if (width == 4)
        for (size_t i = 0; i < k; i++)
            out->u32[i] = (uint32_t)ids[i];
    else
        for (size_t i = 0; i < k; i++)
            out->u16[i] = (uint16_t)ids[i];
}

typedef struct {
    const int32_t *ids;
    size_t n;
    unsigned width;
    const unsigned char *header;
} write_job;

static int write_ids(void *ctx, atomic_out *out, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    const write_job *j = ctx;
    id_chunk buf;
    int rc = atomic_out_write(out, j->header, SLM_TOKEN_HEADER_BYTES);
    for (size_t at = 0; at < j->n && !rc; at += CHUNK) {
        size_t k = j->n - at < CHUNK ? j->n - at : CHUNK;
        narrow(j->ids + at, k, j->width, &buf);
        rc = atomic_out_write(out, &buf, k * j->width);
    }
    return rc;
}

int slm_token_file_write(const char *path, const int32_t *ids, size_t n, const slm_token_meta *meta,
                         char *err, size_t errlen)
{
    if (!path || !meta || (n && !ids))
        return fail(err, errlen, SLM_EINVAL, "slm_token_file_write: bad arguments");
    if (meta->vocab_size <= 0 ||
        (meta->tokenizer != SLM_TOKENIZER_GPT2 && meta->tokenizer != SLM_TOKENIZER_BYTE))
        return fail(err, errlen, SLM_EINVAL, "%s: bad vocab_size or tokenizer", path);
    unsigned width = meta->vocab_size <= 65536 ? 2 : 4;
    id_chunk buf;
    hash_state hs;
    hash_init(&hs);
    for (size_t at = 0; at < n; at += CHUNK) { /* validate and hash first */
        size_t k = n - at < CHUNK ? n - at : CHUNK;
        for (size_t i = 0; i < k; i++)
            if (ids[at + i] < 0 || ids[at + i] >= meta->vocab_size)
                return fail(err, errlen, SLM_EINVAL, "%s: token %zu is %d, outside [0, %d)",
                                path, at + i, (int)ids[at + i], meta->vocab_size);
        narrow(ids + at, k, width, &buf);
        hash_update(&hs, &buf, k * width);
    }
    unsigned char h[SLM_TOKEN_HEADER_BYTES] = {0};
    memcpy(h, SLM_TOKEN_MAGIC, 8);
    put32(h + 8, SLM_TOKEN_VERSION);
    put32(h + 12, width);
    put64(h + 16, n);
    put32(h + 24, (uint32_t)meta->vocab_size);
    put32(h + 28, (uint32_t)meta->tokenizer);
    put64(h + 32, meta->source_size);
    put64(h + 40, meta->source_hash);
    put64(h + 48, hash_final(&hs));
    write_job j = {ids, n, width, h};
    return atomic_write_stream(path, write_ids, &j, err, errlen);
}

/* Where the bytes come from: a file descriptor or memory. */
typedef struct {
    int fd;
    const unsigned char *mem;
    const char *name;
} source;

static int read_at(const source *s, uint64_t off, size_t n, void *dst, char *err, size_t errlen)
{
    if (s->mem) {
        memcpy(dst, s->mem + off, n);
        return SLM_OK;
    }
    char *d = dst;
    while (n) {
        ssize_t r = pread(s->fd, d, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return fail(err, errlen, SLM_EIO, "%s: %s", s->name,
                            r < 0 ? strerror(errno) : "the file shrank while being read");
        d += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return SLM_OK;
}

/* Validates header and length, then reads, checks and widens the ids. */
static int read_tokens(const source *s, uint64_t size, int32_t **ids, size_t *n,
                       slm_token_meta *meta, char *err, size_t errlen)
{
    const char *nm = s->name;
    unsigned char h[SLM_TOKEN_HEADER_BYTES];
    if (size < SLM_TOKEN_HEADER_BYTES)
        return fail(err, errlen, SLM_EFORMAT, "%s: %llu bytes is too small for a token file",
                        nm, (unsigned long long)size);
    int rc = read_at(s, 0, sizeof h, h, err, errlen);
    if (rc) return rc;
    if (memcmp(h, SLM_TOKEN_MAGIC, 8))
        return fail(err, errlen, SLM_EFORMAT, "%s: not an slm token file (bad magic)", nm);
    uint32_t version = get32(h + 8), width = get32(h + 12), vocab = get32(h + 24),
             tok = get32(h + 28);
    uint64_t count = get64(h + 16);
    if (version != SLM_TOKEN_VERSION)
        return fail(err, errlen, SLM_EFORMAT, "%s: token file version %u is not supported", nm,
                        version);
    if (width != 2 && width != 4)
        return fail(err, errlen, SLM_EFORMAT, "%s: %u bytes per id (expected 2 or 4)", nm,
                        width);
    if (vocab == 0 || vocab > INT32_MAX || (width == 2 && vocab > 65536))
        return fail(err, errlen, SLM_EFORMAT, "%s: vocab_size %u is invalid for %u-byte ids",
                        nm, vocab, width);
    if (tok != SLM_TOKENIZER_GPT2 && tok != SLM_TOKENIZER_BYTE)
        return fail(err, errlen, SLM_EFORMAT, "%s: unknown tokenizer %u", nm, tok);
    if (get64(h + 56))
        return fail(err, errlen, SLM_EFORMAT, "%s: reserved header bytes are not zero", nm);
    if (count > (size - SLM_TOKEN_HEADER_BYTES) / width ||
        SLM_TOKEN_HEADER_BYTES + count * width != size)
        return fail(err, errlen, SLM_EFORMAT,
                        "%s: the header says %llu ids of %u bytes but the file holds %llu bytes "
                        "of ids",
                        nm, (unsigned long long)count, width,
                        (unsigned long long)(size - SLM_TOKEN_HEADER_BYTES));
    /* count is now bounded by the real file size. */
    int32_t *out = malloc(count ? (size_t)count * sizeof *out : 1);
    if (!out) return fail(err, errlen, SLM_ENOMEM, "out of memory reading %s", nm);
    hash_state hs;
    hash_init(&hs);
    id_chunk buf;
    for (uint64_t at = 0; at < count && !rc; at += CHUNK) {
        size_t k = count - at < CHUNK ? (size_t)(count - at) : CHUNK;
        rc = read_at(s, SLM_TOKEN_HEADER_BYTES + at * width, k * width, &buf, err, errlen);
        if (rc) break;
        hash_update(&hs, &buf, k * width);
        for (size_t i = 0; i < k; i++) {
            uint32_t id = width == 2 ? buf.u16[i] : buf.u32[i];
            if (id >= vocab) {
                rc = fail(err, errlen, SLM_EFORMAT,
                              "%s: token %llu is %u, not below vocab_size %u", nm,
                              (unsigned long long)(at + i), id, vocab);
                break;
            }
            out[at + i] = (int32_t)id;
        }
    }
    if (!rc && hash_final(&hs) != get64(h + 48))
        rc = fail(err, errlen, SLM_EFORMAT, "%s: checksum mismatch (the file is corrupt)", nm);
    if (rc) {
        free(out);
        return rc;
    }
    *ids = out;
    *n = (size_t)count;
    if (meta) {
        meta->tokenizer = (int)tok;
        meta->vocab_size = (int)vocab;
        meta->source_size = get64(h + 32);
        meta->source_hash = get64(h + 40);
    }
    return SLM_OK;
}

int token_file_parse(const void *buf, size_t len, const char *name, int32_t **ids, size_t *n,
                         slm_token_meta *meta, char *err, size_t errlen)
{
    if (!ids || !n || (!buf && len))
        return fail(err, errlen, SLM_EINVAL, "token_file_parse: bad arguments");
    *ids = NULL;
    *n = 0;
    source s = {-1, buf ? buf : (const void *)"", name ? name : "tokens"};
    return read_tokens(&s, len, ids, n, meta, err, errlen);
}

int slm_token_file_read(const char *path, int32_t **ids, size_t *n, slm_token_meta *meta, char *err,
                        size_t errlen)
{
    if (!path || !ids || !n)
        return fail(err, errlen, SLM_EINVAL, "slm_token_file_read: bad arguments");
    *ids = NULL;
    *n = 0;
    source s = {open(path, O_RDONLY | O_CLOEXEC), NULL, path};
    if (s.fd < 0)
        return fail(err, errlen, SLM_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    int rc;
    if (fstat(s.fd, &st))
        rc = fail(err, errlen, SLM_EIO, "cannot stat '%s': %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = fail(err, errlen, SLM_EIO, "'%s' is not a regular file", path);
    else
        rc = read_tokens(&s, (uint64_t)st.st_size, ids, n, meta, err, errlen);
    close(s.fd);
    return rc;
}
