/*
 * The position-wise feed-forward network of each block (Vaswani et al. 2017,
 * §3.3 "Position-wise Feed-Forward Networks"):
 *   FFN(x) = act(x·W_fc + b_fc)·W_proj + b_proj,   W_fc (C,4C), W_proj (4C,C)
 * with act = GELU in GPT-2's tanh approximation ("gelu_new", Hendrycks &
 * Gimpel 2016) or ReLU. The bias add and the activation run as the c_fc
 * GEMM's epilogue, on each block of its output while the block is in L1 (in
 * the kernel itself on AMX, kernels.h), and in backward the activation's
 * derivative and c_fc's bias gradient on d(fc_act)'s GEMM the same way; the
 * output bias is added with dropout and the residual add.
 */
#include "kernels/bf16.h"
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

#ifdef SLM_VEC512
/* gelu_sigmoid on 16 lanes, the same operations in the same order. */
static inline __m512 gelu_sigmoid16(__m512 x)
{
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(GELU_A), x), x), x);
    __m512 u = _mm512_mul_ps(_mm512_set1_ps(GELU_K), _mm512_add_ps(x, t));
    __m512 e = vec_expf16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), u));
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* The factor gelu'(x) = s + x·s·(1−s)·2·u'(x) on 16 lanes, given s. */
static inline __m512 gelu_slope16(__m512 x, __m512 s)
{
    __m512 du = _mm512_mul_ps(
        _mm512_set1_ps(GELU_K),
        _mm512_add_ps(_mm512_set1_ps(1.0f),
                      _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(3.0f * GELU_A), x), x)));
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(x, s), _mm512_sub_ps(_mm512_set1_ps(1.0f), s));
    return _mm512_add_ps(s, _mm512_mul_ps(_mm512_mul_ps(t, _mm512_set1_ps(2.0f)), du));
}

/* 16 bf16 values (masked) widened to fp32: the bits shifted up by 16. */
static inline __m512 bf16_widen16(const uint16_t *p, __mmask16 m)
{
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
#endif

/* One row of n: p += bias; a = activation(p). p and a may be the same. */
static inline void bias_activation_row(float *p, float *a, const float *bias, int n,
                                       int activation)
{
    if (activation == SLM_ACT_RELU) {
#pragma omp simd
        for (int c = 0; c < n; c++) {
            float x = p[c] + bias[c];
            p[c] = x;
            a[c] = x > 0.0f ? x : 0.0f;
        }
    } else {
#ifdef SLM_VEC512
        for (int c = 0; c < n; c += 16) {
            __mmask16 m = vec_tail16(n - c);
            __m512 x = _mm512_add_ps(_mm512_maskz_loadu_ps(m, p + c),
                                     _mm512_maskz_loadu_ps(m, bias + c));
            _mm512_mask_storeu_ps(p + c, m, x);
            _mm512_mask_storeu_ps(a + c, m, _mm512_mul_ps(x, gelu_sigmoid16(x)));
        }
#else
#pragma omp simd
        for (int c = 0; c < n; c++) {
            float x = p[c] + bias[c];
            p[c] = x;
            a[c] = x * gelu_sigmoid(x);
        }
#endif
    }
}

/* One row of n: g ← g · act'(p).
 *   gelu'(x) = s + x·s·(1−s)·2·u'(x),  s = σ(2u),  u' = sqrt(2/π)(1 + 3·0.044715·x²) */
static inline void activation_grad_row(float *g, const float *p, int n, int activation)
{
    if (activation == SLM_ACT_RELU) {
#pragma omp simd
        for (int c = 0; c < n; c++) g[c] = p[c] > 0.0f ? g[c] : 0.0f;
    } else {
#ifdef SLM_VEC512
        for (int c = 0; c < n; c += 16) {
            __mmask16 m = vec_tail16(n - c);
            __m512 x = _mm512_maskz_loadu_ps(m, p + c);
            __m512 slope = gelu_slope16(x, gelu_sigmoid16(x));
            _mm512_mask_storeu_ps(g + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + c), slope));
        }
#else
#pragma omp simd
        for (int c = 0; c < n; c++) {
            float x = p[c], s = gelu_sigmoid(x);
            float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
            g[c] *= s + x * s * (1.0f - s) * 2.0f * du;
        }
#endif
    }
}

