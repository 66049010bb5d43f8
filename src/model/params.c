/*
 * The model's parameters: configuration checks, the GPT-2 tensor table, one
 * allocation for all weights, and GPT-2's initialisation.
 */
#include "core/alloc.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/rng.h"
#include "model/model.h"
#include "model/quant_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sizes beyond these are refused before anything is allocated. */
#define MAX_LAYERS 1024
#define MAX_EMBD 65536
#define MAX_POSITIONS (1 << 20)
#define MAX_VOCAB (1 << 22)
#define MAX_PARAMS ((size_t)4 << 30) /* 4 Gi floats = 16 GiB */

#define TENSORS_PER_LAYER 12
#define NAME_LEN 48

/* Parameter count of a valid config, or 0 if it overflows MAX_PARAMS. */
static size_t count_params(const slm_config *c)
{
    size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer;
    double n = (double)c->vocab_size * C + (double)c->n_positions * C +
               (double)L * (12.0 * C * C + 13.0 * C) + 2.0 * C;
    if (n > (double)MAX_PARAMS) return 0;
    return (size_t)c->vocab_size * C + (size_t)c->n_positions * C + L * (12 * C * C + 13 * C) +
           2 * C;
}

int slm_config_validate(const slm_config *c, char *err, size_t errlen)
{
    if (!c) return fail(err, errlen, SLM_EINVAL, "no config");
    struct {
        const char *name;
        int value, max;
    } sizes[] = {{"n_layer", c->n_layer, MAX_LAYERS},
                 {"n_head", c->n_head, MAX_EMBD},
                 {"n_embd", c->n_embd, MAX_EMBD},
                 {"n_positions", c->n_positions, MAX_POSITIONS},
                 {"vocab_size", c->vocab_size, MAX_VOCAB}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        if (sizes[i].value <= 0)
            return fail(err, errlen, SLM_EINVAL, "config: %s must be positive, got %d",
                            sizes[i].name, sizes[i].value);
        if (sizes[i].value > sizes[i].max)
            return fail(err, errlen, SLM_ERANGE, "config: %s = %d exceeds the limit %d",
                            sizes[i].name, sizes[i].value, sizes[i].max);
    }
    if (c->n_embd % c->n_head)
        return fail(err, errlen, SLM_EINVAL,
                        "config: n_embd (%d) is not a multiple of n_head (%d)", c->n_embd,
                        c->n_head);
    if (!(c->layer_norm_epsilon > 0.0f) || !isfinite(c->layer_norm_epsilon))
        return fail(err, errlen, SLM_EINVAL, "config: layer_norm_epsilon must be positive");
    if (c->activation != SLM_ACT_GELU_NEW && c->activation != SLM_ACT_RELU)
        return fail(err, errlen, SLM_EINVAL, "config: unknown activation %d", c->activation);
    if (c->tokenizer != SLM_TOKENIZER_GPT2 && c->tokenizer != SLM_TOKENIZER_BYTE)
        return fail(err, errlen, SLM_EINVAL, "config: unknown tokenizer %d", c->tokenizer);
    if (c->tokenizer == SLM_TOKENIZER_BYTE && c->vocab_size < 256)
        return fail(err, errlen, SLM_EINVAL,
                        "config: a byte tokenizer needs vocab_size >= 256, got %d", c->vocab_size);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return fail(err, errlen, SLM_EINVAL, "config: dropout must be in [0, 1)");
    if (!count_params(c)) {
        double n = (double)c->vocab_size * c->n_embd + (double)c->n_positions * c->n_embd +
                   (double)c->n_layer * (12.0 * c->n_embd * c->n_embd + 13.0 * c->n_embd);
        return fail(err, errlen, SLM_ERANGE,
                        "config: the model would have %.3g parameters, which exceeds the limit of "
                        "%zu",
                        n, MAX_PARAMS);
    }
    return SLM_OK;
}

typedef struct {
    slm_tensor_info *t;
    char *names;
    int n;
    size_t offset;
    int quantized; /* matrices get no fp32 storage (offset 0, never used) */
} table_builder;

static void add_tensor(table_builder *b, const char *name, int d0, int d1)
{
    slm_tensor_info *t = &b->t[b->n];
    char *slot = b->names + (size_t)b->n * NAME_LEN;
    snprintf(slot, NAME_LEN, "%s", name);
    t->name = slot;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->numel = (size_t)d0 * (d1 ? (size_t)d1 : 1);
    t->offset = b->quantized && quant_tensor_is_matrix(t) ? 0 : b->offset;
    if (!(b->quantized && quant_tensor_is_matrix(t))) b->offset += t->numel;
    b->n++;
}

