/*
 * The attention weights P = softmax(q·kᵀ·scale + M), as slm_attention_weights
 * recovers them from a forward pass's lse and slm_model_attention_weights
 * reads them out of a model's forward pass:
 *   - against a float64 softmax written here from the definition, with causal
 *     masks, additive masks with -inf entries, padding (kv_len), dead rows,
 *     Tq != Tk, from the lse of each kernel (reference and flash);
 *   - hidden entries exactly 0; P·V equal to the SLM_ATTN_REFERENCE kernel's
 *     output, which materialises this matrix;
 *   - in a model: the weights each layer's kernel used (P·V == that layer's
 *     attention output), the same with the reference and the flash kernel,
 *     one layer equal to its slice of all layers; bad arguments.
 * PyTorch / transformers agreement: tests/oracle/test_attention_weights_torch.py.
 */
#include "common/attn_case.h"
#include "model/gpt.h"
#include "slm.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* float64 P for case c: explicit max / exp / sum over the visible keys. */
static void weights64(const attn_case *c, double *P)
{
    const attn_shape *s = &c->s;
    double scale = s->scale != 0.0f ? s->scale : 1.0 / sqrt((double)s->D);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++)
            for (int i = 0; i < s->Tq; i++) {
                size_t head = (size_t)b * s->H + h;
                const double *q = c->q64 + (head * s->Tq + i) * s->D;
                double *row = P + (head * s->Tq + i) * s->Tk;
                double mx = -INFINITY;
                for (int j = 0; j < s->Tk; j++) {
                    int vis = !s->causal || j <= i + (s->Tk - s->Tq);
                    if (c->kv_len && j >= c->kv_len[b]) vis = 0;
                    float add = c->mask ? c->mask[(size_t)i * s->Tk + j] : 0.0f;
                    if (add == -INFINITY) vis = 0;
                    double sc = -INFINITY;
                    if (vis) {
                        const double *k = c->k64 + (head * s->Tk + j) * s->D;
                        sc = 0.0;
                        for (int e = 0; e < s->D; e++) sc += q[e] * k[e];
                        sc = sc * scale + add;
                    }
                    row[j] = sc;
                    if (sc > mx) mx = sc;
                }
                double sum = 0.0;
                for (int j = 0; j < s->Tk; j++) {
                    row[j] = row[j] == -INFINITY ? 0.0 : exp(row[j] - mx);
                    sum += row[j];
                }
                for (int j = 0; j < s->Tk; j++) row[j] = sum > 0.0 ? row[j] / sum : 0.0;
            }
}

static const attn_shape shapes[] = {
    {"causal_T9", 2, 3, 9, 9, 16, 1, 0, 0, 0, 0, 0},
    {"kvcache_Tq3_Tk70", 1, 2, 3, 70, 32, 1, 0, 0, 0, 0, 0},
    {"mask_dead_rows", 2, 2, 11, 13, 8, 0, 0.3f, MASK_DEAD_ROWS, 0, 0, 0},
    {"padding_causal", 3, 2, 17, 17, 64, 1, 0, 0, KV_RAGGED, 0, 0},
    {"encoder_T65", 1, 1, 65, 65, 64, 0, 0, 0, 0, 0, 0},
};

/* P from each kernel's lse against float64, hidden entries exactly 0, and
 * P·V against the reference kernel's output. */
