/*
 * A Hugging Face GPT-2 directory ↔ slm_model: config.json + model.safetensors.
 * Loading validates everything (config, header, every tensor's presence,
 * dtype and shape) and checks memory before the parameters are allocated;
 * saving writes exactly what GPT2LMHeadModel.save_pretrained writes.
 */
#include "core/alloc.h"
#include "core/error.h"
#include "core/memory.h"
#include "io/atomic_file.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/params.h"
#include "model/quant_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "transformer."
#define PREFIX_LEN 12

/* Per-layer tensor suffixes in the order of the model's tensor table. */
static const char *const LAYER_SUFFIX[] = {
    "ln_1.weight",        "ln_1.bias",        "attn.c_attn.weight", "attn.c_attn.bias",
    "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",        "ln_2.bias",
    "mlp.c_fc.weight",    "mlp.c_fc.bias",    "mlp.c_proj.weight",  "mlp.c_proj.bias"};
#define PER_LAYER 12

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Index in m's tensor table of a name without the prefix, or -1. Direct
 * (parses "h.<layer>.") so a deep model does not cost a quadratic search. */
static int table_index(const slm_model *m, const char *name)
{
    int idx = -1;
    if (!strcmp(name, "wte.weight"))
        idx = 0;
    else if (!strcmp(name, "wpe.weight"))
        idx = 1;
    else if (!strcmp(name, "ln_f.weight"))
        idx = slm_model_num_tensors(m) - 2;
    else if (!strcmp(name, "ln_f.bias"))
        idx = slm_model_num_tensors(m) - 1;
    else if (name[0] == 'h' && name[1] == '.' && name[2] >= '0' && name[2] <= '9') {
        const char *p = name + 2;
        long layer = 0;
        if (*p == '0' && p[1] != '.') return -1; /* no leading zeros */
        while (*p >= '0' && *p <= '9' && layer < slm_model_config(m)->n_layer)
            layer = layer * 10 + (*p++ - '0');
        if (*p != '.' || layer >= slm_model_config(m)->n_layer) return -1;
        for (int j = 0; j < PER_LAYER; j++)
            if (!strcmp(p + 1, LAYER_SUFFIX[j])) idx = 2 + (int)layer * PER_LAYER + j;
    }
    return idx >= 0 && !strcmp(slm_model_tensor(m, idx)->name, name) ? idx : -1;
}