/* activation_grad_row from bf16 pb, and a = act(pb) on the way: bf16
 * storage keeps only the pre-activation, and gelu(x) = x·s reuses the
 * derivative's s, so recomputing it here costs a store. */
static inline void activation_grad_row_recompute(float *g, float *a, const uint16_t *pb, int n,
                                                 int activation)
{
    if (activation == SLM_ACT_RELU) {
#pragma omp simd
        for (int c = 0; c < n; c++) {
            float x = bf16_widen(pb[c]);
            a[c] = x > 0.0f ? x : 0.0f;
            g[c] = x > 0.0f ? g[c] : 0.0f;
        }
    } else {
#ifdef SLM_VEC512
        for (int c = 0; c < n; c += 16) {
            __mmask16 m = vec_tail16(n - c);
            __m512 x = bf16_widen16(pb + c, m), s = gelu_sigmoid16(x);
            _mm512_mask_storeu_ps(a + c, m, _mm512_mul_ps(x, s));
            _mm512_mask_storeu_ps(g + c, m,
                                  _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + c), gelu_slope16(x, s)));
        }
#else
#pragma omp simd
        for (int c = 0; c < n; c++) {
            float x = bf16_widen(pb[c]), s = gelu_sigmoid(x);
            float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
            a[c] = x * s;
            g[c] *= s + x * s * (1.0f - s) * 2.0f * du;
        }
#endif
    }
}

// pre, act are (N,OC); bias (OC). pre += bias; act = activation(pre).
// pre and act may be the same buffer (then it ends up holding act).
void bias_activation_forward(float *pre, float *act, const float *bias, size_t N, int OC,
                             int activation)
{
#pragma omp parallel for schedule(static) if (N * OC > 32768)
    for (size_t r = 0; r < N; r++)
        bias_activation_row(pre + r * OC, act + r * OC, bias, OC, activation);
}

/* The c_fc GEMM's epilogue (forward): a block of fc_pre gets its bias, and
 * the same block of fc_act its activation, while the block is in L1; with
 * bf16 activation storage also fc_pre's bf16 copy (pre_bf16, may be NULL),
 * made first, since there fc_act is fc_pre's buffer (gpt.h). */
typedef struct {
    const float *bias;
    float *act;
    uint16_t *pre_bf16;
    size_t ld;
    int activation;
} fc_out;

static void fc_out_block(void *ctx, float *c, int ldc, int row0, int col0, int rows, int cols)
{
    const fc_out *x = ctx;
    for (int r = 0; r < rows; r++) {
        float *p = c + (size_t)r * ldc;
        size_t at = (size_t)(row0 + r) * x->ld + col0;
        const float *bias = x->bias + col0;
        if (x->pre_bf16) {
            uint16_t *pb = x->pre_bf16 + at;
#pragma omp simd
            for (int j = 0; j < cols; j++) pb[j] = bf16_round(p[j] + bias[j]);
        }
        bias_activation_row(p, x->act + at, bias, cols, x->activation);
    }
}

/* The epilogue of d(fc_act) = dbranch·W_projᵀ (backward): times act'(fc_pre)
 * gives d(fc_pre), whose rows are summed into c_fc's bias gradient in row
 * order (kernels.h: one thread per column, rows ascending). */
typedef struct {
    const float *pre;
    const uint16_t *pre_bf16; /* read where pre is NULL (bf16 storage) */
    float *act;               /* with pre_bf16: fc_act = act(pre_bf16) is written
                                 here, for W_proj's gradient that follows */
    float *dbias;
    size_t ld;
    int activation;
} fc_grad;

static void fc_grad_block(void *ctx, float *c, int ldc, int row0, int col0, int rows, int cols)
{
    const fc_grad *x = ctx;
    float *db = x->dbias + col0;
    for (int r = 0; r < rows; r++) {
        float *g = c + (size_t)r * ldc;
        size_t at = (size_t)(row0 + r) * x->ld + col0;
        if (x->pre)
            activation_grad_row(g, x->pre + at, cols, x->activation);
        else
            activation_grad_row_recompute(g, x->act + at, x->pre_bf16 + at, cols,
                                          x->activation);
#pragma omp simd
        for (int j = 0; j < cols; j++) db[j] += g[j];
    }
}