/* GPT-2's tensors in GPT-2's order; Conv1D weights stored [in][out]. */
static void build_table(const slm_config *c, table_builder *b)
{
    int C = c->n_embd;
    char name[NAME_LEN];
    add_tensor(b, "wte.weight", c->vocab_size, C);
    add_tensor(b, "wpe.weight", c->n_positions, C);
    for (int l = 0; l < c->n_layer; l++) {
#define LAYER(suffix, d0, d1)                                                                  \
    snprintf(name, sizeof name, "h.%d.%s", l, suffix);                                          \
    add_tensor(b, name, d0, d1)
        LAYER("ln_1.weight", C, 0);
        LAYER("ln_1.bias", C, 0);
        LAYER("attn.c_attn.weight", C, 3 * C);
        LAYER("attn.c_attn.bias", 3 * C, 0);
        LAYER("attn.c_proj.weight", C, C);
        LAYER("attn.c_proj.bias", C, 0);
        LAYER("ln_2.weight", C, 0);
        LAYER("ln_2.bias", C, 0);
        LAYER("mlp.c_fc.weight", C, 4 * C);
        LAYER("mlp.c_fc.bias", 4 * C, 0);
        LAYER("mlp.c_proj.weight", 4 * C, C);
        LAYER("mlp.c_proj.bias", C, 0);
#undef LAYER
    }
    add_tensor(b, "ln_f.weight", C, 0);
    add_tensor(b, "ln_f.bias", C, 0);
}

int quant_tensor_is_matrix(const slm_tensor_info *t)
{
    return t->ndim == 2 && strcmp(t->name, "wpe.weight") != 0;
}

/* A quantized model's matrices have no fp32 view (NULL). */
static float *view(const slm_model *m, float *base, const slm_tensor_info *t)
{
    return m->quant && quant_tensor_is_matrix(t) ? NULL : base + t->offset;
}

void gpt_views_bind(const slm_model *m, float *base, gpt_views *v)
{
    const slm_tensor_info *t = m->tensors;
    v->wte = view(m, base, &t[0]);
    v->wpe = base + t[1].offset;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const slm_tensor_info *lt = t + 2 + (size_t)l * TENSORS_PER_LAYER;
        float **p[TENSORS_PER_LAYER] = {
            &v->h[l].ln_1_w,   &v->h[l].ln_1_b,   &v->h[l].c_attn_w,   &v->h[l].c_attn_b,
            &v->h[l].c_proj_w, &v->h[l].c_proj_b, &v->h[l].ln_2_w,     &v->h[l].ln_2_b,
            &v->h[l].c_fc_w,   &v->h[l].c_fc_b,   &v->h[l].mlp_proj_w, &v->h[l].mlp_proj_b};
        for (int i = 0; i < TENSORS_PER_LAYER; i++) *p[i] = view(m, base, &lt[i]);
    }
    v->ln_f_w = base + t[m->n_tensors - 2].offset;
    v->ln_f_b = base + t[m->n_tensors - 1].offset;
}

/* fp32 floats of a quantized model: wpe, LayerNorms, biases. */
static size_t count_fp32_of_quantized(const slm_config *c)
{
    size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer;
    return (size_t)c->n_positions * C + L * 13 * C + 2 * C;
}

/* A model with its tensor table; quantized: fp32 storage only for the
 * tensors that stay fp32, and an empty quant_weights. */
static int model_alloc(const slm_config *cfg, int quantized, int group, slm_model **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    int rc = slm_config_validate(cfg, err, errlen);
    size_t stored = quantized ? count_fp32_of_quantized(cfg) : count_params(cfg);
    if (!rc) rc = check_memory(4.0 * (double)stored, "the model's parameters", err, errlen);
    if (rc) return rc;
    slm_model *m = calloc(1, sizeof *m);
    if (!m) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    m->cfg = *cfg;
    m->n_tensors = 4 + cfg->n_layer * TENSORS_PER_LAYER;
    m->tensors = calloc((size_t)m->n_tensors, sizeof *m->tensors);
    m->name_storage = calloc((size_t)m->n_tensors, NAME_LEN);
    m->w.h = calloc((size_t)cfg->n_layer, sizeof *m->w.h);
    m->g.h = calloc((size_t)cfg->n_layer, sizeof *m->g.h);
    m->n_params = count_params(cfg);
    m->params = alloc_aligned(stored * sizeof(float));
    if (quantized) {
        m->quant = calloc(1, sizeof *m->quant);
        if (m->quant) {
            m->quant->dtype = quantized;
            m->quant->group = group;
            m->quant->layer = calloc((size_t)cfg->n_layer * QW_PER_LAYER, sizeof(qmatrix));
        }
    }
    if (!m->tensors || !m->name_storage || !m->w.h || !m->g.h || !m->params ||
        (quantized && (!m->quant || !m->quant->layer))) {
        slm_model_free(m);
        return fail(err, errlen, SLM_ENOMEM,
                        "out of memory allocating %zu parameters (%.1f MiB)", count_params(cfg),
                        (double)count_params(cfg) * 4.0 / 1048576.0);
    }
    memset(m->params, 0, stored * sizeof(float));
    table_builder b = {m->tensors, m->name_storage, 0, 0, quantized};
    build_table(cfg, &b);
    SLM_ASSERT(b.n == m->n_tensors && b.offset == stored);
    gpt_views_bind(m, m->params, &m->w);
    *out = m;
    return SLM_OK;
}

