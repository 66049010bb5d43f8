/*
 * GPT-2, forward and backward over a batch (Radford et al. 2019, §2.3: the
 * GPT decoder stack of Radford et al. 2018 with pre-LayerNorm blocks):
 *
 *   x_0     = dropout(wte[tokens] + wpe[positions])
 *   x_{l+½} = x_l + dropout(MultiHeadAttention(LayerNorm_1(x_l)))
 *   x_{l+1} = x_{l+½} + dropout(FeedForward(LayerNorm_2(x_{l+½})))
 *   logits  = LayerNorm_f(x_L)·wteᵀ           (tied LM head)
 *   loss    = mean cross-entropy over targets != SLM_IGNORE_INDEX
 *
 * Each layer is a forward / backward pair in its own file (layers.h); this
 * file validates inputs and runs the layers in order, the residual adds
 * included (residual_forward also adds the branch's output bias, fused).
 */
#include "core/error.h"
#include "model/layers.h"
#include "model/quant_model.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* Caps B·T so every row index fits an int (the dropout hash takes int rows)
 * and sizes cannot overflow. */
#define MAX_ROWS ((size_t)1 << 30)

static int validate_forward(const slm_model *m, const slm_batch *batch,
                            const slm_forward_opts *o, char *err, size_t errlen)
{
    const slm_config *c = &m->cfg;
    if (!batch || !batch->tokens) return fail(err, errlen, SLM_EINVAL, "forward: no tokens");
    const int32_t *tokens = batch->tokens, *targets = batch->targets;
    int B = batch->B, T = batch->T;
    if (B <= 0 || T <= 0)
        return fail(err, errlen, SLM_EINVAL, "forward: B and T must be positive (%d, %d)",
                        B, T);
    if (T > c->n_positions)
        return fail(err, errlen, SLM_ERANGE,
                        "forward: sequence length %d exceeds the context of %d", T,
                        c->n_positions);
    size_t N = (size_t)B * (size_t)T;
    if (N > MAX_ROWS)
        return fail(err, errlen, SLM_ERANGE, "forward: B·T = %zu is too large", N);
    if (o && (o->batch_offset < 0 || (size_t)o->batch_offset + (size_t)B > MAX_ROWS / (size_t)T))
        return fail(err, errlen, SLM_EINVAL, "forward: batch_offset %d is out of range",
                    o->batch_offset);
    if (o && o->dtype != SLM_DTYPE_F32 && o->dtype != SLM_DTYPE_BF16)
        return fail(err, errlen, SLM_EINVAL, "forward: dtype must be F32 or BF16 (got %d)",
                    o->dtype);
    for (size_t r = 0; r < N; r++) {
        if (tokens[r] < 0 || tokens[r] >= c->vocab_size)
            return fail(err, errlen, SLM_ERANGE,
                            "forward: token %d at position %zu is outside [0, %d)", tokens[r],
                            r, c->vocab_size);
        if (targets && targets[r] != SLM_IGNORE_INDEX &&
            (targets[r] < 0 || targets[r] >= c->vocab_size))
            return fail(err, errlen, SLM_ERANGE,
                            "forward: target %d at position %zu is outside [0, %d)", targets[r],
                            r, c->vocab_size);
    }
    return SLM_OK;
}

static gpt_dims dims_of(const slm_config *c, int B, int T)
{
    gpt_dims d = {.B = B, .T = T, .C = c->n_embd, .H = c->n_head, .V = c->vocab_size};
    d.D = d.C / d.H;
    d.N = (size_t)B * (size_t)T;
    return d;
}

static const float *layer_input(const struct gpt_train_state *t, const gpt_shard *sh, int l)
{
    if (t->stash) return sh->resid[l & 1];
    return l == 0 ? sh->res0 : sh->layer[l - 1].res_out;
}

/* 1 if the block takes a pass of B sequences of T on min(B, its shards)
 * shards without growing. */
static int block_fits(const struct gpt_train_state *t, int B, int T)
{
    if (!t || !t->block) return 0;
    int s = B < t->n_shards ? B : t->n_shards;
    return (size_t)((B + s - 1) / s) * (size_t)T <= t->shard_rows;
}

/* The block's layout for a pass: bf16 storage where dtype asks for it
 * (gpt_stash_wanted); a pass that keeps nothing for backward (no training,
 * or no targets) and needs no layer's fp32 activations afterwards stays in
 * the layout the block has, so evaluation between bf16-storage training
 * steps neither reallocates nor grows the memory it saves. */
