/* GPT-2 training in C: gradients against finite differences, the loss
 * against its definition, gradient accumulation, AdamW against a hand
 * computation, the LR schedule, dropout reproducibility, and bad input.
 * (Parity with PyTorch: tests/oracle/test_model_torch.py.) */
#include "model/layers.h"
#include "model/vec_math.h"
#include "slm.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { L = 2, H = 2, C = 8, V = 11, P = 7, B = 2, T = 5 };

/* slm_model_forward with the batch and options spelled out. */
static int fwd(slm_model *m, const int32_t *tok, const int32_t *tgt, int b, int t, int training,
               uint64_t seed, float *loss, char *err, size_t errlen)
{
    slm_batch batch = {tok, tgt, b, t};
    slm_forward_opts o = {.training = training, .dropout_seed = seed};
    return slm_model_forward(m, &batch, &o, loss, err, errlen);
}

static slm_config tiny_config(float dropout, int activation)
{
    slm_config c = {.n_layer = L, .n_head = H, .n_embd = C, .n_positions = P, .vocab_size = V,
                    .layer_norm_epsilon = 1e-5f, .activation = activation,
                    .tokenizer = SLM_TOKENIZER_GPT2, .dropout = dropout};
    return c;
}

/* A tiny model whose parameters are spread well beyond GPT-2's init, so the
 * loss depends visibly on every one of them. */
static slm_model *tiny_model(float dropout, int activation, uint64_t seed)
{
    slm_config c = tiny_config(dropout, activation);
    slm_model *m = NULL;
    char err[128];
    if (slm_model_create(&c, seed, &m, err, sizeof err)) return NULL;
    float *p = slm_model_params(m);
    for (int i = 0; i < slm_model_num_tensors(m); i++) {
        const slm_tensor_info *t = slm_model_tensor(m, i);
        int ln_gain = strstr(t->name, "ln_") && strstr(t->name, "weight");
        test_fill_uniform(p + t->offset, t->numel, seed * 131 + (uint64_t)i, -0.5f, 0.5f);
        for (size_t e = 0; e < t->numel; e++)
            p[t->offset + e] = ln_gain ? 1.0f + 0.4f * p[t->offset + e] : p[t->offset + e];
    }
    return m;
}

static void tiny_batch(int32_t *tokens, int32_t *targets, uint64_t seed)
{
    uint64_t s = seed * 2654435761u + 17;
    for (int i = 0; i < B * T; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        tokens[i] = (int32_t)((s >> 33) % V);
        targets[i] = (int32_t)((s >> 45) % V);
    }
}

/* Mean cross-entropy of the last forward's logits, in float64 (the
 * definition, and less round-off for finite differences than the float
 * loss). */
static double ce_from_logits(const slm_model *m, const int32_t *tgt, int n)
{
    const float *lg = slm_model_logits(m);
    double sum = 0.0;
    int valid = 0;
    for (int r = 0; r < n; r++) {
        if (tgt[r] == SLM_IGNORE_INDEX) continue;
        double mx = -INFINITY, s = 0.0;
        for (int v = 0; v < V; v++) mx = fmax(mx, lg[r * V + v]);
        for (int v = 0; v < V; v++) s += exp(lg[r * V + v] - mx);
        sum += mx + log(s) - lg[r * V + tgt[r]];
        valid++;
    }
    return valid ? sum / valid : 0.0;
}

static double loss_of(slm_model *m, const int32_t *tok, const int32_t *tgt, int b, int t,
                      uint64_t seed)
{
    float loss = NAN;
    char err[128];
    int rc = fwd(m, tok, tgt, b, t, 1, seed, &loss, err, sizeof err);
    CHECK(rc == 0, "forward: %s", err);
    double ref = ce_from_logits(m, tgt, b * t);
    CHECK_CLOSE(loss, ref, 1e-5, 0, "loss %g, from the logits %g", loss, ref);
    return ref;
}

/* Central differences on a few entries of every tensor (the largest
 * gradient and two fixed ones) against slm_model_backward. The loss is
 * computed in float64 from float32 logits, whose round-off (~1e-7·|logit|)
 * over 2·eps sets the noise floor. eps = 1e-2 on O(0.3) weights for GELU
 * (truncation O(eps²) stays below 5e-3 relative); 1e-3 for ReLU, so no
 * pre-activation crosses the kink. Passes at half the tolerance used. */
