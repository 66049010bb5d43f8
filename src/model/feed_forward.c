/*
 * The position-wise feed-forward network of each block (Vaswani et al. 2017,
 * §3.3 "Position-wise Feed-Forward Networks"):
 *   FFN(x) = act(x·W_fc + b_fc)·W_proj + b_proj,   W_fc (C,4C), W_proj (4C,C)
 * with act = GELU in GPT-2's tanh approximation ("gelu_new", Hendrycks &
 * Gimpel 2016) or ReLU. The bias add is fused with the activation, and the
 * output bias with dropout and the residual add.
 */
#include "model/layers.h"
#include "model/vec_math.h"

#include <math.h>

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* gelu(x) = 0.5·x·(1 + tanh(u)),  u = sqrt(2/π)·(x + 0.044715·x³).
 * Since 0.5·(1 + tanh(u)) = σ(2u) this is x·σ(2u): one exp, and no
 * cancellation in 1 + tanh(u) for large negative u. */
#pragma omp declare simd notinbranch
static inline float gelu_sigmoid(float x)
{
    float u = GELU_K * (x + GELU_A * x * x * x);
    return 1.0f / (1.0f + vec_expf(-2.0f * u));
}

// pre, act are (N,OC); bias (OC). pre += bias; act = activation(pre).
// pre and act may be the same buffer (then it ends up holding act).
void bias_activation_forward(float *pre, float *act, const float *bias, size_t N, int OC,
                                    int activation)
{
#pragma omp parallel for schedule(static) if (N * OC > 32768)
    for (size_t r = 0; r < N; r++) {
        float *p = pre + r * OC, *a = act + r * OC;
        if (activation == SLM_ACT_RELU) {
#pragma omp simd
            for (int c = 0; c < OC; c++) {
                float x = p[c] + bias[c];
                p[c] = x;
                a[c] = x > 0.0f ? x : 0.0f;
            }
        } else {
#pragma omp simd
            for (int c = 0; c < OC; c++) {
                float x = p[c] + bias[c];
                p[c] = x;
                a[c] = x * gelu_sigmoid(x);
            }
        }
    }
}

// pre, d are (N,OC): d ← d · act'(pre), in place.
//   gelu'(x) = s + x·s·(1−s)·2·u'(x),  s = σ(2u),  u' = sqrt(2/π)(1 + 3·0.044715·x²)
static void activation_backward(float *d, const float *pre, size_t N, int OC, int activation)
{
#pragma omp parallel for schedule(static) if (N * OC > 32768)
    for (size_t r = 0; r < N; r++) {
        float *g = d + r * OC;
        const float *p = pre + r * OC;
        if (activation == SLM_ACT_RELU) {
#pragma omp simd
            for (int c = 0; c < OC; c++) g[c] = p[c] > 0.0f ? g[c] : 0.0f;
        } else {
#pragma omp simd
            for (int c = 0; c < OC; c++) {
                float x = p[c], s = gelu_sigmoid(x);
                float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
                g[c] *= s + x * s * (1.0f - s) * 2.0f * du;
            }
        }
    }
}

// ln2 is (N,C) → fc_pre, fc_act (N,4C) → branch (N,C) in s->a (b_proj is
// added by the residual add in gpt.c)
void feed_forward_forward(const gpt_dims *d, int activation, const gpt_layer_views *w,
                          gpt_layer_acts *a, gpt_scratch *s)
{
    int C = d->C;
    matmul_forward(&s->mm, a->fc_pre, a->ln2, w->c_fc_w, d->N, C, 4 * C, 0.0f);
    bias_activation_forward(a->fc_pre, a->fc_act, w->c_fc_b, d->N, 4 * C, activation);
    matmul_forward(&s->mm, s->a, a->fc_act, w->mlp_proj_w, d->N, 4 * C, C, 0.0f);
}

// dbranch (N,C) = d(branch output) → d(fc_act) (N,4C) in s->big →
// d(fc_pre) in place → d(ln2) (N,C) in s->a.
void feed_forward_backward(const gpt_dims *d, int activation, const gpt_layer_views *w,
                           gpt_layer_views *g, const gpt_layer_acts *a, gpt_scratch *s,
                           const float *dbranch)
{
    int C = d->C;
    bias_backward(g->mlp_proj_b, dbranch, d->N, C);
    matmul_backward(&s->mm, s->big, g->mlp_proj_w, dbranch, a->fc_act, w->mlp_proj_w, d->N, 4 * C, C);
    activation_backward(s->big, a->fc_pre, d->N, 4 * C, activation);
    bias_backward(g->c_fc_b, s->big, d->N, 4 * C);
    matmul_backward(&s->mm, s->a, g->c_fc_w, s->big, a->ln2, w->c_fc_w, d->N, C, 4 * C);
}
