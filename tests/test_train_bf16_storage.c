/* Training with bf16 activation storage: dtype bf16 where the GEMMs stay
 * fp32 (SLM_BF16_GEMM=0 is set before anything runs, so this path is taken
 * on any CPU). The forward pass is fp32's, bit for bit; the gradients,
 * computed from the stored bf16 copies, stay within bf16 rounding of fp32's
 * (GELU and ReLU, with and without dropout); the activation memory is at
 * most 0.6× fp32's on a 6-layer model; a 50-step loss curve follows fp32's;
 * a resumed run is byte-identical; evaluation between steps keeps the bf16
 * layout; and attention weights after a bf16 pass (the layout changes back
 * to fp32's) are fp32's exactly; a pass split into two threads' shards
 * (each with its own working layer and stash) is one shard's. */
#include "common/bf16_train_case.h"
#include "common/shard_case.h"
#include "kernels/kernels.h"
#include "slm.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* bf16's unit roundoff (8 significant bits, round to nearest) */
#define U_BF16 (1.0 / 256.0)

enum { V = BTC_V, CTX = BTC_CTX, B = BTC_B };
/* A batch of more than 256 rows: the FFN's backward then runs in blocks of
 * rows (feed_forward.c), 256 and a partial one. */
enum { B_MANY = 20 };

/* One training pass at dtype on a batch of `rows_b` sequences; the
 * gradients into g (n floats), the loss into *loss, the activation bytes
 * returned. */
