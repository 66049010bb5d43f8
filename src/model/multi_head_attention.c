/*
 * Multi-head causal self-attention (Vaswani et al. 2017, §3.2.2 "Multi-Head
 * Attention", with the decoder's masking of §3.2.3):
 *
 *   [Q K V] = X·W_attn + b_attn           X (B,T,C), W_attn (C,3C): the h
 *                                         per-head W_j^Q, W_j^K, W_j^V side by side
 *   Z_j     = softmax(Q_j·K_jᵀ/sqrt(d_k) + M)·V_j     M the causal mask, j = 1..h
 *   out     = Concat(Z_1..Z_h)·W^C + b^C   W^C = c_proj (C,C)
 *
 * with d_k = d_v = C/h. Splitting into heads is a transpose
 * (B,T,3C) → 3×(B,H,T,D) so each head's Q_j is contiguous for the attention
 * core (slm_attention_forward/backward, which applies the mask and the
 * attention dropout); concatenation is the transpose back.
 */
#include "attention/attention_bf16.h"
#include "kernels/bf16.h"
#include "model/layers.h"

#include <stdlib.h>
#include <string.h>

/* The attention kernel the whole model uses, training passes and KV-cache
 * decoding alike: AUTO (the flash kernel). Reference and flash agree to
 * 1e-5; SLM_ATTN_IMPL=auto|reference|flash in the environment picks one
 * explicitly, e.g. to compare them in a whole model (read once, when the
 * training state or the KV cache is created). */
#define MHA_ATTN_IMPL SLM_ATTN_AUTO

int gpt_attention_impl(void)
{
    const char *e = getenv("SLM_ATTN_IMPL");
    if (e && !strcmp(e, "auto")) return SLM_ATTN_AUTO;
    if (e && !strcmp(e, "reference")) return SLM_ATTN_REFERENCE;
    if (e && !strcmp(e, "flash")) return SLM_ATTN_FLASH;
    return MHA_ATTN_IMPL;
}

// rows is (B,T,S·C), heads (S,B,H,T,D) with C = H·D; bias (S·C) or NULL.
// heads[s][b][h][t][:] = rows[b][t][s·C + h·D : s·C + (h+1)·D] + bias[...],
// and its bf16 rounding in heads_bf16 (same layout) unless that is NULL.
static void split_heads(float *heads, uint16_t *heads_bf16, const float *rows, const float *bias,
                        int S, const gpt_dims *d)
{
    int B = d->B, T = d->T, H = d->H, D = d->D, C = d->C;
    size_t N = d->N;
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
    for (size_t r = 0; r < N; r++) {
        size_t b = r / T, t = r % T;
        for (int s = 0; s < S; s++)
            for (int h = 0; h < H; h++) {
                const float *src = rows + r * S * C + (size_t)s * C + (size_t)h * D;
                const float *bs = bias ? bias + (size_t)s * C + (size_t)h * D : NULL;
                size_t at = ((((size_t)s * B + b) * H + h) * T + t) * D;
                float *dst = heads + at;
                if (bs) {
#pragma omp simd
                    for (int k = 0; k < D; k++) dst[k] = src[k] + bs[k];
                } else {
                    memcpy(dst, src, (size_t)D * sizeof *dst);
                }
                if (heads_bf16) {
                    uint16_t *hb = heads_bf16 + at;
#pragma omp simd
                    for (int k = 0; k < D; k++) hb[k] = bf16_round(dst[k]);
                }
            }
    }
}

// heads is (S,B,H,T,D), rows (B,T,S·C): the inverse of split_heads (no bias);
// for S = 1 this is Concat(head_1, ..., head_h). heads_bf16 (heads' layout)
// gets heads rounded to bf16 on the way unless it is NULL.
static void merge_heads(float *rows, uint16_t *heads_bf16, const float *heads, int S,
                        const gpt_dims *d)
{
    int B = d->B, T = d->T, H = d->H, D = d->D, C = d->C;
    size_t N = d->N;
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
    for (size_t r = 0; r < N; r++) {
        size_t b = r / T, t = r % T;
        for (int s = 0; s < S; s++)
            for (int h = 0; h < H; h++) {
                size_t at = ((((size_t)s * B + b) * H + h) * T + t) * D;
                memcpy(rows + r * S * C + (size_t)s * C + (size_t)h * D, heads + at,
                       (size_t)D * sizeof *rows);
                if (heads_bf16) {
                    uint16_t *hb = heads_bf16 + at;
#pragma omp simd
                    for (int k = 0; k < D; k++) hb[k] = bf16_round(heads[at + k]);
                }
            }
    }
}

/* merge_heads (S = 1, no rounding) from bf16 heads, widened on the way. */
static void merge_heads_widen(float *rows, const uint16_t *heads_bf16, const gpt_dims *d)
{
    int T = d->T, H = d->H, D = d->D, C = d->C;
    size_t N = d->N;
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (size_t r = 0; r < N; r++) {
        size_t b = r / T, t = r % T;
        for (int h = 0; h < H; h++) {
            const uint16_t *src = heads_bf16 + (((size_t)b * H + h) * T + t) * D;
            float *dst = rows + r * C + (size_t)h * D;
#pragma omp simd
            for (int k = 0; k < D; k++) dst[k] = bf16_widen(src[k]);
        }
    }
}

