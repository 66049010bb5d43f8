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

static const float *layer_input(const struct gpt_train_state *t, int l)
{
    if (t->stash) return t->resid[l & 1];
    return l == 0 ? t->res0 : t->layer[l - 1].res_out;
}

/* The block's layout for a pass of N rows: bf16 storage where dtype asks
 * for it (gpt_stash_wanted); a pass that keeps nothing for backward (no
 * training, or no targets) and needs no layer's fp32 activations afterwards
 * stays in the layout the block has, so evaluation between bf16-storage
 * training steps neither reallocates nor grows the memory it saves. */
static int pass_layout(const slm_model *m, int dtype, int backward_follows, int need_layers,
                       size_t N)
{
    const struct gpt_train_state *t = m->train;
    if (gpt_stash_wanted(dtype)) return 1;
    return !backward_follows && !need_layers && t && t->stash && t->block && N <= t->capacity;
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
    int stash = pass_layout(m, dtype, keep, need_layers, (size_t)B * (size_t)T);
    rc = gpt_train_state_reserve(m, B, T, stash, err, errlen);
    if (rc) return rc;
    struct gpt_train_state *t = m->train;
    const slm_config *cfg = &m->cfg;
    gpt_dims d = dims_of(cfg, B, T);
    size_t N = d.N;
    int C = d.C;
    t->backward_ready = 0;
    rc = gpt_gemm_prepare(m, dtype, N, err, errlen);
    if (rc) return rc;
    t->dims = d;
    t->have_targets = targets != NULL;
    t->drop.p = training ? cfg->dropout : 0.0f;
    t->drop.seed = opts ? opts->dropout_seed : 0;
    t->drop.batch_offset = opts ? opts->batch_offset : 0;
    t->drop.row0 = (size_t)t->drop.batch_offset * (size_t)T;
    memcpy(t->tokens, tokens, N * sizeof *tokens);
    if (targets) memcpy(t->targets, targets, N * sizeof *targets);

    const gpt_views *w = &m->w;
    encoder_forward(t->res0, tokens, w->wte, w->wpe, B, T, C);
    dropout_forward(t->res0, N, C, gpt_dropout_site(&t->drop, SITE_EMBED, 0));
    float *attn_out = t->s.b, *ffn_out = t->s.a; /* branch outputs, reused per layer */
    for (int l = 0; l < cfg->n_layer; l++) {
        gpt_layer_acts *a = t->stash ? gpt_work_layer(t, l, keep) : &t->layer[l];
        const gpt_layer_views *lw = &w->h[l];
        const float *x = layer_input(t, l);
        /* x_{l+½} = x_l + dropout(MultiHeadAttention(LayerNorm_1(x_l))) */
        layer_norm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, a->bf16.xhat1, x, lw->ln_1_w,
                           lw->ln_1_b, N, C, cfg->layer_norm_epsilon);
        rc = multi_head_attention_forward(&d, lw, a, &t->s, &t->drop, l, t->attn_impl);
        if (rc) return fail(err, errlen, rc, "attention: %s", slm_strerror(rc));
        residual_forward(a->res_mid, x, attn_out, lw->c_proj_b, N, C,
                         gpt_dropout_site(&t->drop, SITE_ATTN_RESID, l));
        /* x_{l+1} = x_{l+½} + dropout(FeedForward(LayerNorm_2(x_{l+½}))) */
        layer_norm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->bf16.xhat2, a->res_mid,
                           lw->ln_2_w, lw->ln_2_b, N, C, cfg->layer_norm_epsilon);
        feed_forward_forward(&d, cfg->activation, lw, a, &t->s);
        residual_forward(a->res_out, a->res_mid, ffn_out, lw->mlp_proj_b, N, C,
                         gpt_dropout_site(&t->drop, SITE_FFN_RESID, l));
    }
    layer_norm_forward(t->lnf, t->lnf_mean, t->lnf_rstd, NULL, layer_input(t, cfg->n_layer),
                       w->ln_f_w, w->ln_f_b, N, C, cfg->layer_norm_epsilon);
    lm_head_forward(&t->s.mm, t->logits, t->lnf, w->wte, N, C, d.V);

    t->n_valid = 0;
    if (targets) {
        double total = cross_entropy_forward(t->ce_lse, t->logits, targets, N, d.V, &t->n_valid);
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
    if (t->s.mm.bf16) bytes += t->bf16_bytes;
    return bytes;
}

/* 1 if g is the gradient of a weight matrix: wte (the LM head's product,
 * then the embedding's sum) or one of a layer's four Conv1D weights, which
 * each get one GEMM in backward. */
