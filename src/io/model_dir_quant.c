/*
 * Quantized model directories (slm quantize): writing an fp32 model's
 * weight matrices as int8 + scales or bf16, and loading such a directory
 * into a model that holds them in the kernels' form (never widened to
 * fp32). The format is documented at slm_model_save_quantized (slm.h):
 * GPT-2 tensor names, int8 matrices I8 with the GPT-2 shape plus
 * "<name>_scale" F32, bf16 matrices BF16; everything else F32.
 */
#include "core/alloc.h"
#include "core/error.h"
#include "core/memory.h"
#include "io/atomic_file.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/quant_model.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "transformer."
#define NAME_MAX_LEN 96

/* A matrix's product: W (in,out), and whether the file stores it [out][in]
 * (wte, whose rows are the LM head's outputs) rather than [in][out]. */
typedef struct {
    int in, out, transposed;
} mat_shape;

static mat_shape shape_of(const slm_tensor_info *t)
{
    int wte = !strcmp(t->name, "wte.weight");
    return wte ? (mat_shape){t->shape[1], t->shape[0], 1}
               : (mat_shape){t->shape[0], t->shape[1], 0};
}

/* Where the kernel form of table tensor j (a matrix) lives in m->quant. */
static qmatrix *slot_of(slm_model *m, int j)
{
    if (j == 0) return &m->quant->wte;
    int l = (j - 2) / 12, k = (j - 2) % 12;
    int kind = k == 2 ? QW_ATTN : k == 4 ? QW_PROJ : k == 8 ? QW_FC : QW_MLP_PROJ;
    return &m->quant->layer[(size_t)l * QW_PER_LAYER + kind];
}

/* ---- writing ------------------------------------------------------------ */

int slm_model_save_quantized(const slm_model *m, const char *dir, int quant, int group, char *err,
                             size_t errlen)
{
    if (!m || !dir) return fail(err, errlen, SLM_EINVAL, "slm_model_save_quantized: bad arguments");
    if (m->quant)
        return fail(err, errlen, SLM_EINVAL, "the model is already quantized; start from fp32");
    if (quant != SLM_QUANT_INT8 && quant != SLM_QUANT_BF16)
        return fail(err, errlen, SLM_EINVAL, "unknown quantization %d", quant);
    if (quant == SLM_QUANT_INT8 && group == 0) group = QBLOCK;
    if (quant == SLM_QUANT_BF16) group = 0;
    if (quant == SLM_QUANT_INT8 && (group % QBLOCK || group <= 0 || m->cfg.n_embd % group))
        return fail(err, errlen, SLM_EINVAL,
                    "group size %d is not a multiple of %d dividing the width %d", group, QBLOCK,
                    m->cfg.n_embd);
    config_quant cq = {quant, group};
    int rc = SLM_OK;
    size_t bytes_per = quant == SLM_QUANT_INT8 ? 1 : 2;
    rc = check_memory((double)m->n_params * (double)(bytes_per + 1), "the quantized weights", err,
                      errlen);
    if (rc) return rc;
    if ((rc = mkdir_p(dir, err, errlen))) return rc;

    int n = m->n_tensors, n_out = 0;
    slm_safetensors_entry *e = calloc((size_t)2 * n, sizeof *e);
    int64_t *shapes = calloc((size_t)4 * n, sizeof *shapes);
    char *names = calloc((size_t)2 * n, NAME_MAX_LEN);
    void **bufs = calloc((size_t)2 * n, sizeof *bufs);
    char *st_path = path_join(dir, "model.safetensors"), *cfg_path = path_join(dir, "config.json");
    if (!e || !shapes || !names || !bufs || !st_path || !cfg_path)
        rc = fail(err, errlen, SLM_ENOMEM, "out of memory");
    for (int j = 0; j < n && !rc; j++) {
        const slm_tensor_info *t = &m->tensors[j];
        const float *src = m->params + t->offset;
        char *name = names + (size_t)n_out * NAME_MAX_LEN;
        int64_t *shape = shapes + 2 * n_out;
        snprintf(name, NAME_MAX_LEN, PREFIX "%s", t->name);
        shape[0] = t->shape[0];
        shape[1] = t->shape[1];
        if (!quant_tensor_is_matrix(t)) {
            e[n_out++] = (slm_safetensors_entry){name, SLM_DTYPE_F32, t->ndim, shape, src};
            continue;
        }
        void *data = bufs[n_out] = malloc(t->numel * bytes_per);
        if (!data) {
            rc = fail(err, errlen, SLM_ENOMEM, "out of memory");
            break;
        }
        if (quant == SLM_QUANT_BF16) {
            uint16_t *b = data;
            for (size_t i = 0; i < t->numel; i++)
                b[i] = f32_to_bf16_one(src[i]);
            e[n_out++] = (slm_safetensors_entry){name, SLM_DTYPE_BF16, 2, shape, data};
            continue;
        }
        mat_shape ms = shape_of(t);
        size_t n_scales = t->numel / (size_t)group;
        float *s = bufs[n_out + 1] = malloc(n_scales * sizeof *s);
        if (!s) {
            rc = fail(err, errlen, SLM_ENOMEM, "out of memory");
            break;
        }
        quantize_int8(src, ms.in, ms.out, ms.transposed, group, data, s);
        e[n_out] = (slm_safetensors_entry){name, SLM_DTYPE_I8, 2, shape, data};
        n_out++;
        char *sname = names + (size_t)n_out * NAME_MAX_LEN;
        int64_t *sshape = shapes + 2 * n_out;
        snprintf(sname, NAME_MAX_LEN, PREFIX "%s_scale", t->name);
        sshape[0] = ms.transposed ? ms.out : ms.in / group;
        sshape[1] = ms.transposed ? ms.in / group : ms.out;
        e[n_out++] = (slm_safetensors_entry){sname, SLM_DTYPE_F32, 2, sshape, s};
    }
    static const char *const meta[] = {"format", "pt"};
    if (!rc) rc = slm_safetensors_save(st_path, e, n_out, meta, 1, err, errlen);
    if (!rc) rc = config_save_ex(&m->cfg, &cq, cfg_path, err, errlen);
    for (int i = 0; bufs && i < 2 * n; i++)
        free(bufs[i]);
    free(bufs);
    free(e);
    free(shapes);
    free(names);
    free(st_path);
    free(cfg_path);
    return rc;
}