static void check_core(int impl)
{
    for (size_t n = 0; n < N(shapes); n++) {
        const attn_shape *s = &shapes[n];
        attn_case c;
        if (attn_case_init(&c, s, 77 + n)) {
            CHECK(0, "out of memory");
            return;
        }
        size_t np = (size_t)s->B * s->H * s->Tq * s->Tk;
        float *P = malloc(np * sizeof *P), *pv = malloc(c.nq * sizeof *pv);
        double *P64 = malloc(np * sizeof *P64);
        int rc = P && pv && P64 ? attn_case_run(&c, impl) : SLM_ENOMEM;
        CHECK(rc == 0, "%s: forward %d", s->name, rc);
        slm_attn_opts o = attn_case_opts(&c, impl);
        if (!rc) rc = slm_attention_weights(&o, s->B, s->H, s->Tq, s->Tk, s->D, c.q, c.k, c.lse, P);
        CHECK(rc == 0, "%s: weights %d", s->name, rc);
        if (!rc) {
            weights64(&c, P64);
            double e = test_max_err_fd(P, P64, np, 1e-5, 1e-6);
            CHECK(e <= 1.0, "%s/%s: P off by %.3g× the tolerance", s->name, attn_impl_name(impl), e);
            size_t zero_bad = 0, hidden = 0;
            for (size_t x = 0; x < np; x++)
                if (P64[x] == 0.0) {
                    hidden++;
                    zero_bad += P[x] != 0.0f;
                }
            CHECK(zero_bad == 0, "%s: %zu of %zu hidden entries are not exactly 0", s->name,
                  zero_bad, hidden);
            /* P·V against the materialising kernel's out (same inputs). */
            slm_attn_opts ro = attn_case_opts(&c, SLM_ATTN_REFERENCE);
            float *ref_out = malloc(c.nq * sizeof *ref_out);
            CHECK(ref_out && !slm_attention_forward(&ro, s->B, s->H, s->Tq, s->Tk, s->D, c.q,
                                                    c.k, c.v, ref_out, NULL),
                  "reference forward");
            for (int hd = 0; hd < s->B * s->H; hd++)
                for (int i = 0; i < s->Tq; i++)
                    for (int d = 0; d < s->D; d++) {
                        double acc = 0.0;
                        for (int j = 0; j < s->Tk; j++)
                            acc += (double)P[((size_t)hd * s->Tq + i) * s->Tk + j] *
                                   c.v[((size_t)hd * s->Tk + j) * s->D + d];
                        pv[((size_t)hd * s->Tq + i) * s->D + d] = (float)acc;
                    }
            if (ref_out) {
                double e2 = test_max_err_f(pv, ref_out, c.nq, 1e-5, 1e-5);
                CHECK(e2 <= 1.0, "%s: P·V vs the reference kernel off by %.3g×", s->name, e2);
            }
            free(ref_out);
        }
        free(P);
        free(pv);
        free(P64);
        attn_case_free(&c);
    }
}

static void test_core_from_reference_lse(void) { check_core(SLM_ATTN_REFERENCE); }
static void test_core_from_flash_lse(void) { check_core(SLM_ATTN_FLASH); }

static void test_core_bad_arguments(void)
{
    float q[8] = {0}, k[8] = {0}, lse[2] = {0}, w[4] = {7, 7, 7, 7};
    slm_attn_opts o = {.causal = 1};
    CHECK(slm_attention_weights(&o, 1, 1, 2, 2, 4, q, k, NULL, w) == SLM_EINVAL, "NULL lse");
    CHECK(slm_attention_weights(&o, 1, 1, 2, 2, 4, q, NULL, lse, w) == SLM_EINVAL, "NULL k");
    CHECK(slm_attention_weights(&o, 1, 1, 0, 2, 4, q, k, lse, w) == SLM_EINVAL, "Tq = 0");
    CHECK(slm_attention_weights(NULL, 1, 1, 2, 2, 4, q, k, lse, w) == SLM_EINVAL, "NULL opts");
    CHECK(slm_attention_weights(&o, 1, 1, 2, 2, 4, q, k, lse, NULL) == SLM_EINVAL, "NULL out");
    for (int i = 0; i < 4; i++) CHECK(w[i] == 7.0f, "written on error");
}

/* ---- in a model ---------------------------------------------------------- */

enum { L = 3, H = 4, C = 32, V = 37, P = 12, T = 10 };

/* A model with weights spread wider than GPT-2's init, so that attention is
 * far from uniform. The attention kernel is fixed when the forward state is
 * created, from SLM_ATTN_IMPL (see multi_head_attention.c). */
static slm_model *model_with(const char *impl)
{
    slm_config cfg = {.n_layer = L, .n_head = H, .n_embd = C, .n_positions = P,
                      .vocab_size = V, .layer_norm_epsilon = 1e-5f,
                      .activation = SLM_ACT_GELU_NEW, .tokenizer = SLM_TOKENIZER_GPT2};
    slm_model *m = NULL;
    char err[128];
    if (slm_model_create(&cfg, 5, &m, err, sizeof err)) return NULL;
    float *p = slm_model_params(m);
    for (int i = 0; i < slm_model_num_tensors(m); i++) {
        const slm_tensor_info *t = slm_model_tensor(m, i);
        if (strstr(t->name, "ln_")) continue;
        test_fill_uniform(p + t->offset, t->numel, 900 + (unsigned)i, -0.6f, 0.6f);
    }
    setenv("SLM_ATTN_IMPL", impl, 1);
    int32_t tok[1] = {0};
    slm_model_forward(m, &(slm_batch){.tokens = tok, .B = 1, .T = 1}, NULL, NULL, NULL, 0); /* creates the state */
    unsetenv("SLM_ATTN_IMPL");
    return m;
}

