/*
 * The output layer (Radford et al. 2018, eq. 2: P(u) = softmax(h_n·W_eᵀ)):
 * logits_j = z̃_j·W_p with W_p
 * tied to the token embedding (W_p = wteᵀ, no bias, as in GPT-2), then
 * softmax over the vocabulary and the cross-entropy of the next token:
 *
 *   loss = 1/n Σ_{rows with a target} (log Σ_v exp(logits_v) − logits_target)
 *
 * Forward keeps only the log-sum-exp per row; backward turns the logits into
 * dlogits = (softmax − onehot)/n in place, so the (N,V) buffer is never
 * duplicated (51 MiB per copy for GPT-2 at B·T = 256).
 */
#include "kernels/kernels.h"
#include "model/layers.h"
#include "model/vec_math.h"

#include <math.h>
#include <string.h>

// x is (N,C), wte (V,C), logits (N,V)
void lm_head_forward(const gpt_gemm *mm, float *logits, const float *x, const float *wte,
                     size_t N, int C, int V)
{
    if (!mm->bf16) {
        gemm_f32('N', 'T', (int)N, V, C, 1.0f, x, C, wte, C, 0.0f, logits, V);
        return;
    }
    f32_to_bf16_array(mm->xb, x, N * (size_t)C);
    gemm_bf16('N', 'T', (int)N, V, C, 1.0f, mm->xb, C, mm->wbf + (wte - mm->params), C, 0.0f,
              logits, V);
}

// dlogits is (N,V), x (N,C), wte (V,C):
//   dx (N,C) = dlogits·wte (overwritten),  dwte (V,C) = dlogitsᵀ·x + grad_beta·dwte
void lm_head_backward(const gpt_gemm *mm, float *dx, float *dwte, const float *dlogits,
                      const float *x, const float *wte, size_t N, int C, int V)
{
    if (!mm->bf16) {
        gemm_f32('N', 'N', (int)N, C, V, 1.0f, dlogits, V, wte, C, 0.0f, dx, C);
        gemm_f32('T', 'N', V, C, (int)N, 1.0f, dlogits, V, x, C, mm->grad_beta, dwte, C);
        return;
    }
    f32_to_bf16_array(mm->xa, dlogits, N * (size_t)V);
    gemm_bf16('N', 'N', (int)N, C, V, 1.0f, mm->xa, V, mm->wbf + (wte - mm->params), C, 0.0f, dx,
              C);
    if (gemm_bf16_amx_supported()) {
        /* AMX wants dlogitsᵀ with its depth (N) contiguous: in xa, whose
         * rounded dlogits the product above has used */
        int ld = bf16_transposed_ld((int)N);
        f32_to_bf16_transposed(mm->xa, ld, dlogits, (int)N, V, V);
        f32_to_bf16_array(mm->xb, x, N * (size_t)C);
        gemm_bf16('N', 'N', V, C, (int)N, 1.0f, mm->xa, ld, mm->xb, C, mm->grad_beta, dwte, C);
    } else {
        f32_to_bf16_array(mm->xb, x, N * (size_t)C);
        gemm_bf16('T', 'N', V, C, (int)N, 1.0f, mm->xa, V, mm->xb, C, mm->grad_beta, dwte, C);
    }
}

/* max of x[0..n): 16 running maxima, which both gcc and clang turn into one
 * vector max per 16 floats (a max reduction under `omp simd` is not
 * vectorised by clang without -ffast-math). */
static float row_max(const float *x, int n)
{
    float m[16];
    for (int k = 0; k < 16; k++) m[k] = -INFINITY;
    int v = 0;
    for (; v + 16 <= n; v += 16)
        for (int k = 0; k < 16; k++) m[k] = x[v + k] > m[k] ? x[v + k] : m[k];
    for (; v < n; v++) m[0] = x[v] > m[0] ? x[v] : m[0];
    float mx = m[0];
    for (int k = 1; k < 16; k++) mx = m[k] > mx ? m[k] : mx;
    return mx;
}

/* Σ_v exp(x[v] − mx): 16 partial sums (one per lane), then their total. */
static float row_exp_sum(const float *x, int n, float mx)
{
#ifdef SLM_VEC512
    __m512 m = _mm512_set1_ps(mx), acc = _mm512_setzero_ps();
    for (int v = 0; v < n; v += 16) {
        __mmask16 k = vec_tail16(n - v);
        __m512 e = vec_expf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + v), m));
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
    }
    return _mm512_reduce_add_ps(acc);
#else
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int v = 0; v < n; v++) sum += vec_expf(x[v] - mx);
    return sum;
#endif
}

/* x[v] = exp(x[v] − lse)·scale over a row (softmax times the loss scale). */
static void row_softmax_scaled(float *x, int n, float lse, float scale)
{
#ifdef SLM_VEC512
    __m512 l = _mm512_set1_ps(lse), sc = _mm512_set1_ps(scale);
    for (int v = 0; v < n; v += 16) {
        __mmask16 k = vec_tail16(n - v);
        __m512 e = vec_expf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + v), l));
        _mm512_mask_storeu_ps(x + v, k, _mm512_mul_ps(e, sc));
    }
#else
#pragma omp simd
    for (int v = 0; v < n; v++) x[v] = vec_expf(x[v] - lse) * scale;
#endif
}

// logits is (N,V), lse (N), targets (N) with SLM_IGNORE_INDEX for no loss.
double cross_entropy_forward(float *lse, const float *logits, const int32_t *targets, size_t N,
                             int V, size_t *n_valid)
{
#pragma omp parallel for schedule(static) if (N * V > 32768)
    for (size_t r = 0; r < N; r++) {
        const float *x = logits + r * V;
        float mx = row_max(x, V);
        float sum = row_exp_sum(x, V, mx);
        /* sum >= 1 since the maximum contributes exp(0); fmaxf says so to
         * the linter, which cannot see that V > 0. */
        lse[r] = mx + logf(fmaxf(sum, 1.0f));
    }
    /* Rows summed in order, in double: the loss is bit-identical for any
     * thread count, and N terms cost nothing next to the N·V above. */
    double total = 0.0;
    size_t n = 0;
    for (size_t r = 0; r < N; r++) {
        if (targets[r] == SLM_IGNORE_INDEX) continue;
        total += (double)lse[r] - (double)logits[r * V + targets[r]];
        n++;
    }
    *n_valid = n;
    return total;
}

// logits (N,V) becomes dlogits = (softmax(logits) − onehot(target))·scale
void cross_entropy_backward(float *logits, const float *lse, const int32_t *targets, size_t N,
                            int V, float scale)
{
#pragma omp parallel for schedule(static) if (N * V > 32768)
    for (size_t r = 0; r < N; r++) {
        float *x = logits + r * V;
        int32_t t = targets[r];
        if (t == SLM_IGNORE_INDEX) {
            memset(x, 0, (size_t)V * sizeof *x);
            continue;
        }
        row_softmax_scaled(x, V, lse[r], scale);
        x[t] -= scale;
    }
}