/* ---- loading ------------------------------------------------------------ */

typedef struct {
    const slm_safetensors *f;
    const char *path;
    int matched; /* file tensors used so far */
    char *err;
    size_t errlen;
} loader;

/* The file tensor `name`, with or without the "transformer." prefix. */
static const slm_safetensors_tensor *find(loader *L, const char *name)
{
    char full[NAME_MAX_LEN + 16];
    snprintf(full, sizeof full, PREFIX "%s", name);
    const slm_safetensors_tensor *t = slm_safetensors_find(L->f, full);
    if (!t) t = slm_safetensors_find(L->f, name);
    if (t) L->matched++;
    return t;
}

/* Present, of dtype `want` (or any float type when want < 0), shape [d0, d1]. */
static int expect(loader *L, const slm_safetensors_tensor *t, const char *name, int want, int ndim,
                  int64_t d0, int64_t d1)
{
    if (!t)
        return fail(L->err, L->errlen, SLM_EFORMAT, "%s: tensor '%s' is missing", L->path, name);
    int ok = want >= 0 ? t->dtype == want
                       : t->dtype == SLM_DTYPE_F32 || t->dtype == SLM_DTYPE_F16 ||
                             t->dtype == SLM_DTYPE_BF16;
    if (!ok)
        return fail(L->err, L->errlen, SLM_EFORMAT, "%s: tensor '%s' has dtype %s; expected %s",
                    L->path, name, slm_dtype_name(t->dtype),
                    want >= 0 ? slm_dtype_name(want) : "F32, F16 or BF16");
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char got[64] = "[";
        for (int i = 0; i < t->ndim && i < 4; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)t->shape[i]);
        strcat(got, "]");
        if (ndim == 2)
            return fail(L->err, L->errlen, SLM_EFORMAT,
                        "%s: tensor '%s' has shape %s, expected [%lld, %lld]", L->path, name, got,
                        (long long)d0, (long long)d1);
        return fail(L->err, L->errlen, SLM_EFORMAT, "%s: tensor '%s' has shape %s, expected [%lld]",
                    L->path, name, got, (long long)d0);
    }
    return SLM_OK;
}

/* One int8 matrix: I8 weights plus finite, non-negative F32 scales. */
static int load_int8(loader *L, slm_model *m, int j, int8_t *qbuf, float *sbuf)
{
    const slm_tensor_info *t = &m->tensors[j];
    mat_shape ms = shape_of(t);
    int G = m->quant->group;
    char sname[NAME_MAX_LEN];
    snprintf(sname, sizeof sname, "%s_scale", t->name);
    const slm_safetensors_tensor *q = find(L, t->name), *s = find(L, sname);
    int rc = expect(L, q, t->name, SLM_DTYPE_I8, 2, t->shape[0], t->shape[1]);
    if (!rc)
        rc = expect(L, s, sname, SLM_DTYPE_F32, 2, ms.transposed ? ms.out : ms.in / G,
                    ms.transposed ? ms.in / G : ms.out);
    if (!rc) rc = slm_safetensors_read(L->f, q, SLM_DTYPE_I8, 0, q->numel, qbuf, L->err, L->errlen);
    if (!rc)
        rc = slm_safetensors_read(L->f, s, SLM_DTYPE_F32, 0, s->numel, sbuf, L->err, L->errlen);
    for (size_t i = 0; !rc && i < s->numel; i++)
        if (!(sbuf[i] >= 0.0f) || !isfinite(sbuf[i]))
            rc = fail(L->err, L->errlen, SLM_EFORMAT,
                      "%s: tensor '%s' holds %g at element %zu; scales must be finite and >= 0",
                      L->path, sname, (double)sbuf[i], i);
    if (!rc && qmatrix_load_int8(slot_of(m, j), ms.in, ms.out, ms.transposed, G, qbuf, sbuf))
        rc = fail(L->err, L->errlen, SLM_ENOMEM, "out of memory for '%s'", t->name);
    return rc;
}

