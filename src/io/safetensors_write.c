/*
 * safetensors writer: validates the entries, builds the compact JSON header
 * (metadata first, tensors in the caller's order, contiguous), pads it with
 * spaces so the data section starts 8-byte aligned as the Python library
 * does, and streams header and data into an atomic file.
 */
#include "io/atomic_file.h"
#include "io/safetensors.h"

#include "core/alloc.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const slm_safetensors_entry *t;
    const size_t *nbytes;
    int n;
    const char *header;
    size_t header_len;
} save_job;

static int write_file(void *vctx, atomic_out *out, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    const save_job *j = vctx;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)j->header_len >> (8 * i));
    int rc = atomic_out_write(out, len8, 8);
    if (!rc) rc = atomic_out_write(out, j->header, j->header_len);
    for (int i = 0; i < j->n && !rc; i++)
        rc = atomic_out_write(out, j->t[i].data, j->nbytes[i]);
    return rc;
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks every entry; fills nbytes[i]. */
static int check_entries(const slm_safetensors_entry *t, int n, size_t *nbytes,
                         const char *const *meta, int n_meta, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        const char *name = t[i].name;
        if (!name || !*name || !strcmp(name, "__metadata__"))
            return fail(err, errlen, SLM_EINVAL, "safetensors: tensor %d has an invalid name",
                            i);
        char safe[96];
        st_printable(name, safe);
        if (!slm_dtype_name(t[i].dtype) || t[i].ndim < 0 || t[i].ndim > SLM_SAFETENSORS_MAX_DIMS ||
            (t[i].ndim && !t[i].shape))
            return fail(err, errlen, SLM_EINVAL, "safetensors: tensor '%s': bad dtype or shape",
                            safe);
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++)
            if (t[i].shape[d] < 0 || !mul_size(numel, (size_t)t[i].shape[d], &numel))
                return fail(err, errlen, SLM_EINVAL, "safetensors: tensor '%s': bad shape",
                                safe);
        if (!mul_size(numel, slm_dtype_size(t[i].dtype), &nbytes[i]) ||
            (nbytes[i] && !t[i].data))
            return fail(err, errlen, SLM_EINVAL, "safetensors: tensor '%s': no data", safe);
    }
    for (int i = 0; i < 2 * n_meta; i++)
        if (!meta[i]) return fail(err, errlen, SLM_EINVAL, "safetensors: NULL metadata");
    for (int i = 0; i < n_meta; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(meta[2 * i], meta[2 * k]))
                return fail(err, errlen, SLM_EINVAL, "safetensors: metadata key repeated");
    /* Names must be unique: sort a copy and compare neighbours. */
    const char **names = malloc(((size_t)n + 1) * sizeof *names);
    if (!names) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        names[i] = t[i].name;
    qsort(names, (size_t)n, sizeof *names, str_ptr_cmp);
    int rc = SLM_OK;
    for (int i = 1; i < n && !rc; i++) {
        if (!strcmp(names[i], names[i - 1])) {
            char safe[96];
            st_printable(names[i], safe);
            rc = fail(err, errlen, SLM_EINVAL, "safetensors: tensor '%s' given twice", safe);
        }
    }
    free(names);
    return rc;
}

/* The header JSON, padded with spaces so 8 + length is a multiple of 8. */
static int build_header(const slm_safetensors_entry *t, int n, const size_t *nbytes,
                        const char *const *meta, int n_meta, char **out, size_t *len, char *err,
                        size_t errlen)
{
    json_writer w;
    jw_init(&w, 0);
    jw_begin_object(&w);
    if (n_meta > 0) {
        jw_key(&w, "__metadata__", 12);
        jw_begin_object(&w);
        for (int i = 0; i < n_meta; i++) {
            jw_key(&w, meta[2 * i], strlen(meta[2 * i]));
            jw_string(&w, meta[2 * i + 1], strlen(meta[2 * i + 1]));
        }
        jw_end_object(&w);
    }
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        jw_key(&w, t[i].name, strlen(t[i].name));
        jw_begin_object(&w);
        jw_key(&w, "dtype", 5);
        const char *dt = slm_dtype_name(t[i].dtype);
        jw_string(&w, dt, strlen(dt));
        jw_key(&w, "shape", 5);
        jw_begin_array(&w);
        for (int d = 0; d < t[i].ndim; d++)
            jw_int(&w, t[i].shape[d]);
        jw_end_array(&w);
        jw_key(&w, "data_offsets", 12);
        jw_begin_array(&w);
        jw_int(&w, (int64_t)at);
        if (nbytes[i] > INT64_MAX - at) w.failed = SLM_EINVAL;
        at += nbytes[i];
        jw_int(&w, (int64_t)at);
        jw_end_array(&w);
        jw_end_object(&w);
    }
    jw_end_object(&w);
    while (!w.failed && (w.len + 8) % 8)
        jw_raw(&w, " ", 1);
    int rc = jw_finish(&w, out, len, err, errlen);
    if (rc == SLM_EINVAL)
        fail(err, errlen, rc, "safetensors: tensor names and metadata must be valid UTF-8");
    return rc;
}

int slm_safetensors_save(const char *path, const slm_safetensors_entry *tensors, int n,
                         const char *const *meta, int n_meta, char *err, size_t errlen)
{
    if (!path || n < 0 || (n && !tensors) || n_meta < 0 || (n_meta && !meta))
        return fail(err, errlen, SLM_EINVAL, "slm_safetensors_save: bad arguments");
    size_t *nbytes = calloc((size_t)n + 1, sizeof *nbytes);
    if (!nbytes) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    char *header = NULL;
    size_t header_len = 0;
    int rc = check_entries(tensors, n, nbytes, meta, n_meta, err, errlen);
    if (!rc) rc = build_header(tensors, n, nbytes, meta, n_meta, &header, &header_len, err, errlen);
    if (!rc && header_len > SLM_SAFETENSORS_MAX_HEADER)
        rc = fail(err, errlen, SLM_EINVAL, "safetensors: the header would exceed %d bytes",
                      SLM_SAFETENSORS_MAX_HEADER);
    if (!rc) {
        save_job j = {tensors, nbytes, n, header, header_len};
        rc = atomic_write_stream(path, write_file, &j, err, errlen);
    }
    free(header);
    free(nbytes);
    return rc;
}