static int pass_layout(const slm_model *m, int dtype, int backward_follows, int need_layers,
                       int B, int T)
{
    const struct gpt_train_state *t = m->train;
    if (gpt_stash_wanted(dtype)) return 1;
    return !backward_follows && !need_layers && t && t->stash && block_fits(t, B, T);
}

/* Rows a shard needs per gradient copy for a training pass to be split. */
#define SHARD_ROWS_PER_COPY 512

/*
 * Shards of a pass (gpt.h): one per thread where every thread can own whole
 * sequences (B >= threads), else one. With S shards a thread runs the whole
 * layer stack on its sequences with single-threaded kernels: no barrier
 * between layers, no GEMM split between threads. Backward pays for it:
 * shards 1 .. S-1 write copies of the weight gradients, added into the
 * model's at the end (~12 bytes of memory traffic per parameter and copy,
 * against ~6 flops per parameter and row of the step's math), so a
 * training pass is split only if each shard has >= 512·(S-1) rows: then the
 * copies cost ~1-2 % of the step. Measured (Xeon, 2 threads, one process
 * taking turns between a split and an unsplit model, median of 20-30 pairs):
 * the demo's shape (L4 C256, 32 × 128 rows) 0.93× the unsplit step in fp32
 * and with bf16 GEMMs; shape (b) of slm bench train (L6 C384, 8 × 256 rows)
 * 0.97-0.98× in fp32 and bf16 storage, 1.0× with bf16 GEMMs; shape (a)
 * (GPT-2 124M, 4 × 64 rows) forced into two shards 1.03× fp32, 1.15× bf16:
 * its 124 M gradients cost more than the barriers it saves. A pass with nothing to
 * learn takes the shards the block has where its rows fit, so evaluation
 * between training steps does not reallocate; a pass whose layers are read
 * afterwards (need_layers: B = 1) is one shard.
 */
static int pass_shards(const slm_model *m, int B, int T, int keep, int stash, int need_layers)
{
    int nt = omp_get_max_threads();
    if (need_layers || nt < 2 || nt > GPT_MAX_SHARDS || B < 2) return 1;
    const struct gpt_train_state *t = m->train;
    if (!keep && t && t->stash == stash && block_fits(t, B, T))
        return B < t->n_shards ? B : t->n_shards;
    if (B < nt) return 1;
    size_t rows = (size_t)(B / nt) * (size_t)T; /* the smallest shard's */
    if (keep && rows < (size_t)SHARD_ROWS_PER_COPY * (size_t)(nt - 1)) return 1;
    return nt;
}

/* What every shard of one pass shares. */
typedef struct {
    slm_model *m;
    struct gpt_train_state *t;
    int keep;      /* forward: backward follows                          */
    int overwrite; /* backward: write shard 0's gradients, not add        */
    float scale;   /* backward: d(loss)/d(summed loss of a row)           */
} pass_job;

typedef int (*shard_fn)(const pass_job *j, gpt_shard *sh);

/* Runs fn on each shard of the pass: directly for one; else in a parallel
 * region, a thread per shard whose kernels run single-threaded (their own
 * parallel regions, nested, get one thread). The first failure's message
 * goes to err. */
static int run_shards(const pass_job *j, shard_fn fn, char *err, size_t errlen)
{
    struct gpt_train_state *t = j->t;
    int S = t->shards, rc[GPT_MAX_SHARDS] = {0};
    if (S == 1) {
        rc[0] = fn(j, &t->shard[0]);
    } else {
#pragma omp parallel num_threads(S)
        {
            omp_set_num_threads(1);
            for (int k = omp_get_thread_num(); k < S; k += omp_get_num_threads())
                rc[k] = fn(j, &t->shard[k]);
        }
    }
    for (int k = 0; k < S; k++)
        if (rc[k]) return fail(err, errlen, rc[k], "%s", t->shard[k].err);
    return SLM_OK;
}