static void gradient_check(float dropout, int activation)
{
    slm_model *m = tiny_model(dropout, activation, 3);
    CHECK(m != NULL, "model");
    if (!m) return;
    int32_t tok[B * T], tgt[B * T];
    tiny_batch(tok, tgt, 5);
    tgt[1] = SLM_IGNORE_INDEX; /* ignored positions are part of the check */
    tgt[B * T - 1] = SLM_IGNORE_INDEX;
    const uint64_t seed = 99;
    char err[128];
    loss_of(m, tok, tgt, B, T, seed);
    slm_model_zero_grad(m);
    CHECK(slm_model_backward(m, 1.0f, err, sizeof err) == 0, "backward: %s", err);
    float *p = slm_model_params(m), *g = slm_model_grads(m);
    const float eps = activation == SLM_ACT_RELU ? 1e-3f : 1e-2f;
    int checked = 0;
    for (int i = 0; i < slm_model_num_tensors(m); i++) {
        const slm_tensor_info *t = slm_model_tensor(m, i);
        size_t pick[3] = {0, t->numel / 2, t->numel - 1};
        for (size_t e = 0; e < t->numel; e++)
            if (fabsf(g[t->offset + e]) > fabsf(g[t->offset + pick[0]])) pick[0] = e;
        for (int k = 0; k < 3; k++) {
            size_t at = t->offset + pick[k];
            float keep = p[at];
            p[at] = keep + eps;
            double lp = loss_of(m, tok, tgt, B, T, seed);
            p[at] = keep - eps;
            double lm = loss_of(m, tok, tgt, B, T, seed);
            p[at] = keep;
            double fd = (lp - lm) / (2.0 * eps);
            CHECK_CLOSE(g[at], fd, 1e-2, 1e-4, "%s[%zu]: backward %.6g, finite difference %.6g",
                        t->name, pick[k], g[at], fd);
            checked++;
        }
    }
    CHECK(checked == 3 * (4 + 12 * L), "checked %d entries", checked);
    slm_model_free(m);
}

static void test_gradients_match_finite_differences_gelu(void)
{
    gradient_check(0.0f, SLM_ACT_GELU_NEW);
}

static void test_gradients_match_finite_differences_relu(void)
{
    gradient_check(0.0f, SLM_ACT_RELU);
}

/* With dropout the masks are a function of the seed only, so the loss is
 * still smooth in the parameters: this checks that backward recomputes
 * every mask (embeddings, attention, both residuals) exactly. */
static void test_gradients_match_finite_differences_with_dropout(void)
{
    gradient_check(0.3f, SLM_ACT_GELU_NEW);
}

/* LayerNorm backward in isolation, against central differences of the
 * float64 objective Σ y·R. */
static void test_layer_norm_backward_matches_finite_differences(void)
{
    enum { N = 3, K = 16 };
    float x[N * K], w[K], b[K], R[N * K], y[N * K], mean[N], rstd[N];
    float dx[N * K] = {0}, dw[K] = {0}, db[K] = {0};
    test_fill_uniform(x, N * K, 1, -2.0f, 3.0f);
    test_fill_uniform(w, K, 2, 0.5f, 1.5f);
    test_fill_uniform(b, K, 3, -0.5f, 0.5f);
    test_fill_uniform(R, N * K, 4, -1.0f, 1.0f);
    layer_norm_forward(y, mean, rstd, NULL, x, w, b, N, K, 1e-5f);
    layer_norm_backward(dx, dw, db, R, x, mean, rstd, w, N, K);
    float *params[3] = {x, w, b}, *grads[3] = {dx, dw, db};
    int sizes[3] = {N * K, K, K};
    for (int which = 0; which < 3; which++)
        for (int e = 0; e < sizes[which]; e++) {
            float keep = params[which][e];
            double f[2];
            for (int s = 0; s < 2; s++) {
                params[which][e] = keep + (s ? -1e-2f : 1e-2f);
                layer_norm_forward(y, mean, rstd, NULL, x, w, b, N, K, 1e-5f);
                f[s] = 0.0;
                for (int i = 0; i < N * K; i++) f[s] += (double)y[i] * R[i];
            }
            params[which][e] = keep;
            double fd = (f[0] - f[1]) / 2e-2;
            CHECK_CLOSE(grads[which][e], fd, 1e-2, 1e-3, "param %d[%d]: %g vs %g", which, e,
                        grads[which][e], fd);
        }
}

