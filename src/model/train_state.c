/*
 * Owner of the training state: the activation block (one allocation sized
 * for B·T rows in one or more shards, views bound per pass), the bf16 GEMM
 * operands, the shards' gradient copies and the AdamW moments.
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
    size_t L = (size_t)m->cfg.n_layer;
    t->layer_views = calloc(L * GPT_MAX_SHARDS, sizeof *t->layer_views);
    t->stash_views = calloc(L * GPT_MAX_SHARDS, sizeof *t->stash_views);
    if (!t->layer_views || !t->stash_views) {
        free(t->layer_views);
        free(t->stash_views);
        free(t);
        return NULL;
    }
    for (int k = 0; k < GPT_MAX_SHARDS; k++) {
        t->shard[k].layer = t->layer_views + (size_t)k * L;
        t->shard[k].stashed = t->stash_views + (size_t)k * L;
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
    free_aligned(t->shard_grads);
    free(t->shard_g_layers);
    free(t->layer_views);
    free(t->stash_views);
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
static void layout_layers_f32(gpt_shard *sh, const slm_config *cfg, size_t NC, size_t cap,
                              carver *k)
{
    sh->res0 = take(k, NC);
    for (int l = 0; l < cfg->n_layer; l++) {
        gpt_layer_acts *a = &sh->layer[l];
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
static void layout_layers_stash(gpt_shard *sh, const slm_config *cfg, size_t NC, size_t cap,
                                carver *k)
{
    sh->resid[0] = take(k, NC);
    sh->resid[1] = take(k, NC);
    sh->res0 = sh->resid[0];
    for (int l = 0; l < cfg->n_layer; l++) {
        gpt_layer_acts *a = &sh->layer[l];
        gpt_layer_stash *st = &sh->stashed[l];
        *a = (gpt_layer_acts){0};
        take_row_stats(a, cap, cfg->n_head, k);
        st->xhat1 = take_bf16(k, NC);
        st->qkv = take_bf16(k, 3 * NC);
        st->atty = take_bf16(k, NC);
        st->xhat2 = take_bf16(k, NC);
        st->fc_pre = take_bf16(k, 4 * NC);
    }
    gpt_layer_acts *w = &sh->work;
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

/* One shard's part of the block, for cap rows. */
static void layout_shard(gpt_shard *sh, const slm_config *cfg, size_t cap, int stash, carver *k)
{
    size_t C = (size_t)cfg->n_embd, NC = cap * C;
    if (stash)
        layout_layers_stash(sh, cfg, NC, cap, k);
    else
        layout_layers_f32(sh, cfg, NC, cap, k);
    sh->lnf = take(k, NC);
    sh->lnf_mean = take(k, cap);
    sh->lnf_rstd = take(k, cap);
    sh->ce_lse = take(k, cap);
    sh->s.dres = take(k, NC);
    sh->s.a = take(k, NC);
    sh->s.b = take(k, NC);
    sh->s.big = take(k, 4 * NC);
    sh->s.heads = take(k, 3 * NC);
}

/* The pass-wide rows (logits, token copies), then each shard's part. */
static void layout(struct gpt_train_state *t, const slm_config *cfg, int shards,
                   size_t shard_rows, int stash, carver *k)
{
    size_t cap = (size_t)shards * shard_rows;
    t->logits = take(k, cap * (size_t)cfg->vocab_size);
    t->tokens = take(k, cap); /* int32_t is as wide as float */
    t->targets = take(k, cap);
    for (int s = 0; s < shards; s++) layout_shard(&t->shard[s], cfg, shard_rows, stash, k);
}

/* Splits a pass of B sequences over the first `shards` shards: shard k
 * gets B/shards sequences, one more for the first B % shards, in order. */
static void bind_pass(struct gpt_train_state *t, const slm_config *c, int B, int T, int shards)
{
    t->shards = shards;
    int b0 = 0;
    for (int k = 0; k < shards; k++) {
        gpt_shard *sh = &t->shard[k];
        int Bk = B / shards + (k < B % shards);
        sh->b0 = b0;
        sh->dims = (gpt_dims){.B = Bk, .T = T, .C = c->n_embd, .H = c->n_head,
                              .D = c->n_embd / c->n_head, .V = c->vocab_size,
                              .N = (size_t)Bk * (size_t)T};
        size_t r0 = (size_t)b0 * (size_t)T;
        sh->logits = t->logits + r0 * (size_t)c->vocab_size;
        sh->tokens = t->tokens + r0;
        sh->targets = t->targets + r0;
        b0 += Bk;
    }
}

int gpt_train_state_reserve(slm_model *m, int B, int T, int stash, int shards, char *err,
                            size_t errlen)
{
    struct gpt_train_state *t = gpt_train_state_get(m);
    if (!t) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    const slm_config *c = &m->cfg;
    size_t per = (size_t)((B + shards - 1) / shards) * (size_t)T;
    if (!t->block || stash != t->stash || shards > t->n_shards || per > t->shard_rows) {
        size_t N = per * (size_t)shards;
        /* Rough size in double first: the exact count below cannot overflow. */
        double est = (double)N * 4.0 *
                     ((double)c->n_layer * (17.0 * c->n_embd + 6.0 + c->n_head) +
                      (double)c->vocab_size + 12.0 * c->n_embd + 6.0);
        if (est > MAX_ACT_BYTES)
            return fail(err, errlen, SLM_ERANGE, "activations for B·T = %zu would take %.0f GiB",
                        (size_t)B * (size_t)T, est / 1073741824.0);
        carver count = {NULL, 0};
        layout(t, c, shards, per, stash, &count);
        int rc = check_memory((double)count.used, "the activations", err, errlen);
        if (rc) return rc;
        free_aligned(t->block);
        t->block = alloc_aligned(count.used);
        t->capacity = 0;
        t->n_shards = 0;
        t->backward_ready = 0;
        if (!t->block)
            return fail(err, errlen, SLM_ENOMEM, "out of memory for activations (%.1f MiB)",
                        (double)count.used / 1048576.0);
        t->block_bytes = count.used;
        t->capacity = N;
        t->n_shards = shards;
        t->shard_rows = per;
        t->stash = stash;
        carver bind = {t->block, 0};
        layout(t, c, shards, per, stash, &bind);
    }
    bind_pass(t, c, B, T, shards);
    return SLM_OK;
}