static size_t pass_b(slm_model *m, int dtype, int rows_b, float *g, float *loss)
{
    int32_t tok[B_MANY * CTX], tgt[B_MANY * CTX];
    for (int i = 0; i < rows_b * CTX; i++)
        tok[i] = (i * 7) % V, tgt[i] = (i * 7 + 1) % V;
    slm_batch batch = {tok, tgt, rows_b, CTX};
    slm_forward_opts o = {.training = 1, .dropout_seed = 5, .dtype = dtype};
    char err[256];
    slm_model_zero_grad(m);
    CHECK(slm_model_forward(m, &batch, &o, loss, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(slm_model_backward(m, 1.0f, err, sizeof err) == SLM_OK, "%s", err);
    memcpy(g, slm_model_grads(m), slm_model_num_params(m) * sizeof *g);
    return slm_model_activation_bytes(m);
}

static size_t pass(slm_model *m, int dtype, float *g, float *loss)
{
    return pass_b(m, dtype, B, g, loss);
}

/* The same pass in fp32 and with bf16 storage, alternately on one model:
 * equal losses (forward never reads the rounded copies), gradients within
 * a relative L2 difference of 4·(L+1)·u (every stored element off by at
 * most u/2, each gradient passing through at most 2·(L+1) GEMMs and
 * LayerNorms that read them), and not identical (the copies were read). */
static void check_gradients(int activation, float dropout, int rows_b, const char *what)
{
    enum { LAYERS = 2 };
    slm_model *m = btc_model(LAYERS, activation, dropout);
    if (!m) return;
    size_t n = slm_model_num_params(m);
    float *g32 = malloc(n * sizeof *g32), *g16 = malloc(n * sizeof *g16), l32, l16, again;
    pass_b(m, SLM_DTYPE_F32, rows_b, g32, &l32);
    pass_b(m, SLM_DTYPE_BF16, rows_b, g16, &l16);
    CHECK(l16 == l32, "%s: loss %.9g with bf16 storage, %.9g in fp32", what, l16, l32);
    double d2 = 0.0, n2 = 0.0;
    for (size_t i = 0; i < n; i++)
        d2 += ((double)g16[i] - g32[i]) * ((double)g16[i] - g32[i]), n2 += (double)g32[i] * g32[i];
    double rel = sqrt(d2 / n2), bound = 4.0 * (LAYERS + 1) * U_BF16;
    CHECK(rel <= bound, "%s: gradients differ from fp32 by %.3g (bound %.3g)", what, rel, bound);
    CHECK(rel > 0.0, "%s: gradients identical to fp32: the bf16 copies were not read", what);
    printf("# %s: gradients vs fp32 relative L2 %.3g (bound %.3g)\n", what, rel, bound);
    /* and back to fp32: the same gradients as the first pass, bit for bit */
    pass_b(m, SLM_DTYPE_F32, rows_b, g16, &again);
    CHECK(again == l32 && !memcmp(g16, g32, n * sizeof *g32), "%s: fp32 after bf16 differs", what);
    free(g32);
    free(g16);
    slm_model_free(m);
}

static void test_gradients_gelu(void)
{
    check_gradients(SLM_ACT_GELU_NEW, 0.0f, B, "GELU");
}

static void test_gradients_gelu_many_rows(void)
{
    check_gradients(SLM_ACT_GELU_NEW, 0.0f, B_MANY, "GELU, 320 rows");
}

static void test_gradients_relu_with_dropout(void)
{
    check_gradients(SLM_ACT_RELU, 0.2f, B, "ReLU, dropout 0.2");
}

/* bf16 storage holds per layer 10 bf16 values per row and channel (x̂ twice,
 * q, k, v, the attention output, 4 of fc_pre) where fp32 holds 16 floats,
 * plus one fp32 working layer: on 6 layers, 0.5-0.6× in all (shared
 * scratch and logits included). */
static void test_activation_memory_at_most_0_6(void)
{
    slm_model *m = btc_model(6, SLM_ACT_GELU_NEW, 0.0f);
    if (!m) return;
    size_t n = slm_model_num_params(m);
    float *g = malloc(n * sizeof *g), loss;
    size_t f32 = pass(m, SLM_DTYPE_F32, g, &loss), bf16 = pass(m, SLM_DTYPE_BF16, g, &loss);
    double r = (double)bf16 / (double)f32;
    CHECK(f32 > 0 && r <= 0.6 && r >= 0.45, "activation memory bf16/fp32 = %zu/%zu = %.3f", bf16,
          f32, r);
    printf("# activation memory on 6 layers: %zu bytes fp32, %zu bf16 storage (%.2f)\n", f32, bf16,
           r);
    free(g);
    slm_model_free(m);
}

/* 50 steps in fp32 and with bf16 storage from the same start: step 1's
 * losses are equal (fp32 forward), later ones within 1 % (the updates
 * differ by bf16 rounding of the gradients' inputs), and training works
 * (btc_check_loss_curves). */
static void test_loss_curve_follows_fp32(void)
{
    double f32, bf16;
    btc_check_loss_curves(50, "bf16 storage", &f32, &bf16);
    CHECK(bf16 == f32, "step 1: %.9g vs %.9g", bf16, f32);
}

/* Stopped at step 3 and resumed (with dropout): the uninterrupted run's
 * files, byte for byte. */
static void test_resume_is_byte_identical(void)
{
    btc_check_resume(0.1f);
}

/* An inference pass (validation) after a bf16-storage training pass stays
 * in the bf16 layout — the activation memory does not grow back to fp32's —
 * and gives fp32's loss bit for bit. */
static void test_evaluation_keeps_the_bf16_layout(void)
{
    slm_model *m = btc_model(2, SLM_ACT_GELU_NEW, 0.0f);
    if (!m) return;
    size_t n = slm_model_num_params(m);
    float *g = malloc(n * sizeof *g), loss, l16, l32;
    int32_t tok[B * CTX], tgt[B * CTX];
    for (int i = 0; i < B * CTX; i++)
        tok[i] = (i * 3) % V, tgt[i] = (i * 3 + 2) % V;
    slm_batch batch = {tok, tgt, B, CTX};
    char err[256];
    size_t f32 = pass(m, SLM_DTYPE_F32, g, &loss);
    CHECK(slm_model_forward(m, &batch, NULL, &l32, err, sizeof err) == SLM_OK, "%s", err);
    size_t bf16 = pass(m, SLM_DTYPE_BF16, g, &loss);
    CHECK(slm_model_forward(m, &batch, NULL, &l16, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(slm_model_activation_bytes(m) == bf16 && bf16 < f32,
          "after evaluation %zu bytes (bf16 storage %zu, fp32 %zu)", slm_model_activation_bytes(m),
          bf16, f32);
    CHECK(l16 == l32, "evaluation loss %.9g in the bf16 layout, %.9g in fp32's", l16, l32);
    free(g);
    slm_model_free(m);
}

/* Attention weights (an fp32 inference pass) after a bf16-storage training
 * pass equal those of a model that never left fp32. */
static void test_attention_weights_after_bf16_pass(void)
{
    slm_model *m = btc_model(2, SLM_ACT_GELU_NEW, 0.0f),
              *ref = btc_model(2, SLM_ACT_GELU_NEW, 0.0f);
    if (!m || !ref) goto out;
    int32_t tok[CTX];
    for (int i = 0; i < CTX; i++)
        tok[i] = (i * 5) % V;
    size_t n = slm_model_num_params(m), per = 2 * 2 * (size_t)CTX * CTX;
    float *g = malloc(n * sizeof *g), loss, *wa = malloc(per * 4), *wb = malloc(per * 4);
    char err[256];
    pass(m, SLM_DTYPE_BF16, g, &loss);
    CHECK(slm_model_attention_weights(m, tok, CTX, -1, wa, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(slm_model_attention_weights(ref, tok, CTX, -1, wb, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(!memcmp(wa, wb, per * 4), "attention weights differ after a bf16-storage pass");
    free(g);
    free(wa);
    free(wb);
out:
    slm_model_free(m);
    slm_model_free(ref);
}

static void test_two_shards_match_one(void)
{
    shard_check_training(SLM_DTYPE_BF16, 0.1f, 3, 1e-3);
}

int main(void)
{
    setenv("SLM_BF16_GEMM", "0", 1);
    printf("# %s\n", gemm_bf16_reason());
    RUN(test_gradients_gelu);
    RUN(test_gradients_gelu_many_rows);
    RUN(test_gradients_relu_with_dropout);
    RUN(test_activation_memory_at_most_0_6);
    RUN(test_loss_curve_follows_fp32);
    RUN(test_resume_is_byte_identical);
    RUN(test_evaluation_keeps_the_bf16_layout);
    RUN(test_attention_weights_after_bf16_pass);
    RUN(test_two_shards_match_one);
    return test_summary();
}