/* Cross-entropy forward/backward against the float64 definition. */
static void test_cross_entropy_matches_float64(void)
{
    enum { N = 4, K = 37 };
    float logits[N * K], lse[N];
    double ref_grad[N * K];
    int32_t tgt[N] = {3, SLM_IGNORE_INDEX, 36, 0};
    test_fill_uniform(logits, N * K, 9, -20.0f, 20.0f);
    double ref = 0.0;
    for (int r = 0; r < N; r++) {
        double mx = -INFINITY, s = 0.0;
        for (int v = 0; v < K; v++) mx = fmax(mx, logits[r * K + v]);
        for (int v = 0; v < K; v++) s += exp(logits[r * K + v] - mx);
        double l = mx + log(s);
        for (int v = 0; v < K; v++) {
            double p = exp(logits[r * K + v] - l);
            ref_grad[r * K + v] = tgt[r] < 0 ? 0.0 : (p - (v == tgt[r])) / 3.0;
        }
        if (tgt[r] >= 0) ref += l - logits[r * K + tgt[r]];
    }
    size_t n_valid = 0;
    double total = cross_entropy_forward(lse, logits, tgt, N, K, &n_valid);
    CHECK(n_valid == 3, "n_valid %zu", n_valid);
    CHECK_CLOSE(total, ref, 1e-6, 0, "sum %g vs %g", total, ref);
    cross_entropy_backward(logits, lse, tgt, N, K, 1.0f / 3.0f);
    CHECK(test_max_err_fd(logits, ref_grad, N * K, 1e-5, 1e-7) <= 1.0, "dlogits");
}

/* The vectorisable exp used by softmax and GELU: within 2e-7 relative of
 * float64 exp over the whole normal range; 0 below it, NaN stays NaN. */
static void test_vec_expf_matches_float64_exp(void)
{
    double worst = 0.0;
    for (float x = -87.0f; x < 88.0f; x += 0.0037f) {
        double want = exp((double)x), e = fabs(vec_expf(x) - want) / want;
        worst = e > worst ? e : worst;
    }
    CHECK(worst < 2e-7, "max relative error %g", worst);
    CHECK(vec_expf(-INFINITY) == 0.0f && vec_expf(-1000.0f) == 0.0f, "underflow");
    CHECK(vec_expf(0.0f) == 1.0f, "exp(0) = %g", vec_expf(0.0f));
    CHECK(isnan(vec_expf(NAN)), "NaN");
}

/* Near-zero weights give near-zero logits, a uniform softmax: loss = ln V. */
static void test_loss_at_init_is_log_vocab(void)
{
    slm_config c = tiny_config(0.0f, SLM_ACT_GELU_NEW);
    c.vocab_size = 300;
    slm_model *m = NULL;
    CHECK(slm_model_create(&c, 1, &m, NULL, 0) == 0, "create");
    if (!m) return;
    float *p = slm_model_params(m);
    for (size_t i = 0; i < slm_model_num_params(m); i++) p[i] *= 1e-3f;
    int32_t tok[B * T], tgt[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 37) % 300, tgt[i] = (i * 91) % 300;
    float loss = 0;
    CHECK(fwd(m, tok, tgt, B, T, 0, 0, &loss, NULL, 0) == 0, "forward");
    CHECK_CLOSE(loss, log(300.0), 1e-4, 0, "loss %g vs ln 300 = %g", loss, log(300.0));
    slm_model_free(m);
}

/* The loss is the mean over non-ignored targets of -log softmax(logits),
 * recomputed here in float64 from slm_model_logits. */