/* The layer stack, LM head and loss over one shard's rows. */
static int forward_shard(const pass_job *j, gpt_shard *sh)
{
    const slm_model *m = j->m;
    const struct gpt_train_state *t = j->t;
    const slm_config *cfg = &m->cfg;
    const gpt_dims *d = &sh->dims;
    size_t N = d->N;
    int C = d->C;
    const gpt_views *w = &m->w;
    encoder_forward(sh->res0, sh->tokens, w->wte, w->wpe, d->B, d->T, C);
    dropout_forward(sh->res0, N, C, gpt_dropout_site(&sh->drop, SITE_EMBED, 0));
    float *attn_out = sh->s.b, *ffn_out = sh->s.a; /* branch outputs, reused per layer */
    for (int l = 0; l < cfg->n_layer; l++) {
        gpt_layer_acts *a = t->stash ? gpt_work_layer(sh, l, j->keep) : &sh->layer[l];
        const gpt_layer_views *lw = &w->h[l];
        const float *x = layer_input(t, sh, l);
        /* x_{l+½} = x_l + dropout(MultiHeadAttention(LayerNorm_1(x_l))) */
        layer_norm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, a->bf16.xhat1, x, lw->ln_1_w,
                           lw->ln_1_b, N, C, cfg->layer_norm_epsilon);
        int rc = multi_head_attention_forward(d, lw, a, &sh->s, &sh->drop, l, t->attn_impl);
        if (rc) return fail(sh->err, sizeof sh->err, rc, "attention: %s", slm_strerror(rc));
        residual_forward(a->res_mid, x, attn_out, lw->c_proj_b, N, C,
                         gpt_dropout_site(&sh->drop, SITE_ATTN_RESID, l));
        /* x_{l+1} = x_{l+½} + dropout(FeedForward(LayerNorm_2(x_{l+½}))) */
        layer_norm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->bf16.xhat2, a->res_mid,
                           lw->ln_2_w, lw->ln_2_b, N, C, cfg->layer_norm_epsilon);
        feed_forward_forward(d, cfg->activation, lw, a, &sh->s);
        residual_forward(a->res_out, a->res_mid, ffn_out, lw->mlp_proj_b, N, C,
                         gpt_dropout_site(&sh->drop, SITE_FFN_RESID, l));
    }
    layer_norm_forward(sh->lnf, sh->lnf_mean, sh->lnf_rstd, NULL, layer_input(t, sh, cfg->n_layer),
                       w->ln_f_w, w->ln_f_b, N, C, cfg->layer_norm_epsilon);
    lm_head_forward(&sh->s.mm, sh->logits, sh->lnf, w->wte, N, C, d->V);
    sh->n_valid = 0;
    sh->ce_sum = t->have_targets ? cross_entropy_forward(sh->ce_lse, sh->logits, sh->targets, N,
                                                         d->V, &sh->n_valid)
                                 : 0.0;
    return SLM_OK;
}

static int forward_pass(slm_model *m, const slm_batch *batch, const slm_forward_opts *opts,
                        int need_layers, float *loss, char *err, size_t errlen)
{
    if (!m) return fail(err, errlen, SLM_EINVAL, "forward: no model");
    int rc = validate_forward(m, batch, opts, err, errlen);
    if (rc) return rc;
    const int32_t *tokens = batch->tokens, *targets = batch->targets;
    int B = batch->B, T = batch->T, training = opts && opts->training;
    if (m->quant) return quant_model_forward(m, tokens, targets, B, T, training, loss, err, errlen);
    int dtype = opts ? opts->dtype : SLM_DTYPE_F32;
    int keep = training && targets; /* backward follows: stash what it reads */
    int stash = pass_layout(m, dtype, keep, need_layers, B, T);
    int shards = pass_shards(m, B, T, keep, stash, need_layers);
    if (shards > 1 && keep && gpt_train_state_get(m) &&
        gpt_shard_grads_reserve(m, shards, err, errlen) != SLM_OK)
        shards = 1; /* no room for the gradient copies: one shard it is */
    rc = gpt_train_state_reserve(m, B, T, stash, shards, err, errlen);
    if (rc) return rc;
    struct gpt_train_state *t = m->train;
    const slm_config *cfg = &m->cfg;
    gpt_dims d = dims_of(cfg, B, T);
    size_t N = d.N;
    t->backward_ready = 0;
    rc = gpt_gemm_prepare(m, dtype, err, errlen);
    if (rc) return rc;
    t->dims = d;
    t->have_targets = targets != NULL;
    t->drop.p = training ? cfg->dropout : 0.0f;
    t->drop.seed = opts ? opts->dropout_seed : 0;
    t->drop.batch_offset = opts ? opts->batch_offset : 0;
    t->drop.row0 = (size_t)t->drop.batch_offset * (size_t)T;
    memcpy(t->tokens, tokens, N * sizeof *tokens);
    if (targets) memcpy(t->targets, targets, N * sizeof *targets);
    for (int k = 0; k < t->shards; k++) {
        /* each shard draws the dropout masks of its own sequences */
        gpt_shard *sh = &t->shard[k];
        sh->drop = t->drop;
        sh->drop.batch_offset += sh->b0;
        sh->drop.row0 += (size_t)sh->b0 * (size_t)T;
    }

    pass_job job = {.m = m, .t = t, .keep = keep};
    rc = run_shards(&job, forward_shard, err, errlen);
    if (rc) return rc;

    t->n_valid = 0;
    if (targets) {
        double total = 0.0;
        for (int k = 0; k < t->shards; k++) {
            total += t->shard[k].ce_sum;
            t->n_valid += t->shard[k].n_valid;
        }
        /* No target at all: the mean over nothing is taken as 0 (PyTorch
         * gives NaN), so a fully padded batch adds neither loss nor grads. */
        if (loss) *loss = t->n_valid ? (float)(total / (double)t->n_valid) : 0.0f;
        t->backward_ready = training != 0;
    } else if (loss) {
        *loss = 0.0f;
    }
    return SLM_OK;
}

