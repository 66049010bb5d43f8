/*
 * safetensors reader: validates the whole header against the file size
 * before anything is used, then reads tensor data on demand with pread (or
 * from memory), converting F16/BF16 to F32. See slm.h for the checks.
 */
#include "io/safetensors.h"

#include "core/alloc.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "slm reads little-endian tensor data directly: a little-endian host is required"
#endif

static const struct {
    const char *name;
    size_t size;
} DTYPES[SLM_DTYPE_COUNT] = {
    [SLM_DTYPE_F32] = {"F32", 4},         [SLM_DTYPE_F16] = {"F16", 2},
    [SLM_DTYPE_BF16] = {"BF16", 2},       [SLM_DTYPE_F64] = {"F64", 8},
    [SLM_DTYPE_I64] = {"I64", 8},         [SLM_DTYPE_I32] = {"I32", 4},
    [SLM_DTYPE_I16] = {"I16", 2},         [SLM_DTYPE_I8] = {"I8", 1},
    [SLM_DTYPE_U64] = {"U64", 8},         [SLM_DTYPE_U32] = {"U32", 4},
    [SLM_DTYPE_U16] = {"U16", 2},         [SLM_DTYPE_U8] = {"U8", 1},
    [SLM_DTYPE_BOOL] = {"BOOL", 1},       [SLM_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [SLM_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

const char *slm_dtype_name(int dtype)
{
    return dtype >= 0 && dtype < SLM_DTYPE_COUNT ? DTYPES[dtype].name : NULL;
}

size_t slm_dtype_size(int dtype)
{
    return dtype >= 0 && dtype < SLM_DTYPE_COUNT ? DTYPES[dtype].size : 0;
}

float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) { /* inf, or NaN with its payload kept */
        bits = sign | 0x7F800000u | man << 13;
    } else if (exp) { /* rebias 15 → 127 */
        bits = sign | (exp + 112) << 23 | man << 13;
    } else if (!man) {
        bits = sign;
    } else { /* subnormal man·2^-24: normalise into float's wider exponent */
        uint32_t shift = 0;
        while (!(man & 0x400)) {
            man <<= 1;
            shift++;
        }
        bits = sign | (113 - shift) << 23 | (man & 0x3FF) << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16; /* bfloat16 is float's top half */
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void st_printable(const char *name, char out[96])
{
    size_t i = 0;
    for (; name[i] && i < 80; i++) {
        unsigned char c = (unsigned char)name[i];
        out[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
    }
    if (name[i]) memcpy(out + i, "...", 3), i += 3;
    out[i] = '\0';
}

static int lookup_dtype(const json_value *v)
{
    for (int d = 0; d < SLM_DTYPE_COUNT; d++)
        if (json_str_eq(v, DTYPES[d].name)) return d;
    return -1;
}

/* Formats a shape as "[2, 3]" into out. */
static const char *shape_str(const int64_t *shape, int ndim, char out[160])
{
    int n = snprintf(out, 160, "[");
    for (int i = 0; i < ndim && n < 140; i++)
        n += snprintf(out + n, 160 - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    snprintf(out + n, 160 - (size_t)n, "]");
    return out;
}

typedef struct {
    slm_safetensors *f;
    char *err;
    size_t errlen;
} ctx;

#define TFAIL(c, tname, ...) tensor_fail(c, tname, __VA_ARGS__)
__attribute__((format(printf, 3, 4))) static int tensor_fail(ctx *c, const char *tname,
                                                             const char *fmt, ...)
{
    char safe[96], what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    st_printable(tname, safe);
    return fail(c->err, c->errlen, SLM_EFORMAT, "%s: tensor '%s': %s", c->f->path, safe, what);
}

/* One header entry → t and *begin, validated against the data section. */
static int parse_tensor(ctx *c, const json_value *key, const json_value *v,
                        slm_safetensors_tensor *t, size_t *begin)
{
    const char *name = key->u.str;
    t->name = name;
    if (memchr(name, '\0', key->len)) return TFAIL(c, name, "name contains a NUL byte");
    if (v->type != SLM_JSON_OBJECT) return TFAIL(c, name, "entry is not an object");
    const json_value *dt = json_get(v, "dtype"), *shape = json_get(v, "shape"),
                         *offs = json_get(v, "data_offsets");
    if (!dt || !shape || !offs)
        return TFAIL(c, name, "missing '%s'", !dt ? "dtype" : !shape ? "shape" : "data_offsets");
    t->dtype = lookup_dtype(dt);
    if (t->dtype < 0) {
        char safe[96];
        st_printable(dt->type == SLM_JSON_STRING ? dt->u.str : "(not a string)", safe);
        return TFAIL(c, name, "unknown dtype '%s'", safe);
    }
    if (shape->type != SLM_JSON_ARRAY) return TFAIL(c, name, "shape is not an array");
    if (shape->count > SLM_SAFETENSORS_MAX_DIMS)
        return TFAIL(c, name, "%u dimensions (at most %d supported)", shape->count,
                     SLM_SAFETENSORS_MAX_DIMS);
    t->ndim = (int)shape->count;
    size_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < t->ndim; i++) {
        const json_value *d = shape + 1 + i; /* scalars: each spans one entry */
        if (!json_int(d, &t->shape[i]) || t->shape[i] < 0)
            return TFAIL(c, name, "shape entries must be non-negative integers");
        if (!mul_size(numel, (size_t)t->shape[i], &numel)) overflow = 1;
    }
    char sh[160];
    if (overflow || !mul_size(numel, slm_dtype_size(t->dtype), &t->nbytes))
        return TFAIL(c, name, "shape %s is too large", shape_str(t->shape, t->ndim, sh));
    t->numel = numel;
    int64_t b, e;
    if (offs->type != SLM_JSON_ARRAY || offs->count != 2 || !json_int(offs + 1, &b) ||
        !json_int(offs + 2, &e) || b < 0 || e < 0)
        return TFAIL(c, name, "data_offsets must be two non-negative integers [begin, end]");
    if (b > e)
        return TFAIL(c, name, "data_offsets [%lld, %lld] end before they begin", (long long)b,
                     (long long)e);
    if ((uint64_t)e > c->f->data_len)
        return TFAIL(c, name, "data_offsets [%lld, %lld] exceed the data section (%zu bytes)",
                     (long long)b, (long long)e, c->f->data_len);
    if ((uint64_t)(e - b) != t->nbytes)
        return TFAIL(c, name, "data_offsets [%lld, %lld] hold %lld bytes but %s %s needs %zu",
                     (long long)b, (long long)e, (long long)(e - b), DTYPES[t->dtype].name,
                     shape_str(t->shape, t->ndim, sh), t->nbytes);
    *begin = (size_t)b;
    return SLM_OK;
}

static int parse_metadata(ctx *c, const json_value *m)
{
    slm_safetensors *f = c->f;
    if (m->type != SLM_JSON_OBJECT)
        return fail(c->err, c->errlen, SLM_EFORMAT, "%s: __metadata__ is not an object",
                        f->path);
    f->meta = malloc((2 * (size_t)m->count + 1) * sizeof *f->meta);
    if (!f->meta) return fail(c->err, c->errlen, SLM_ENOMEM, "out of memory");
    json_iter it = json_iterate(m);
    const json_value *k, *v;
    while (json_next(&it, &k, &v)) {
        char safe[96];
        st_printable(k->u.str, safe);
        if (v->type != SLM_JSON_STRING)
            return fail(c->err, c->errlen, SLM_EFORMAT, "%s: __metadata__ '%s' is not a string",
                            f->path, safe);
        if (memchr(k->u.str, 0, k->len) || memchr(v->u.str, 0, v->len))
            return fail(c->err, c->errlen, SLM_EFORMAT,
                            "%s: __metadata__ '%s' contains a NUL byte", f->path, safe);
        f->meta[2 * f->n_meta] = k->u.str;
        f->meta[2 * f->n_meta + 1] = v->u.str;
        f->n_meta++;
    }
    return SLM_OK;
}

typedef struct {
    const char *name;
    size_t begin, end;
    int idx;
} sort_key;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const sort_key *)a)->name, ((const sort_key *)b)->name);
}

