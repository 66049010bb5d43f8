/* io_util.h first: it sets _XOPEN_SOURCE for nftw before any system header */
#include "../io_util.h"

#include "bf16_train_case.h"
#include "tiny_gpt.h"

#include "../test.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

slm_model *btc_model(int layers, int activation, float dropout)
{
    return tiny_gpt(layers, 32, BTC_CTX, BTC_V, activation, dropout, 21);
}

slm_corpus *btc_corpus(size_t n)
{
    int32_t *ids = malloc(n * sizeof *ids);
    if (!ids) return NULL;
    uint64_t x = 99;
    int32_t t = 0;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        t = (x >> 60) < 3 ? (int32_t)((x >> 33) % BTC_V) : (t + 1) % BTC_V;
        ids[i] = t;
    }
    slm_corpus_opts co = {BTC_CTX, 0.1, NULL};
    slm_corpus *c = NULL;
    char err[256];
    CHECK(slm_corpus_from_tokens(ids, n, BTC_V, &co, &c, err, sizeof err) == SLM_OK, "%s", err);
    free(ids);
    return c;
}

slm_train_opts btc_opts(int dtype, int steps)
{
    slm_train_opts o;
    slm_train_opts_default(&o);
    o.batch = BTC_B;
    o.steps = steps;
    o.warmup = 2;
    o.lr = 3e-3;
    o.eval_every = 0;
    o.save_every = 0;
    o.dtype = dtype;
    return o;
}

static int record_loss(void *ctx, const slm_train_progress *p)
{
    ((double *)ctx)[p->step - 1] = p->loss;
    return 0;
}

void btc_check_loss_curves(int steps, const char *what, double *first_f32, double *first_bf16)
{
    double *f32 = calloc((size_t)steps, sizeof *f32), *bf16 = calloc((size_t)steps, sizeof *bf16);
    slm_corpus *c = f32 && bf16 ? btc_corpus(4000) : NULL;
    for (int k = 0; k < 2 && c; k++) {
        slm_model *m = btc_model(2, SLM_ACT_GELU_NEW, 0.0f);
        slm_train_opts o = btc_opts(k ? SLM_DTYPE_BF16 : SLM_DTYPE_F32, steps);
        o.on_progress = record_loss;
        o.callback_ctx = k ? bf16 : f32;
        slm_trainer *t = NULL;
        char err[256];
        CHECK(m && slm_trainer_create(m, c, &o, 0, &t, err, sizeof err) == SLM_OK, "%s", err);
        CHECK(t && slm_trainer_run(t, err, sizeof err) == SLM_OK, "%s", err);
        slm_trainer_free(t);
        slm_model_free(m);
    }
    double worst = 0.0;
    int same = 1;
    for (int s = 0; c && s < steps; s++) {
        double r = fabs(bf16[s] - f32[s]) / f32[s];
        worst = r > worst ? r : worst;
        same &= bf16[s] == f32[s];
    }
    CHECK(c && worst <= 0.01, "%s: loss differs from fp32 by up to %.2f %%", what, 100 * worst);
    CHECK(c && f32[steps - 1] < 0.75 * f32[0], "fp32 did not learn: %g → %g", f32[0],
          f32[steps - 1]);
    CHECK(c && !same, "%s: curve equals fp32's: bf16 not used", what);
    if (c)
        printf("# %s vs fp32 loss over %d steps: worst %.3f %%, last %.4f vs %.4f\n", what, steps,
               100 * worst, bf16[steps - 1], f32[steps - 1]);
    *first_f32 = c ? f32[0] : NAN;
    *first_bf16 = c ? bf16[0] : NAN;
    slm_corpus_free(c);
    free(f32);
    free(bf16);
}

static int train_into(slm_model *m, const slm_corpus *c, const char *dir, int start, int stop)
{
    char err[256];
    slm_train_opts o = btc_opts(SLM_DTYPE_BF16, 7);
    o.save_every = 2;
    o.out_dir = dir;
    o.stop_after = stop;
    slm_trainer *t = NULL;
    int rc = slm_trainer_create(m, c, &o, start, &t, err, sizeof err);
    if (!rc) rc = slm_trainer_run(t, err, sizeof err);
    CHECK(rc == SLM_OK, "train: %s", err);
    slm_trainer_free(t);
    return rc;
}

void btc_check_resume(float dropout)
{
    char *a = strdup(tmpdir_make()), *b = tmpdir_make();
    slm_corpus *c = btc_corpus(2000);
    slm_model *straight = btc_model(2, SLM_ACT_GELU_NEW, dropout);
    slm_model *first = btc_model(2, SLM_ACT_GELU_NEW, dropout);
    slm_checkpoint ck = {0};
    char err[256];
    if (!a || !b || !c || !straight || !first) goto out;
    if (train_into(straight, c, a, 0, 0) || train_into(first, c, b, 0, 3)) goto out;
    CHECK(slm_checkpoint_load(b, &ck, err, sizeof err) == SLM_OK && ck.step == 3, "step %d: %s",
          ck.step, err);
    CHECK(ck.opts.dtype == SLM_DTYPE_BF16, "checkpoint dtype %d", ck.opts.dtype);
    if (!ck.model || train_into(ck.model, c, b, 3, 0)) goto out;
    const char *files[] = {"model.safetensors", "training_state.safetensors"};
    for (int i = 0; i < 2; i++) {
        size_t la = 0, lb = 0;
        unsigned char *x = read_bytes(path_in(a, files[i], 0), &la);
        unsigned char *y = read_bytes(path_in(b, files[i], 1), &lb);
        CHECK(x && y && la == lb && !memcmp(x, y, la), "%s differs", files[i]);
        free(x);
        free(y);
    }
out:
    slm_checkpoint_free(&ck);
    slm_model_free(straight);
    slm_model_free(first);
    slm_corpus_free(c);
    tmpdir_remove(a);
    tmpdir_remove(b);
    free(a);
}