int slm_model_forward(slm_model *m, const slm_batch *batch, const slm_forward_opts *opts,
                      float *loss, char *err, size_t errlen)
{
    return forward_pass(m, batch, opts, 0, loss, err, errlen);
}

int gpt_forward_keeping_layers(slm_model *m, const int32_t *tokens, int T, char *err,
                               size_t errlen)
{
    slm_batch b = {.tokens = tokens, .B = 1, .T = T};
    return forward_pass(m, &b, NULL, 1, NULL, err, errlen);
}

const float *slm_model_logits(const slm_model *m)
{
    return m && m->train && m->train->capacity ? m->train->logits : NULL;
}

size_t slm_model_activation_bytes(const slm_model *m)
{
    const struct gpt_train_state *t = m ? m->train : NULL;
    if (!t || !t->capacity) return 0;
    size_t bytes = t->block_bytes;
    if (t->shard[0].s.mm.bf16) bytes += t->bf16_bytes;
    return bytes;
}

int slm_model_pass_shards(const slm_model *m)
{
    return m && m->train && m->train->capacity ? m->train->shards : 0;
}

/* 1 if g is the gradient of a weight matrix in the views gv: wte (the LM
 * head's product, then the embedding's sum) or one of a layer's four
 * Conv1D weights, which each get one GEMM in backward. */
static int is_matrix_grad(const slm_model *m, const gpt_views *gv, const float *g)
{
    if (g == gv->wte) return 1;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const gpt_layer_views *h = &gv->h[l];
        if (g == h->c_attn_w || g == h->c_proj_w || g == h->c_fc_w || g == h->mlp_proj_w)
            return 1;
    }
    return 0;
}

/* Zeroes every gradient in base (views gv) but the weight matrices' (≈1 %
 * of them for GPT-2): an overwriting backward writes those with beta = 0
 * GEMMs. */
static void zero_other_grads(const slm_model *m, const gpt_views *gv, float *base)
{
    for (int j = 0; j < m->n_tensors; j++) {
        float *g = base + m->tensors[j].offset;
        if (!is_matrix_grad(m, gv, g)) memset(g, 0, m->tensors[j].numel * sizeof *g);
    }
}

static int backward_pass(slm_model *m, float loss_scale, int overwrite, char *err, size_t errlen);

int slm_model_backward(slm_model *m, float loss_scale, char *err, size_t errlen)
{
    return backward_pass(m, loss_scale, 0, err, errlen);
}

int gpt_backward_overwrite(slm_model *m, float loss_scale, char *err, size_t errlen)
{
    return backward_pass(m, loss_scale, 1, err, errlen);
}

/* Backward over one shard's rows. Shard 0 adds to (or overwrites) the
 * model's gradients; shard k > 0 writes its copy, t->shard_g[k-1]. */