int gpt_model_alloc(const slm_config *cfg, slm_model **out, char *err, size_t errlen)
{
    return model_alloc(cfg, SLM_QUANT_NONE, 0, out, err, errlen);
}

int quant_model_alloc(const slm_config *cfg, int dtype, int group, slm_model **out, char *err,
                      size_t errlen)
{
    if (dtype != SLM_QUANT_INT8 && dtype != SLM_QUANT_BF16)
        return fail(err, errlen, SLM_EINVAL, "quant_model_alloc: unknown dtype %d", dtype);
    return model_alloc(cfg, dtype, group, out, err, errlen);
}

void quant_weights_free(quant_weights *q, int n_layer)
{
    if (!q) return;
    qmatrix_free(&q->wte);
    if (q->layer)
        for (int i = 0; i < n_layer * QW_PER_LAYER; i++) qmatrix_free(&q->layer[i]);
    free(q->layer);
    free(q);
}

static void fill_normal(rng_state *r, float *x, size_t n, double std)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * rng_normal(r));
}

int slm_model_create(const slm_config *cfg, uint64_t seed, slm_model **out, char *err,
                     size_t errlen)
{
    if (!out) return fail(err, errlen, SLM_EINVAL, "no output pointer");
    slm_model *m;
    int rc = gpt_model_alloc(cfg, &m, err, errlen);
    if (rc) return rc;
    /* GPT-2 / nanoGPT initialisation: N(0, 0.02) for embeddings and weights;
     * the two projections that write into the residual stream get
     * 0.02/sqrt(2L) so the stream's variance does not grow with depth. */
    rng_state r;
    rng_seed(&r, seed);
    double proj_std = 0.02 / sqrt(2.0 * cfg->n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const slm_tensor_info *t = &m->tensors[i];
        float *x = m->params + t->offset;
        const char *dot = strrchr(t->name, '.');
        int is_ln = strstr(t->name, "ln_") != NULL;
        if (is_ln && !strcmp(dot, ".weight")) {
            for (size_t e = 0; e < t->numel; e++) x[e] = 1.0f;
        } else if (t->ndim == 2) {
            int residual = strstr(t->name, "c_proj.weight") != NULL;
            fill_normal(&r, x, t->numel, residual ? proj_std : 0.02);
        } /* biases stay zero */
    }
    *out = m;
    return SLM_OK;
}

void slm_model_free(slm_model *m)
{
    if (!m) return;
    gpt_train_state_free(m->train);
    quant_weights_free(m->quant, m->cfg.n_layer);
    free_aligned(m->params);
    free_aligned(m->grads);
    free(m->tensors);
    free(m->name_storage);
    free(m->w.h);
    free(m->g.h);
    free(m);
}

const slm_config *slm_model_config(const slm_model *m) { return &m->cfg; }
int slm_model_num_tensors(const slm_model *m) { return m->n_tensors; }
size_t slm_model_num_params(const slm_model *m) { return m->n_params; }
float *slm_model_params(slm_model *m) { return m->params; }

const slm_tensor_info *slm_model_tensor(const slm_model *m, int index)
{
    return index >= 0 && index < m->n_tensors ? &m->tensors[index] : NULL;
}

const slm_tensor_info *slm_model_find_tensor(const slm_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

float *slm_model_grads(slm_model *m)
{
    if (m->quant) return NULL; /* quantized models do not train */
    if (!m->grads) {
        m->grads = alloc_aligned(m->n_params * sizeof(float));
        if (!m->grads) return NULL;
        memset(m->grads, 0, m->n_params * sizeof(float));
        gpt_views_bind(m, m->grads, &m->g);
    }
    return m->grads;
}

size_t slm_model_count_nonfinite(const slm_model *m, char *msg, size_t msglen)
{
    if (msg && msglen) msg[0] = '\0';
    if (!m) return 0;
    size_t bad = 0;
    int tensors = 0, first = -1;
    for (int j = 0; j < m->n_tensors; j++) {
        /* A quantized model's matrices have no fp32 storage (their loader
         * checks their scales instead). */
        if (m->quant && quant_tensor_is_matrix(&m->tensors[j])) continue;
        const float *x = m->params + m->tensors[j].offset;
        size_t here = 0;
        for (size_t e = 0; e < m->tensors[j].numel; e++) here += !isfinite(x[e]);
        if (here && first < 0) first = j;
        tensors += here > 0;
        bad += here;
    }
    if (bad)
        fail(msg, msglen, 0, "%zu non-finite values (NaN or inf) in %d tensor%s, first '%s'", bad,
             tensors, tensors == 1 ? "" : "s", m->tensors[first].name);
    return bad;
}

const float *gpt_model_param_data(const slm_model *m) { return m->params; }