static void test_loss_is_mean_over_non_ignored_targets(void)
{
    slm_model *m = tiny_model(0.0f, SLM_ACT_GELU_NEW, 4);
    int32_t tok[B * T], tgt[B * T];
    tiny_batch(tok, tgt, 8);
    tgt[0] = tgt[3] = tgt[7] = SLM_IGNORE_INDEX;
    float loss = 0;
    CHECK(fwd(m, tok, tgt, B, T, 1, 0, &loss, NULL, 0) == 0, "forward");
    double ref = ce_from_logits(m, tgt, B * T);
    CHECK_CLOSE(loss, ref, 1e-5, 0, "loss %g vs %g", loss, ref);

    /* Every target ignored: loss 0 and no gradient at all. */
    for (int r = 0; r < B * T; r++) tgt[r] = SLM_IGNORE_INDEX;
    CHECK(fwd(m, tok, tgt, B, T, 1, 0, &loss, NULL, 0) == 0, "forward");
    CHECK(loss == 0.0f, "loss %g", loss);
    slm_model_zero_grad(m);
    CHECK(slm_model_backward(m, 1.0f, NULL, 0) == 0, "backward");
    const float *g = slm_model_grads(m);
    size_t nonzero = 0;
    for (size_t i = 0; i < slm_model_num_params(m); i++) nonzero += g[i] != 0.0f;
    CHECK(nonzero == 0, "%zu nonzero gradients", nonzero);
    slm_model_free(m);
}

/* Two half batches with loss_scale 0.5 accumulate the gradient of the mean
 * over the full batch (each half has the same number of targets). */
static void test_gradient_accumulation_equals_full_batch(void)
{
    slm_model *m = tiny_model(0.0f, SLM_ACT_GELU_NEW, 6);
    int32_t tok[B * T], tgt[B * T];
    tiny_batch(tok, tgt, 12);
    size_t n = slm_model_num_params(m);
    float *full = malloc(n * sizeof *full);
    slm_model_zero_grad(m);
    double loss_full = loss_of(m, tok, tgt, B, T, 0);
    CHECK(slm_model_backward(m, 1.0f, NULL, 0) == 0, "backward");
    memcpy(full, slm_model_grads(m), n * sizeof *full);
    slm_model_zero_grad(m);
    double l0 = loss_of(m, tok, tgt, 1, T, 0);
    CHECK(slm_model_backward(m, 0.5f, NULL, 0) == 0, "backward half 0");
    double l1 = loss_of(m, tok + T, tgt + T, 1, T, 0);
    CHECK(slm_model_backward(m, 0.5f, NULL, 0) == 0, "backward half 1");
    CHECK_CLOSE(0.5 * (l0 + l1), loss_full, 1e-6, 0, "losses %g %g vs %g", l0, l1, loss_full);
    double gmax = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(full[i]));
    double e = test_max_err_f(slm_model_grads(m), full, n, 1e-5, 1e-6 * gmax);
    CHECK(e <= 1.0, "accumulated grads differ from full-batch grads (err %g)", e);
    /* And zero_grad really zeroes. */
    slm_model_zero_grad(m);
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) nonzero += slm_model_grads(m)[i] != 0.0f;
    CHECK(nonzero == 0, "zero_grad left %zu", nonzero);
    free(full);
    slm_model_free(m);
}

/* AdamW against the update written out in float64, over two steps, with
 * clipping active and decay on 2-D tensors only. */