static const char *shape_str(int ndim, const int64_t *shape, char out[160])
{
    int n = snprintf(out, 160, "[");
    for (int i = 0; i < ndim && n < 140; i++)
        n += snprintf(out + n, 160 - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    snprintf(out + n, 160 - (size_t)n, "]");
    return out;
}

static int is_float(int dtype)
{
    return dtype == SLM_DTYPE_F32 || dtype == SLM_DTYPE_F16 || dtype == SLM_DTYPE_BF16;
}

/* A file tensor must be a float tensor of exactly the table's shape. */
static int check_tensor(const char *path, const slm_safetensors_tensor *t,
                        const slm_tensor_info *want, char *err, size_t errlen)
{
    char safe[96], a[160], b[160];
    st_printable(t->name, safe);
    if (!is_float(t->dtype))
        return fail(err, errlen, SLM_EFORMAT,
                        "%s: tensor '%s' has dtype %s; expected F32, F16 or BF16", path, safe,
                        slm_dtype_name(t->dtype));
    int64_t ws[2] = {want->shape[0], want->shape[1]};
    int same = t->ndim == want->ndim;
    for (int i = 0; same && i < want->ndim; i++)
        same = t->shape[i] == ws[i];
    if (!same)
        return fail(err, errlen, SLM_EFORMAT, "%s: tensor '%s' has shape %s, expected %s", path,
                        safe, shape_str(t->ndim, t->shape, a), shape_str(want->ndim, ws, b));
    return SLM_OK;
}

/* Before allocating: the file must plausibly hold the parameters (at least
 * 2 bytes each) and they must fit in memory. */
static int check_size(const slm_config *c, const slm_safetensors *f, const char *path, char *err,
                      size_t errlen)
{
    double C = c->n_embd, L = c->n_layer;
    double n = (double)c->vocab_size * C + (double)c->n_positions * C +
               L * (12.0 * C * C + 13.0 * C) + 2.0 * C;
    if ((double)f->data_len < 2.0 * n)
        return fail(err, errlen, SLM_EFORMAT,
                        "%s: %zu bytes of tensor data cannot hold the %.0f parameters that "
                        "config.json describes",
                        path, f->data_len, n);
    return check_memory(4.0 * n, "the model's parameters", err, errlen);
}

/* lm_head.weight is accepted only as a copy of wte (GPT-2 ties them). */
static int check_tied(const slm_model *m, const slm_safetensors *f,
                      const slm_safetensors_tensor *lm, const char *path, char *err, size_t errlen)
{
    int rc = check_tensor(path, lm, slm_model_tensor(m, 0), err, errlen);
    if (rc) return rc;
    enum { CHUNK = 16384 };
    float *buf = malloc(CHUNK * sizeof *buf);
    if (!buf) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    for (size_t at = 0; at < lm->numel && !rc; at += CHUNK) {
        size_t k = lm->numel - at < CHUNK ? lm->numel - at : CHUNK;
        rc = slm_safetensors_read(f, lm, SLM_DTYPE_F32, at, k, buf, err, errlen);
        if (!rc && memcmp(buf, gpt_model_param_data(m) + slm_model_tensor(m, 0)->offset + at, k * sizeof *buf))
            rc = fail(err, errlen, SLM_EUNSUPPORTED,
                          "%s: lm_head.weight differs from wte.weight: untied output "
                          "embeddings are not supported",
                          path);
    }
    free(buf);
    return rc;
}

/* Finds every table tensor in the file (seen[j] = file index), rejecting
 * unknown and repeated ones; *lm is lm_head.weight's index or -1. */
static int map_tensors(const slm_model *m, const slm_safetensors *f, const char *path, int *seen,
                       int *lm, char *err, size_t errlen)
{
    char safe[96];
    *lm = -1;
    for (int j = 0; j < slm_model_num_tensors(m); j++)
        seen[j] = -1;
    for (int i = 0; i < f->n; i++) {
        const char *full = f->t[i].name;
        const char *name = strncmp(full, PREFIX, PREFIX_LEN) ? full : full + PREFIX_LEN;
        st_printable(full, safe);
        if (!strcmp(full, "lm_head.weight")) {
            *lm = i;
            continue;
        }
        /* The causal-mask buffers older transformers versions saved. */
        if (ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias")) continue;
        int j = table_index(m, name);
        if (j < 0)
            return fail(err, errlen, SLM_EFORMAT,
                            "%s: unexpected tensor '%s' (not part of a GPT-2 model with %d "
                            "layers)",
                            path, safe, slm_model_config(m)->n_layer);
        if (seen[j] >= 0)
            return fail(err, errlen, SLM_EFORMAT, "%s: tensor '%s' appears twice", path,
                            slm_model_tensor(m, j)->name);
        seen[j] = i;
        int rc = check_tensor(path, &f->t[i], slm_model_tensor(m, j), err, errlen);
        if (rc) return rc;
    }
    for (int j = 0; j < slm_model_num_tensors(m); j++)
        if (seen[j] < 0)
            return fail(err, errlen, SLM_EFORMAT, "%s: tensor '%s' is missing", path,
                            slm_model_tensor(m, j)->name);
    return SLM_OK;
}

int quant_model_load(const slm_config *cfg, const config_quant *q, const slm_safetensors *f,
                     const char *path, slm_model **out, char *warn, size_t warnlen, char *err,
                     size_t errlen);

static int load(const char *cfg_path, const char *st_path, slm_model **out, char *err,
                size_t errlen)
{
    slm_config cfg;
    slm_safetensors *f = NULL;
    slm_model *m = NULL;
    int *seen = NULL, lm = -1;
    config_quant q;
    int rc = config_load_ex(cfg_path, &cfg, &q, err, errlen);
    if (!rc) rc = slm_safetensors_open(st_path, &f, err, errlen);
    if (!rc && q.dtype != SLM_QUANT_NONE) { /* slm quantize's int8 / bf16 (model_dir_quant.c) */
        rc = quant_model_load(&cfg, &q, f, st_path, out, NULL, 0, err, errlen);
        slm_safetensors_close(f);
        return rc;
    }
    if (!rc) rc = check_size(&cfg, f, st_path, err, errlen);
    if (!rc) rc = gpt_model_alloc(&cfg, &m, err, errlen);
    if (!rc && !(seen = malloc((size_t)slm_model_num_tensors(m) * sizeof *seen)))
        rc = fail(err, errlen, SLM_ENOMEM, "out of memory");
    if (!rc) rc = map_tensors(m, f, st_path, seen, &lm, err, errlen);
    for (int j = 0; !rc && j < slm_model_num_tensors(m); j++)
        rc = slm_safetensors_read(f, &f->t[seen[j]], SLM_DTYPE_F32, 0, slm_model_tensor(m, j)->numel,
                                  slm_model_params(m) + slm_model_tensor(m, j)->offset, err, errlen);
    if (!rc && lm >= 0) rc = check_tied(m, f, &f->t[lm], st_path, err, errlen);
    free(seen);
    slm_safetensors_close(f);
    if (rc) {
        slm_model_free(m);
        return rc;
    }
    *out = m;
    return SLM_OK;
}

int slm_model_load(const char *dir, slm_model **out, char *err, size_t errlen)
{
    if (!out) return fail(err, errlen, SLM_EINVAL, "no output pointer");
    *out = NULL;
    if (!dir) return fail(err, errlen, SLM_EINVAL, "no model directory");
    char *cfg_path = path_join(dir, "config.json");
    char *st_path = path_join(dir, "model.safetensors");
    int rc = cfg_path && st_path ? load(cfg_path, st_path, out, err, errlen)
                                 : fail(err, errlen, SLM_ENOMEM, "out of memory");
    free(cfg_path);
    free(st_path);
    return rc;
}

int slm_model_save(const slm_model *m, const char *dir, char *err, size_t errlen)
{
    if (!m || !dir) return fail(err, errlen, SLM_EINVAL, "slm_model_save: bad arguments");
    if (slm_model_quantization(m, NULL, NULL) != SLM_QUANT_NONE)
        return fail(err, errlen, SLM_EUNSUPPORTED,
                    "a quantized model has no fp32 weights to save (its directory is the file)");
    int rc = mkdir_p(dir, err, errlen);
    if (rc) return rc;
    int n = slm_model_num_tensors(m);
    slm_safetensors_entry *e = calloc((size_t)n, sizeof *e);
    int64_t *shapes = calloc((size_t)n * 2, sizeof *shapes);
    char *names = calloc((size_t)n, 64 + PREFIX_LEN);
    char *st_path = path_join(dir, "model.safetensors");
    char *cfg_path = path_join(dir, "config.json");
    if (!e || !shapes || !names || !st_path || !cfg_path) {
        rc = fail(err, errlen, SLM_ENOMEM, "out of memory");
        goto out;
    }
    /* GPT2LMHeadModel's state dict names; lm_head.weight is tied, not saved. */
    for (int j = 0; j < n; j++) {
        const slm_tensor_info *t = slm_model_tensor(m, j);
        char *name = names + (size_t)j * (64 + PREFIX_LEN);
        snprintf(name, 64 + PREFIX_LEN, PREFIX "%s", t->name);
        shapes[2 * j] = t->shape[0];
        shapes[2 * j + 1] = t->shape[1];
        e[j] = (slm_safetensors_entry){name, SLM_DTYPE_F32, t->ndim, shapes + 2 * j,
                                       gpt_model_param_data(m) + t->offset};
    }
    static const char *const meta[] = {"format", "pt"};
    rc = slm_safetensors_save(st_path, e, n, meta, 1, err, errlen);
    if (!rc) rc = slm_config_save(slm_model_config(m), cfg_path, err, errlen);
out:
    free(e);
    free(shapes);
    free(names);
    free(st_path);
    free(cfg_path);
    return rc;
}