static const int32_t prompt[T] = {3, 17, 5, 36, 0, 17, 17, 9, 2, 30};

static void test_model_weights_are_the_kernels(void)
{
    slm_model *m = model_with("flash");
    size_t per = (size_t)H * T * T;
    float *all = malloc(L * per * sizeof *all), *one = malloc(per * sizeof *one);
    CHECK(m && all && one, "setup");
    if (!m || !all || !one) goto done;
    char err[256] = "";
    int rc = slm_model_attention_weights(m, prompt, T, -1, all, err, sizeof err);
    CHECK(rc == 0, "all layers: %s", err);
    const struct gpt_train_state *t = m->train;
    double far_from_uniform = 0.0;
    for (int l = 0; l < L && !rc; l++) {
        const float *W = all + l * per;
        const float *q = t->shard[0].layer[l].qkv, *v = q + 2 * (size_t)T * C;
        (void)q;
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                const float *row = W + ((size_t)h * T + i) * T;
                double sum = 0.0;
                for (int j = 0; j < T; j++) {
                    if (j > i) CHECK(row[j] == 0.0f, "layer %d head %d: P[%d][%d] = %g", l, h, i, j, row[j]);
                    sum += row[j];
                    double u = fabs(row[j] - (j <= i ? 1.0 / (i + 1) : 0.0));
                    if (u > far_from_uniform) far_from_uniform = u;
                }
                CHECK_CLOSE(sum, 1.0, 0, 1e-5, "layer %d head %d row %d sums to %g", l, h, i, sum);
                /* the kernel's output of this row is Σ_j P_ij v_j */
                for (int d = 0; d < C / H; d++) {
                    double acc = 0.0;
                    for (int j = 0; j <= i; j++)
                        acc += (double)row[j] * v[((size_t)h * T + j) * (C / H) + d];
                    float got = t->shard[0].layer[l].atty[((size_t)h * T + i) * (C / H) + d];
                    CHECK_CLOSE(acc, got, 1e-5, 1e-5, "layer %d head %d: P·V %g vs out %g", l,
                                h, acc, got);
                }
            }
    }
    CHECK(far_from_uniform > 0.05, "attention is nearly uniform (%g): the test would not "
          "notice a wrong row", far_from_uniform);
    for (int l = 0; l < L; l++) {
        rc = slm_model_attention_weights(m, prompt, T, l, one, err, sizeof err);
        CHECK(rc == 0 && !memcmp(one, all + l * per, per * sizeof *one),
              "layer %d alone differs from its slice of all layers", l);
    }
    /* T = 1: a single token attends only to itself. */
    rc = slm_model_attention_weights(m, prompt, 1, 0, one, err, sizeof err);
    for (int h = 0; h < H && !rc; h++) CHECK_CLOSE(one[h], 1.0, 0, 1e-6, "T=1 head %d: %g", h, one[h]);
done:
    free(all);
    free(one);
    slm_model_free(m);
}

static void test_model_reference_equals_flash(void)
{
    slm_model *a = model_with("reference"), *b = model_with("flash");
    CHECK(a && b, "setup");
    CHECK(a && b && a->train->attn_impl == SLM_ATTN_REFERENCE &&
              b->train->attn_impl == SLM_ATTN_FLASH,
          "SLM_ATTN_IMPL did not pick the kernels");
    size_t n = (size_t)L * H * T * T;
    float *wa = malloc(n * sizeof *wa), *wb = malloc(n * sizeof *wb);
    char err[256] = "";
    if (a && b && wa && wb) {
        CHECK(!slm_model_attention_weights(a, prompt, T, -1, wa, err, sizeof err), "%s", err);
        CHECK(!slm_model_attention_weights(b, prompt, T, -1, wb, err, sizeof err), "%s", err);
        double e = test_max_err_f(wb, wa, n, 1e-5, 1e-6);
        CHECK(e <= 1.0, "flash vs reference weights off by %.3g× the tolerance", e);
    }
    free(wa);
    free(wb);
    slm_model_free(a);
    slm_model_free(b);
}