static void test_adamw_matches_hand_computed_update(void)
{
    slm_model *m = tiny_model(0.0f, SLM_ACT_GELU_NEW, 7);
    size_t n = slm_model_num_params(m);
    float *p = slm_model_params(m), *g = slm_model_grads(m);
    double *rp = malloc(n * sizeof *rp), *rm = calloc(n, sizeof *rm), *rv = calloc(n, sizeof *rv);
    char *decay = malloc(n);
    for (int i = 0; i < slm_model_num_tensors(m); i++) {
        const slm_tensor_info *t = slm_model_tensor(m, i);
        memset(decay + t->offset, t->ndim == 2, t->numel);
    }
    CHECK(decay[slm_model_find_tensor(m, "wte.weight")->offset] == 1, "wte decays");
    CHECK(decay[slm_model_find_tensor(m, "h.0.ln_1.weight")->offset] == 0, "ln does not");
    for (size_t i = 0; i < n; i++) rp[i] = p[i];
    slm_adamw_opts o = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                        .weight_decay = 0.1f, .grad_clip = 1.0f};
    for (int step = 1; step <= 2; step++) {
        test_fill_uniform(g, n, 40 + (uint64_t)step, -0.1f, 0.1f);
        g[5] = 0.0f; /* a zero gradient still decays (wte) */
        double norm = 0.0;
        for (size_t i = 0; i < n; i++) norm += (double)g[i] * g[i];
        norm = sqrt(norm);
        CHECK(norm > 1.0, "the test wants clipping (norm %g)", norm);
        double coef = 1.0 / (norm + 1e-6);
        float got_norm = 0;
        CHECK(slm_model_adamw_step(m, &o, step, &got_norm, NULL, 0) == 0, "step");
        CHECK_CLOSE(got_norm, norm, 1e-6, 0, "norm %g vs %g", got_norm, norm);
        double bc1 = 1.0 - pow(0.9, step), bc2 = 1.0 - pow(0.95, step);
        for (size_t i = 0; i < n; i++) {
            double gi = g[i] * coef;
            rm[i] = 0.9 * rm[i] + 0.1 * gi;
            rv[i] = 0.95 * rv[i] + 0.05 * gi * gi;
            if (decay[i]) rp[i] *= 1.0 - 0.01 * 0.1;
            rp[i] -= 0.01 * (rm[i] / bc1) / (sqrt(rv[i] / bc2) + 1e-8);
        }
        double e = test_max_err_fd(p, rp, n, 1e-5, 1e-7);
        CHECK(e <= 1.0, "step %d: parameters differ from the hand update (err %g)", step, e);
        e = test_max_err_fd(slm_model_adam_state(m, 0), rm, n, 1e-5, 1e-9);
        CHECK(e <= 1.0, "step %d: first moment (err %g)", step, e);
        e = test_max_err_fd(slm_model_adam_state(m, 1), rv, n, 1e-5, 1e-12);
        CHECK(e <= 1.0, "step %d: second moment (err %g)", step, e);
    }
    /* A non-finite gradient: SLM_ENUMERIC and nothing changes. */
    float *before = malloc(3 * n * sizeof *before);
    memcpy(before, p, n * sizeof *p);
    memcpy(before + n, slm_model_adam_state(m, 0), 2 * n * sizeof *p);
    g[n / 2] = NAN;
    float nn = 0;
    char why[256] = "";
    CHECK(slm_model_adamw_step(m, &o, 3, &nn, why, sizeof why) == SLM_ENUMERIC,
          "NaN gradient accepted");
    CHECK(strstr(why, "gradient norm is NaN"), "message '%s'", why);
    CHECK(!isfinite(nn), "norm %g", nn);
    CHECK(memcmp(before, p, n * sizeof *p) == 0, "parameters changed");
    CHECK(memcmp(before + n, slm_model_adam_state(m, 0), 2 * n * sizeof *p) == 0,
          "moments changed");
    g[n / 2] = INFINITY;
    CHECK(slm_model_adamw_step(m, &o, 3, NULL, NULL, 0) == SLM_ENUMERIC, "inf gradient accepted");
    slm_adamw_opts bad = o;
    bad.beta2 = 1.0f;
    CHECK(slm_model_adamw_step(m, &bad, 3, NULL, why, sizeof why) == SLM_EINVAL &&
              strstr(why, "betas"),
          "beta2 = 1 accepted: '%s'", why);
    CHECK(slm_model_adamw_step(m, &o, 0, NULL, why, sizeof why) == SLM_EINVAL &&
              strstr(why, "step 0"),
          "step 0 accepted: '%s'", why);
    /* Finite gradients, but lr·weight_decay = 3 turns a weight near FLT_MAX
     * into −2× itself: the update is made and reported. */
    test_fill_uniform(g, n, 77, -0.1f, 0.1f);
    size_t w = slm_model_find_tensor(m, "wte.weight")->offset + 3;
    p[w] = 3e38f;
    slm_adamw_opts blowup = o;
    blowup.lr = 1.0f, blowup.weight_decay = 3.0f;
    nn = 0;
    CHECK(slm_model_adamw_step(m, &blowup, 3, &nn, why, sizeof why) == SLM_ENUMERIC,
          "a weight past FLT_MAX accepted");
    CHECK(strstr(why, "1 weights became non-finite"), "message '%s'", why);
    CHECK(isfinite(nn) && isinf(p[w]), "norm %g, weight %g", nn, p[w]);
    free(before);
    free(rp);
    free(rm);
    free(rv);
    free(decay);
    slm_model_free(m);
}