int gpt_shard_grads_reserve(slm_model *m, int shards, char *err, size_t errlen)
{
    struct gpt_train_state *t = m->train;
    int copies = shards - 1;
    if (copies <= t->shard_grads_count) return SLM_OK;
    size_t n = m->n_params, L = (size_t)m->cfg.n_layer;
    double bytes = (double)copies * (double)n * sizeof(float);
    int rc = check_memory(bytes, "the shards' gradients", err, errlen);
    if (rc) return rc;
    free_aligned(t->shard_grads);
    free(t->shard_g_layers);
    t->shard_grads_count = 0;
    t->shard_grads = alloc_aligned((size_t)copies * n * sizeof(float));
    t->shard_g_layers = calloc((size_t)copies * L, sizeof *t->shard_g_layers);
    if (!t->shard_grads || !t->shard_g_layers) {
        free_aligned(t->shard_grads);
        free(t->shard_g_layers);
        t->shard_grads = NULL;
        t->shard_g_layers = NULL;
        return fail(err, errlen, SLM_ENOMEM, "out of memory for the shards' gradients (%.1f MiB)",
                    bytes / 1048576.0);
    }
    /* Written before every use (an overwriting backward); zeroed once so
     * the pages are mapped here, not in the first step. */
    memset(t->shard_grads, 0, (size_t)copies * n * sizeof(float));
    for (int c = 0; c < copies; c++) {
        t->shard_g[c].h = t->shard_g_layers + (size_t)c * L;
        gpt_views_bind(m, t->shard_grads + (size_t)c * n, &t->shard_g[c]);
    }
    t->shard_grads_count = copies;
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

/* Bytes of one shard's bf16 operand buffers for `rows` rows: xa (rows of
 * max(4C, V)) and xb (rows of 4C), each rounded to whole lines; rows is
 * an Aᵀ's padded stride (kernels.h, bf16_transposed_ld), which grows with
 * the rows. */
static void operand_bytes(const slm_model *m, size_t rows, size_t *xa, size_t *xb)
{
    size_t C = (size_t)m->cfg.n_embd, V = (size_t)m->cfg.vocab_size;
    size_t wide = 4 * C > V ? 4 * C : V, ld = (size_t)bf16_transposed_ld((int)rows);
    *xa = (ld * wide * 2 + 63) & ~(size_t)63;
    *xb = (ld * 4 * C * 2 + 63) & ~(size_t)63;
}

int gpt_gemm_prepare(slm_model *m, int dtype, char *err, size_t errlen)
{
    struct gpt_train_state *t = m->train;
    int bf16 = dtype == SLM_DTYPE_BF16 && gemm_bf16_enabled();
    for (int k = 0; k < t->n_shards; k++) {
        t->shard[k].s.mm.bf16 = bf16;
        t->shard[k].s.mm.grad_beta = 1.0f;
    }
    if (!bf16) return SLM_OK;
    size_t wbytes = (m->n_params * 2 + 63) & ~(size_t)63, xa, xb;
    if (!t->bf16_block || t->shard_rows > t->bf16_rows || t->n_shards > t->bf16_shards) {
        operand_bytes(m, t->shard_rows, &xa, &xb);
        size_t bytes = wbytes + (size_t)t->n_shards * (xa + xb);
        int rc = check_memory((double)bytes, "the bf16 GEMM operands", err, errlen);
        if (rc) return rc;
        free_aligned(t->bf16_block);
        t->bf16_rows = 0;
        t->bf16_shards = 0;
        t->bf16_block = alloc_aligned(bytes);
        if (!t->bf16_block)
            return fail(err, errlen, SLM_ENOMEM, "out of memory for bf16 operands (%.1f MiB)",
                        (double)bytes / 1048576.0);
        t->bf16_rows = t->shard_rows;
        t->bf16_shards = t->n_shards;
        t->bf16_bytes = bytes;
    }
    /* the block is laid out for bf16_rows per shard (>= this pass's) */
    operand_bytes(m, t->bf16_rows, &xa, &xb);
    for (int k = 0; k < t->n_shards; k++) {
        gpt_gemm *mm = &t->shard[k].s.mm;
        char *part = (char *)t->bf16_block + wbytes + (size_t)k * (xa + xb);
        mm->wbf = t->bf16_block;
        mm->xa = (uint16_t *)(void *)part;
        mm->xb = (uint16_t *)(void *)(part + xa);
        mm->params = m->params;
        mm->n_params = m->n_params;
    }
    /* Once per forward pass, i.e. once per step and micro-batch: the
     * weights changed at the last AdamW step. */
    f32_to_bf16_array(t->shard[0].s.mm.wbf, m->params, m->n_params);
    return SLM_OK;
}