static int offset_cmp(const void *a, const void *b)
{
    const sort_key *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

/* The tensors must tile the data section: sorted by offset, each begins
 * where the previous ended, the first at 0, the last at data_len. */
static int check_coverage(ctx *c, sort_key *keys)
{
    slm_safetensors *f = c->f;
    for (int i = 0; i < f->n; i++) {
        keys[i].begin = f->begin[i];
        keys[i].end = f->begin[i] + f->t[i].nbytes;
        keys[i].idx = i;
    }
    qsort(keys, (size_t)f->n, sizeof *keys, offset_cmp);
    size_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const char *name = f->t[keys[i].idx].name;
        if (keys[i].begin < at) {
            char other[96];
            st_printable(f->t[keys[i - 1].idx].name, other);
            return TFAIL(c, name, "data_offsets [%zu, %zu] overlap tensor '%s'", keys[i].begin,
                         keys[i].end, other);
        }
        if (keys[i].begin > at)
            return TFAIL(c, name,
                         "data_offsets [%zu, %zu] leave a gap: bytes [%zu, %zu) of the data "
                         "section belong to no tensor",
                         keys[i].begin, keys[i].end, at, keys[i].begin);
        at = keys[i].end;
    }
    if (at != f->data_len)
        return fail(c->err, c->errlen, SLM_EFORMAT,
                        "%s: the tensors do not cover the data section: %zu trailing bytes "
                        "after byte %zu",
                        f->path, f->data_len - at, at);
    return SLM_OK;
}