static int load_bf16(loader *L, slm_model *m, int j, uint16_t *buf, size_t *non_finite)
{
    const slm_tensor_info *t = &m->tensors[j];
    mat_shape ms = shape_of(t);
    const slm_safetensors_tensor *b = find(L, t->name);
    int rc = expect(L, b, t->name, SLM_DTYPE_BF16, 2, t->shape[0], t->shape[1]);
    if (!rc)
        rc = slm_safetensors_read(L->f, b, SLM_DTYPE_BF16, 0, b->numel, buf, L->err, L->errlen);
    for (size_t i = 0; !rc && i < b->numel; i++)
        *non_finite += (buf[i] & 0x7f80) == 0x7f80; /* exponent all ones: inf or NaN */
    if (!rc && qmatrix_load_bf16(slot_of(m, j), ms.in, ms.out, ms.transposed, buf))
        rc = fail(L->err, L->errlen, SLM_ENOMEM, "out of memory for '%s'", t->name);
    return rc;
}

/* The first file tensor no table entry claimed, for the message. */
static int report_unexpected(loader *L, const slm_model *m)
{
    for (int i = 0; i < L->f->n; i++) {
        const char *full = L->f->t[i].name;
        const char *name = strncmp(full, PREFIX, strlen(PREFIX)) ? full : full + strlen(PREFIX);
        char base[NAME_MAX_LEN];
        snprintf(base, sizeof base, "%s", name);
        size_t len = strlen(base);
        if (m->quant->dtype == SLM_QUANT_INT8 && len > 6 && !strcmp(base + len - 6, "_scale"))
            base[len - 6] = '\0';
        const slm_tensor_info *t = slm_model_find_tensor(m, base);
        int scale = strcmp(base, name) != 0;
        if (!t || (scale && !quant_tensor_is_matrix(t))) {
            char safe[96];
            st_printable(full, safe);
            return fail(L->err, L->errlen, SLM_EFORMAT,
                        "%s: unexpected tensor '%s' (not part of a %s GPT-2 model with %d layers)",
                        L->path, safe, m->quant->dtype == SLM_QUANT_INT8 ? "int8" : "bf16",
                        m->cfg.n_layer);
        }
    }
    return fail(L->err, L->errlen, SLM_EFORMAT, "%s: a tensor appears twice", L->path);
}

int quant_model_load(const slm_config *cfg, const config_quant *q, const slm_safetensors *f,
                     const char *path, slm_model **out, char *warn, size_t warnlen, char *err,
                     size_t errlen)
{
    *out = NULL;
    slm_model *m = NULL;
    double C = cfg->n_embd,
           big = (double)cfg->vocab_size * C > 4 * C * C ? (double)cfg->vocab_size * C : 4 * C * C;
    double per = q->dtype == SLM_QUANT_INT8 ? 1.0 + 4.0 / q->group : 2.0;
    int rc =
        check_memory(per * (double)(cfg->vocab_size * C + cfg->n_layer * 12.0 * C * C) + 3.0 * big,
                     "the quantized weights", err, errlen);
    if (!rc) rc = quant_model_alloc(cfg, q->dtype, q->group, &m, err, errlen);
    if (rc) return rc;
    loader L = {f, path, 0, err, errlen};
    size_t big_n = (size_t)big;
    void *buf = malloc(big_n * 2);
    float *sbuf = malloc(big_n / QBLOCK * sizeof *sbuf + 64);
    if (!buf || !sbuf) rc = fail(err, errlen, SLM_ENOMEM, "out of memory");
    size_t bad = 0;
    for (int j = 0; j < m->n_tensors && !rc; j++) {
        const slm_tensor_info *t = &m->tensors[j];
        if (quant_tensor_is_matrix(t)) {
            rc = q->dtype == SLM_QUANT_INT8 ? load_int8(&L, m, j, buf, sbuf)
                                            : load_bf16(&L, m, j, buf, &bad);
            continue;
        }
        const slm_safetensors_tensor *ft = find(&L, t->name);
        rc = expect(&L, ft, t->name, -1, t->ndim, t->shape[0], t->shape[1]);
        float *dst = m->params + t->offset;
        if (!rc) rc = slm_safetensors_read(f, ft, SLM_DTYPE_F32, 0, t->numel, dst, err, errlen);
        for (size_t i = 0; !rc && i < t->numel; i++)
            bad += !isfinite(dst[i]);
    }
    if (!rc && L.matched != f->n) rc = report_unexpected(&L, m);
    free(buf);
    free(sbuf);
    if (rc) {
        slm_model_free(m);
        return rc;
    }
    if (bad)
        fail(warn, warnlen, 0, "%s: %zu non-finite values (NaN or inf) in the weights", path, bad);
    m->quant->path = qpath_best(q->dtype);
    *out = m;
    return SLM_OK;
}
