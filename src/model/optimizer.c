/*
 * AdamW (Loshchilov & Hutter 2019, Algorithm 2) with global gradient-norm
 * clipping, in PyTorch's formulation (torch.optim.AdamW + clip_grad_norm_):
 *
 *   g  = grad · min(1, clip/(‖grad‖₂ + 1e-6))
 *   m  = β1·m + (1−β1)·g,      v = β2·v + (1−β2)·g²
 *   θ  = θ·(1 − lr·wd)                    (2-D weights only)
 *   θ  = θ − lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)
 *
 * One pass over the single parameter / gradient / moment allocations.
 */
#include "core/error.h"
#include "model/gpt.h"

#include <math.h>

/* The norm sums fixed chunks in double, then the chunks in order: the same
 * bits whatever the thread count. */
#define NORM_CHUNKS 256

/* Elements per work item of the update: a thread's share stays contiguous. */
#define CHUNK 16384

static double global_norm(const float *g, size_t n)
{
    double part[NORM_CHUNKS];
    size_t len = (n + NORM_CHUNKS - 1) / NORM_CHUNKS;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < NORM_CHUNKS; c++) {
        size_t lo = (size_t)c * len, hi = lo + len < n ? lo + len : n;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (size_t i = lo; i < hi; i++) s += (double)g[i] * (double)g[i];
        part[c] = lo < hi ? s : 0.0;
    }
    double s = 0.0;
    for (int c = 0; c < NORM_CHUNKS; c++) s += part[c];
    return sqrt(s);
}

static int valid_opts(const slm_adamw_opts *o)
{
    return isfinite(o->lr) && o->lr >= 0.0f && o->beta1 >= 0.0f && o->beta1 < 1.0f &&
           o->beta2 >= 0.0f && o->beta2 < 1.0f && o->eps > 0.0f && isfinite(o->eps) &&
           o->weight_decay >= 0.0f && isfinite(o->weight_decay) && o->grad_clip >= 0.0f &&
           isfinite(o->grad_clip);
}

int slm_model_adamw_step(slm_model *m, const slm_adamw_opts *o, int step, float *grad_norm,
                         char *err, size_t errlen)
{
    if (!m || !o) return fail(err, errlen, SLM_EINVAL, "adamw: no model or options");
    if (step < 1) return fail(err, errlen, SLM_EINVAL, "adamw: step %d is not 1-based", step);
    if (!valid_opts(o))
        return fail(err, errlen, SLM_EINVAL,
                    "adamw: invalid options (lr %g, betas %g %g, eps %g, weight decay %g, clip "
                    "%g): need finite lr, weight decay, clip >= 0, betas in [0, 1), eps > 0",
                    (double)o->lr, (double)o->beta1, (double)o->beta2, (double)o->eps,
                    (double)o->weight_decay, (double)o->grad_clip);
    if (m->quant) /* quantized weights do not train */
        return fail(err, errlen, SLM_EUNSUPPORTED, "adamw: a quantized model cannot be trained");
    float *grad = slm_model_grads(m);
    float *mom = slm_model_adam_state(m, 0);
    if (!grad || !mom) return fail(err, errlen, SLM_ENOMEM, "adamw: out of memory");
    float *vel = mom + m->n_params, *param = m->params;

    double norm = global_norm(grad, m->n_params);
    if (grad_norm) *grad_norm = (float)norm;
    if (!isfinite(norm))
        return fail(err, errlen, SLM_ENUMERIC, "adamw: the gradient norm is %s",
                    isnan(norm) ? "NaN" : "infinite");
    float coef = 1.0f;
    if (o->grad_clip > 0.0f) {
        double c = o->grad_clip / (norm + 1e-6);
        coef = c < 1.0 ? (float)c : 1.0f;
    }
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    const float step_size = (float)(o->lr / (1.0 - pow(o->beta1, step)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(o->beta2, step));
    const float decay = 1.0f - o->lr * o->weight_decay;

    /* Weights that leave the finite range (a finite gradient can still
     * push one past FLT_MAX: a large lr times weight decay grows weights
     * geometrically) are counted in the same pass, not in a second read of
     * every parameter. */
    size_t nonfinite = 0;
#pragma omp parallel if (m->n_params > 65536)
    {
        size_t bad = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            const slm_tensor_info *t = &m->tensors[i];
            /* Decoupled weight decay on matrices and embeddings only, not on
             * biases or LayerNorm gains (as nanoGPT / GPT-3 do). */
            float keep = t->ndim == 2 ? decay : 1.0f;
            size_t lo = t->offset, n_chunks = (t->numel + CHUNK - 1) / CHUNK;
#pragma omp for schedule(static) nowait
            for (size_t c = 0; c < n_chunks; c++) {
                size_t a = lo + c * CHUNK, b = a + CHUNK < lo + t->numel ? a + CHUNK : lo + t->numel;
#pragma omp simd reduction(+ : bad)
                for (size_t e = a; e < b; e++) {
                    float g = grad[e] * coef;
                    float mv = b1 * mom[e] + (1.0f - b1) * g;
                    float vv = b2 * vel[e] + (1.0f - b2) * g * g;
                    mom[e] = mv;
                    vel[e] = vv;
                    float p = param[e] * keep - step_size * mv / (sqrtf(vv) / bc2_sqrt + eps);
                    param[e] = p;
                    bad += !isfinite(p);
                }
            }
        }
#pragma omp atomic
        nonfinite += bad;
    }
    if (nonfinite)
        return fail(err, errlen, SLM_ENUMERIC, "adamw: %zu weights became non-finite", nonfinite);
    return SLM_OK;
}
