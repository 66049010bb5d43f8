/*
 * bf16 activation storage for training (gpt.h, "stash mode"): on CPUs where
 * bf16 GEMMs do not outrun fp32 ones, `--dtype bf16` keeps the math in fp32
 * and halves what a training step holds between forward and backward.
 * Each layer runs in one fp32 working layer; what backward needs is rounded
 * to bf16 where forward makes it (gpt_work_layer hands out the copies), and
 * backward reads it back (gpt_unstash_ffn, gpt_unstash_attention): the
 * LayerNorm outputs remade from x̂ for the GEMMs, q, k, v and the attention
 * output widened head by head inside the attention backward, fc_act remade
 * in c_fc's backward epilogue. Forward's own values are
 * never rounded: the loss is fp32's; only the gradients see the bf16 copies
 * (relative error ≤ 2⁻⁹ per stored element, as bf16 GEMM inputs would).
 * Each shard of a pass (gpt.h) has its own working layer and stash.
 */
#include "model/layers.h"

/* The working layer's views for layer l (both passes). */
static gpt_layer_acts *bind_work(gpt_shard *t, int l)
{
    gpt_layer_acts *w = &t->work;
    const gpt_layer_acts *a = &t->layer[l];
    w->ln1_mean = a->ln1_mean;
    w->ln1_rstd = a->ln1_rstd;
    w->att_lse = a->att_lse;
    w->ln2_mean = a->ln2_mean;
    w->ln2_rstd = a->ln2_rstd;
    w->res_out = t->resid[(l + 1) & 1];
    w->qkv_in_bf16 = 0;
    return w;
}

gpt_layer_acts *gpt_work_layer(gpt_shard *t, int l, int keep)
{
    gpt_layer_acts *w = bind_work(t, l);
    w->bf16 = keep ? t->stashed[l] : (gpt_layer_stash){0};
    return w;
}

/* Layer l's working layer before its backward. */
static gpt_layer_acts *bind_backward(gpt_shard *t, int l)
{
    gpt_layer_acts *w = bind_work(t, l);
    w->bf16 = t->stashed[l]; /* backward reads fc_pre from bf16.fc_pre */
    return w;
}

const gpt_layer_acts *gpt_unstash_ffn(gpt_shard *t, int l, const gpt_layer_views *lw, int last)
{
    gpt_layer_acts *w = bind_backward(t, l);
    if (!last)
        layer_norm_from_xhat(w->ln2, t->stashed[l].xhat2, lw->ln_2_w, lw->ln_2_b, t->dims.N,
                             t->dims.C);
    return w;
}

const gpt_layer_acts *gpt_unstash_attention(gpt_shard *t, int l, const gpt_layer_views *lw,
                                            int last)
{
    gpt_layer_acts *w = bind_backward(t, l);
    if (!last) {
        layer_norm_from_xhat(w->ln1, t->stashed[l].xhat1, lw->ln_1_w, lw->ln_1_b, t->dims.N,
                             t->dims.C);
        w->qkv_in_bf16 = 1;
    }
    return w;
}
