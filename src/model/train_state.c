/*
 * Owner of the training state: the activation block (one allocation sized
 * for B·T rows, views bound per pass) and the AdamW moments.
 */
#include "core/alloc.h"
#include "core/error.h"
#include "core/memory.h"
#include "kernels/kernels.h"
#include "model/gpt.h"

#include <stdlib.h>
#include <string.h>

/* Refuse activation blocks beyond this before asking malloc (it may
 * overcommit and fail later, page by page). */
#define MAX_ACT_BYTES ((double)((size_t)1 << 40))

struct gpt_train_state *gpt_train_state_get(slm_model *m)
{
    if (m->train) return m->train;
    struct gpt_train_state *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->layer = calloc((size_t)m->cfg.n_layer, sizeof *t->layer);
    t->stashed = calloc((size_t)m->cfg.n_layer, sizeof *t->stashed);
    if (!t->layer || !t->stashed) {
        free(t->layer);
        free(t->stashed);
        free(t);
        return NULL;
    }
    t->attn_impl = gpt_attention_impl();
    m->train = t;
    return t;
}

void gpt_train_state_free(struct gpt_train_state *t)
{
    if (!t) return;
    free_aligned(t->block);
    free_aligned(t->adam);
    free_aligned(t->bf16_block);
    free(t->layer);
    free(t->stashed);
    free(t);
}

/* Hands out 64-byte aligned slices of the block; with base == NULL it only
 * counts, so sizing and binding share one description of the layout. */
typedef struct {
    char *base;
    size_t used;
} carver;

static void *take(carver *k, size_t floats)
{
    size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
    void *p = k->base ? k->base + k->used : NULL;
    k->used += bytes;
    return p;
}

static uint16_t *take_bf16(carver *k, size_t n)
{
    return take(k, (n + 1) / 2);
}

/* The per-row (mean, rstd, log-sum-exp) arrays of layer l, in both layouts. */
static void take_row_stats(gpt_layer_acts *a, size_t cap, int n_head, carver *k)
{
    a->ln1_mean = take(k, cap);
    a->ln1_rstd = take(k, cap);
    a->att_lse = take(k, cap * (size_t)n_head);
    a->ln2_mean = take(k, cap);
    a->ln2_rstd = take(k, cap);
}

/* fp32 layout (gpt.h): every layer's activations in full. */
static void layout_layers_f32(struct gpt_train_state *t, const slm_config *cfg, size_t NC,
                              size_t cap, carver *k)
{
    t->res0 = take(k, NC);
    for (int l = 0; l < cfg->n_layer; l++) {
        gpt_layer_acts *a = &t->layer[l];
        take_row_stats(a, cap, cfg->n_head, k);
        a->ln1 = take(k, NC);
        a->qkv = take(k, 3 * NC);
        a->atty = take(k, NC);
        a->res_mid = take(k, NC);
        a->ln2 = take(k, NC);
        a->fc_pre = take(k, 4 * NC);
        a->fc_act = take(k, 4 * NC);
        a->res_out = take(k, NC);
    }
}

/* bf16 storage (gpt.h): per layer its stash and row statistics, one fp32
 * working layer, two residual buffers. */
static void layout_layers_stash(struct gpt_train_state *t, const slm_config *cfg, size_t NC,
                                size_t cap, carver *k)
{
    t->resid[0] = take(k, NC);
    t->resid[1] = take(k, NC);
    t->res0 = t->resid[0];
    for (int l = 0; l < cfg->n_layer; l++) {
        gpt_layer_acts *a = &t->layer[l];
        gpt_layer_stash *st = &t->stashed[l];
        *a = (gpt_layer_acts){0};
        take_row_stats(a, cap, cfg->n_head, k);
        st->xhat1 = take_bf16(k, NC);
        st->qkv = take_bf16(k, 3 * NC);
        st->atty = take_bf16(k, NC);
        st->xhat2 = take_bf16(k, NC);
        st->fc_pre = take_bf16(k, 4 * NC);
    }
    gpt_layer_acts *w = &t->work;
    *w = (gpt_layer_acts){0};
    w->ln1 = take(k, NC);
    w->qkv = take(k, 3 * NC);
    w->atty = take(k, NC);
    w->res_mid = take(k, NC);
    w->ln2 = take(k, NC);
    /* c_fc's output becomes the activation in place: backward reads fc_pre
     * only from its bf16 copy, so no fp32 fc_pre is kept. */
    w->fc_act = take(k, 4 * NC);
    w->fc_pre = w->fc_act;
}