static void test_model_bad_arguments(void)
{
    slm_model *m = model_with("auto");
    size_t n = (size_t)L * H * P * P;
    float *w = malloc(n * sizeof *w);
    CHECK(m && w, "setup");
    if (!m || !w) goto done;
    for (size_t i = 0; i < n; i++) w[i] = 7.0f;
    char err[256];
    int32_t big[P + 1] = {0}, bad[2] = {1, V};
    CHECK(slm_model_attention_weights(m, prompt, T, L, w, err, sizeof err) == SLM_ERANGE &&
              strstr(err, "layer 3 is outside [0, 3)"),
          "layer = n_layer: %s", err);
    CHECK(slm_model_attention_weights(m, prompt, T, -2, w, err, sizeof err) == SLM_ERANGE,
          "layer -2");
    CHECK(slm_model_attention_weights(m, big, P + 1, 0, w, err, sizeof err) == SLM_ERANGE &&
              strstr(err, "exceeds the context"),
          "T > n_positions: %s", err);
    CHECK(slm_model_attention_weights(m, bad, 2, 0, w, err, sizeof err) == SLM_ERANGE,
          "token outside the vocabulary");
    CHECK(slm_model_attention_weights(m, prompt, 0, 0, w, err, sizeof err) == SLM_EINVAL, "T 0");
    CHECK(slm_model_attention_weights(m, NULL, T, 0, w, err, sizeof err) == SLM_EINVAL, "NULL");
    CHECK(slm_model_attention_weights(m, prompt, T, 0, NULL, err, sizeof err) == SLM_EINVAL,
          "NULL weights");
    CHECK(slm_model_attention_weights(NULL, prompt, T, 0, w, NULL, 0) == SLM_EINVAL, "NULL m");
    for (size_t i = 0; i < n; i++)
        if (w[i] != 7.0f) {
            CHECK(0, "weights written on error at %zu", i);
            break;
        }
done:
    free(w);
    slm_model_free(m);
}

/* The FFN activations are the layer's own: fc_act of the pass, and a row
 * changes only when its own token changes (position-wise), while attention
 * lets a change reach every later row. */
static void test_model_ffn_activations(void)
{
    slm_model *m = model_with("auto");
    size_t n = (size_t)T * 4 * C;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    CHECK(m && a && b, "setup");
    char err[256] = "";
    if (!m || !a || !b) goto done;
    CHECK(!slm_model_ffn_activations(m, prompt, T, 1, a, err, sizeof err), "%s", err);
    CHECK(!memcmp(a, m->train->shard[0].layer[1].fc_act, n * sizeof *a), "not the pass's fc_act");
    /* Block 0 sees the embeddings through attention: changing the last token
     * changes only the last row of its FFN (earlier rows cannot see it). */
    int32_t changed[T];
    memcpy(changed, prompt, sizeof changed);
    changed[T - 1] = (prompt[T - 1] + 1) % V;
    CHECK(!slm_model_ffn_activations(m, prompt, T, 0, a, err, sizeof err), "%s", err);
    CHECK(!slm_model_ffn_activations(m, changed, T, 0, b, err, sizeof err), "%s", err);
    CHECK(!memcmp(a, b, (size_t)(T - 1) * 4 * C * sizeof *a), "earlier rows changed");
    CHECK(memcmp(a + (size_t)(T - 1) * 4 * C, b + (size_t)(T - 1) * 4 * C, 4 * C * sizeof *a),
          "the changed token's row did not change");
    for (size_t i = 0; i < n; i++) a[i] = 7.0f;
    CHECK(slm_model_ffn_activations(m, prompt, T, L, a, err, sizeof err) == SLM_ERANGE &&
              strstr(err, "layer 3"), "layer = n_layer: %s", err);
    CHECK(slm_model_ffn_activations(m, prompt, T, -1, a, err, sizeof err) == SLM_ERANGE, "-1");
    CHECK(slm_model_ffn_activations(m, prompt, P + 1, 0, a, err, sizeof err) == SLM_ERANGE,
          "T > n_positions");
    CHECK(slm_model_ffn_activations(m, prompt, T, 0, NULL, err, sizeof err) == SLM_EINVAL,
          "NULL act");
    CHECK(a[0] == 7.0f && a[n - 1] == 7.0f, "written on error");
done:
    free(a);
    free(b);
    slm_model_free(m);
}

int main(void)
{
    RUN(test_core_from_reference_lse);
    RUN(test_core_from_flash_lse);
    RUN(test_core_bad_arguments);
    RUN(test_model_weights_are_the_kernels);
    RUN(test_model_reference_equals_flash);
    RUN(test_model_bad_arguments);
    RUN(test_model_ffn_activations);
    return test_summary();
}