static void test_lr_schedule_known_values(void)
{
    /* warmup 10, total 110, max 1: linear to step 10, cosine to 0.1 at 110. */
    CHECK_CLOSE(slm_lr_schedule(1.0f, 1, 10, 110), 0.1, 1e-6, 0, "step 1");
    CHECK_CLOSE(slm_lr_schedule(1.0f, 5, 10, 110), 0.5, 1e-6, 0, "step 5");
    CHECK_CLOSE(slm_lr_schedule(1.0f, 10, 10, 110), 1.0, 1e-6, 0, "step 10");
    CHECK_CLOSE(slm_lr_schedule(1.0f, 60, 10, 110), 0.55, 1e-6, 0, "half way");
    CHECK_CLOSE(slm_lr_schedule(1.0f, 35, 10, 110), 0.1 + 0.45 * (1 + cos(M_PI / 4)), 1e-6, 0,
                "quarter way");
    CHECK_CLOSE(slm_lr_schedule(1.0f, 110, 10, 110), 0.1, 1e-6, 0, "end");
    CHECK_CLOSE(slm_lr_schedule(1.0f, 500, 10, 110), 0.1, 1e-6, 0, "past the end");
    /* No warmup: the cosine starts at step 0. */
    CHECK_CLOSE(slm_lr_schedule(2.0f, 1, 0, 100), 0.2 + 0.9 * (1 + cos(M_PI / 100)), 1e-6, 0,
                "no warmup");
}

/* Logits and gradients after one training step, for comparing runs. */
static void run_once(float dropout, int training, uint64_t seed, float *logits, float *grads)
{
    slm_model *m = tiny_model(dropout, SLM_ACT_GELU_NEW, 21);
    int32_t tok[B * T], tgt[B * T];
    tiny_batch(tok, tgt, 22);
    float loss;
    CHECK(fwd(m, tok, tgt, B, T, training, seed, &loss, NULL, 0) == 0, "fwd");
    memcpy(logits, slm_model_logits(m), sizeof(float) * B * T * V);
    slm_model_zero_grad(m);
    if (training) CHECK(slm_model_backward(m, 1.0f, NULL, 0) == 0, "backward");
    memcpy(grads, slm_model_grads(m), sizeof(float) * slm_model_num_params(m));
    slm_model_free(m);
}

static void test_dropout_is_reproducible_and_off_in_eval(void)
{
    enum { NL = B * T * V, NP = 4096 };
    static float l1[NL], l2[NL], l3[NL], l4[NL], l5[NL], g1[NP], g2[NP], g3[NP], g4[NP], g5[NP];
    slm_model *m = tiny_model(0.0f, SLM_ACT_GELU_NEW, 21);
    CHECK(slm_model_num_params(m) <= NP, "buffer");
    slm_model_free(m);
    run_once(0.2f, 1, 5, l1, g1);
    run_once(0.2f, 1, 5, l2, g2);
    run_once(0.2f, 1, 6, l3, g3);
    CHECK(memcmp(l1, l2, sizeof l1) == 0 && memcmp(g1, g2, sizeof g1) == 0,
          "same seed, different bytes");
    CHECK(memcmp(l1, l3, sizeof l1) != 0 && memcmp(g1, g3, sizeof g1) != 0,
          "different seeds, same bytes");
    run_once(0.2f, 0, 5, l4, g4); /* eval: dropout off */
    run_once(0.0f, 1, 5, l5, g5); /* no dropout configured */
    CHECK(memcmp(l4, l5, sizeof l4) == 0, "training=0 is not the same as dropout=0");
    CHECK(memcmp(l1, l5, sizeof l1) != 0, "dropout 0.2 changed nothing");
}