/* Parses and validates the N header bytes of a file of file_size bytes. */
static int parse_header(slm_safetensors *f, const char *hdr, size_t n, uint64_t file_size,
                        char *err, size_t errlen)
{
    ctx c = {f, err, errlen};
    f->data_start = 8 + (uint64_t)n;
    f->data_len = (size_t)(file_size - f->data_start);
    char *jname = malloc(strlen(f->path) + 16);
    if (!jname) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    sprintf(jname, "%s: header", f->path);
    int rc = json_parse(hdr, n, jname, &f->doc, err, errlen);
    free(jname);
    if (rc) return rc;
    const json_value *root = json_root(&f->doc);
    if (root->type != SLM_JSON_OBJECT)
        return fail(err, errlen, SLM_EFORMAT, "%s: the header is not a JSON object", f->path);
    size_t cap = root->count;
    f->t = calloc(cap + 1, sizeof *f->t);
    f->begin = calloc(cap + 1, sizeof *f->begin);
    f->by_name = calloc(cap + 1, sizeof *f->by_name);
    sort_key *keys = calloc(cap + 1, sizeof *keys);
    if (!f->t || !f->begin || !f->by_name || !keys) {
        free(keys);
        return fail(err, errlen, SLM_ENOMEM, "out of memory");
    }
    json_iter it = json_iterate(root);
    const json_value *k, *v;
    while (!rc && json_next(&it, &k, &v)) {
        if (json_str_eq(k, "__metadata__")) {
            rc = parse_metadata(&c, v);
        } else {
            rc = parse_tensor(&c, k, v, &f->t[f->n], &f->begin[f->n]);
            f->n++;
        }
    }
    if (!rc) rc = check_coverage(&c, keys);
    if (!rc) { /* names are unique (the JSON parser rejects duplicate keys) */
        for (int i = 0; i < f->n; i++)
            keys[i] = (sort_key){f->t[i].name, 0, 0, i};
        qsort(keys, (size_t)f->n, sizeof *keys, name_cmp);
        for (int i = 0; i < f->n; i++)
            f->by_name[i] = keys[i].idx;
    }
    free(keys);
    return rc;
}

static slm_safetensors *new_file(const char *name)
{
    slm_safetensors *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->fd = -1;
    f->path = strdup(name ? name : "safetensors");
    if (!f->path) {
        free(f);
        return NULL;
    }
    return f;
}

/* Checks the 8-byte length prefix against the file size. */
static int check_prefix(const char *path, const unsigned char *p8, uint64_t size, size_t *n,
                        char *err, size_t errlen)
{
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--)
        len = len << 8 | p8[i];
    if (len > SLM_SAFETENSORS_MAX_HEADER)
        return fail(err, errlen, SLM_EFORMAT,
                        "%s: header length %llu exceeds the %d-byte limit", path,
                        (unsigned long long)len, SLM_SAFETENSORS_MAX_HEADER);
    if (len > size - 8)
        return fail(err, errlen, SLM_EFORMAT,
                        "%s: header length %llu exceeds the file size (%llu bytes)", path,
                        (unsigned long long)len, (unsigned long long)size);
    *n = (size_t)len;
    return SLM_OK;
}

int st_open_memory(const void *buf, size_t len, const char *name, slm_safetensors **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    slm_safetensors *f = new_file(name);
    if (!f) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    size_t n = 0;
    int rc = SLM_OK;
    if (len < 8)
        rc = fail(err, errlen, SLM_EFORMAT, "%s: %zu bytes is too small for a safetensors file",
                      f->path, len);
    if (!rc) rc = check_prefix(f->path, buf, len, &n, err, errlen);
    if (!rc) rc = parse_header(f, (const char *)buf + 8, n, len, err, errlen);
    if (rc) {
        slm_safetensors_close(f);
        return rc;
    }
    f->mem = buf;
    *out = f;
    return SLM_OK;
}

/* Reads exactly n bytes at offset off of the data section. */
static int read_bytes(const slm_safetensors *f, size_t off, size_t n, void *dst, char *err,
                      size_t errlen)
{
    if (f->mem) {
        memcpy(dst, f->mem + f->data_start + off, n);
        return SLM_OK;
    }
    char *d = dst;
    uint64_t pos = f->data_start + off;
    while (n) {
        ssize_t r = pread(f->fd, d, n, (off_t)pos);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return fail(err, errlen, SLM_EIO, "%s: %s", f->path,
                            r < 0 ? strerror(errno) : "the file shrank while being read");
        d += r;
        pos += (uint64_t)r;
        n -= (size_t)r;
    }
    return SLM_OK;
}