// ln2 is (N,C) → fc_pre, fc_act (N,4C) → branch (N,C) in s->a (b_proj is
// added by the residual add in gpt.c)
void feed_forward_forward(const gpt_dims *d, int activation, const gpt_layer_views *w,
                          gpt_layer_acts *a, gpt_scratch *s)
{
    int C = d->C;
    fc_out out = {w->c_fc_b, a->fc_act, a->bf16.fc_pre, 4 * (size_t)C, activation};
    gemm_epilogue ep = {fc_out_block, &out};
    matmul_forward(&s->mm, a->fc_pre, a->ln2, w->c_fc_w, d->N, C, 4 * C, 0.0f, &ep);
    matmul_forward(&s->mm, s->a, a->fc_act, w->mlp_proj_w, d->N, 4 * C, C, 0.0f, NULL);
}

/* Rows per step of the FFN's backward with fp32 GEMMs (below). */
#define FFN_BACKWARD_ROWS 256

// dbranch (N,C) = d(branch output) → d(fc_act) (N,4C) in s->big →
// d(fc_pre) in place (with c_fc's bias gradient) → d(ln2) (N,C) in s->a.
void feed_forward_backward(const gpt_dims *d, int activation, const gpt_layer_views *w,
                           gpt_layer_views *g, const gpt_layer_acts *a, gpt_scratch *s,
                           const float *dbranch)
{
    int C = d->C;
    size_t N = d->N, ld = 4 * (size_t)C;
    bias_backward(g->mlp_proj_b, dbranch, N, C);
    if (s->mm.bf16) {
        /* bf16 GEMMs: matmul_backward runs d(input) first, so where fc_pre
         * is only kept in bf16 the epilogue remakes fc_act before W_proj's
         * gradient reads it */
        fc_grad grad = {a->bf16.fc_pre ? NULL : a->fc_pre, a->bf16.fc_pre, a->fc_act, g->c_fc_b,
                        ld, activation};
        gemm_epilogue ep = {fc_grad_block, &grad};
        matmul_backward(&s->mm, s->big, g->mlp_proj_w, dbranch, a->fc_act, w->mlp_proj_w, N,
                        4 * C, C, &ep);
    } else {
        /* fp32 GEMMs: W_proj's two products a block of rows at a time,
         *   d(fc_act)[rows] = dbranch[rows]·W_projᵀ, then the epilogue
         *   dW_proj        += fc_act[rows]ᵀ·dbranch[rows]
         * The weight gradient in steps of 256 rows of depth ran 1.08-1.09×
         * faster than as one product of depth N = 2048 (oneDNN, Xeon, 2
         * threads). With bf16 storage only fc_pre is kept, in bf16 (gpt.h):
         * the epilogue remakes the block's fc_act from it, always into the
         * first rows of the working layer's fc_act, where W_proj's gradient
         * reads it back from L2; the whole (N,4C) fc_act is never written. */
        for (size_t r0 = 0; r0 < N; r0 += FFN_BACKWARD_ROWS) {
            int rows = N - r0 < FFN_BACKWARD_ROWS ? (int)(N - r0) : FFN_BACKWARD_ROWS;
            const uint16_t *pre_bf16 = a->bf16.fc_pre ? a->bf16.fc_pre + r0 * ld : NULL;
            float *act = pre_bf16 ? a->fc_act : a->fc_act + r0 * ld;
            float *dact = s->big + r0 * ld;
            const float *dout = dbranch + r0 * (size_t)C;
            fc_grad grad = {pre_bf16 ? NULL : a->fc_pre + r0 * ld, pre_bf16, act, g->c_fc_b, ld,
                            activation};
            gemm_epilogue ep = {fc_grad_block, &grad};
            gemm_f32('N', 'T', rows, 4 * C, C, 1.0f, dout, C, w->mlp_proj_w, C, 0.0f, dact,
                     (int)ld);
            gemm_epilogue_apply(rows, 4 * C, dact, (int)ld, &ep);
            gemm_f32('T', 'N', 4 * C, C, rows, 1.0f, act, (int)ld, dout, C,
                     r0 ? 1.0f : s->mm.grad_beta, g->mlp_proj_w, C);
        }
    }
    matmul_backward(&s->mm, s->a, g->c_fc_w, s->big, a->ln2, w->c_fc_w, N, C, 4 * C, NULL);
}