static int backward_shard(const pass_job *j, gpt_shard *sh)
{
    slm_model *m = j->m;
    const struct gpt_train_state *t = j->t;
    int k = (int)(sh - t->shard);
    const slm_config *cfg = &m->cfg;
    const gpt_dims *d = &sh->dims;
    size_t N = d->N;
    int C = d->C;
    const gpt_views *w = &m->w;
    const gpt_views *g = k == 0 ? &m->g : &t->shard_g[k - 1];
    gpt_scratch *s = &sh->s;

    int overwrite = k > 0 || j->overwrite;
    if (overwrite)
        zero_other_grads(m, g, k == 0 ? m->grads : t->shard_grads + (size_t)(k - 1) * m->n_params);
    s->mm.grad_beta = overwrite ? 0.0f : 1.0f;
    cross_entropy_backward(sh->logits, sh->ce_lse, sh->targets, N, d->V, j->scale);
    lm_head_backward(&s->mm, s->a, g->wte, sh->logits, sh->lnf, w->wte, N, C, d->V);
    memset(s->dres, 0, N * (size_t)C * sizeof *s->dres);
    layer_norm_backward(s->dres, g->ln_f_w, g->ln_f_b, s->a, layer_input(t, sh, cfg->n_layer),
                        sh->lnf_mean, sh->lnf_rstd, w->ln_f_w, N, C);
    for (int l = cfg->n_layer - 1; l >= 0; l--) {
        const gpt_layer_views *lw = &w->h[l];
        gpt_layer_views *lg = &g->h[l];
        int last = l == cfg->n_layer - 1;
        const gpt_layer_acts *a = t->stash ? gpt_unstash_ffn(sh, l, lw, last) : &sh->layer[l];
        const gpt_layer_stash *st = &sh->stashed[l];
        /* s->dres = d(x_{l+1}) → d(x_{l+½}): the residual passes it through,
         * the FFN branch adds its part via LayerNorm 2. */
        const float *dffn = residual_backward(s->b, s->dres, N, C,
                                              gpt_dropout_site(&sh->drop, SITE_FFN_RESID, l));
        feed_forward_backward(d, cfg->activation, lw, lg, a, s, dffn);
        if (t->stash)
            layer_norm_backward_xhat(s->dres, lg->ln_2_w, lg->ln_2_b, s->a, st->xhat2,
                                     a->ln2_rstd, lw->ln_2_w, N, C);
        else
            layer_norm_backward(s->dres, lg->ln_2_w, lg->ln_2_b, s->a, a->res_mid, a->ln2_mean,
                                a->ln2_rstd, lw->ln_2_w, N, C);
        /* d(x_{l+½}) → d(x_l), likewise through the attention branch. */
        const float *dattn = residual_backward(s->b, s->dres, N, C,
                                               gpt_dropout_site(&sh->drop, SITE_ATTN_RESID, l));
        if (t->stash) a = gpt_unstash_attention(sh, l, lw, last);
        int rc = multi_head_attention_backward(d, lw, lg, a, s, dattn, &sh->drop, l,
                                               t->attn_impl);
        if (rc)
            return fail(sh->err, sizeof sh->err, rc, "attention backward: %s", slm_strerror(rc));
        if (t->stash)
            layer_norm_backward_xhat(s->dres, lg->ln_1_w, lg->ln_1_b, s->b, st->xhat1,
                                     a->ln1_rstd, lw->ln_1_w, N, C);
        else
            layer_norm_backward(s->dres, lg->ln_1_w, lg->ln_1_b, s->b, layer_input(t, sh, l),
                                a->ln1_mean, a->ln1_rstd, lw->ln_1_w, N, C);
    }
    dropout_backward(s->dres, s->dres, N, C, gpt_dropout_site(&sh->drop, SITE_EMBED, 0));
    encoder_backward(g->wte, g->wpe, s->dres, sh->tokens, d->B, d->T, C);
    return SLM_OK;
}

/* The model's gradients += every shard copy's, in shard order. */
static void add_shard_grads(slm_model *m, const struct gpt_train_state *t)
{
    size_t n = m->n_params;
    float *g = m->grads;
    for (int c = 0; c < t->shards - 1; c++) {
        const float *p = t->shard_grads + (size_t)c * n;
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) g[i] += p[i];
    }
}

static int backward_pass(slm_model *m, float loss_scale, int overwrite, char *err, size_t errlen)
{
    if (!m) return fail(err, errlen, SLM_EINVAL, "backward: no model");
    struct gpt_train_state *t = m->train;
    if (!t || !t->backward_ready)
        return fail(err, errlen, SLM_EINVAL,
                        "backward: needs a training forward pass with targets first");
    if (!isfinite(loss_scale))
        return fail(err, errlen, SLM_EINVAL, "backward: loss_scale is not finite");
    if (!slm_model_grads(m)) return fail(err, errlen, SLM_ENOMEM, "out of memory for grads");
    t->backward_ready = 0; /* the logits are about to become dlogits */
    pass_job job = {.m = m, .t = t, .overwrite = overwrite};
    job.scale = t->n_valid ? loss_scale / (float)t->n_valid : 0.0f;
    int rc = run_shards(&job, backward_shard, err, errlen);
    if (rc) return rc;
    if (t->shards > 1) add_shard_grads(m, t);
    return SLM_OK;
}

void slm_model_zero_grad(slm_model *m)
{
    if (!m || !m->grads) return;
    size_t n = m->n_params;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) m->grads[i] = 0.0f;
}