static void layout(struct gpt_train_state *t, const slm_config *cfg, size_t cap, int stash,
                   carver *k)
{
    size_t C = (size_t)cfg->n_embd, NC = cap * C;
    if (stash)
        layout_layers_stash(t, cfg, NC, cap, k);
    else
        layout_layers_f32(t, cfg, NC, cap, k);
    t->lnf = take(k, NC);
    t->lnf_mean = take(k, cap);
    t->lnf_rstd = take(k, cap);
    t->logits = take(k, cap * (size_t)cfg->vocab_size);
    t->ce_lse = take(k, cap);
    t->s.dres = take(k, NC);
    t->s.a = take(k, NC);
    t->s.b = take(k, NC);
    t->s.big = take(k, 4 * NC);
    t->s.heads = take(k, 3 * NC);
    t->tokens = take(k, cap); /* int32_t is as wide as float */
    t->targets = take(k, cap);
}

int gpt_train_state_reserve(slm_model *m, int B, int T, int stash, char *err, size_t errlen)
{
    struct gpt_train_state *t = gpt_train_state_get(m);
    if (!t) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    size_t N = (size_t)B * (size_t)T;
    if (t->block && N <= t->capacity && stash == t->stash) return SLM_OK;
    const slm_config *c = &m->cfg;
    /* Rough size in double first: the exact count below cannot overflow. */
    double est = (double)N * 4.0 *
                 ((double)c->n_layer * (17.0 * c->n_embd + 6.0 + c->n_head) +
                  (double)c->vocab_size + 12.0 * c->n_embd + 6.0);
    if (est > MAX_ACT_BYTES)
        return fail(err, errlen, SLM_ERANGE,
                        "activations for B·T = %zu would take %.0f GiB", N, est / 1073741824.0);
    carver count = {NULL, 0};
    layout(t, c, N, stash, &count);
    int rc = check_memory((double)count.used, "the activations", err, errlen);
    if (rc) return rc;
    free_aligned(t->block);
    t->block = alloc_aligned(count.used);
    t->capacity = 0;
    t->backward_ready = 0;
    if (!t->block)
        return fail(err, errlen, SLM_ENOMEM, "out of memory for activations (%.1f MiB)",
                        (double)count.used / 1048576.0);
    t->block_bytes = count.used;
    t->capacity = N;
    t->stash = stash;
    carver bind = {t->block, 0};
    layout(t, c, N, stash, &bind);
    return SLM_OK;
}

float *slm_model_adam_state(slm_model *m, int which)
{
    if (!m || (which != 0 && which != 1) || m->quant) return NULL;
    struct gpt_train_state *t = gpt_train_state_get(m);
    if (!t) return NULL;
    if (!t->adam) {
        t->adam = alloc_aligned(2 * m->n_params * sizeof(float));
        if (!t->adam) return NULL;
        memset(t->adam, 0, 2 * m->n_params * sizeof(float));
    }
    return t->adam + (size_t)which * m->n_params;
}

int gpt_stash_wanted(int dtype)
{
    return dtype == SLM_DTYPE_BF16 && !gemm_bf16_enabled();
}

int gpt_gemm_prepare(slm_model *m, int dtype, size_t N, char *err, size_t errlen)
{
    struct gpt_train_state *t = m->train;
    gpt_gemm *mm = &t->s.mm;
    mm->bf16 = dtype == SLM_DTYPE_BF16 && gemm_bf16_enabled();
    mm->grad_beta = 1.0f;
    if (!mm->bf16) return SLM_OK;
    size_t C = (size_t)m->cfg.n_embd, V = (size_t)m->cfg.vocab_size;
    size_t wide = 4 * C > V ? 4 * C : V;
    /* rows of the operands: N, or an Aᵀ's padded stride (kernels.h) */
    size_t rows = (size_t)bf16_transposed_ld((int)N);
    if (!t->bf16_block || N > t->bf16_capacity) {
        size_t wbytes = (m->n_params * 2 + 63) & ~(size_t)63;
        size_t abytes = (rows * wide * 2 + 63) & ~(size_t)63;
        size_t bytes = wbytes + abytes + rows * 4 * C * 2;
        int rc = check_memory((double)bytes, "the bf16 GEMM operands", err, errlen);
        if (rc) return rc;
        free_aligned(t->bf16_block);
        t->bf16_capacity = 0;
        t->bf16_block = alloc_aligned(bytes);
        if (!t->bf16_block)
            return fail(err, errlen, SLM_ENOMEM, "out of memory for bf16 operands (%.1f MiB)",
                        (double)bytes / 1048576.0);
        t->bf16_capacity = N;
        t->bf16_bytes = bytes;
        mm->wbf = t->bf16_block;
        mm->xa = (uint16_t *)((char *)t->bf16_block + wbytes);
        mm->xb = (uint16_t *)((char *)t->bf16_block + wbytes + abytes);
    }
    mm->params = m->params;
    mm->n_params = m->n_params;
    /* Once per forward pass, i.e. once per step and micro-batch: the
     * weights changed at the last AdamW step. */
    f32_to_bf16_array(mm->wbf, m->params, m->n_params);
    return SLM_OK;
}