int slm_safetensors_open(const char *path, slm_safetensors **out, char *err, size_t errlen)
{
    *out = NULL;
    slm_safetensors *f = new_file(path);
    if (!f) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    int rc = SLM_OK;
    struct stat st;
    unsigned char p8[8];
    size_t n = 0;
    char *hdr = NULL;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        rc = fail(err, errlen, SLM_EIO, "cannot open '%s': %s", path, strerror(errno));
    else if (fstat(f->fd, &st))
        rc = fail(err, errlen, SLM_EIO, "cannot stat '%s': %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = fail(err, errlen, SLM_EIO, "'%s' is not a regular file", path);
    else if (st.st_size < 8)
        rc =
            fail(err, errlen, SLM_EFORMAT, "%s: %lld bytes is too small for a safetensors file",
                     path, (long long)st.st_size);
    if (!rc) {
        f->data_start = 0;
        rc = read_bytes(f, 0, 8, p8, err, errlen);
    }
    if (!rc) rc = check_prefix(path, p8, (uint64_t)st.st_size, &n, err, errlen);
    if (!rc && !(hdr = malloc(n ? n : 1)))
        rc = fail(err, errlen, SLM_ENOMEM, "out of memory reading the header of '%s'", path);
    if (!rc) {
        f->data_start = 8;
        rc = read_bytes(f, 0, n, hdr, err, errlen);
    }
    if (!rc) rc = parse_header(f, hdr, n, (uint64_t)st.st_size, err, errlen);
    free(hdr);
    if (rc) {
        slm_safetensors_close(f);
        return rc;
    }
    *out = f;
    return SLM_OK;
}

void slm_safetensors_close(slm_safetensors *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    json_free(&f->doc);
    free(f->t);
    free(f->begin);
    free(f->by_name);
    free(f->meta);
    free(f->path);
    free(f);
}

int slm_safetensors_count(const slm_safetensors *f)
{
    return f->n;
}

const slm_safetensors_tensor *slm_safetensors_tensor_at(const slm_safetensors *f, int i)
{
    return i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const slm_safetensors_tensor *slm_safetensors_find(const slm_safetensors *f, const char *name)
{
    int lo = 0, hi = f->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[f->by_name[mid]].name, name);
        if (!c) return &f->t[f->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *slm_safetensors_metadata(const slm_safetensors *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

int slm_safetensors_read(const slm_safetensors *f, const slm_safetensors_tensor *t, int dtype,
                         size_t start, size_t count, void *out, char *err, size_t errlen)
{
    if (!f || !t || t < f->t || t >= f->t + f->n || (!out && count))
        return fail(err, errlen, SLM_EINVAL, "slm_safetensors_read: bad arguments");
    char safe[96];
    st_printable(t->name, safe);
    if (start > t->numel || count > t->numel - start)
        return fail(err, errlen, SLM_EINVAL, "%s: tensor '%s': elements [%zu, %zu) out of %zu",
                        f->path, safe, start, start + count, t->numel);
    size_t off = f->begin[t - f->t], esz = slm_dtype_size(t->dtype);
    if (dtype == t->dtype) return read_bytes(f, off + start * esz, count * esz, out, err, errlen);
    if (dtype != SLM_DTYPE_F32 || (t->dtype != SLM_DTYPE_F16 && t->dtype != SLM_DTYPE_BF16))
        return fail(err, errlen, SLM_EINVAL, "%s: tensor '%s': cannot read %s as %s", f->path,
                        safe, DTYPES[t->dtype].name,
                        slm_dtype_name(dtype) ? slm_dtype_name(dtype) : "?");
    /* 16-bit floats: read a chunk, widen it; 32 KiB on the stack. */
    uint16_t chunk[16384];
    float *o = out;
    for (size_t done = 0; done < count;) {
        size_t k = count - done < 16384 ? count - done : 16384;
        int rc = read_bytes(f, off + (start + done) * 2, k * 2, chunk, err, errlen);
        if (rc) return rc;
        if (t->dtype == SLM_DTYPE_F16)
            for (size_t i = 0; i < k; i++)
                o[done + i] = f16_to_f32(chunk[i]);
        else
            for (size_t i = 0; i < k; i++)
                o[done + i] = bf16_to_f32(chunk[i]);
        done += k;
    }
    return SLM_OK;
}