static void test_invalid_inputs_are_refused(void)
{
    slm_model *m = tiny_model(0.0f, SLM_ACT_GELU_NEW, 1);
    int32_t tok[B * T], tgt[B * T];
    tiny_batch(tok, tgt, 1);
    float loss = 123.0f;
    char err[128] = "";
    CHECK(slm_model_backward(m, 1.0f, err, sizeof err) == SLM_EINVAL, "backward first");
    tok[3] = V;
    CHECK(fwd(m, tok, tgt, B, T, 1, 0, &loss, err, sizeof err) < 0, "token V");
    CHECK(strstr(err, "token") != NULL, "message: %s", err);
    tok[3] = -1;
    CHECK(fwd(m, tok, tgt, B, T, 1, 0, &loss, NULL, 0) < 0, "token -1");
    tok[3] = 0;
    tgt[2] = V;
    CHECK(fwd(m, tok, tgt, B, T, 1, 0, &loss, NULL, 0) < 0, "target V");
    tgt[2] = -2;
    CHECK(fwd(m, tok, tgt, B, T, 1, 0, &loss, NULL, 0) < 0, "target -2");
    tgt[2] = 0;
    CHECK(loss == 123.0f, "loss written on error");
    static int32_t long_tok[P + 1];
    CHECK(fwd(m, long_tok, NULL, 1, P + 1, 0, 0, NULL, NULL, 0) < 0, "T > P");
    CHECK(fwd(m, tok, tgt, 0, T, 1, 0, &loss, NULL, 0) < 0, "B = 0");
    CHECK(fwd(m, tok, tgt, B, 0, 1, 0, &loss, NULL, 0) < 0, "T = 0");
    CHECK(fwd(m, tok, tgt, -1, T, 1, 0, &loss, NULL, 0) < 0, "B < 0");
    CHECK(fwd(m, NULL, tgt, B, T, 1, 0, &loss, NULL, 0) < 0, "no tokens");
    CHECK(fwd(NULL, tok, tgt, B, T, 1, 0, &loss, NULL, 0) < 0, "no model");
    /* Backward needs a training forward with targets. */
    CHECK(fwd(m, tok, NULL, B, T, 1, 0, NULL, NULL, 0) == 0, "no targets");
    CHECK(slm_model_backward(m, 1.0f, NULL, 0) == SLM_EINVAL, "backward without targets");
    CHECK(fwd(m, tok, tgt, B, T, 0, 0, &loss, NULL, 0) == 0, "eval forward");
    CHECK(slm_model_backward(m, 1.0f, NULL, 0) == SLM_EINVAL, "backward after eval");
    CHECK(fwd(m, tok, tgt, B, T, 1, 0, &loss, NULL, 0) == 0, "train forward");
    CHECK(slm_model_backward(m, NAN, NULL, 0) == SLM_EINVAL, "NaN loss scale");
    CHECK(slm_model_backward(m, 1.0f, NULL, 0) == 0, "backward");
    CHECK(slm_model_backward(m, 1.0f, NULL, 0) == SLM_EINVAL, "second backward, same forward");
    slm_model_free(m);
}

/* The activation block is sized at the first forward and kept while B·T
 * does not grow; a smaller batch after a bigger one gives the same result
 * as on a fresh model. */
static void test_activations_are_reused_across_shapes(void)
{
    slm_model *m = tiny_model(0.0f, SLM_ACT_GELU_NEW, 2), *fresh = tiny_model(0.0f, 0, 2);
    int32_t tok[B * T], tgt[B * T];
    tiny_batch(tok, tgt, 3);
    float l_big, l_small, l_fresh;
    CHECK(fwd(m, tok, tgt, B, T, 1, 0, &l_big, NULL, 0) == 0, "big");
    const float *block = slm_model_logits(m);
    CHECK(fwd(m, tok, tgt, 1, 3, 1, 0, &l_small, NULL, 0) == 0, "small");
    CHECK(slm_model_logits(m) == block, "reallocated for a smaller batch");
    CHECK(fwd(fresh, tok, tgt, 1, 3, 1, 0, &l_fresh, NULL, 0) == 0, "fresh");
    CHECK(l_small == l_fresh, "loss %g vs fresh %g", l_small, l_fresh);
    CHECK(memcmp(slm_model_logits(m), slm_model_logits(fresh), 3 * V * sizeof(float)) == 0,
          "logits differ from a fresh model's");
    slm_model_free(m);
    slm_model_free(fresh);
}

int main(void)
{
    RUN(test_gradients_match_finite_differences_gelu);
    RUN(test_gradients_match_finite_differences_relu);
    RUN(test_gradients_match_finite_differences_with_dropout);
    RUN(test_layer_norm_backward_matches_finite_differences);
    RUN(test_cross_entropy_matches_float64);
    RUN(test_vec_expf_matches_float64_exp);
    RUN(test_loss_at_init_is_log_vocab);
    RUN(test_loss_is_mean_over_non_ignored_targets);
    RUN(test_gradient_accumulation_equals_full_batch);
    RUN(test_adamw_matches_hand_computed_update);
    RUN(test_lr_schedule_known_values);
    RUN(test_dropout_is_reproducible_and_off_in_eval);
    RUN(test_invalid_inputs_are_refused);
    RUN(test_activations_are_reused_across_shapes);
    return test_summary();
}