static int is_matrix_grad(const slm_model *m, const float *g)
{
    if (g == m->g.wte) return 1;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const gpt_layer_views *h = &m->g.h[l];
        if (g == h->c_attn_w || g == h->c_proj_w || g == h->c_fc_w || g == h->mlp_proj_w)
            return 1;
    }
    return 0;
}

/* Zeroes every gradient but the weight matrices' (≈1 % of them for GPT-2):
 * an overwriting backward writes those with beta = 0 GEMMs. */
static void zero_other_grads(slm_model *m)
{
    for (int j = 0; j < m->n_tensors; j++) {
        float *g = m->grads + m->tensors[j].offset;
        if (!is_matrix_grad(m, g)) memset(g, 0, m->tensors[j].numel * sizeof *g);
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
    const slm_config *cfg = &m->cfg;
    const gpt_dims *d = &t->dims;
    size_t N = d->N;
    int C = d->C;
    const gpt_views *w = &m->w;
    gpt_views *g = &m->g;
    gpt_scratch *s = &t->s;

    if (overwrite) zero_other_grads(m);
    s->mm.grad_beta = overwrite ? 0.0f : 1.0f;
    float scale = t->n_valid ? loss_scale / (float)t->n_valid : 0.0f;
    cross_entropy_backward(t->logits, t->ce_lse, t->targets, N, d->V, scale);
    lm_head_backward(&s->mm, s->a, g->wte, t->logits, t->lnf, w->wte, N, C, d->V);
    memset(s->dres, 0, N * (size_t)C * sizeof *s->dres);
    layer_norm_backward(s->dres, g->ln_f_w, g->ln_f_b, s->a, layer_input(t, cfg->n_layer),
                        t->lnf_mean, t->lnf_rstd, w->ln_f_w, N, C);
    for (int l = cfg->n_layer - 1; l >= 0; l--) {
        const gpt_layer_views *lw = &w->h[l];
        gpt_layer_views *lg = &g->h[l];
        int last = l == cfg->n_layer - 1;
        const gpt_layer_acts *a = t->stash ? gpt_unstash_ffn(t, l, lw, last) : &t->layer[l];
        const gpt_layer_stash *st = &t->stashed[l];
        /* s->dres = d(x_{l+1}) → d(x_{l+½}): the residual passes it through,
         * the FFN branch adds its part via LayerNorm 2. */
        const float *dffn = residual_backward(s->b, s->dres, N, C,
                                              gpt_dropout_site(&t->drop, SITE_FFN_RESID, l));
        feed_forward_backward(d, cfg->activation, lw, lg, a, s, dffn);
        if (t->stash)
            layer_norm_backward_xhat(s->dres, lg->ln_2_w, lg->ln_2_b, s->a, st->xhat2,
                                     a->ln2_rstd, lw->ln_2_w, N, C);
        else
            layer_norm_backward(s->dres, lg->ln_2_w, lg->ln_2_b, s->a, a->res_mid, a->ln2_mean,
                                a->ln2_rstd, lw->ln_2_w, N, C);
        /* d(x_{l+½}) → d(x_l), likewise through the attention branch. */
        const float *dattn = residual_backward(s->b, s->dres, N, C,
                                               gpt_dropout_site(&t->drop, SITE_ATTN_RESID, l));
        if (t->stash) a = gpt_unstash_attention(t, l, lw, last);
        int rc = multi_head_attention_backward(d, lw, lg, a, s, dattn, &t->drop, l,
                                               t->attn_impl);
        if (rc) return fail(err, errlen, rc, "attention backward: %s", slm_strerror(rc));
        if (t->stash)
            layer_norm_backward_xhat(s->dres, lg->ln_1_w, lg->ln_1_b, s->b, st->xhat1,
                                     a->ln1_rstd, lw->ln_1_w, N, C);
        else
            layer_norm_backward(s->dres, lg->ln_1_w, lg->ln_1_b, s->b, layer_input(t, l),
                                a->ln1_mean, a->ln1_rstd, lw->ln_1_w, N, C);
    }
    dropout_backward(s->dres, s->dres, N, C, gpt_dropout_site(&t->drop, SITE_EMBED, 0));
    encoder_backward(g->wte, g->wpe, s->dres, t->tokens, d->B, d->T, C);
    return SLM_OK;
}

void slm_model_zero_grad(slm_model *m)
{
    if (!m || !m->grads) return;
    size_t n = m->n_params;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) m->grads[i] = 0.0f;
}