static slm_attn_opts attention_opts(const gpt_dropout *drop, int layer, int impl)
{
    slm_attn_opts o = {.impl = impl, .causal = 1};
    o.dropout = drop->p;
    o.seed = gpt_dropout_site(drop, SITE_ATTN, layer).seed;
    o.batch_offset = drop->batch_offset;
    return o;
}

// a->ln1 (N,C) → qkv (N,3C) in s->heads → a->qkv 3×(B,H,T,D) → a->atty
// (B,H,T,D), a->att_lse (B,H,T) → concat (N,C) in s->a → c_proj (N,C) in
// s->b (c_proj's bias is added by the residual add in gpt.c)
int multi_head_attention_forward(const gpt_dims *d, const gpt_layer_views *w, gpt_layer_acts *a,
                                 gpt_scratch *s, const gpt_dropout *drop, int layer,
                                 int attn_impl)
{
    int C = d->C;
    size_t N = d->N, NC = N * (size_t)C;
    matmul_forward(&s->mm, s->heads, a->ln1, w->c_attn_w, N, C, 3 * C, 0.0f, NULL);
    split_heads(a->qkv, a->bf16.qkv, s->heads, w->c_attn_b, 3, d);
    slm_attn_opts o = attention_opts(drop, layer, attn_impl);
    int rc = slm_attention_forward(&o, d->B, d->H, d->T, d->T, d->D, a->qkv, a->qkv + NC,
                                   a->qkv + 2 * NC, a->atty, a->att_lse);
    if (rc) return rc;
    merge_heads(s->a, a->bf16.atty, a->atty, 1, d);
    matmul_forward(&s->mm, s->b, s->a, w->c_proj_w, N, C, C, 0.0f, NULL);
    return SLM_OK;
}

// a->qkv 3×(B,H,T,D), a->att_lse (B,H,T) of the last forward → weights
// (B,H,T,T): the probabilities that kernel weighted V with, recovered from its
// lse (exp(score − lse)), with the same options minus dropout.
int multi_head_attention_weights(const gpt_dims *d, const gpt_layer_acts *a, float *weights)
{
    const gpt_dropout none = {0};
    slm_attn_opts o = attention_opts(&none, 0, SLM_ATTN_AUTO);
    size_t NC = d->N * (size_t)d->C;
    return slm_attention_weights(&o, d->B, d->H, d->T, d->T, d->D, a->qkv, a->qkv + NC,
                                 a->att_lse, weights);
}

// dbranch (N,C) = d(c_proj output). Through c_proj: d(concat) (N,C) in
// s->big, split into d(atty) (B,H,T,D) in s->a; attention backward gives dq,
// dk, dv in s->heads; merged to d(qkv) (N,3C) in s->big; through c_attn to
// d(ln1) (N,C) in s->b.
int multi_head_attention_backward(const gpt_dims *d, const gpt_layer_views *w,
                                  gpt_layer_views *g, const gpt_layer_acts *a, gpt_scratch *s,
                                  const float *dbranch, const gpt_dropout *drop, int layer,
                                  int attn_impl)
{
    int C = d->C;
    size_t N = d->N, NC = N * (size_t)C;
    bias_backward(g->c_proj_b, dbranch, N, C);
    /* recomputed: cheaper than storing it */
    if (a->qkv_in_bf16)
        merge_heads_widen(s->a, a->bf16.atty, d);
    else
        merge_heads(s->a, NULL, a->atty, 1, d);
    matmul_backward(&s->mm, s->big, g->c_proj_w, dbranch, s->a, w->c_proj_w, N, C, C, NULL);
    split_heads(s->a, NULL, s->big, NULL, 1, d);
    slm_attn_opts o = attention_opts(drop, layer, attn_impl);
    const uint16_t *q16 = a->bf16.qkv;
    int rc = a->qkv_in_bf16
                 ? attention_backward_bf16_inputs(&o, d->B, d->H, d->T, d->T, d->D, q16, q16 + NC,
                                                  q16 + 2 * NC, a->bf16.atty, a->att_lse, s->a,
                                                  s->heads, s->heads + NC, s->heads + 2 * NC)
                 : slm_attention_backward(&o, d->B, d->H, d->T, d->T, d->D, a->qkv, a->qkv + NC,
                                          a->qkv + 2 * NC, a->atty, a->att_lse, s->a, s->heads,
                                          s->heads + NC, s->heads + 2 * NC);
    if (rc) return rc;
    merge_heads(s->big, NULL, s->heads, 3, d);
    bias_backward(g->c_attn_b, s->big, N, 3 * C);
    matmul_backward(&s->mm, s->b, g->c_attn_w, s->big, a->ln1, w->c_attn_w, N, C, 3 * C, NULL);
    return SLM_OK;
}
